# The fleet view (issue 13): other hosts' events, as a nats worker brings
# them onto the local bus (fleet.<host>.system.<w>.health and .state,
# fleet.<host>.system.supervisor.health), faked here with herdctl pub.
# The bus takes them from outside (no fleet. topic is reserved); /api/fleet
# lists every host with its last supervisor health and each worker's last
# health and state; malformed events and controls are not kept; the cap
# (http.fleet_max_hosts 2): a third host is refused and counted while both
# are live, and takes the place of one gone stale (evicted); staleness from
# the gap between a host's last two heartbeats (1 s here: stale after 3 s
# of silence); the store's bytes in /api/fleet and in herd_http_heap_bytes;
# http.fleet_max_hosts 0: no /api/fleet. Then in headless Chromium
# (cdp.py): no fleet section before a host is seen, then a table of both
# hosts, the failed worker named and its host's row marked, a host going
# stale marked without a reload. Screenshot:
# $HERD_BUILD_DIR/tests/dashboard-fleet.png. Without Chromium the browser
# part is skipped (said so) and the rest still runs.
. "$(dirname "$0")/lib.sh"

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
OUT=${HERD_BUILD_DIR:-$T}/tests
mkdir -p "$OUT" || fail "cannot make $OUT"
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"

stop_all() {
    local g
    g=$(cat "$T/chromium.pgid" 2>/dev/null)
    if [ -n "$g" ]; then
        kill -TERM -- "-$g" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 -- "-$g" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL -- "-$g" 2>/dev/null
    fi
    [ -f "$T/keep.pid" ] && kill "$(cat "$T/keep.pid")" 2>/dev/null
    cleanup
}
trap stop_all EXIT
trap 'exit 143' TERM INT

# config FILE [HTTP_EXTRA]: one local worker, HTTP on $PORT.
config() {
    cat >"$1" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "health_interval_s": 1,
 "http": {"listen": "127.0.0.1:$PORT"${2:+, $2}},
 "workers": [{"name": "local", "kind": "process", "argv": ["sleep", "$MARK"]}]}
JSON
}

stop_herdd() {
    kill -TERM "$HERDD_PID" 2>/dev/null
    for _ in $(seq 1 100); do
        kill -0 "$HERDD_PID" 2>/dev/null || return 0
        sleep 0.1
    done
    fail "herdd did not stop"
}

# The fake events, as functions in a file: cdp.py's `run` (sh) uses them
# too.
cat >"$T/fns.sh" <<'SH'
pub() {
    "$HERDCTL" --runtime-dir "$RUN" pub "$1" "$2" || { echo "FAIL: pub $1 refused" >&2; exit 1; }
}
now_ts() { date -u +%Y-%m-%dT%H:%M:%SZ; }
# sup_health HOST [FAILED]: a heartbeat of HOST's herdd.
sup_health() {
    pub "fleet.$1.system.supervisor.health" "{\"pid\": 4242, \"host\": \"$1\", \"version\": \"9.8.7\",
      \"uptime_s\": 3600, \"rss_bytes\": 25165824, \"pss_bytes\": 20000000, \"uss_bytes\": 18000000,
      \"workers\": {\"running\": 2${2:+, \"failed\": $2}}, \"bus\": {}, \"ts\": \"$(now_ts)\"}"
}
# worker_health HOST WORKER STATE [LAST_ERROR_JSON]
worker_health() {
    pub "fleet.$1.system.$2.health" "{\"worker\": \"$2\", \"kind\": \"process\", \"state\": \"$3\",
      \"pid\": 77, \"uptime_s\": 60, \"restarts\": 0, \"heap_bytes\": 65536, \"memory_max\": null,
      \"last_error\": ${4:-null}, \"ts\": \"$(now_ts)\"}"
}
# worker_state HOST WORKER FROM TO REASON
worker_state() {
    pub "fleet.$1.system.$2.state" "{\"worker\": \"$2\", \"from\": \"$3\", \"to\": \"$4\",
      \"reason\": \"$5\", \"ts\": \"$(now_ts)\"}"
}
# two_hosts: edge7 (web, api running) and edge9 (cache running, db failed).
two_hosts() {
    sup_health edge7
    worker_health edge7 web running
    worker_health edge7 api running
    sup_health edge9 1
    worker_health edge9 cache running
    worker_health edge9 db running
    worker_state edge9 db running failed "exited with status 3"
}
SH
export HERDCTL RUN
. "$T/fns.sh"

