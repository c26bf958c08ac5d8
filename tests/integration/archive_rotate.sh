# The archive kind: 10,000 events of every JSON shape (escapes, raw UTF-8
# with U+2028, pretty-printed with LF and CRLF) published on publish.ipc
# land as exactly 10,000 lines across path and path.1..N after several
# rotations, oldest file first and in order, each line {"ts","topic",
# "payload"} with the payload the bytes published (raw CR/LF as spaces);
# health counts them all done. keep bounds the rotated files (keep 2: .1
# and .2 only; keep 0: path alone); all three fsync modes run; a stop
# flushes what is queued; bad configs are refused by `herdd --check`
# naming the key.
. "$(dirname "$0")/lib.sh"

N=10000
A="$T/archive/sub" # created by the worker

cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "arc", "kind": "archive", "subscribe": ["arc.>"], "path": "$A/events.jsonl",
   "max_bytes": "64K", "keep": 100, "fsync": "rotate", "queue_max": 20000},
  {"name": "al", "kind": "archive", "subscribe": ["mode.>"], "path": "$A/always.jsonl",
   "max_bytes": "4K", "keep": 2, "fsync": "always"},
  {"name": "nv", "kind": "archive", "subscribe": ["mode.>"], "path": "$A/never.jsonl",
   "max_bytes": "4K", "keep": 0, "fsync": "never"},
  {"name": "fl", "kind": "archive", "subscribe": ["flush.>"], "path": "$A/flush.jsonl",
   "fsync": "always", "queue_max": 100000}
 ]}
JSON
"$HERDD" --check -c "$T/herd.json" >"$T/check.out" 2>&1 || fail "good config refused: $(cat "$T/check.out")"

# pub.py PREFIX N: publishes N events on PREFIX.* through a raw push0
# connection to publish.ipc (SP over a unix socket: an 8-byte header each
# way, then per message 0x01, a 64-bit big-endian length, topic NUL
# payload), and writes what it sent, one JSON [topic, payload] a line, to
# stdout.
cat >"$T/pub.py" <<'PY'
import json, socket, struct, sys
run, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
def payload(i):
    k = i % 6
    if k == 0:
        return json.dumps({"i": i, "s": "plain"}).encode()
    if k == 1:
        return json.dumps({"i": i, "u": "h\u00e9llo \u2713 \u2028 sep", "e": "q\" b\\ t\t"},
                          ensure_ascii=False).encode()
    if k == 2:
        return json.dumps({"i": i, "nest": {"a": [1, {"b": None}]}}, indent=1).encode()
    if k == 3:
        return ('{\r\n  "i": %d,\r\n  "crlf": true\r\n}' % i).encode()
    if k == 4:
        return json.dumps([{"i": i}, None, True, 1.5e3, "x" * (i % 97)]).encode()
    return json.dumps({"i": i, "pad": "p" * (i % 300)}).encode()
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
out, sent = [], []
for i in range(n):
    topic, body = ("%s.t%d.x" % (prefix, i % 3)).encode(), payload(i)
    frame = topic + b"\0" + body
    out.append(b"\x01" + struct.pack(">Q", len(frame)) + frame)
    sent.append(json.dumps([topic.decode(), body.decode()]))
    if len(out) == 500:
        s.sendall(b"".join(out))
        out = []
s.sendall(b"".join(out))
sys.stdout.write("\n".join(sent) + "\n")
s.close()
PY

# check.py [--tail|--head] SENT FILE...: the files (oldest first) hold
# exactly the events of SENT in order, or its last ones (--tail: older files
# let go) or its first ones (--head: herdd stopped before the rest came).
cat >"$T/check.py" <<'PY'
import json, re, sys
args = sys.argv[1:]
tail, head = args[0] == "--tail", args[0] == "--head"
if tail or head:
    args = args[1:]
sent = [json.loads(l) for l in open(args[0], encoding="utf-8")]
ts = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
lines = []
for f in args[1:]:
    data = open(f, "rb").read()
    if data and not data.endswith(b"\n"):
        sys.exit("%s does not end with a newline" % f)
    lines += data.split(b"\n")[:-1]
if tail and len(lines) <= len(sent):
    sent = sent[len(sent) - len(lines):]
if head:
    sent = sent[:len(lines)]
if len(lines) != len(sent):
    sys.exit("%d lines, %d events sent" % (len(lines), len(sent)))
