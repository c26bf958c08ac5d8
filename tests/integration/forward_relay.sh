# The forward kind between two herdd on 127.0.0.1 over tcp: events arrive
# at the hub under the prefix (fleet.<host>. by default), the payload as
# published; while the hub is stopped the edge's queue holds what is
# published (the newest queue_max, the rest counted dropped) and sends it
# after the redial, in order; two herds forwarding `>` to each other see
# each other's events once (no loop); bad configs are refused naming the
# key.
. "$(dirname "$0")/lib.sh"

HPORT=$(free_port) EPORT=$(free_port)
RUN_H="$T/hub" RUN_E="$T/edge"
QMAX=2000

cat >"$T/hub.json" <<JSON
{"bus": {"dir": "$RUN_H", "tcp": {"publish": "tcp://127.0.0.1:$HPORT"}},
 "state_dir": "$T/sh", "http": {"listen": ""}, "host": "hub",
 "workers": [
  {"name": "arc", "kind": "archive", "subscribe": ["fleet.>"], "path": "$T/hub/events.jsonl",
   "fsync": "never"}
 ]}
JSON
cat >"$T/edge.json" <<JSON
{"bus": {"dir": "$RUN_E", "tcp": {"publish": "tcp://127.0.0.1:$EPORT"}},
 "state_dir": "$T/se", "http": {"listen": ""}, "host": "edge1",
 "workers": [
  {"name": "up", "kind": "forward", "subscribe": ["sensor.>"], "to": "tcp://127.0.0.1:$HPORT",
   "queue_max": $QMAX}
 ]}
JSON

# Bad configs: each refused by --check, naming the key.
check_bad() { # WORKER_JSON EXPECTED_TEXT
    printf '{"bus":{"dir":"%s"},"state_dir":"%s","workers":[%s]}\n' "$RUN_E" "$T/se" "$1" >"$T/bad.json"
    "$HERDD" --check -c "$T/bad.json" >"$T/bad.out" 2>&1 && fail "accepted: $1"
    grep -qF "$2" "$T/bad.out" || fail "unclear refusal of $1: $(cat "$T/bad.out")"
}
check_bad '{"name":"f","kind":"forward","subscribe":["a.>"]}' 'workers[0].to: required'
check_bad '{"name":"f","kind":"forward","subscribe":["a.>"],"to":"http://x:1"}' 'workers[0].to:'
check_bad '{"name":"f","kind":"forward","subscribe":["a.>"],"to":"tcp://h:1","prefix":"a..b."}' 'workers[0].prefix:'
check_bad '{"name":"f","kind":"forward","subscribe":["a.>"],"to":"tcp://h:1","prefix":"nodot"}' 'workers[0].prefix:'
check_bad '{"name":"f","kind":"forward","subscribe":["a.>"],"to":"tls+tcp://h:1"}' 'workers[0].ca_file: required'
check_bad '{"name":"f","kind":"forward","subscribe":["a.>"],"to":"tcp://h:1","bogus":1}' 'workers[0].bogus: unknown key'
printf '{"bus":{"dir":"%s","tcp":{"publish":"udp://x:1"}}}\n' "$RUN_E" >"$T/bad.json"
"$HERDD" --check -c "$T/bad.json" >"$T/bad.out" 2>&1 && fail "accepted bus.tcp udp"
grep -qF 'bus.tcp.publish: expected' "$T/bad.out" || fail "unclear: $(cat "$T/bad.out")"
printf '{"bus":{"dir":"%s","tcp":{"events":"tls+tcp://127.0.0.1:1"}}}\n' "$RUN_E" >"$T/bad.json"
"$HERDD" --check -c "$T/bad.json" >"$T/bad.out" 2>&1 && fail "accepted tls without a certificate"
grep -qF 'bus.tls.cert_file' "$T/bad.out" || fail "unclear: $(cat "$T/bad.out")"
printf '{"host":"a.b"}\n' >"$T/bad.json"
"$HERDD" --check -c "$T/bad.json" >"$T/bad.out" 2>&1 && fail "accepted host a.b"
grep -qF 'host: expected' "$T/bad.out" || fail "unclear: $(cat "$T/bad.out")"

