# A burst of 200,000 events, published as fast as a raw push0 connection to
# publish.ipc takes them, to a webhook whose server takes 50 ms a request
# (max_in_flight 4, queue_max 1000): herdd's RSS stays under a bound (the
# queue is bounded, drop-oldest), drops are counted exactly (received =
# done + failed + dropped + queue_depth + in_flight in every snapshot, and
# received plus what the bus dropped for the worker is what was published),
# every event the server answered is counted done, and another worker's
# heartbeat (health_interval_s 1) keeps coming, no gap over 2.5 s, all
# along.
. "$(dirname "$0")/lib.sh"

N=200000
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

# pub.py N: N events burst.<i % 10> {"i": i} on publish.ipc (SP over a unix
# socket: an 8-byte header each way, then per message 0x01, a 64-bit
# big-endian length, topic NUL payload), 1000 frames a write.
cat >"$T/pub.py" <<'PY'
import socket, struct, sys
run, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(run + "/publish.ipc")
s.sendall(b"\x00SP\x00\x00\x50\x00\x00")  # push0
hdr = b""
while len(hdr) < 8:
    chunk = s.recv(8 - len(hdr))
    if not chunk:
        sys.exit("publish.ipc closed during the handshake")
    hdr += chunk
if hdr[:4] != b"\x00SP\x00" or hdr[4:6] != b"\x00\x51":
    sys.exit("unexpected SP header %r" % hdr)
out = []
for i in range(n):
    frame = b"burst.t%d\0{\"i\": %d}" % (i % 10, i)
    out.append(b"\x01" + struct.pack(">Q", len(frame)) + frame)
    if len(out) == 1000:
        s.sendall(b"".join(out))
        out = []
s.sendall(b"".join(out))
s.close()
PY

# snapshot: one status call, as "received done failed dropped queue_depth
# in_flight bus_queue_full bus_remote_in bus_other_drops".
snapshot() {
    "$HERDCTL" --runtime-dir "$RUN" --json status | python3 -c '
import json, sys
s = json.load(sys.stdin)
w = [w for w in s["workers"] if w["worker"] == "hook"][0]
b = s["supervisor"]["bus"]
other = sum(v for k, v in b["dropped"].items() if k != "queue_full")
print(w["received"], w["done"], w["failed"], w["dropped"], w["queue_depth"], w["in_flight"],
      b["dropped"]["queue_full"], b["remote_in"], other)'
}

server slow --delay 0.05
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "hook", "kind": "webhook", "subscribe": ["burst.>"], "url": "http://127.0.0.1:$PORT/",
   "queue_max": 1000, "max_in_flight": 4, "timeout_s": 10},
  {"name": "beat", "kind": "archive", "subscribe": ["quiet.>"], "path": "$T/beat.jsonl",
   "health_interval_s": 1}
 ]}
JSON
# Under ASan freed blocks wait in a quarantine (256 MiB by default) that
# would be most of the resident set: a small one keeps the bound meaningful.
[ "${HERD_SANITIZE:-0}" = 1 ] && export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=8"
start_herdd "$T/herd.json"
wait_until worker_state_is hook running || fail "hook: $(worker_get hook state)"

# The heartbeat, stamped as it arrives (through a fifo: both processes
# tracked, herdctl sub would outlive a pipe's reader).
mkfifo "$T/beats.fifo"
"$HERDCTL" --runtime-dir "$RUN" sub 'system.beat.health' >"$T/beats.fifo" &
track $!
python3 -u -c '
import json, sys, time
for line in sys.stdin:
    print("%.3f %s" % (time.monotonic(), json.loads(line.split(" ", 1)[1])["ts"]), flush=True)' \
    <"$T/beats.fifo" >"$T/beats" &
track $!
wait_until at_least 2 lines_of "$T/beats" || fail "no heartbeat from beat"

read -r _ _ _ _ _ _ qf0 in0 _ <<<"$(snapshot)"
base_kib=$(awk '/^VmRSS:/{print $2}' "/proc/$HERDD_PID/status")
# RSS every 100 ms until told to stop.
(while [ ! -e "$T/stop-sampling" ]; do
    awk '/^VmRSS:/{print $2}' "/proc/$HERDD_PID/status" 2>/dev/null
    sleep 0.1
done) >"$T/rss" &
track $!

