# The exec kind (issue 11): 50 events through a child that records its
# start and end and sleeps a little, with max_concurrent 4. Never more
# than 4 ran at once (and 4 did), all 50 ran, each got its event's JSON on
# stdin and HERD_TOPIC in its environment, and the health counts are
# exact. A second worker with queue_max 2 drops the oldest events and
# counts them; a third's children flood their output, which is capped and
# counted, not kept; a fourth exits 3 (exit_codes "3", failed).
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/in"
# The kind never uses a shell; the test's argv runs one on a script.
cat >"$T/child.sh" <<'SH'
echo "start $(date +%s%N) $$" >>"$OUT/times"
cat >"$OUT/in/$$.json"
printf '%s\n' "$HERD_TOPIC" >"$OUT/in/$$.topic"
printf '%s\n' "$HERD_WORKER" >"$OUT/in/$$.worker"
sleep 0.5
echo "end $(date +%s%N) $$" >>"$OUT/times"
SH
cat >"$T/slow.sh" <<'SH'
cat >/dev/null
sleep 1
SH
echo 'exit 3' >"$T/three.sh"
cat >"$T/flood.sh" <<'SH'
i=0
while [ $i -lt 500 ]; do echo "line $i of a flood"; i=$((i + 1)); done
head -c 300000 /dev/zero | tr '\0' x
SH
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "ex", "kind": "exec", "subscribe": ["ev.>"], "max_concurrent": 4, "timeout_s": 30,
   "env": {"OUT": "$T"}, "argv": ["/bin/sh", "$T/child.sh"]},
  {"name": "slow", "kind": "exec", "subscribe": ["slow.>"], "queue_max": 2,
   "argv": ["/bin/sh", "$T/slow.sh"]},
  {"name": "flood", "kind": "exec", "subscribe": ["flood"], "argv": ["/bin/sh", "$T/flood.sh"]},
  {"name": "three", "kind": "exec", "subscribe": ["three"], "argv": ["/bin/sh", "$T/three.sh"]}
 ]}
JSON

# Config errors name the path and the bad value.
n=$(check_refuses <<CASES
{"workers": [{"name": "e", "kind": "exec", "subscribe": ["a"], "argv": "true"}]}|workers[0].argv: required, an array of 1 to 1024 strings
{"workers": [{"name": "e", "kind": "exec", "subscribe": ["a"], "argv": []}]}|workers[0].argv: required
{"workers": [{"name": "e", "kind": "exec", "subscribe": ["a"], "argv": [""]}]}|workers[0].argv[0]: expected the program to run, got ""
{"workers": [{"name": "e", "kind": "exec", "subscribe": ["a"], "argv": ["x", 3]}]}|workers[0].argv[1]: expected a string without NUL bytes, got 3
{"workers": [{"name": "e", "kind": "exec", "argv": ["true"]}]}|workers[0].subscribe: required
{"workers": [{"name": "e", "kind": "exec", "subscribe": ["a"], "argv": ["true"], "max_concurrent": 65}]}|workers[0].max_concurrent: expected an integer from 1 to 64, got 65
{"workers": [{"name": "e", "kind": "exec", "subscribe": ["a"], "argv": ["true"], "max_concurrent": 0}]}|got 0
{"workers": [{"name": "e", "kind": "exec", "subscribe": ["a"], "argv": ["true"], "timeout_s": -1}]}|workers[0].timeout_s: expected whole seconds from 0 (no timeout) to 86400, got -1
{"workers": [{"name": "e", "kind": "exec", "subscribe": ["a"], "argv": ["true"], "timeout_s": "5"}]}|workers[0].timeout_s: expected whole seconds from 0 (no timeout) to 86400, got "5"
{"workers": [{"name": "e", "kind": "exec", "subscribe": ["a"], "argv": ["true"], "env": ["A=1"]}]}|workers[0].env: expected an object of strings, got ["A=1"]
{"workers": [{"name": "e", "kind": "exec", "subscribe": ["a"], "argv": ["true"], "env": {"A": 1}}]}|workers[0].env.A: expected a string without NUL bytes, got 1
{"workers": [{"name": "e", "kind": "exec", "subscribe": ["a"], "argv": ["true"], "env": {"HERD_TOPIC": "x"}}]}|workers[0].env.HERD_TOPIC: set by herd
{"workers": [{"name": "e", "kind": "exec", "subscribe": ["a"], "argv": ["true"], "cwd": "$T/nowhere"}]}|workers[0].cwd: "$T/nowhere": No such file or directory
{"workers": [{"name": "e", "kind": "exec", "subscribe": ["a"], "argv": ["true"], "shell": true}]}|workers[0].shell: unknown key
CASES
)
"$HERDD" --check -c "$T/herd.json" >"$T/check.out" 2>&1 || fail "--check of the test's config: $(cat "$T/check.out")"

start_herdd "$T/herd.json"
wait_until worker_state_is ex running || fail "ex is $(worker_get ex state)"
for i in $(seq 0 49); do
    $HERDCTL --runtime-dir "$RUN" pub "ev.n$i" "{\"i\": $i, \"s\": \"caf\u00e9 \\\"$i\\\"\"}" ||
        fail "publish $i"
done
for i in 1 2 3 4 5 6 7 8 9 10; do $HERDCTL --runtime-dir "$RUN" pub "slow.$i" "{\"i\": $i}"; done
$HERDCTL --runtime-dir "$RUN" pub flood '{}'
$HERDCTL --runtime-dir "$RUN" pub three '{}'
$HERDCTL --runtime-dir "$RUN" pub three '{}'

