# The nats kind over tls://: nats-server with a certificate for
# 127.0.0.1; a bridge trusting it through ca_file exports to a TLS
# subscriber and answers a request over TLS; a bridge given another CA
# never connects: libnats gives the connection up, the worker fails saying
# so, and its restart policy retries it. Skipped (77) without nats-server.
. "$(dirname "$0")/lib.sh"

NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
[ -x "$NATS_SERVER" ] || { echo "SKIP: nats-server not installed (Debian package nats-server)"; exit 77; }
command -v openssl >/dev/null || fail "openssl not installed (scripts/bootstrap installs it)"
PROBE=${HERD_NATS_PROBE:-$HERD_BUILD_DIR/tests/herd-nats-probe}
NPORT=$(free_port)
long_until() { local i; for i in $(seq 1 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

mkdir -p "$T/tls"
for n in server other; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=herd-$n" -addext "subjectAltName=IP:127.0.0.1" \
        -keyout "$T/tls/$n.key" -out "$T/tls/$n.pem" >/dev/null 2>&1 || fail "openssl req"
done
"$NATS_SERVER" -a 127.0.0.1 -p "$NPORT" --tls --tlscert "$T/tls/server.pem" --tlskey "$T/tls/server.key" \
    >"$T/nats.log" 2>&1 &
track $!
long_until sh -c "echo | openssl s_client -connect 127.0.0.1:$NPORT 2>/dev/null | grep -q CONNECTED" ||
    fail "nats-server (tls) did not start"

cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""}, "host": "sec",
 "workers": [
  {"name": "nb", "kind": "nats", "url": "tls://127.0.0.1:$NPORT", "ca_file": "$T/tls/server.pem",
   "export": ["tls.>"]},
  {"name": "wrong", "kind": "nats", "url": "tls://127.0.0.1:$NPORT", "ca_file": "$T/tls/other.pem",
   "export": ["tls.>"], "requests": false}
 ]}
JSON
start_herdd "$T/herd.json"
long_until yields True worker_get nb connected || fail "tls bridge never connected: $(worker_get nb last_error)"
[ "$(worker_get nb server)" = "tls://127.0.0.1:$NPORT" ] || fail "server $(worker_get nb server)"

export HERD_NATS_PROBE_CA="$T/tls/server.pem"
NURL="tls://127.0.0.1:$NPORT"
"$PROBE" "$NURL" sub 'fleet.sec.tls.>' 1 30 >"$T/sub.out" 2>"$T/sub.err" &
SUB=$!
track $SUB
long_until grep -q ready "$T/sub.err" || fail "probe never subscribed over TLS: $(cat "$T/sub.err")"
"$HERDCTL" pub tls.t1 '{"n": 1}' || fail pub
wait $SUB || fail "the event never arrived over TLS: $(cat "$T/sub.err")"
[ "$(cat "$T/sub.out")" = 'fleet.sec.tls.t1 {"n": 1}' ] || fail "over TLS: $(cat "$T/sub.out")"
"$PROBE" "$NURL" req fleet.sec.request '{"service": "supervisor", "op": "status"}' 1 20 >"$T/req.out" ||
    fail "no reply over TLS"
[ "$(json_get result.supervisor.host <"$T/req.out")" = sec ] || fail "reply: $(head -c 200 "$T/req.out")"

# The wrong CA: libnats gives the connection up after the refused
# handshake; the worker fails, saying it never connected, and the restart
# policy retries it.
long_until at_least 1 worker_get wrong restarts || fail "wrong: $(worker_health wrong)"
worker_get wrong last_error | grep -qF "never connected: check url, ca_file" ||
    fail "last_error: $(worker_get wrong last_error)"
[ "$(worker_get wrong exported)" = "" ] || [ "$(worker_get wrong exported)" = 0 ] || fail "exported with the wrong CA"
worker_state_is nb running || fail "nb affected: $(worker_get nb state)"
pass "nats: tls:// with ca_file exports and answers requests; another CA is refused and retried per the restart policy"
