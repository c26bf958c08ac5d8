# Per-worker control: `herdctl restart W` gives a new pid; a stop published
# on system.W.control with nngcat (fire and forget) stops it; `herdctl start
# W` brings it back; unknown actions are counted, never fatal; requests to a
# stopped worker's service answer `unavailable`; a worker over memory_max
# fails and is restarted.
. "$(dirname "$0")/lib.sh"

cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "w", "kind": "process", "argv": ["sleep", "$MARK"]},
  {"name": "other", "kind": "process", "argv": ["sleep", "$((MARK + 1))"]},
  {"name": "hog", "kind": "process", "memory_max": "8M",
   "argv": ["python3", "-c", "import time; x = bytearray(64 << 20); time.sleep(3600)"],
   "backoff": {"initial_ms": 100, "max_ms": 100}, "intensity": {"max_restarts": 1, "period_s": 60}}
 ]}
JSON
start_herdd "$T/herd.json"
wait_until worker_state_is w running || fail "w did not start"
pid1=$(worker_get w pid)
other_pid=$(worker_get other pid)
[ "$(alive_marked $MARK)" = 1 ] || fail "w's process not found"

"$HERDCTL" restart w >"$T/restart.out" || fail "herdctl restart"
pid2=$(worker_get w pid)
[ -n "$pid2" ] && [ "$pid2" != "$pid1" ] || fail "restart kept pid $pid1 (now $pid2)"
kill -0 "$pid1" 2>/dev/null && fail "old process $pid1 still alive"
grep -q "w: running (pid $pid2)" "$T/restart.out" || fail "restart output: $(cat "$T/restart.out")"

printf 'system.w.control\0{"action": "stop", "requested_by": "nngcat"}' >"$T/stop.bin"
nngcat --push0 --dial "ipc://$RUN/publish.ipc" --file "$T/stop.bin" || fail "nngcat"
wait_until worker_state_is w stopped || fail "stop over the control topic: $(worker_get w state)"
[ "$(alive_marked $MARK)" = 0 ] || fail "w's process survived the stop"
grep -q 'control: stop requested by nngcat' "$T/herdd.log" || fail "control not logged"

"$HERDCTL" req w anything 2>"$T/err"; [ $? = 1 ] || fail "request to a stopped worker"
grep -q "unavailable" "$T/err" || fail "expected unavailable: $(cat "$T/err")"

printf 'system.w.control\0{"action": "dance"}' >"$T/bad.bin"
nngcat --push0 --dial "ipc://$RUN/publish.ipc" --file "$T/bad.bin"
"$HERDCTL" pub system.w.control '"not an object"'
wait_until yields 2 status_get "$RUN" supervisor.control_refused || fail "unknown actions not counted"

"$HERDCTL" start w >/dev/null || fail "herdctl start"
worker_state_is w running || fail "w not running after start"
[ "$(alive_marked $MARK)" = 1 ] || fail "w's process not back"
"$HERDCTL" stop w >/dev/null || fail "herdctl stop"
"$HERDCTL" stop w >/dev/null || fail "stopping a stopped worker is harmless"
"$HERDCTL" start nosuch 2>/dev/null; [ $? = 1 ] || fail "start of an unknown worker"
[ "$(worker_get other pid)" = "$other_pid" ] || fail "other worker disturbed"

# memory_max on a process worker is its child's resident set.
wait_until worker_state_is hog failed || fail "hog: $(worker_get hog state)"
worker_get hog last_error | grep -q "memory_max" || fail "hog last_error: $(worker_get hog last_error)"
[ "$(worker_get hog restarts)" = 1 ] || fail "hog restarts: $(worker_get hog restarts)"
kill -0 "$HERDD_PID" || fail "herdd died"
pass "restart, stop over the bus, start, unavailable, control refusals, memory_max"
