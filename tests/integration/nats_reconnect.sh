# The nats kind across a NATS server restart: nats-server stopped for 5 s
# and started again on the same port. While it is away the bridge reports
# connected false and holds what is exported in its queue (the newest
# queue_max, the rest counted in dropped); after the reconnect (reconnects
# >= 1, connected true, the same server) what it held arrives, in order,
# and the counts add up. A NATS subscriber that reconnects every 10 ms rides
# over the restart to see it. Skipped (77) without nats-server.
. "$(dirname "$0")/lib.sh"

NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
[ -x "$NATS_SERVER" ] || { echo "SKIP: nats-server not installed (Debian package nats-server)"; exit 77; }
PROBE=${HERD_NATS_PROBE:-$HERD_BUILD_DIR/tests/herd-nats-probe}
[ -x "$PROBE" ] || fail "no herd-nats-probe at $PROBE"
NPORT=$(free_port)
NURL="nats://127.0.0.1:$NPORT"
QMAX=200
long_until() { local i; for i in $(seq 1 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
start_nats() {
    "$NATS_SERVER" -a 127.0.0.1 -p "$NPORT" >>"$T/nats.log" 2>&1 &
    NATS_PID=$!
    track $NATS_PID
}

start_nats
long_until "$PROBE" "$NURL" pub probe.ready '{}' || fail "nats-server did not start"
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""}, "host": "edge1",
 "workers": [
  {"name": "nb", "kind": "nats", "url": ["$NURL"], "export": ["sensor.>"], "queue_max": $QMAX}
 ]}
JSON
start_herdd "$T/herd.json"
long_until yields True worker_get nb connected || fail "never connected"

"$PROBE" "$NURL" sub 'fleet.edge1.sensor.>' 0 60 >"$T/sub.out" 2>"$T/sub.err" &
track $!
long_until grep -q ready "$T/sub.err" || fail "probe never subscribed"
got() { grep -c "^fleet.edge1.sensor.$1 " "$T/sub.out"; }
"$HERD_PUB" "$RUN" sensor.before 10 >/dev/null || fail "herd-pub"
long_until yields 10 got before || fail "before the restart: $(got before) of 10"

# The server goes away for 5 s.
kill -TERM "$NATS_PID"; wait "$NATS_PID" 2>/dev/null
T0=$(date +%s.%N)
long_until yields False worker_get nb connected || fail "still connected after the server stopped"
"$HERD_PUB" "$RUN" sensor.gap $((QMAX + 30)) >/dev/null || fail "herd-pub gap"
long_until yields $QMAX worker_get nb queue_depth || fail "queue_depth $(worker_get nb queue_depth)"
[ "$(worker_get nb dropped)" = 30 ] || fail "dropped $(worker_get nb dropped), expected 30"
[ "$(worker_get nb exported)" = 10 ] || fail "exported $(worker_get nb exported) while away"
sleep "$(python3 -c 'import sys, time; print(max(0, 5 - (time.time() - float(sys.argv[1]))))' "$T0")"
start_nats

long_until yields True worker_get nb connected || fail "not connected again"
long_until at_least 1 worker_get nb reconnects || fail "reconnects $(worker_get nb reconnects)"
long_until yields 0 worker_get nb queue_depth || fail "queue not drained: $(worker_get nb queue_depth)"
long_until yields $QMAX got gap || fail "after the restart the subscriber got $(got gap) of the $QMAX held"
have=$(grep '^fleet.edge1.sensor.gap ' "$T/sub.out" | sed 's/.*"i":\([0-9]*\).*/\1/' | tr '\n' ' ')
want=$(seq 30 $((QMAX + 29)) | tr '\n' ' ')
[ "$have" = "$want" ] || fail "held events out of order or not the newest: $have"
[ "$(worker_get nb server)" = "$NURL" ] || fail "server $(worker_get nb server)"
r=$(worker_health nb)
[ "$(echo "$r" | json_get received)" = $((10 + QMAX + 30)) ] || fail "received: $r"
[ "$(echo "$r" | json_get exported)" = $((10 + QMAX)) ] || fail "exported: $r"
[ "$(echo "$r" | json_get dropped)" = 30 ] || fail "dropped: $r"

# And it keeps going.
"$HERD_PUB" "$RUN" sensor.after 10 >/dev/null || fail "herd-pub"
long_until yields 10 got after || fail "after the restart: $(got after) of 10"
pass "nats: held $QMAX events while the server was away, dropped 30, delivered the held ones in order after the reconnect"