fleet() { curl -sf "$URL/api/fleet"; }
# fleet_py EXPR: EXPR over j (the /api/fleet JSON) and h (host -> entry)
# holds (exit 0) or prints what it saw.
fleet_py() {
    fleet >"$T/fleet.json" || return 1
    python3 - "$1" "$T/fleet.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[2]))
h = {x["host"]: x for x in j["hosts"]}
w = {(x["host"], y.get("worker")): y for x in j["hosts"] for y in x["workers"]}
if not eval(sys.argv[1]):
    print(json.dumps(j, indent=1)[:3000])
    sys.exit(1)
PY
}
check_fleet() { fleet_py "$1" || fail "/api/fleet: $1"; }
wait_fleet() { wait_until fleet_py "$1" || { fleet_py "$1"; fail "/api/fleet never: $1"; }; }

# ---- http.fleet_max_hosts 0: no fleet view ------------------------------------
config "$T/off.json" '"fleet_max_hosts": 0'
start_herdd "$T/off.json"
wait_until curl -sf "$URL/healthz" || fail "no HTTP"
sup_health edge7
code=$(curl -s -o "$T/off.out" -w '%{http_code}' "$URL/api/fleet")
[ "$code" = 404 ] || fail "fleet_max_hosts 0: /api/fleet answered $code: $(cat "$T/off.out")"
grep -q 'fleet_max_hosts' "$T/off.out" || fail "the 404 does not say why: $(cat "$T/off.out")"
stop_herdd
pass "http.fleet_max_hosts 0: /api/fleet is 404, saying why"

# ---- the store, its cap, staleness ---------------------------------------------
config "$T/cap.json" '"fleet_max_hosts": 2'
start_herdd "$T/cap.json"
wait_until curl -sf "$URL/healthz" || fail "no HTTP"
check_fleet 'j["hosts"] == [] and j["refused"] == 0 and j["max_hosts"] == 2'
two_hosts
wait_fleet 'set(h) == {"edge7", "edge9"} and len(h["edge9"]["workers"]) == 2 and len(h["edge7"]["workers"]) == 2'
# Not refused by the publish socket: nothing dropped as reserved.
[ "$(status_get "$RUN" supervisor.bus.dropped.reserved)" = 0 ] ||
    fail "fleet topics dropped as reserved: $(status_get "$RUN" supervisor.bus.dropped)"
check_fleet 'h["edge7"]["supervisor"]["version"] == "9.8.7" and h["edge7"]["supervisor"]["rss_bytes"] == 25165824'
check_fleet 'h["edge9"]["supervisor"]["host"] == "edge9" and not h["edge7"]["stale"] and not h["edge9"]["stale"]'
check_fleet 'h["edge7"]["last_seen_ms_ago"] < 5000 and h["edge7"]["stale_after_ms"] == 30000'
check_fleet 'w["edge7", "web"]["state"] == "running" and w["edge7", "web"]["kind"] == "process"'
# The state event after the health: the worker's state is its "to", the
# event itself its last_change; a later health keeps the last_change.
check_fleet 'w["edge9", "db"]["state"] == "failed" and w["edge9", "db"]["last_change"]["reason"] == "exited with status 3"'
worker_health edge9 db failed '"exited with status 3"'
wait_fleet 'w["edge9", "db"]["last_error"] == "exited with status 3" and w["edge9", "db"]["last_change"]["to"] == "failed"'
check_fleet 'w["edge9", "cache"]["state"] == "running" and "last_change" not in w["edge9", "cache"]'
pass "/api/fleet: both hosts, their herdd's last health, each worker's last health and state"

