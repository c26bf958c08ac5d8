# The archive kind after a crash: herdd is killed with SIGKILL while events
# stream in, a torn half line is appended by hand for good measure, and
# herdd restarted on the same config cuts it (torn_lines_cut, a warning in
# the log) before writing: every line of the file then parses, the lines
# from before the crash are the first events sent, in order, and new events
# are appended after them.
. "$(dirname "$0")/lib.sh"

A="$T/archive"
F="$A/events.jsonl"
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "arc", "kind": "archive", "subscribe": ["crash.>", "after.>"], "path": "$F",
   "queue_max": 100000}
 ]}
JSON

# stream.py PREFIX N: publishes N events on PREFIX.x through a raw push0
# connection to publish.ipc (SP over a unix socket: an 8-byte header each
# way, then per message 0x01, a 64-bit big-endian length, topic NUL
# payload), 200 at a time with a short pause, and stops quietly when herdd
# goes away.
cat >"$T/stream.py" <<'PY'
import json, socket, struct, sys, time
run, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(run + "/publish.ipc")
s.sendall(b"\x00SP\x00\x00\x50\x00\x00")  # push0
if s.recv(8)[:4] != b"\x00SP\x00":
    sys.exit("no SP header from herdd")
topic = (prefix + ".x").encode()
try:
    for start in range(0, n, 200):
        out = []
        for i in range(start, min(n, start + 200)):
            frame = topic + b"\0" + json.dumps({"i": i, "pad": "z" * (i % 200)}).encode()
            out.append(b"\x01" + struct.pack(">Q", len(frame)) + frame)
        s.sendall(b"".join(out))
        time.sleep(0.002)
except OSError:
    pass  # herdd killed
PY

# check.py FILE PREFIX...: every line of FILE parses and is {ts,topic,
# payload}; for each topic prefix, its events are i = 0, 1, ... in order.
# Prints the count per prefix.
cat >"$T/check.py" <<'PY'
import json, sys
data = open(sys.argv[1], "rb").read()
if data and not data.endswith(b"\n"):
    sys.exit("the file does not end with a newline")
count = {p: 0 for p in sys.argv[2:]}
for n, line in enumerate(data.split(b"\n")[:-1]):
    try:
        v = json.loads(line)
    except ValueError as e:
        sys.exit("line %d does not parse (%s): %r" % (n + 1, e, line[:120]))
    if sorted(v) != ["payload", "topic", "ts"]:
        sys.exit("line %d: %r" % (n + 1, line[:120]))
    p = v["topic"].split(".")[0]
    if v["payload"]["i"] != count[p]:
        sys.exit("line %d: event %d of %s, expected %d" % (n + 1, v["payload"]["i"], p, count[p]))
    count[p] += 1
print(" ".join(str(count[p]) for p in sys.argv[2:]))
PY

start_herdd "$T/herd.json"
wait_until worker_state_is arc running || fail "arc: $(worker_get arc state)"
python3 "$T/stream.py" "$RUN" crash 1000000 2>"$T/stream.log" &
spid=$!
track $spid
file_over() { [ -f "$F" ] && [ "$(stat -c %s "$F")" -gt "$1" ]; }
wait_until file_over 300000 || fail "archive not growing: $(stat -c %s "$F" 2>&1)"
kill -0 $spid 2>/dev/null || fail "the publisher ended before the crash"
kill -KILL "$HERDD_PID"
wait "$HERDD_PID" 2>/dev/null
wait $spid 2>/dev/null

# What the crash left, then a torn line on top of it.
if [ "$(tail -c 1 "$F" | od -An -c | tr -d ' ')" = '\n' ]; then natural=whole; else natural=torn; fi
printf '{"ts":"2026-01-01T00:00:00.000Z","topic":"crash.x","payload":{"i":-1,"pa' >>"$F"
whole_before=$(grep -c '' "$F")
whole_before=$((whole_before - 1)) # the last line is torn
python3 "$T/check.py" "$F" crash >/dev/null 2>&1 && fail "the torn line was not appended"

start_herdd "$T/herd.json"
wait_until worker_state_is arc running || fail "arc after restart: $(worker_get arc state)"
wait_until at_least 1 worker_get arc torn_lines_cut || fail "torn_lines_cut: $(worker_get arc torn_lines_cut)"
grep -q "arc: cut a torn last line" "$T/herdd.log" || fail "no warning about the torn line"
[ "$(tail -c 1 "$F" | od -An -c | tr -d ' ')" = '\n' ] || fail "the file still ends in a torn line"
counts=$(python3 "$T/check.py" "$F" crash after) || fail "after the cut"
[ "$counts" = "$whole_before 0" ] || fail "lines after the cut: $counts, expected $whole_before 0"
[ "$(worker_get arc bytes)" = "$(stat -c %s "$F")" ] || fail "health bytes: $(worker_get arc bytes)"
pass "killed with $whole_before whole lines ($natural end); the torn line cut at restart"

python3 "$T/stream.py" "$RUN" after 500 || fail "publishing after the restart"
wait_until yields 500 worker_get arc "done" || fail "done after restart: $(worker_get arc "done")"
counts=$(python3 "$T/check.py" "$F" crash after) || fail "after new events"
[ "$counts" = "$whole_before 500" ] || fail "lines: $counts, expected $whole_before 500"
[ "$(worker_get arc failed)" = 0 ] && [ "$(worker_get arc write_errors)" = 0 ] ||
    fail "failed $(worker_get arc failed), write_errors $(worker_get arc write_errors)"
pass "500 new events appended after the $whole_before from before the crash; every line parses"