for n, (line, (topic, body)) in enumerate(zip(lines, sent)):
    try:
        v = json.loads(line)
    except ValueError as e:
        sys.exit("line %d does not parse (%s): %r" % (n + 1, e, line[:200]))
    if sorted(v) != ["payload", "topic", "ts"] or not ts.match(v["ts"]):
        sys.exit("line %d: %r" % (n + 1, line[:200]))
    if v["topic"] != topic or v["payload"] != json.loads(body):
        sys.exit("line %d: %r, expected %s %s" % (n + 1, line[:200], topic, body[:100]))
    raw = line[line.index(b',"payload":') + 11:-1]
    if raw != body.encode().replace(b"\r", b" ").replace(b"\n", b" "):
        sys.exit("line %d: payload bytes %r, sent %r" % (n + 1, raw[:100], body[:100]))
print(len(lines))
PY

start_herdd "$T/herd.json"
wait_until worker_state_is arc running || fail "arc: $(worker_get arc state)"

python3 "$T/pub.py" "$RUN" arc $N >"$T/sent.jsonl" || fail "publishing"
wait_until yields $N worker_get arc "done" || fail "arc done: $(worker_get arc "done") of $N"
for f in received "done" failed dropped queue_depth in_flight write_errors torn_lines_cut; do
    echo "$f=$(worker_get arc $f)"
done >"$T/health.txt"
grep -qx "received=$N" "$T/health.txt" && grep -qx "done=$N" "$T/health.txt" &&
    grep -qx "failed=0" "$T/health.txt" && grep -qx "dropped=0" "$T/health.txt" &&
    grep -qx "queue_depth=0" "$T/health.txt" && grep -qx "write_errors=0" "$T/health.txt" ||
    fail "arc health: $(tr '\n' ' ' <"$T/health.txt")"

rotations=$(worker_get arc rotations)
[ "$rotations" -ge 5 ] || fail "only $rotations rotations"
[ -f "$A/events.jsonl.$rotations" ] && [ ! -e "$A/events.jsonl.$((rotations + 1))" ] ||
    fail "$rotations rotations, files: $(ls "$A")"
files=""
for i in $(seq "$rotations" -1 1); do
    size=$(stat -c %s "$A/events.jsonl.$i")
    [ "$size" -le 65536 ] || fail "events.jsonl.$i is $size bytes, over max_bytes"
    files="$files $A/events.jsonl.$i"
done
[ "$(worker_get arc bytes)" = "$(stat -c %s "$A/events.jsonl")" ] ||
    fail "health bytes $(worker_get arc bytes), file $(stat -c %s "$A/events.jsonl")"
[ "$(worker_get arc path)" = "$A/events.jsonl" ] || fail "health path: $(worker_get arc path)"
# shellcheck disable=SC2086
n=$(python3 "$T/check.py" "$T/sent.jsonl" $files "$A/events.jsonl") || fail "archive content"
[ "$n" = $N ] || fail "$n lines"
[ "$(stat -c %a "$A")" = 750 ] || fail "directory mode $(stat -c %a "$A")"
pass "$N events, $rotations rotations: every line parses, payloads exact, in order"

# fsync always (keep 2) and never (keep 0) on the same 300 events.
python3 "$T/pub.py" "$RUN" mode 300 >"$T/mode.jsonl" || fail "publishing mode.*"
wait_until yields 300 worker_get al "done" || fail "al done: $(worker_get al "done")"
wait_until yields 300 worker_get nv "done" || fail "nv done: $(worker_get nv "done")"
[ "$(worker_get al rotations)" -ge 3 ] || fail "al rotations: $(worker_get al rotations)"
[ -f "$A/always.jsonl.2" ] && [ ! -e "$A/always.jsonl.3" ] || fail "keep 2: $(ls "$A")"
[ "$(worker_get nv rotations)" -ge 3 ] || fail "nv rotations: $(worker_get nv rotations)"
[ ! -e "$A/never.jsonl.1" ] || fail "keep 0 kept a file: $(ls "$A")"
python3 "$T/check.py" --tail "$T/mode.jsonl" "$A/always.jsonl.2" "$A/always.jsonl.1" \
    "$A/always.jsonl" >/dev/null || fail "always content"
python3 "$T/check.py" --tail "$T/mode.jsonl" "$A/never.jsonl" >/dev/null || fail "never content"
pass "fsync always and never, keep 2 and keep 0"

# A stop writes what is queued: SIGTERM right after the last event is sent;
# everything received before the stop is in the file (the worker logs its
# counts when it closes the file). Whether a backlog was left at the stop
# depends on timing (test_workers_archive forces one).
python3 "$T/pub.py" "$RUN" flush 20000 >"$T/flush.jsonl" || fail "publishing flush.*"
kill -TERM "$HERDD_PID"
wait "$HERDD_PID" || fail "herdd exit status $?"
closed=$(grep -o 'fl: closed .*' "$T/herdd.log") || fail "fl did not log its close"
read -r received written failed dropped <<<"$(echo "$closed" |
    sed -E 's/.*: ([0-9]+) events received, ([0-9]+) written, ([0-9]+) failed, ([0-9]+) dropped/\1 \2 \3 \4/')"