# What is not a host's report is not kept: controls, fleet.all, a payload
# that is not an object.
dropped=$(fleet | json_get dropped)
pub fleet.edge7.system.web.control '{"action": "restart"}'
pub fleet.all.system.supervisor.health '{"version": "0"}'
pub fleet.edge7.system.web.health '[1, 2]'
pub fleet.edge7.system.web.health '{"worker": "web", "state": "running", "kind": "process"}'
wait_fleet 'w["edge7", "web"].get("heap_bytes") is None and j["dropped"] == '"$((dropped + 1))"
check_fleet 'set(h) == {"edge7", "edge9"} and w["edge7", "web"]["state"] == "running"'
# An event over 16 KiB is not kept either.
if [ -n "${HERD_PUB:-}" ]; then
    "$HERD_PUB" "$RUN" fleet.edge7.system.big.health 1 17000 >/dev/null || fail "herd-pub"
    wait_fleet 'j["dropped"] == '"$((dropped + 2))"' and ("edge7", "big") not in w'
fi
pass "controls and fleet.all are ignored, a non-object payload${HERD_PUB:+ and one over 16 KiB} dropped and counted"

# The cap: a third host, while both are live, is refused and counted.
sup_health edge11
worker_health edge11 x running
wait_fleet 'j["refused"] == 2 and set(h) == {"edge7", "edge9"} and j["evicted"] == 0'
pass "http.fleet_max_hosts 2: a third host is refused (counted: refused 2), the two kept"

# Staleness: edge7's heartbeats 1 s apart, then silence; edge9 kept alive.
( while :; do sup_health edge9 1; sleep 0.5; done ) >/dev/null 2>&1 &
KEEP=$!
track $KEEP
sup_health edge7
sleep 1
sup_health edge7
t0=$(date +%s%N)
wait_fleet 'h["edge7"]["stale_after_ms"] >= 3000 and h["edge7"]["stale_after_ms"] < 4500'
check_fleet 'not h["edge7"]["stale"]'
for _ in $(seq 1 60); do
    fleet_py 'h["edge7"]["stale"]' >/dev/null && break
    sleep 0.1
done
el=$((($(date +%s%N) - t0) / 1000000))
check_fleet 'h["edge7"]["stale"] and h["edge7"]["last_seen_ms_ago"] > h["edge7"]["stale_after_ms"]'
check_fleet 'not h["edge9"]["stale"]'
after=$(fleet | python3 -c 'import json, sys; print([x for x in json.load(sys.stdin)["hosts"] if x["host"] == "edge7"][0]["stale_after_ms"])')
[ "$el" -ge 2500 ] || fail "edge7 stale after $el ms (3 heartbeats of 1 s: at least 3000)"
pass "staleness: two heartbeats 1 s apart (stale_after_ms $after), then stale after $el ms of silence; edge9 live"

# A new host over the cap takes the stale one's place.
sup_health edge11
worker_health edge11 x running
wait_fleet 'set(h) == {"edge9", "edge11"} and j["evicted"] == 1 and len(h["edge11"]["workers"]) == 1'
check_fleet 'j["heap_bytes"] > 0'
heap=$(fleet | json_get heap_bytes)
curl -sf "$URL/metrics" >"$T/metrics.txt" || fail "/metrics"
http_heap=$(awk '$1 == "herd_http_heap_bytes" {print $2}' "$T/metrics.txt")
[ -n "$http_heap" ] && [ "$http_heap" -ge "$heap" ] ||
    fail "herd_http_heap_bytes $http_heap does not hold the fleet store's $heap"
kill "$KEEP" 2>/dev/null
wait "$KEEP" 2>/dev/null
stop_herdd
pass "over the cap, a new host evicts a stale one (evicted 1); the store's $heap bytes are in herd_http_heap_bytes ($http_heap)"

