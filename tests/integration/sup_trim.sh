# Freed heap goes back to the system: 1200 frames of 1 MiB published to a
# topic whose only subscriber never reads fill herdd's queue for it
# (bus.subscriber_buffer 256, the rest dropped); once that subscriber goes,
# the frames are freed and herdd's periodic malloc_trim brings its RSS back
# under 64 MiB (from several hundred; without the trim it stays there),
# counted in malloc_trims / malloc_trimmed_bytes. Stopping a worker trims
# too.
#
# Under ASan the allocator is the sanitizer's, not glibc's: mallinfo2 reads
# 0, so the burst triggers no trim, and RSS is mostly shadow memory and the
# free quarantine. There the burst still runs (the tick and the heap
# figures under the sanitizer), but only the trim that follows a worker's
# stop, which does not depend on mallinfo2, is checked.
. "$(dirname "$0")/lib.sh"
command -v nngcat >/dev/null || fail "nngcat not installed (scripts/bootstrap installs nng-utils)"

FRAMES=1200
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN", "max_message_bytes": "2M", "subscriber_buffer": 256}, "state_dir": "$STATE",
 "http": {"listen": ""},
 "workers": [{"name": "w", "kind": "process", "argv": ["sleep", "$MARK"]}]}
JSON
start_herdd "$T/herd.json"
wait_until worker_state_is w running || fail "worker w did not start"

rss_below() { [ "$(herdd_rss_mib)" -lt "$1" ]; }
trims() { status_get "$RUN" supervisor.malloc_trims; }

# A raw sub0 subscriber that never reads (SP handshake only).
python3 - "$RUN/events.ipc" >"$T/stuck.log" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
s.sendall(b"\x00SP\x00\x00\x21\x00\x00")  # sub0
assert len(s.recv(8)) == 8
time.sleep(120)
PY
stuck=$!
track $stuck
wait_until remote_subscribers_at_least "$RUN" 1 || fail "the stuck subscriber did not connect"

python3 -c 'import sys; sys.stdout.write("burst.big\0\"" + "x" * (1 << 20) + "\"")' >"$T/frame.bin"
nngcat --push0 --dial "ipc://$RUN/publish.ipc" --file "$T/frame.bin" --count $FRAMES --interval 0 ||
    fail "nngcat push"
wait_until at_least $FRAMES status_get "$RUN" supervisor.bus.remote_in ||
    fail "herdd took $(status_get "$RUN" supervisor.bus.remote_in) of $FRAMES frames"
peak=$(herdd_rss_mib)
kill $stuck
wait $stuck 2>/dev/null
wait_until yields 0 status_get "$RUN" supervisor.bus.remote_subscribers ||
    fail "the stuck subscriber is still counted"

if [ "${HERD_SANITIZE:-0}" = 1 ]; then
    echo "sanitizer build: RSS after the burst and the burst's trims not checked (peak $peak MiB)"
else
    [ "$peak" -ge 128 ] || fail "the burst held only $peak MiB: nothing to give back"
    wait_until rss_below 64 ||
        fail "RSS still $(herdd_rss_mib) MiB after the burst (peak $peak MiB); $(trims) trims"
    wait_until at_least 1 trims || fail "no malloc_trim counted"
    given=$(status_get "$RUN" supervisor.malloc_trimmed_bytes)
    [ "$given" -gt 0 ] || fail "malloc_trimmed_bytes is $given"
    mem=$("$HERDCTL" --json mem)
    [ "$(echo "$mem" | json_get malloc.trims)" -ge 1 ] || fail "mem: $mem"
    pass "burst of $FRAMES x 1 MiB: RSS $peak MiB -> $(herdd_rss_mib) MiB; $(trims) trims gave back $((given >> 20)) MiB"
fi

# A stopped worker's memory is given back on the next tick, whatever the
# heap figures say.
before=$(trims)
"$HERDCTL" stop w >/dev/null || fail "herdctl stop w"
wait_until at_least $((before + 1)) trims || fail "no trim after w stopped ($before, now $(trims))"
pass "a worker's stop is followed by a trim ($before -> $(trims))"

kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exit $rc after SIGTERM"