t0=$(date +%s%N)
python3 "$T/pub.py" "$RUN" $N || fail "publishing"
pub_ms=$((($(date +%s%N) - t0) / 1000000))

# Every frame reached herdd (push0/pull0 push back, they never drop), and
# the bus handed the worker all of them but what it counted dropped.
reached() {
    read -r rec _ _ _ _ _ qf in other <<<"$(snapshot)"
    [ $((in - in0)) = $N ] && [ $((rec + qf - qf0)) = $N ]
}
wait_until reached || fail "after the burst: $(snapshot) (before: queue_full $qf0, remote_in $in0)"
bad=""
for i in $(seq 1 20); do
    read -r rec done failed dropped depth in_flight qf in other <<<"$(snapshot)"
    [ "$rec" = $((done + failed + dropped + depth + in_flight)) ] || bad="$bad [$rec $done $failed $dropped $depth $in_flight]"
    [ "$in_flight" -le 4 ] && [ "$depth" -le 1000 ] || bad="$bad [in_flight $in_flight, queue $depth]"
    sleep 0.1
done
[ -z "$bad" ] || fail "received != done + failed + dropped + queue_depth + in_flight:$bad"
[ "$other" = 0 ] || fail "the bus dropped $other frames for other reasons"
bus_dropped=$((qf - qf0))

# Drained: the queue (at most 1000 + 4) at 4 x 20 requests a second.
drained() {
    read -r rec done failed dropped depth in_flight _ <<<"$(snapshot)"
    [ "$depth" = 0 ] && [ "$in_flight" = 0 ]
}
for i in 1 2 3; do wait_until drained && break; done
drained || fail "not drained: $(snapshot)"
read -r rec done failed dropped depth in_flight qf in other <<<"$(snapshot)"
touch "$T/stop-sampling"
settle_ms=$((($(date +%s%N) - t0) / 1000000))
[ "$failed" = 0 ] || fail "$failed events failed"
[ "$rec" = $((done + dropped)) ] || fail "received $rec, done $done + dropped $dropped"
[ "$done" = "$(requests slow)" ] || fail "done $done, the server answered $(requests slow)"
[ $((rec + qf - qf0)) = $N ] || fail "received $rec + bus drops $((qf - qf0)) != $N"

# RSS: the worker holds at most 1000 queued events (a few hundred bytes
# each) and 4 requests; the bus's own queue for it 1024 events more.
peak_kib=$(sort -n "$T/rss" | tail -n 1)
if [ "${HERD_SANITIZE:-0}" = 1 ]; then
    bound_kib=$((base_kib + 64 * 1024)) # the quarantine, shadow memory, redzones
else
    bound_kib=$((base_kib + 24 * 1024))
fi
[ "$peak_kib" -lt "$bound_kib" ] ||
    fail "herdd RSS peaked at $((peak_kib / 1024)) MiB (from $((base_kib / 1024)) MiB; bound $((bound_kib / 1024)) MiB)"

# The heartbeat never paused, during the burst and after.
# Gaps as they arrive here, and between the ts herdd stamped them with.
read -r gap sent_gap <<<"$(python3 -c '
import datetime, sys
rows = [l.split() for l in open(sys.argv[1])]
t = [float(r[0]) for r in rows]
ts = [datetime.datetime.strptime(r[1], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() for r in rows]
gap = lambda v: max(b - a for a, b in zip(v, v[1:]))
print("%.2f %.2f" % (gap(t), gap(ts)))' "$T/beats")"
python3 -c 'import sys; sys.exit(0 if max(map(float, sys.argv[1:])) <= 2.5 else 1)' "$gap" "$sent_gap" ||
    fail "a heartbeat gap of $gap s ($sent_gap s between their ts; health_interval_s 1)"
beats=$(lines_of "$T/beats")
kill -TERM "$HERDD_PID"
wait "$HERDD_PID" || fail "herdd exit status $?"
pass "$N events in $pub_ms ms: received $rec (bus dropped $bus_dropped), done $done, dropped $dropped, failed 0; settled after $settle_ms ms; RSS $((base_kib / 1024)) -> peak $((peak_kib / 1024)) MiB (bound $((bound_kib / 1024)) MiB); $beats heartbeats, largest gap $gap s (${sent_gap} s between their ts)"