start_herdd "$T/hub.json" "$T/hub.log"; HUB=$HERDD_PID
start_herdd "$T/edge.json" "$T/edge.log"; EDGE=$HERDD_PID
RUN=$RUN_E; export HERD_RUNTIME_DIR=$RUN_E
wait_until worker_state_is up running || fail "forward not running"
wait_until yields True worker_get up connected || fail "forward never connected to the hub"
[ "$(worker_get up prefix)" = "fleet.edge1." ] || fail "default prefix $(worker_get up prefix)"

ARC="$T/hub/events.jsonl"
hub_count() { cat "$ARC" "$ARC".* 2>/dev/null | grep -c "\"topic\":\"$1"; }

# 1. Events arrive with the prefix, the payload as published.
"$HERDCTL" --runtime-dir "$RUN_E" pub sensor.t1 '{"c": 21.5, "s": "h\u00e9"}' || fail pub
"$HERDCTL" --runtime-dir "$RUN_E" pub other.t1 '{"not": "forwarded"}' || fail pub
wait_until at_least 1 hub_count fleet.edge1.sensor.t1 || fail "event did not reach the hub"
grep -qF '"topic":"fleet.edge1.sensor.t1","payload":{"c": 21.5, "s": "h\u00e9"}}' "$ARC" ||
    fail "payload changed on the way: $(cat "$ARC")"
"$HERD_PUB" "$RUN_E" sensor.fast 1000 >/dev/null || fail "herd-pub"
wait_until yields 1001 worker_get up done || fail "done $(worker_get up done), expected 1001"
wait_until yields 1000 hub_count fleet.edge1.sensor.fast || fail "hub archived $(hub_count fleet.edge1.sensor.fast) of 1000"
grep -q other.t1 "$ARC" && fail "an unsubscribed topic was forwarded"

# 2. The hub away: the edge keeps the newest QMAX, counts the rest dropped,
# and sends what it kept after the redial, in order.
kill -TERM "$HUB"; wait "$HUB" 2>/dev/null
wait_until yields False worker_get up connected || fail "still connected after the hub stopped"
"$HERD_PUB" "$RUN_E" sensor.gap $((QMAX + 30)) >/dev/null || fail "herd-pub gap"
wait_until yields $QMAX worker_get up queue_depth || fail "queue_depth $(worker_get up queue_depth)"
[ "$(worker_get up dropped)" = 30 ] || fail "dropped $(worker_get up dropped), expected 30"
start_herdd "$T/hub.json" "$T/hub2.log"; HUB=$HERDD_PID
wait_until yields 0 worker_get up queue_depth || fail "queue not drained after the redial"
wait_until yields $QMAX hub_count fleet.edge1.sensor.gap || fail "hub archived $(hub_count fleet.edge1.sensor.gap) of the $QMAX held"
got=$(grep -h '"topic":"fleet.edge1.sensor.gap"' "$ARC" | sed 's/.*"i":\([0-9]*\).*/\1/' | tr '\n' ' ')
want=$(seq 30 $((QMAX + 29)) | tr '\n' ' ')
[ "$got" = "$want" ] || fail "held events out of order or not the newest: $got"
[ "$(worker_get up reconnects)" -ge 1 ] || fail "reconnects $(worker_get up reconnects)"
r=$(worker_health up)
[ "$(echo "$r" | json_get received)" = $((1001 + QMAX + 30)) ] || fail "received: $r"
[ "$(echo "$r" | json_get done)" = $((1001 + QMAX)) ] || fail "done: $r"
pass "forward: prefix, payload as bytes, queue held while the hub was away, drops counted"
