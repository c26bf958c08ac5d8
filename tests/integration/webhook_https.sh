# The webhook kind over https, against a python server with a self-signed
# certificate for 127.0.0.1 made here with openssl: with that certificate
# as ca_file the event is delivered; without ca_file (the system's CAs) and
# with another self-signed certificate as ca_file the handshake fails, a
# connection error is counted and the server never sees a request. A
# ca_file that stops being a PEM certificate is refused at start.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || fail "openssl is needed (scripts/bootstrap installs it)"
server() {
    local name=$1
    shift
    python3 "$(dirname "$0")/webhook_server.py" "$T/$name.jsonl" "$@" >"$T/$name.port" 2>"$T/$name.err" &
    track $!
    wait_until test -s "$T/$name.port" || fail "server $name did not start: $(cat "$T/$name.err")"
    PORT=$(head -n 1 "$T/$name.port")
}
requests() { [ -f "$T/$1.jsonl" ] && wc -l <"$T/$1.jsonl" || echo 0; }
C="$HERDCTL --runtime-dir $RUN"
h() { worker_health "$1"; }
jf() { printf '%s' "$1" | json_get "$2"; }

# selfsigned NAME: $T/NAME.pem and $T/NAME.key, for CN and IP 127.0.0.1.
selfsigned() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
        -keyout "$T/$1.key" -out "$T/$1.pem" -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 >"$T/openssl.out" 2>&1 ||
        fail "openssl req: $(cat "$T/openssl.out")"
}
selfsigned server
selfsigned other
server tls --tls "$T/server.pem" "$T/server.key"
cp "$T/server.pem" "$T/ca.pem"

cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "good", "kind": "webhook", "subscribe": ["ev.good"], "url": "https://127.0.0.1:$PORT/in",
   "ca_file": "$T/ca.pem", "restart": "temporary"},
  {"name": "noca", "kind": "webhook", "subscribe": ["ev.noca"], "url": "https://127.0.0.1:$PORT/in",
   "max_retries": 0},
  {"name": "wrong", "kind": "webhook", "subscribe": ["ev.wrong"], "url": "https://127.0.0.1:$PORT/in",
   "ca_file": "$T/other.pem", "max_retries": 1, "retry_backoff": {"initial_ms": 50}}
 ]}
JSON
start_herdd "$T/herd.json"
wait_until worker_state_is good running || fail "good: $(worker_get good state)"

$C pub ev.good '{"secure": true}' >/dev/null || fail "publish"
wait_until yields 1 worker_get good "done" || fail "good: $(h good)"
hg=$(h good)
[ "$(jf "$hg" failed)" = 0 ] && [ "$(jf "$hg" conn_errors)" = 0 ] && [ "$(jf "$hg" last_status)" = 200 ] ||
    fail "good: $hg"
[ "$(requests tls)" = 1 ] || fail "the server saw $(requests tls) requests"
python3 -c '
import json, sys
r = json.loads(open(sys.argv[1]).readline())
v = json.loads(r["body"])
assert v["topic"] == "ev.good" and v["payload"] == {"secure": True}, v
assert r["body"].endswith("\"payload\":{\"secure\": true}}"), r["body"]' "$T/tls.jsonl" ||
    fail "the https request: $(cat "$T/tls.jsonl")"
pass "https with ca_file: delivered"

$C pub ev.noca '{}' >/dev/null || fail "publish"
wait_until yields 1 worker_get noca failed || fail "noca: $(h noca)"
hn=$(h noca)
[ "$(jf "$hn" conn_errors)" = 1 ] && [ "$(jf "$hn" done)" = 0 ] && [ "$(jf "$hn" last_status)" = 0 ] ||
    fail "noca: $hn"
jf "$hn" last_error | grep -qi "certificate" || fail "noca last_error: $(jf "$hn" last_error)"

$C pub ev.wrong '{}' >/dev/null || fail "publish"
wait_until yields 1 worker_get wrong failed || fail "wrong: $(h wrong)"
hw=$(h wrong)
[ "$(jf "$hw" conn_errors)" = 2 ] && [ "$(jf "$hw" retries)" = 1 ] && [ "$(jf "$hw" done)" = 0 ] ||
    fail "wrong: $hw"
jf "$hw" last_error | grep -q "failed after 1 retries: https://127.0.0.1:$PORT: .*certificate" ||
    fail "wrong last_error: $(jf "$hw" last_error)"
[ "$(requests tls)" = 1 ] || fail "an unverified peer got a request: $(requests tls) requests"
pass "https without ca_file and with another certificate: connection errors, nothing sent"

# ca_file replaced by something that is not a certificate: the next start
# refuses it, naming the file.
printf 'garbage\n' >"$T/ca.pem"
$C restart good >/dev/null 2>&1
wait_until worker_state_is good failed || fail "good: $(worker_get good state)"
worker_get good last_error | grep -q "ca_file \"$T/ca.pem\": no PEM certificate in it" ||
    fail "good last_error: $(worker_get good last_error)"
kill -TERM "$HERDD_PID"
wait "$HERDD_PID" || fail "herdd exit status $?"
pass "a ca_file without a certificate is refused at start"
