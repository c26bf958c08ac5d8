# Two herds forwarding `>` to each other, one way over tls+tcp (the hub's
# certificate checked against ca_file by server_name), the other over
# tcp: each sees the other's events exactly once under its prefix, and
# nothing comes back (a fleet.* topic is never forwarded: counted in
# ignored). A forward whose CA does not match never connects and holds its
# events.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || fail "openssl not installed (scripts/bootstrap installs it)"
HPORT=$(free_port) EPORT=$(free_port)
RUN_H="$T/hub" RUN_E="$T/edge"
mkdir -p "$T/tls"
for n in hub other; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=herd-$n" -addext "subjectAltName=DNS:herd-$n" \
        -keyout "$T/tls/$n.key" -out "$T/tls/$n.pem" >/dev/null 2>&1 || fail "openssl req"
done

cat >"$T/hub.json" <<JSON
{"bus": {"dir": "$RUN_H", "tcp": {"publish": "tls+tcp://127.0.0.1:$HPORT"},
         "tls": {"cert_file": "$T/tls/hub.pem", "key_file": "$T/tls/hub.key"}},
 "state_dir": "$T/sh", "http": {"listen": ""}, "host": "hub",
 "workers": [
  {"name": "down", "kind": "forward", "subscribe": [">"], "to": "tcp://127.0.0.1:$EPORT"},
  {"name": "arc", "kind": "archive", "subscribe": ["fleet.>", "x.>"], "path": "$T/hub/in.jsonl", "fsync": "never"}
 ]}
JSON
cat >"$T/edge.json" <<JSON
{"bus": {"dir": "$RUN_E", "tcp": {"publish": "tcp://127.0.0.1:$EPORT"}},
 "state_dir": "$T/se", "http": {"listen": ""}, "host": "edge1",
 "workers": [
  {"name": "up", "kind": "forward", "subscribe": [">"], "to": "tls+tcp://127.0.0.1:$HPORT",
   "ca_file": "$T/tls/hub.pem", "server_name": "herd-hub"},
  {"name": "wrongca", "kind": "forward", "subscribe": ["loop.>"], "to": "tls+tcp://127.0.0.1:$HPORT",
   "ca_file": "$T/tls/other.pem", "server_name": "herd-hub", "prefix": "x."},
  {"name": "arc", "kind": "archive", "subscribe": ["fleet.>"], "path": "$T/edge/in.jsonl", "fsync": "never"}
 ]}
JSON
start_herdd "$T/hub.json" "$T/hub.log"
start_herdd "$T/edge.json" "$T/edge.log"
export HERD_RUNTIME_DIR=$RUN_E
wait_until yields True worker_get up connected || fail "tls forward never connected"
HERD_RUNTIME_DIR=$RUN_H wait_until yields True worker_get down connected || fail "tcp forward never connected"

count() { grep -c "\"topic\":\"$2\"" "$1" 2>/dev/null; }
"$HERDCTL" --runtime-dir "$RUN_E" pub loop.from_edge '{"n": 1}' || fail pub
"$HERDCTL" --runtime-dir "$RUN_H" pub loop.from_hub '{"n": 2}' || fail pub
wait_until yields 1 count "$T/hub/in.jsonl" fleet.edge1.loop.from_edge || fail "hub did not get the edge's event"
wait_until yields 1 count "$T/edge/in.jsonl" fleet.hub.loop.from_hub || fail "edge did not get the hub's event"
sleep 1 # time for a loop to show
[ "$(count "$T/hub/in.jsonl" fleet.edge1.loop.from_edge)" = 1 ] || fail "hub saw the edge's event more than once"
[ "$(count "$T/edge/in.jsonl" fleet.hub.loop.from_hub)" = 1 ] || fail "edge saw the hub's event more than once"
grep -q '"topic":"fleet\.[a-z0-9]*\.fleet\.' "$T/hub/in.jsonl" "$T/edge/in.jsonl" && fail "an event went round: fleet.*.fleet.*"
at_least 1 worker_get up ignored || fail "edge ignored nothing: $(worker_health up)"
HERD_RUNTIME_DIR=$RUN_H at_least 1 worker_get down ignored || fail "hub ignored nothing"

# The wrong CA: never connected, its event held in its queue.
[ "$(worker_get wrongca connected)" = False ] || fail "connected with a CA that did not sign the hub"
[ "$(worker_get wrongca queue_depth)" = 1 ] || fail "wrongca: $(worker_health wrongca)"
grep -q '"topic":"x\.' "$T/hub/in.jsonl" && fail "the wrong-CA forward delivered"
pass "forward: no loop between two herds, tls+tcp with ca_file and server_name, a wrong CA refused"