# ---- in the browser ---------------------------------------------------------------
if [ -z "$CHROMIUM" ] || [ ! -x "$CHROMIUM" ]; then
    echo "SKIP: the browser part: no chromium${CHROMIUM:+ at $CHROMIUM}"
    exit 0
fi
config "$T/herd.json"
start_herdd "$T/herd.json"
wait_until curl -sf "$URL/healthz" || fail "no HTTP"
cat >"$T/keep.sh" <<SH
. "$T/fns.sh"
while :; do sup_health edge9 1; sleep 0.2; done
SH
hrow() { printf "document.querySelector('tr[data-host=\"%s\"]')" "$1"; }
python3 "$(dirname "$0")/cdp.py" --chromium "$CHROMIUM" --timeout 30 --pidfile "$T/chromium.pgid" \
    "$T/chromium" >"$T/cdp.log" 2>&1 <<CDP &
size 1280 800
open $URL/
check (window.herdMark = 'm$MARK', true)
wait document.querySelector('tr[data-worker="local"]') && document.getElementById('conn').dataset.conn === 'live'
# No host seen yet: no fleet section (after a poll or two).
run sleep 3.5
check document.getElementById('fleet').hidden
run . "$T/fns.sh" && two_hosts && sleep 1 && sup_health edge7
run bash "$T/keep.sh" >/dev/null 2>&1 & echo \$! >"$T/keep.pid"
wait !document.getElementById('fleet').hidden && document.querySelectorAll('#hosts tr').length === 2
wait $(hrow edge9) && $(hrow edge9).querySelector('td.att').textContent.includes('db (failed)')
check $(hrow edge9).classList.contains('bad') && !$(hrow edge7).classList.contains('bad')
check getComputedStyle($(hrow edge9)).backgroundColor !== getComputedStyle($(hrow edge7)).backgroundColor
check document.querySelector('#hosts tr').dataset.host === 'edge9'
check $(hrow edge9).querySelector('td.ws .cnt[data-s=failed] b').textContent === '1'
check $(hrow edge7).querySelector('td.ws .cnt[data-s=running] b').textContent === '2'
check $(hrow edge7).dataset.live === 'live' && $(hrow edge7).querySelector('.pill').textContent === 'live'
check $(hrow edge7).cells[4].textContent.startsWith('9.8.7') && $(hrow edge7).cells[5].textContent.startsWith('24.0')
check /ago\$/.test($(hrow edge7).cells[6].textContent)
noerrors
# edge7 goes silent: marked stale, without a reload; edge9 stays live.
wait $(hrow edge7).dataset.live === 'stale' && $(hrow edge7).querySelector('.pill').textContent === 'stale'
check window.herdMark === 'm$MARK' && $(hrow edge9).dataset.live === 'live'
check document.getElementById('fleet-sum').textContent.includes('1 stale')
check getComputedStyle($(hrow edge7)).backgroundColor !== getComputedStyle(document.querySelector('tr[data-worker="local"]')).backgroundColor
run sleep 1
shot $OUT/dashboard-fleet.png
size 420 900
check document.documentElement.scrollWidth <= 420
shot $OUT/dashboard-fleet-narrow.png full
size 1280 800
noerrors
CDP
CDP_PID=$!
track $CDP_PID
wait $CDP_PID
rc=$?
[ -f "$T/keep.pid" ] && kill "$(cat "$T/keep.pid")" 2>/dev/null
cat "$T/cdp.log"
[ $rc = 0 ] || fail "the fleet in the browser (cdp.py exit $rc; above)"
[ -s "$OUT/dashboard-fleet.png" ] || fail "no screenshot"
pass "the fleet in Chromium: hidden until a host is seen, both hosts, the failed worker named and its host marked, a host going stale marked without a reload"
echo "screenshots: $OUT/dashboard-fleet.png $OUT/dashboard-fleet-narrow.png"
