#!/bin/bash
# memory_high warns once per crossing, re-armed only below 90% of it: a
# process worker whose child's RSS goes 130 MiB, 95, 130, 95, 130 (over
# memory_high 100M, then between 90% and 100% of it) warns once; after it
# falls to 50 MiB and climbs to 130 again, a second time. Each warning is
# one event on system.<w>.warning, and the worker keeps running.
. "$(dirname "$0")/lib.sh"

cat >"$T/hover.py" <<'PY'
import os, sys, time
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
base = rss()
b = None
for mib in (130, 95, 130, 95, 130, 50, 130):
    # The new block is filled before the old one goes (a block this size is
    # its own mapping, unmapped at once): the RSS sampled every second
    # never dips below the lower of the two targets on the way.
    nb = bytearray(max((mib << 20) - base, 1 << 20))
    b = nb
    nb = None
    print("phase %d MiB: rss %d MiB" % (mib, rss() >> 20), flush=True)
    time.sleep(3)
print("done", flush=True)
time.sleep(600)
PY
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "hover", "kind": "process", "enabled": false, "memory_high": "100M",
   "argv": ["python3", "$T/hover.py", "mem-hover-$MARK"]}
 ]}
JSON
start_herdd "$T/herd.json"
"$HERDCTL" --json sub 'system.hover.warning' >"$T/events" 2>"$T/sub.log" &
track $!
wait_until remote_subscribers_at_least "$RUN" 1 || fail "herdctl sub did not connect"
"$HERDCTL" start hover >/dev/null || fail "herdctl start hover"

for i in $(seq 1 600); do
    grep -q "hover: stdout: done" "$T/herdd.log" && break
    sleep 0.1
done
grep -q "hover: stdout: done" "$T/herdd.log" || fail "the child did not go through its phases"
sleep 2.5 # the last crossing is seen within 2 s
python3 - "$T/events" <<'PY' || fail "warnings: $(cat "$T/events"; grep 'hover:' "$T/herdd.log")"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(evs) == 2, "expected 2 warnings, got %d" % len(evs)
for e in evs:
    p = e["payload"]
    assert e["topic"] == "system.hover.warning", e
    assert p["warning"] == "memory_high" and p["kind"] == "process" and p["worker"] == "hover", p
    assert p["memory_high"] == 100 << 20 and p["memory_bytes"] > 100 << 20, p
    assert p["child_rss_bytes"] > 100 << 20 and p["heap_bytes"] < 1 << 20, p
    assert p["memory_bytes"] == p["heap_bytes"] + p["child_rss_bytes"], p
PY
[ "$(grep -c 'hover: memory [0-9]* bytes over memory_high 100M (104857600)' "$T/herdd.log")" = 2 ] ||
    fail "warnings logged: $(grep 'over memory_high' "$T/herdd.log")"
worker_state_is hover running || fail "hover: $(worker_health hover)"
pass "hovering over memory_high warned once; a new crossing after falling below 90% warned again"

kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exit $rc after SIGTERM"
pgrep -f "mem-hover-$MARK" >/dev/null && fail "the child outlived herdd"
pass "no child left"
