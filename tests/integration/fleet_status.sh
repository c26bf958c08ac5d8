# A fleet of three herdd hosts (edge1..edge3) joined by one nats-server
# through their `nats` workers (DESIGN.md sections 7b and 8), driven by
# herdctl --nats: `--host edge3 status` reaches edge3 and only it; restart
# over NATS waits until the worker runs again, as locally; sub over NATS
# sees a host's exported state events; pub over NATS reaches that host's
# local bus once; `fleet status` lists the three hosts, then two after
# edge3's herdd is killed, and --host edge3 is then exit 3.
# Skips (77) without nats-server, or while herdd has no nats kind.
. "$(dirname "$0")/lib.sh"

kill_marked() {
    local p
    for p in $(pgrep -fx "sleep $MARK"); do kill -KILL "$p" 2>/dev/null; done
}
trap 'kill_marked; cleanup' EXIT

NATS_SERVER=$(command -v nats-server || ls /usr/sbin/nats-server 2>/dev/null)
[ -x "$NATS_SERVER" ] || { echo "SKIP: nats-server is not installed"; exit 77; }

PORT=$(free_port)
URL="nats://127.0.0.1:$PORT"

# host_config N: edgeN's config, its own runtime and state directories.
host_config() {
    local n=$1
    mkdir -p "$T/state$n"
    cat >"$T/edge$n.json" <<JSON
{"host": "edge$n", "bus": {"dir": "$T/run$n"}, "state_dir": "$T/state$n", "http": {"listen": ""},
 "workers": [
  {"name": "bridge", "kind": "nats", "url": "$URL", "export": [">"],
   "import": ["fleet.edge$n.>", "fleet.all.>"]},
  {"name": "p", "kind": "process", "argv": ["sleep", "$MARK"], "stop_timeout_s": 2}]}
JSON
}
for n in 1 2 3; do host_config $n; done

# Until workers/nats.c is in herdd, there is nothing to test here.
if ! "$HERDD" --check -c "$T/edge1.json" >"$T/check.out" 2>&1; then
    if grep -q "kind: expected one of" "$T/check.out" && ! grep -q "kind: expected one of.*nats" "$T/check.out"; then
        echo "SKIP: the nats kind is not built into herdd ($(cat "$T/check.out"))"
        exit 77
    fi
    fail "herdd --check refuses the nats worker: $(cat "$T/check.out")"
fi

