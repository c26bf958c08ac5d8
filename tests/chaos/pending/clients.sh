#!/bin/bash
# Hostile clients under load (issue 15): while 500 request clients ask back
# to back, clients die mid-request (closing before the reply, forked
# children _exit holding 4 sockets), 4 subscribers to everything never
# read, and a publisher floods at full speed, `herdctl status` is timed
# every 150 ms: every call must answer, within 100 ms. herdd's RSS is
# sampled throughout and must stay under RSS_BOUND_MIB (below). After the
# load herdd still answers, its bus counters are consistent, RSS falls
# back, and no client process is left.
# Short by default (25 s of load); CHAOS_LONG=1: 180 s.
#
# PENDING (not run by make test or scripts/chaos: tests/chaos/pending/ is
# outside both globs): it fails today, and what it found is open in issue
# 15. Under this load `herdctl status` takes 100-280 ms while herdd's loop
# is at ~33% of a core and the machine idle (500 clients at 4 requests/s:
# 220-280 ms; 100 clients at 20/s: up to 182 ms; 500 at 1/s: 10-24 ms),
# and with the dying clients and the flood some calls get no reply within
# 5 s. Suspects: connection churn making the listener check replace
# request.ipc's listener (herdctl then redials: nng's 100 ms reconnect),
# head-of-line blocking in the reply retry queue (bus/server.c), the
# smaps_rollup read of every status and mem (120-160 us). Run it by hand:
#   HERD_CLIENTS=build/tests/herd-clients ... bash tests/chaos/pending/clients.sh
# (scripts/chaos prints the environment it exports).
. "$(dirname "$0")/../../integration/lib.sh"

[ -x "${HERD_CLIENTS:-}" ] || { echo "HERD_CLIENTS not set: skipped"; exit 77; }
if [ -n "${CHAOS_LONG:-}" ] && [ "$CHAOS_LONG" != 0 ]; then LOAD_S=180; else LOAD_S=25; fi
N_REQ=500
# Each request client pauses 250 ms between requests (500 clients: up to
# 2,000 requests/s offered). Measured on the 2-core CI machine: 500
# clients asking back to back (no pause) saturate herdd's loop at about
# 2,500 requests/s, and a status then waits behind the ~500 requests
# queued ahead of it: 200-540 ms. That is queueing, not a blocked loop.
export HERD_CLIENTS_INTERVAL_MS=${HERD_CLIENTS_INTERVAL_MS:-250}
N_SUB=4
PAD=1000 # flood payload: about 1 KiB an event
LAT_MS=100
SUB_BUF=256
# RSS bound: each never-reading subscriber can pin subscriber_buffer
# events in pub0's queue (plus what its socket buffers hold), 4 x 256 x
# ~1 KiB = 1 MiB; 500 request pipes cost nng about 40 KiB each (20 MiB);
# each pipe may hold unread replies, but the req clients read theirs and
# the dying ones' are dropped with their pipe; the in-flight status and
# catalog replies (500 x ~10 KiB = 5 MiB). Plus herdd's baseline (~10
# MiB) and the catalog: 64 MiB leaves room for allocator slack. The
# sanitizer's shadow memory and quarantine (256 MiB by default) sit on
# top: there the bound is 64 + 320.
RSS_BOUND_MIB=64
[ "${HERD_SANITIZE:-0}" = 1 ] && RSS_BOUND_MIB=384

# 500 clients plus herdd's own descriptors: make room.
need=$((3 * (N_REQ + 100) + 128))
[ "$(ulimit -n)" -ge $need ] || ulimit -n $need 2>/dev/null ||
    { echo "descriptor limit $(ulimit -n) below $need: skipped"; exit 77; }

gzip -dc "$HERD_TEST_DATA/esphome/components.json.gz" >"$T/comp.json" || fail "gunzip"
"$HERDCTL" catalog build "$T/comp.json" "$T/cat" >/dev/null || fail "catalog build"
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN", "max_connections": $((N_REQ + 100)), "subscriber_buffer": $SUB_BUF},
 "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "cat", "kind": "catalog", "path": "$T/cat"},
  {"name": "arc1", "kind": "archive", "subscribe": ["flood.>"], "path": "$T/arc1/events.jsonl"},
  {"name": "arc2", "kind": "archive", "subscribe": ["other.>"], "path": "$T/arc2/events.jsonl"},
  {"name": "jobs", "kind": "jobs", "types": {"hello": {"argv": ["echo", "hi"]}}}]}
JSON
start_herdd "$T/herd.json"
wait_until worker_state_is cat running || fail "catalog worker"
wait_until worker_state_is jobs running || fail "jobs worker"
base_rss=$(herdd_rss_mib)

CLIENTS=""
stop_clients() {
    local p
    # children first (a dying client's forked child, herd-pub under the
    # flood loop), then the clients themselves
    for p in $CLIENTS; do pkill -KILL -P "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
    for p in $CLIENTS; do wait "$p" 2>/dev/null; done
}
trap 'stop_clients; cleanup' EXIT

