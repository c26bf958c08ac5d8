#!/bin/bash
# memory_high and memory_max on a catalog worker (its index plus the bodies
# in its LRU): the real components catalog, an LRU big enough for every
# body, and gets of the largest bodies until the worker goes over: one
# memory_high warning on system.comp.warning first, then a failure whose
# reason starts with "memory_max:", a restart per the policy (backoff, then
# running, serving again), and the process worker beside it untouched.
. "$(dirname "$0")/lib.sh"

gzip -dc "$HERD_TEST_DATA/esphome/components.json.gz" >"$T/components.json"
"$HERDCTL" catalog build "$T/components.json" "$T/comp" >/dev/null || fail "catalog build"

cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "comp", "kind": "catalog", "path": "$T/comp", "lru_entries": 1000, "lru_bytes": "64M",
   "memory_high": "6M", "memory_max": "12M", "backoff": {"initial_ms": 500, "max_ms": 500}},
  {"name": "other", "kind": "process", "argv": ["sleep", "$MARK"]}
 ]}
JSON
start_herdd "$T/herd.json"
wait_until catalog_loaded 0 961 || fail "comp did not load"
wait_until worker_state_is other running || fail "other did not start"
other_pid=$(worker_get other pid)
index_bytes=$(worker_get comp heap_bytes)
[ "$index_bytes" -gt 0 ] && [ "$index_bytes" -lt $((6 << 20)) ] ||
    fail "comp's heap_bytes at start: $index_bytes"

"$HERDCTL" --json sub 'system.>' >"$T/events" 2>"$T/sub.log" &
track $!
wait_until remote_subscribers_at_least "$RUN" 1 || fail "herdctl sub did not connect"

# The largest bodies first (the 40 largest hold well over 12 MiB), until
# the worker is no longer running; gets after that answer `unavailable`.
n=0
for f in $(ls -S "$T/comp/current/bodies/components/"); do
    "$HERDCTL" --json catalog get comp "${f%.json}" >/dev/null 2>>"$T/get.err" || break
    n=$((n + 1))
    [ $n -ge 200 ] && break
done
restarted() { [ "$(worker_get comp restarts)" = 1 ] && worker_state_is comp running; }
wait_until restarted || fail "comp was not restarted after $n gets: $(worker_health comp)"
wait_until catalog_loaded 0 961 || fail "comp did not load again"
after=$(worker_get comp heap_bytes)
[ "$after" -lt $((6 << 20)) ] || fail "the new instance starts at $after bytes"
"$HERDCTL" --json catalog get comp "${f%.json}" >/dev/null || fail "comp does not serve again"
pass "$n gets took comp over memory_max; restarted, serving again from $after bytes"

python3 - "$T/events" <<'PY' || fail "events"
import json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
order = [(i, e) for i, e in enumerate(evs) if e["topic"] in ("system.comp.warning", "system.comp.state")]
warn = [(i, e["payload"]) for i, e in order if e["topic"] == "system.comp.warning"]
state = [(i, e["payload"]) for i, e in order if e["topic"] == "system.comp.state"]
assert len(warn) == 1, ("expected one warning", warn)
i, w = warn[0]
assert sorted(w) == ["heap_bytes", "kind", "memory_bytes", "memory_high", "ts", "warning", "worker"], w
assert w["worker"] == "comp" and w["kind"] == "catalog" and w["warning"] == "memory_high", w
assert w["memory_high"] == 6 << 20 and w["memory_bytes"] > w["memory_high"], w
assert w["heap_bytes"] == w["memory_bytes"], w  # no child process: all of it is herdd's
trans = [(j, s["from"], s["to"], s["reason"]) for j, s in state]
stop = [t for t in trans if t[1:3] == ("running", "stopping")]
assert len(stop) == 1, trans
j, _, _, reason = stop[0]
assert j > i, "the warning came after the failure"
assert reason.startswith("memory_max: ") and reason.endswith(" bytes over 12M (12582912)"), reason
assert int(reason.split()[1]) > 12 << 20, reason
rest = [t[1:3] for t in trans if t[0] > j]
assert rest == [("stopping", "backoff"), ("backoff", "starting"), ("starting", "running")], trans
backoff = [t for t in trans if t[2] == "backoff"][0][3]
assert backoff.startswith("memory_max: ") and backoff.endswith("; restart in 500 ms"), backoff
assert not [e for e in evs if e["topic"].startswith("system.other.") and e["topic"] != "system.other.health"], "other had events"
PY
pass "one memory_high warning, then memory_max, backoff, running"

[ "$(worker_get other pid)" = "$other_pid" ] || fail "other's pid changed"
[ "$(worker_get other restarts)" = 0 ] || fail "other restarted"
worker_state_is other running || fail "other: $(worker_health other)"
pass "the other worker untouched"

kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exit $rc after SIGTERM"