"$NATS_SERVER" -a 127.0.0.1 -p "$PORT" >"$T/nats.log" 2>&1 &
track $!
port_open() { python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1"; }
wait_until port_open "$PORT" || fail "nats-server did not listen on $PORT"

for n in 1 2 3; do
    "$HERDD" -c "$T/edge$n.json" >>"$T/edge$n.log" 2>&1 &
    eval "PID_$n=$!"
    track $!
done
for n in 1 2 3; do
    wait_for_herdd "$T/run$n" || fail "edge$n's herdd did not start"
done
local_state() { # N WORKER: the worker's state on edgeN, through its local sockets
    "$HERDCTL" --runtime-dir "$T/run$1" --json status | python3 -c '
import json, sys
for w in json.load(sys.stdin)["workers"]:
    if w["worker"] == sys.argv[1]:
        print(w["state"])' "$2"
}
for n in 1 2 3; do
    wait_until yields running local_state $n bridge || fail "edge$n's bridge is $(local_state $n bridge)"
    wait_until yields running local_state $n p || fail "edge$n's p is $(local_state $n p)"
done

N="$HERDCTL --nats $URL"

# 1. One host, by name: what edge3's herdd says, and only edge3's.
wait_until $N --host edge3 --timeout 1 status || fail "herdctl --nats --host edge3 status never answered"
$N --host edge3 status >"$T/out" 2>"$T/err" || fail "status of edge3: $(cat "$T/err")"
grep -q "^bus $T/run3: " "$T/out" || fail "status of edge3 is not edge3's herdd: $(cat "$T/out")"
grep -q "^bridge  *nats  *running" "$T/out" || fail "edge3's status has no bridge: $(cat "$T/out")"
[ "$($N --host edge3 --json status | json_get supervisor.host)" = edge3 ] || fail "--json status host"
[ "$($N --host edge1 --json status | json_get supervisor.runtime_dir)" = "$T/run1" ] ||
    fail "--host edge1 reached another herdd"
$N --host edge3 req supervisor nosuch 2>"$T/err"; rc=$?
[ $rc = 1 ] && grep -q "^herdctl: unknown_op: " "$T/err" || fail "an error reply over NATS: exit $rc, $(cat "$T/err")"
pass "herdctl --nats URL --host edge3 status: edge3's herdd, through its nats worker"

# 2. restart over NATS waits until the worker runs again (a new pid).
old=$("$HERDCTL" --runtime-dir "$T/run2" --json status | python3 -c '
import json, sys
print([w for w in json.load(sys.stdin)["workers"] if w["worker"] == "p"][0]["pid"])')
$N --host edge2 --timeout 10 restart p >"$T/out" 2>"$T/err" || fail "restart p on edge2: $(cat "$T/err")"
grep -q "^p: running (pid [0-9]*)$" "$T/out" || fail "restart p over NATS printed: $(cat "$T/out")"
new=$(sed 's/.*pid \([0-9]*\).*/\1/' "$T/out")
[ "$new" != "$old" ] || fail "restart over NATS kept pid $old"
[ "$(local_state 2 p)" = running ] || fail "p is not running on edge2 after the restart"
pass "restart over NATS: the reply comes once p runs again (pid $old -> $new)"

# 3. sub over NATS: edge1's exported state events, the prefix stripped.
$N --host edge1 sub 'system.p.state' --count 1 >"$T/sub.out" 2>"$T/sub.err" &
SUB=$!
track $SUB
for i in $(seq 1 30); do
    [ -s "$T/sub.out" ] && break
    "$HERDCTL" --runtime-dir "$T/run1" restart p >/dev/null || fail "local restart of p on edge1"
    sleep 0.3
done
wait $SUB; rc=$?
[ $rc = 0 ] || fail "sub over NATS: exit $rc, $(cat "$T/sub.err")"
grep -q '^system.p.state {' "$T/sub.out" || fail "sub over NATS printed: $(cat "$T/sub.out")"
pass "sub over NATS: system.p.state of edge1 (exported as fleet.edge1.system.p.state)"

# 4. pub over NATS: on edge2's local bus, once.
"$HERDCTL" --runtime-dir "$T/run2" --json sub 'greet.>' >"$T/local.out" 2>&1 &
LSUB=$!
track $LSUB
sleep 0.3
for i in $(seq 1 30); do
    $N --host edge2 pub greet.hello "{\"n\": $i}" || fail "pub over NATS"
    sleep 0.2
    [ -s "$T/local.out" ] && break
done
[ -s "$T/local.out" ] || fail "pub over NATS never reached edge2's bus"
sleep 1 # what would echo back (import -> export -> import) has come by now
kill $LSUB
first=$(head -n 1 "$T/local.out")
[ "$(printf '%s\n' "$first" | json_get topic)" = greet.hello ] || fail "edge2 got: $first"
n=$(printf '%s\n' "$first" | json_get payload.n)
[ "$(grep -c "\"n\":$n}" "$T/local.out")" = 1 ] ||
    fail "an event published once arrived $(grep -c "\"n\":$n}" "$T/local.out") times: $(cat "$T/local.out")"
pass "pub over NATS: greet.hello on edge2's local bus, once"

# 5. fleet status: three hosts, then two.
hosts() { "$HERDCTL" fleet status --nats "$URL" --timeout 1 2>/dev/null | awk 'NR > 1 {print $1}' | tr '\n' ' '; }
wait_until yields "edge1 edge2 edge3 " hosts || fail "fleet status lists: $(hosts)"
"$HERDCTL" --nats "$URL" --json fleet status >"$T/out" || fail "fleet status --json"
python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
assert [r["host"] for r in rows] == ["edge1", "edge2", "edge3"], rows
for r in rows:
    assert r["running"] == 2 and r["failed"] == 0 and r["n_workers"] == 2, r
    assert r["rss_bytes"] > 0 and r["version"], r' "$T/out" || fail "fleet status --json: $(cat "$T/out")"
kill -KILL "$PID_3"
wait "$PID_3" 2>/dev/null
wait_until yields "edge1 edge2 " hosts || fail "after edge3's herdd was killed, fleet status lists: $(hosts)"
$N --host edge3 --timeout 1 status 2>"$T/err"; rc=$?
[ $rc = 3 ] && grep -q "edge3" "$T/err" || fail "--host edge3 after its herdd died: exit $rc, $(cat "$T/err")"
pass "fleet status: edge1 edge2 edge3, then edge1 edge2 once edge3's herdd is killed"

for n in 1 2; do
    eval "kill -TERM \$PID_$n; wait \$PID_$n"; rc=$?
    [ $rc = 0 ] || fail "edge$n's herdd exit $rc after SIGTERM"
done
