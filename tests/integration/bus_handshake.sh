# 1,000 clients connect and drop the connection in the middle of the SP
# handshake (raw sockets on the ipc paths). nng 1.5.2 can lose a listener
# this way (upstream #1518); herdd probes its listeners and listens anew, so
# new clients still connect on all three sockets afterwards.
. "$(dirname "$0")/lib.sh"

write_config "$T/herd.json" '"listener_check_ms": 300'
start_herdd "$T/herd.json"

python3 - "$RUN" <<'PY' || fail "raw client storm failed"
# Every raw socket has a timeout, so a slow herdd cannot hang the storm: a
# connect is retried (backlog full, listener being replaced) for up to 2 s,
# then counted as not made; a timeout or reset after the connect means that
# client is done. Fails only if more than 5% of the connects were never made
# (or the whole storm outlasts 180 s, well inside ctest's 300 s timeout).
import socket, sys, time
run = sys.argv[1]
files = ["events.ipc", "publish.ipc", "request.ipc"]
N, TIMEOUT, MAX_UNMADE, BUDGET = 1000, 2.0, 50, 180.0
unmade = dropped = 0
end = time.monotonic() + BUDGET
def connect(path):
    deadline = time.monotonic() + TIMEOUT
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
for i in range(N):
    if time.monotonic() > end:
        sys.exit(f"storm still at connect {i + 1} of {N} after {BUDGET:.0f} s "
                 f"({unmade} not made, {dropped} timed out or reset)")
    s = connect(f"{run}/{files[i % 3]}")
    if s is None:
        unmade += 1
        if unmade > MAX_UNMADE:
            sys.exit(f"{unmade} of the first {i + 1} connects could not be made within {TIMEOUT} s")
        continue
    kind = i % 4
    try:
        if kind == 1:
            s.send(b"\x00SP")                      # a partial header
        elif kind == 2:
            s.send(b"\x00SP\x00\x00\x10\x00\x00")  # a full header, wrong protocol
        elif kind == 3:
            s.recv(8) if i % 8 == 3 else None      # read herdd's header, send none
    except (socket.timeout, ConnectionError):
        dropped += 1                               # this client is done either way
    finally:
        s.close()
print(f"storm: {N - unmade} of {N} connects made, {unmade} not, {dropped} timed out or reset")
PY

# New clients on every socket: requests, subscriptions, publishes.
wait_until "$HERDCTL" --timeout 1 status || fail "request.ipc no longer accepts clients"
"$HERDCTL" sub 'after.handshakes' --count 1 >"$T/sub.out" 2>"$T/sub.log" & spid=$!; track $spid
wait_until remote_subscribers_at_least "$RUN" 1 || fail "events.ipc no longer accepts clients"
ok=0
for i in $(seq 1 50); do
    "$HERDCTL" pub after.handshakes '{"n":1}' 2>/dev/null
    if ! kill -0 $spid 2>/dev/null; then ok=1; break; fi
    sleep 0.2
done
[ $ok = 1 ] || fail "publish.ipc no longer delivers events"
grep -q 'after.handshakes {"n":1}' "$T/sub.out" || fail "subscriber output: $(cat "$T/sub.out")"
restarts=$(status_get "$RUN" supervisor.bus.listener_restarts)
kill -0 "$HERDD_PID" || fail "herdd died"
pass "1,000 mid-handshake disconnects; clients still connect (listener restarts: $restarts)"