"$HERD_CLIENTS" "$RUN" sub $N_SUB $((LOAD_S + 5)) >"$T/sub.out" 2>"$T/sub.log" &
CLIENTS="$CLIENTS $!"
wait_until remote_subscribers_at_least "$RUN" $N_SUB || fail "subscribers did not connect"
"$HERD_CLIENTS" "$RUN" req $N_REQ $LOAD_S cat >"$T/req.out" 2>"$T/req.log" &
req_pid=$!
CLIENTS="$CLIENTS $req_pid"
"$HERD_CLIENTS" "$RUN" die 8 $LOAD_S >"$T/die.out" 2>"$T/die.log" &
die_pid=$!
CLIENTS="$CLIENTS $die_pid"
( end=$(($(date +%s) + LOAD_S)); while [ "$(date +%s)" -lt $end ]; do
      "$HERD_PUB" "$RUN" flood.x 20000 $PAD >/dev/null || exit 1
  done ) 2>"$T/pub.log" &
pub_pid=$!
CLIENTS="$CLIENTS $pub_pid"

: >"$T/lat"
peak=0
end=$(($(date +%s) + LOAD_S))
n=0
while [ "$(date +%s)" -lt $end ]; do
    start=$(date +%s%N)
    "$HERDCTL" --timeout 5 status >/dev/null 2>>"$T/status.err" || fail "status call $n failed under load: $(tail -2 "$T/status.err")"
    ms=$((($(date +%s%N) - start) / 1000000))
    echo $ms >>"$T/lat"
    r=$(herdd_rss_mib); [ "$r" -gt "$peak" ] && peak=$r
    n=$((n + 1))
    sleep 0.15
done
wait $req_pid || fail "request clients: $(cat "$T/req.out") $(tail -3 "$T/req.log")"
wait $die_pid || fail "dying clients: $(cat "$T/die.out") $(tail -3 "$T/die.log")"
wait $pub_pid || fail "publisher: $(tail -3 "$T/pub.log")"
kill -0 "$HERDD_PID" || fail "herdd died"

sorted=$(sort -n "$T/lat")
max=$(echo "$sorted" | tail -1)
median=$(echo "$sorted" | sed -n "$(((n + 1) / 2))p")
slow=$(awk -v b=$LAT_MS '$1 > b' "$T/lat" | wc -l)
echo "status: $n calls, median $median ms, max $max ms, $slow over $LAT_MS ms; RSS base $base_rss peak $peak MiB (bound $RSS_BOUND_MIB)"
echo "clients: $(cat "$T/req.out"); $(cat "$T/die.out")"
[ "$slow" = 0 ] || fail "$slow of $n status calls took over $LAT_MS ms (max $max): $(tr '\n' ' ' <"$T/lat")"
[ "$peak" -lt $RSS_BOUND_MIB ] || fail "herdd's RSS reached $peak MiB (bound $RSS_BOUND_MIB)"
answered=$(sed -n 's/.*answered=\([0-9]*\).*/\1/p' "$T/req.out")
[ "${answered:-0}" -ge $N_REQ ] || fail "request clients got only ${answered:-0} answers"

# After the load.
wait "$(echo $CLIENTS | cut -d' ' -f1)" 2>/dev/null
wait_until yields 0 status_get "$RUN" supervisor.bus.remote_subscribers || fail "subscribers still counted"
"$HERDCTL" --json status >"$T/after.json" || fail "status after the load"
python3 - "$T/after.json" <<'PY' || fail "counters after the load: $(cat "$T/after.json")"
import json, sys
b = json.load(open(sys.argv[1]))["supervisor"]["bus"]
assert b["requests_pending"] <= 1, b  # this status itself
assert b["replies"] + b["dropped"]["send_failed"] <= b["requests"], b
assert b["dropped"]["bad_json"] > 0 and b["dropped"]["bad_request"] > 0, b
assert all(v >= 0 for v in b["dropped"].values()), b
print("bus:", {k: b[k] for k in ("requests", "replies", "remote_in", "remote_out")}, b["dropped"])
PY
rss_below() { [ "$(herdd_rss_mib)" -lt "$1" ]; }
if [ "${HERD_SANITIZE:-0}" != 1 ]; then
    wait_until rss_below $((base_rss + 24)) || fail "RSS still $(herdd_rss_mib) MiB after the load (base $base_rss)"
fi
after=$(herdd_rss_mib)
stop_clients
CLIENTS=""
left=$(pgrep -f "^$HERD_CLIENTS $RUN " | wc -l)
[ "$left" = 0 ] || fail "$left client processes left"
pass "$N_REQ request clients, dying clients, $N_SUB stuck subscribers, a flood for $LOAD_S s: status median $median ms, max $max ms over $n calls; RSS peak $peak MiB (bound $RSS_BOUND_MIB), $after MiB after"
