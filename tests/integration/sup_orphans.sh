# A process worker whose child leaves background processes behind (issue:
# `sh -c "sleep N & exit 0"`): they go with the child's group as soon as it
# exits, the worker restarts without ever being abandoned, a background
# process that ignores SIGTERM is SIGKILLed at stop_timeout_s, and SIGTERM
# to herdd ends it within stop_timeout_s, leaving nothing behind.
. "$(dirname "$0")/lib.sh"

cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "bg", "kind": "process", "stop_timeout_s": 1,
   "backoff": {"initial_ms": 200, "max_ms": 200}, "intensity": {"max_restarts": 1000, "period_s": 60},
   "argv": ["sh", "-c", "sleep $MARK & exit 0"]},
  {"name": "deaf", "kind": "process", "stop_timeout_s": 1,
   "backoff": {"initial_ms": 200, "max_ms": 200}, "intensity": {"max_restarts": 1000, "period_s": 60},
   "argv": ["sh", "-c", "trap '' TERM; sleep $((MARK + 1)) & sleep 0.3; exit 3"]}
 ]}
JSON
start_herdd "$T/herd.json"
sleep 4
# Each instance's leftovers are gone before the next starts: never more
# than one of each marked sleep at a time, never an abandoned stop.
for i in 1 2 3 4 5 6 7 8 9 10; do
    [ "$(alive_marked $MARK)" -le 1 ] || fail "orphans of bg pile up: $(alive_marked $MARK)"
    [ "$(alive_marked $((MARK + 1)))" -le 1 ] || fail "orphans of deaf pile up: $(alive_marked $((MARK + 1)))"
    sleep 0.2
done
! grep -q "abandoned" "$T/herdd.log" || fail "a stop was abandoned: $(grep abandoned "$T/herdd.log" | head -3)"
restarts=$(worker_get bg restarts)
[ "$restarts" -ge 5 ] || fail "bg restarted only $restarts times in 6 s"
grep -q "deaf: process .* still running 1 s after SIGTERM: SIGKILL" "$T/herdd.log" ||
    fail "the background sleep that ignores SIGTERM was not SIGKILLed"
start=$(date +%s%N)
kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
[ $rc = 0 ] || fail "herdd exited $rc after SIGTERM"
[ $ms -lt 4000 ] || fail "herdd took $ms ms to stop (stop_timeout_s is 1)"
sleep 0.2
[ "$(alive_marked $MARK)$(alive_marked $((MARK + 1)))" = 00 ] || fail "background processes outlived herdd"
pass "leftovers killed with their group; $restarts restarts of bg, none abandoned; herdd stopped in $ms ms"