# health NAME: the worker's health as one JSON line.
# (herdctl retried: a loaded machine may make one status call time out)
health() { worker_health "$1"; }
# settled NAME N: received N, and nothing queued or running.
settled() {
    health "$1" | python3 -c '
import json, sys
h = json.load(sys.stdin)
sys.exit(0 if h["received"] == int(sys.argv[1]) and h["queue_depth"] == 0 and h["running"] == 0
              and h["received"] == h["done"] + h["failed"] + h["dropped"] else 1)' "$2"
}
for i in $(seq 1 6); do settled ex 50 && break; wait_until settled ex 50; done
settled ex 50 || fail "ex did not finish 50 events: $(health ex)"
wait_until settled slow 10 || fail "slow did not settle: $(health slow)"
wait_until settled flood 1 || fail "flood did not settle: $(health flood)"
wait_until settled three 2 || fail "three did not settle: $(health three)"

health ex >"$T/ex.json"
python3 - "$T" <<'PY' || fail "ex: see above"
import glob, json, os, sys
t = sys.argv[1]
h = json.load(open(f"{t}/ex.json"))
want = {"received": 50, "done": 50, "failed": 0, "dropped": 0, "queue_depth": 0, "running": 0,
        "timeouts": 0, "spawn_errors": 0, "exit_codes": {"0": 50}}
bad = {k: h.get(k) for k in want if h.get(k) != want[k]}
if bad:
    sys.exit(f"health: {bad} (expected {want})")
# Never more than 4 at once, and 4 at some point.
events = []
for line in open(f"{t}/times"):
    what, ns, pid = line.split()
    events.append((int(ns), 0 if what == "end" else 1, pid))
starts = [e for e in events if e[1] == 1]
ends = [e for e in events if e[1] == 0]
if len(starts) != 50 or len(ends) != 50 or {e[2] for e in starts} != {e[2] for e in ends}:
    sys.exit(f"{len(starts)} starts, {len(ends)} ends recorded")
now = peak = 0
for ns, kind, pid in sorted(events):  # an end sorts before a start at the same ns
    now += 1 if kind else -1
    peak = max(peak, now)
if peak != 4:
    sys.exit(f"at most {peak} children at once, expected exactly 4")
# Every child had its event on stdin, and HERD_TOPIC its topic.
seen = set()
for f in glob.glob(f"{t}/in/*.json"):
    pid = os.path.basename(f)[:-5]
    raw = open(f, "rb").read()
    if not raw.endswith(b"}\n") or raw.count(b"\n") != 1:
        sys.exit(f"{f}: not one JSON line: {raw[:200]!r}")
    ev = json.loads(raw)
    if set(ev) != {"ts", "topic", "payload"} or not ev["ts"].endswith("Z"):
        sys.exit(f"{f}: {ev}")
    i = ev["payload"]["i"]
    if ev["topic"] != f"ev.n{i}" or ev["payload"]["s"] != f'caf\u00e9 "{i}"':
        sys.exit(f"{f}: {ev}")
    topic = open(f"{t}/in/{pid}.topic").read().strip()
    if topic != ev["topic"]:
        sys.exit(f"HERD_TOPIC {topic!r} for an event on {ev['topic']}")
    if open(f"{t}/in/{pid}.worker").read().strip() != "ex":
        sys.exit("HERD_WORKER is not ex")
    seen.add(i)
if seen != set(range(50)):
    sys.exit(f"events run: {sorted(seen)}")
print(f"peak {peak}, 50 events each on its child's stdin")
PY

# slow: one child at a time, a queue of 2: the oldest are dropped, counted.
health slow | python3 -c '
import json, sys
h = json.load(sys.stdin)
ok = (h["received"] == 10 and h["dropped"] >= 1 and h["done"] >= 3 and
      h["done"] + h["dropped"] == 10 and h["failed"] == 0 and h["exit_codes"] == {"0": h["done"]})
sys.exit(0 if ok else "slow: %s" % h)' || fail "queue_max: $(health slow)"
# flood: 500 lines and a 300 KB line: at most 64 lines logged, the rest counted.
logged=$(grep -c ' flood: [0-9]* stdout: ' "$T/herdd.log")
[ "$logged" -le 64 ] || fail "flood: $logged lines logged"
dropped=$(health flood | json_get output_lines_dropped)
[ "$dropped" -ge 400 ] || fail "flood: output_lines_dropped $dropped"
grep -q "flood: [0-9]*: $dropped output lines not logged" "$T/herdd.log" || fail "flood: no summary line"
[ "$(health flood | json_get exit_codes)" = '{"0": 1}' ] || fail "flood: $(health flood)"
# three: exit 3 is a failure, counted under "3", named in last_error.
[ "$(health three | json_get exit_codes)" = '{"3": 2}' ] || fail "three: $(health three)"
[ "$(health three | json_get failed)" = 2 ] || fail "three: $(health three)"
health three | json_get last_error | grep -q "exited with status 3" || fail "three: $(health three)"

kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exited $rc"
pass "$n config errors refused; 50 events, at most 4 children at once, stdin and HERD_TOPIC right, counts exact; queue_max drops counted; a flood capped ($dropped lines counted); exit 3 counted"
