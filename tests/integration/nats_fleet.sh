# The nats kind as a fleet bridge: three herdd "hosts" (edge1..edge3, one
# runtime dir each, every one with a nats worker exporting `>`, importing
# fleet.<own>.> and fleet.all.>, requests on) and one nats-server. An event
# published on edge1's bus reaches a NATS subscriber as fleet.edge1.<topic>,
# its payload's bytes unchanged; fleet.edge2.system.w.control stops w on
# edge2 only; fleet.all.system.w.control restarts w everywhere; a NATS
# request on fleet.edge3.request is answered by edge3 with the bus reply
# (result.supervisor.host "edge3"), one on fleet.all.request by all three; a
# bad request body gets bad_request; an imported topic herdd owns is
# refused (counted reserved); a credential inline in the URL is refused by
# --check. Skipped (77) without nats-server.
. "$(dirname "$0")/lib.sh"

NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
[ -x "$NATS_SERVER" ] || { echo "SKIP: nats-server not installed (Debian package nats-server)"; exit 77; }
PROBE=${HERD_NATS_PROBE:-$HERD_BUILD_DIR/tests/herd-nats-probe}
[ -x "$PROBE" ] || fail "no herd-nats-probe at $PROBE"
NPORT=$(free_port)
NURL="nats://127.0.0.1:$NPORT"