[ "$received" -gt 0 ] && [ "$received" = "$written" ] && [ "$failed" = 0 ] && [ "$dropped" = 0 ] ||
    fail "fl at stop: $closed"
python3 "$T/check.py" --head "$T/flush.jsonl" "$A/flush.jsonl" >"$T/n" || fail "flush content"
[ "$(cat "$T/n")" = "$received" ] || fail "$(cat "$T/n") lines in flush.jsonl, $received events received"
grep -q "arc: stopping -> stopped" "$T/herdd.log" || fail "arc did not stop cleanly"
backlog=$(grep -o 'fl: stopping: writing the [0-9]* events queued and [0-9]* in flight' "$T/herdd.log" |
    sed -E 's/.* the ([0-9]+) events queued and ([0-9]+) in flight/\1 queued, \2 in flight/')
pass "a stop flushed all $received events received (of 20000 sent; at the stop: ${backlog:-none pending})"

n=$(check_refuses <<CASES
{"workers": [{"name": "a", "kind": "archive", "subscribe": ["x"]}]}|workers[0].path: required
{"workers": [{"name": "a", "kind": "archive", "path": "/tmp/x"}]}|workers[0].subscribe: required
{"workers": [{"name": "a", "kind": "archive", "subscribe": ["x..y"], "path": "/tmp/x"}]}|workers[0].subscribe[0]: not a topic pattern
{"workers": [{"name": "a", "kind": "archive", "subscribe": ["x"], "path": "/tmp/x/"}]}|workers[0].path: expected a file path
{"workers": [{"name": "a", "kind": "archive", "subscribe": ["x"], "path": 7}]}|workers[0].path: expected a file path
{"workers": [{"name": "a", "kind": "archive", "subscribe": ["x"], "path": "/tmp/x", "keep": 101}]}|workers[0].keep: expected an integer from 0 to 100
{"workers": [{"name": "a", "kind": "archive", "subscribe": ["x"], "path": "/tmp/x", "keep": "5"}]}|workers[0].keep: expected an integer from 0 to 100
{"workers": [{"name": "a", "kind": "archive", "subscribe": ["x"], "path": "/tmp/x", "keep": -1}]}|workers[0].keep: expected an integer from 0 to 100
{"workers": [{"name": "a", "kind": "archive", "subscribe": ["x"], "path": "/tmp/x", "max_bytes": "lots"}]}|workers[0].max_bytes: expected a size such as "64M"
{"workers": [{"name": "a", "kind": "archive", "subscribe": ["x"], "path": "/tmp/x", "max_bytes": 100}]}|workers[0].max_bytes: expected a size such as "64M" (4K to 1T)
{"workers": [{"name": "a", "kind": "archive", "subscribe": ["x"], "path": "/tmp/x", "fsync": "sometimes"}]}|workers[0].fsync: expected "always", "rotate" or "never"
{"workers": [{"name": "a", "kind": "archive", "subscribe": ["x"], "path": "/tmp/x", "fsync": true}]}|workers[0].fsync: expected "always", "rotate" or "never"
{"workers": [{"name": "a", "kind": "archive", "subscribe": ["x"], "path": "/tmp/x", "queue_max": 0}]}|workers[0].queue_max: expected an integer from 1
{"workers": [{"name": "a", "kind": "archive", "subscribe": ["x"], "path": "/tmp/x", "rotate_at": "1M"}]}|workers[0].rotate_at: unknown key (expected subscribe, path, max_bytes, keep, fsync or a common key)
{"workers": [{"name": "a", "kind": "process", "argv": ["true"]}, {"name": "b", "kind": "archive", "subscribe": ["x"], "path": "/tmp/x", "keep": 1000}]}|workers[1].keep: expected an integer from 0 to 100
{"state_dir": "$STATE", "workers": [{"name": "a", "kind": "archive", "subscribe": ["x"], "path": "/tmp/x.jsonl"}, {"name": "b", "kind": "archive", "subscribe": ["y"], "path": "/tmp/./x.jsonl"}]}|workers[1] (b) would use /tmp/x.jsonl, which overlaps /tmp/x.jsonl of workers[0] (a)
CASES
) || exit 1
[ "$n" -ge 16 ] || fail "only $n cases ran"
pass "--check refused $n bad archive configs, each naming its key"
