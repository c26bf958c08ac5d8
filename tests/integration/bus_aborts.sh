# Peers that send half an SP header and close (nng 1.5.2 #1518 stops a
# listener on each) must not take a socket down: herdd replaces a stopped
# listener within its check period (50 ms) without the path ever refusing,
# and herdctl resends a status whose connection dropped. After a burst of
# 2,000 aborted handshakes `status` answers at once; during sustained
# aborts (100 every 0.5 s) every one of 20 status calls succeeds, and a new
# subscriber on events.ipc still gets its event.
. "$(dirname "$0")/lib.sh"

write_config "$T/herd.json"
start_herdd "$T/herd.json"

abort_burst() { # abort_burst N FILE...: N half-header connects spread over FILEs
    python3 - "$RUN" "$@" <<'PY'
import socket, sys
run, n, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(f"{run}/{files[i % len(files)]}")
        s.send(b"\x00SP\x00")  # half a header, then gone
    except OSError:
        pass
    s.close()
PY
}

# 1. A burst, then status at once.
abort_burst 2000 request.ipc events.ipc publish.ipc
start=$(date +%s%N)
"$HERDCTL" --timeout 5 status >/dev/null || fail "status after 2,000 aborted handshakes"
ms=$((($(date +%s%N) - start) / 1000000))
[ $ms -lt 1500 ] || fail "status took $ms ms after the burst"
restarts=$(status_get "$RUN" supervisor.bus.listener_restarts)
[ "$restarts" -ge 1 ] || fail "no listener was replaced: the fault did not happen, the test proves nothing"

# 2. Sustained aborts while status is asked 20 times.
( for i in $(seq 1 24); do abort_burst 100 request.ipc events.ipc; sleep 0.5; done ) &
storm=$!
track $storm
failed=0
for i in $(seq 1 20); do
    "$HERDCTL" --timeout 3 status >/dev/null 2>>"$T/status.err" || failed=$((failed + 1))
    sleep 0.5
done
"$HERDCTL" sub 'after.aborts' --count 1 >"$T/sub.out" 2>"$T/sub.log" & spid=$!; track $spid
wait_until remote_subscribers_at_least "$RUN" 1 || fail "events.ipc took no subscriber during the aborts"
for i in $(seq 1 30); do
    "$HERDCTL" pub after.aborts '{"n":1}' 2>/dev/null
    kill -0 $spid 2>/dev/null || break
    sleep 0.2
done
kill -0 $spid 2>/dev/null && fail "the subscriber got no event during the aborts"
wait $storm
[ $failed = 0 ] || fail "$failed of 20 status calls failed during sustained aborts: $(tail -3 "$T/status.err")"
kill -0 "$HERDD_PID" || fail "herdd died"
restarts=$(status_get "$RUN" supervisor.bus.listener_restarts)
pass "status in $ms ms after 2,000 aborted handshakes; 20/20 status calls during sustained aborts ($restarts listener replacements)"
