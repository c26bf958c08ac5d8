#!/bin/bash
# memory_max on process workers (their child's RSS, sampled every second):
# a python child holding 300 MiB against memory_max 100M is stopped within
# a few seconds, its state events' reason starts with "memory_max:", it
# ends `failed` (restart temporary) with no process left behind; a child
# that ignores SIGTERM is SIGKILLed stop_timeout_s after the SIGTERM; a
# third worker is untouched (same pid, no restart).
. "$(dirname "$0")/lib.sh"

HOG="import time; b = bytearray(300 << 20); time.sleep(60)"
STUB="import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); b = bytearray(200 << 20); time.sleep(60)"
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "other", "kind": "process", "argv": ["sleep", "$MARK"]},
  {"name": "hog", "kind": "process", "enabled": false, "memory_max": "100M",
   "restart": "temporary", "argv": ["python3", "-c", "$HOG", "mem-hog-$MARK"]},
  {"name": "stubborn", "kind": "process", "enabled": false, "memory_max": "100M",
   "restart": "temporary", "stop_timeout_s": 2,
   "argv": ["python3", "-c", "$STUB", "mem-stub-$MARK"]}
 ]}
JSON
start_herdd "$T/herd.json"
wait_until worker_state_is other running || fail "other did not start"
other_pid=$(worker_get other pid)

"$HERDCTL" --json sub 'system.>' >"$T/events" 2>"$T/sub.log" &
track $!
wait_until remote_subscribers_at_least "$RUN" 1 || fail "herdctl sub did not connect"

# wait_long CMD...: wait_until, for 30 s (sanitizer builds are slow).
wait_long() {
    local i
    for i in $(seq 1 300); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

"$HERDCTL" start hog >/dev/null || fail "herdctl start hog"
"$HERDCTL" start stubborn >/dev/null || fail "herdctl start stubborn"
wait_long worker_state_is hog failed || fail "hog: $(worker_health hog)"
wait_long worker_state_is stubborn failed || fail "stubborn: $(worker_health stubborn)"

# The events, checked in Python: the stop's reason starts with memory_max,
# the failure names it, and stubborn's stop took stop_timeout_s (SIGKILL).
python3 - "$T/events" <<'PY' || fail "state events"
import datetime, json, sys
evs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def ts(e):
    return datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
for w, limit in (("hog", 300 << 20), ("stubborn", 200 << 20)):
    st = [e["payload"] for e in evs if e["topic"] == "system.%s.state" % w]
    stop = [e for e in st if e["from"] == "running" and e["to"] == "stopping"]
    failed = [e for e in st if e["to"] == "failed"]
    assert len(stop) == 1 and len(failed) == 1, (w, st)
    r = stop[0]["reason"]
    assert r.startswith("memory_max: ") and r.endswith(" bytes over 100M (104857600)"), r
    got = int(r.split()[1])
    assert 100 << 20 < got < limit + (64 << 20), r
    assert "memory_max: " in failed[0]["reason"], failed[0]
    took = ts(failed[0]) - ts(stop[0])
    if w == "hog":
        assert took < 5, ("hog took %.1f s to stop after SIGTERM" % took)  # no SIGKILL: 10 s
    else:
        assert 1.9 < took < 4.5, ("stubborn stopped %.1f s after SIGTERM" % took)
PY
worker_get hog last_error | grep -q "memory_max: " || fail "hog last_error: $(worker_get hog last_error)"
[ "$(worker_get hog heap_bytes)" = 0 ] || fail "failed hog heap_bytes: $(worker_get hog heap_bytes)"
grep -q "stubborn: process [0-9]* or what it started still running 2 s after SIGTERM: SIGKILL" \
    "$T/herdd.log" || fail "no SIGKILL logged for stubborn"
pgrep -f "mem-(hog|stub)-$MARK" >/dev/null && fail "a python child survived: $(pgrep -af "mem-.*-$MARK")"
pass "over memory_max: SIGTERM (then SIGKILL after stop_timeout_s), failed, reason memory_max, no orphan"

[ "$(worker_get other pid)" = "$other_pid" ] || fail "other's pid changed"
[ "$(worker_get other restarts)" = 0 ] || fail "other restarted"
worker_state_is other running || fail "other: $(worker_health other)"
[ "$(alive_marked $MARK)" = 1 ] || fail "other's process gone"
pass "the other worker untouched"

kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exit $rc after SIGTERM"