# long_until CMD...: wait_until with 30 s (sanitizer builds are slow).
long_until() { local i; for i in $(seq 1 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

"$NATS_SERVER" -a 127.0.0.1 -p "$NPORT" >"$T/nats.log" 2>&1 &
track $!
long_until "$PROBE" "$NURL" pub probe.ready '{}' || fail "nats-server did not start"

# Bad configs, refused by --check naming the key.
check_bad() { # WORKER_JSON EXPECTED_TEXT
    printf '{"bus":{"dir":"%s"},"state_dir":"%s","workers":[%s]}\n' "$T/x" "$T/xs" "$1" >"$T/bad.json"
    "$HERDD" --check -c "$T/bad.json" >"$T/bad.out" 2>&1 && fail "accepted: $1"
    grep -qF "$2" "$T/bad.out" || fail "unclear refusal of $1: $(cat "$T/bad.out")"
}
check_bad '{"name":"n","kind":"nats"}' 'workers[0].url: required'
check_bad '{"name":"n","kind":"nats","url":"nats://u:p@h:4222"}' 'credentials in the URL are refused'
check_bad '{"name":"n","kind":"nats","url":"nats://h","token":"x"}' 'workers[0].token: unknown key'
check_bad '{"name":"n","kind":"nats","url":"nats://h","user":"u"}' 'workers[0].password_file: required'
check_bad '{"name":"n","kind":"nats","url":"nats://h","export":["a..b"]}' 'workers[0].export[0]'

for h in 1 2 3; do
    cat >"$T/edge$h.json" <<JSON
{"bus": {"dir": "$T/run$h"}, "state_dir": "$T/state$h", "http": {"listen": ""}, "host": "edge$h",
 "workers": [
  {"name": "nb", "kind": "nats", "url": "$NURL", "export": [">"],
   "import": ["fleet.edge$h.>", "fleet.all.>"]},
  {"name": "w", "kind": "process", "argv": ["sleep", "3600"]}
 ]}
JSON
    start_herdd "$T/edge$h.json" "$T/edge$h.log"
done

# hget H WORKER FIELD: a field of a worker's health on host edgeH.
hget() {
    "$HERDCTL" --runtime-dir "$T/run$1" --json status | python3 -c '
import json, sys
for w in json.load(sys.stdin)["workers"]:
    if w["worker"] == sys.argv[1]:
        v = w.get(sys.argv[2])
        print("" if v is None else v)' "$2" "$3"
}
for h in 1 2 3; do
    long_until yields True hget $h nb connected || fail "edge$h never connected to NATS"
    [ "$(hget $h nb server)" = "$NURL" ] || fail "edge$h server: $(hget $h nb server)"
    long_until yields running hget $h w state || fail "edge$h: w not running"
done

# 1. A local event of edge1 on NATS as fleet.edge1.<topic>, bytes unchanged.
"$PROBE" "$NURL" sub 'fleet.edge1.demo.>' 1 30 >"$T/sub.out" 2>"$T/sub.err" &
SUB=$!
track $SUB
long_until grep -q ready "$T/sub.err" || fail "probe never subscribed"
"$HERDCTL" --runtime-dir "$T/run1" pub demo.t1 '{"c": 21.5, "s": "h\u00e9"}' || fail "pub"
wait $SUB || fail "the event never reached NATS: $(cat "$T/sub.err")"
[ "$(cat "$T/sub.out")" = 'fleet.edge1.demo.t1 {"c": 21.5, "s": "h\u00e9"}' ] ||
    fail "on NATS: $(cat "$T/sub.out")"
long_until at_least 1 hget 1 nb exported || fail "exported: $(hget 1 nb exported)"
pass "nats: a local event exported as fleet.edge1.demo.t1, payload as published"

# 2. Control one worker of one host.
"$PROBE" "$NURL" pub fleet.edge2.system.w.control '{"action": "stop", "requested_by": "test"}' || fail "probe pub"
long_until yields stopped hget 2 w state || fail "edge2's w: $(hget 2 w state)"
sleep 1
[ "$(hget 1 w state)" = running ] || fail "edge1's w: $(hget 1 w state)"
[ "$(hget 3 w state)" = running ] || fail "edge3's w: $(hget 3 w state)"
[ "$(hget 2 nb imported)" -ge 1 ] || fail "edge2 imported $(hget 2 nb imported)"
[ "$(hget 1 nb imported)" = 0 ] || fail "edge1 imported edge2's control"
pass "nats: fleet.edge2.system.w.control stopped w on edge2 only"

# 3. Control a worker everywhere: start edge2's again, then restart all.
"$PROBE" "$NURL" pub fleet.edge2.system.w.control '{"action": "start"}' || fail "probe pub"
long_until yields running hget 2 w state || fail "edge2's w not started again"
for h in 1 2 3; do eval "R$h=$(hget $h w restarts)"; done
"$PROBE" "$NURL" pub fleet.all.system.w.control '{"action": "restart"}' || fail "probe pub"
for h in 1 2 3; do
    eval "want=\$((R$h + 1))"
    long_until yields "$want" hget $h w restarts || fail "edge$h's w restarts $(hget $h w restarts), expected $want"
    long_until yields running hget $h w state || fail "edge$h's w not running after the restart"
done
pass "nats: fleet.all.system.w.control restarted w on all three hosts"

# 4. Requests: one host, every host, a bad body.
"$PROBE" "$NURL" req fleet.edge3.request '{"service": "supervisor", "op": "status"}' 1 20 >"$T/req.out" ||
    fail "no reply from edge3"
[ "$(json_get ok <"$T/req.out")" = True ] || fail "reply: $(head -c 300 "$T/req.out")"
[ "$(json_get result.supervisor.host <"$T/req.out")" = edge3 ] || fail "answered by $(json_get result.supervisor.host <"$T/req.out")"
"$PROBE" "$NURL" req fleet.all.request '{"service": "supervisor", "op": "status"}' 3 20 >"$T/all.out" ||
    fail "fewer than three replies: $(wc -l <"$T/all.out")"
hosts=$(python3 -c '
import json, sys
print(" ".join(sorted(json.loads(l)["result"]["supervisor"]["host"] for l in open(sys.argv[1]))))' "$T/all.out")
[ "$hosts" = "edge1 edge2 edge3" ] || fail "fleet.all.request answered by: $hosts"
"$PROBE" "$NURL" req fleet.edge1.request '{"service": "w", "op": "nope"}' 1 20 >"$T/op.out" || fail "no reply"
[ "$(json_get error.code <"$T/op.out")" = unknown_op ] || fail "unknown op: $(cat "$T/op.out")"
"$PROBE" "$NURL" req fleet.edge1.request '{"service": "supervisor"}' 1 20 >"$T/bad.out" || fail "no reply to a bad body"
[ "$(json_get error.code <"$T/bad.out")" = bad_request ] || fail "bad body: $(cat "$T/bad.out")"
"$PROBE" "$NURL" req fleet.edge1.request 'not json' 1 20 >"$T/bad.out" || fail "no reply to a bad body"
[ "$(json_get ok <"$T/bad.out")" = False ] && [ "$(json_get error.code <"$T/bad.out")" = bad_request ] ||
    fail "not JSON: $(cat "$T/bad.out")"
pass "nats: requests on fleet.edge3.request and fleet.all.request answered with the bus reply"

# 5. Imports herdd owns are refused; the request subjects are not imported.
"$PROBE" "$NURL" pub fleet.edge1.system.supervisor.health '{"forged": true}' || fail "probe pub"
"$PROBE" "$NURL" pub fleet.edge1.job.x.y.state '{"forged": true}' || fail "probe pub"
long_until yields 2 python3 -c '
import json, subprocess, sys
s = json.loads(subprocess.check_output([sys.argv[1], "--runtime-dir", sys.argv[2], "--json", "status"]))
print([w for w in s["workers"] if w["worker"] == "nb"][0]["import_refused"]["reserved"])' "$HERDCTL" "$T/run1" ||
    fail "reserved topics not refused: $(hget 1 nb import_refused)"
pass "nats: imported topics herdd owns refused and counted"

# 6. Stopping a host's herdd is clean and quick.
kill -TERM "$HERDD_PID"
for i in $(seq 1 100); do kill -0 "$HERDD_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$HERDD_PID" 2>/dev/null && fail "herdd with a nats worker did not stop within 10 s"
wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exited $rc"
pass "nats: herdd with a connected bridge stops cleanly"
