# SIGTERM stops workers in reverse start order, SIGKILLs a child that
# ignores SIGTERM after stop_timeout_s, exits 0 and leaves no child; after
# kill -9 of herdd no child survives either: PR_SET_PDEATHSIG sends them
# SIGTERM (a child that ignores SIGTERM is out of reach once herdd is dead,
# so the second part runs well-behaved children only).
. "$(dirname "$0")/lib.sh"

cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "first", "kind": "process", "argv": ["sleep", "$MARK"]},
  {"name": "second", "kind": "process", "argv": ["sleep", "$((MARK + 1))"]},
  {"name": "stubborn", "kind": "process", "stop_timeout_s": 1,
   "argv": ["sh", "-c", "trap '' TERM; exec sleep $((MARK + 2))"]}
 ]}
JSON
start_herdd "$T/herd.json"
for w in first second stubborn; do wait_until worker_state_is $w running || fail "$w"; done
wait_until yields 1 alive_marked $((MARK + 2)) || fail "stubborn's sleep not running"
kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exited $rc after SIGTERM"
for i in 0 1 2; do [ "$(alive_marked $((MARK + i)))" = 0 ] || fail "child $i survived SIGTERM"; done
order=$(grep -o '[a-z]*: running -> stopping: herdd stopping' "$T/herdd.log" | cut -d: -f1 | tr '\n' ' ')
[ "$order" = "stubborn second first " ] || fail "stop order: $order"
grep -q "stubborn: process .* still running 1 s after SIGTERM: SIGKILL" "$T/herdd.log" ||
    fail "stubborn was not SIGKILLed after stop_timeout_s"

cat >"$T/herd2.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "first", "kind": "process", "argv": ["sleep", "$MARK"]},
  {"name": "second", "kind": "process", "argv": ["sleep", "$((MARK + 1))"]}
 ]}
JSON
start_herdd "$T/herd2.json" "$T/herdd2.log"
for w in first second; do wait_until worker_state_is $w running || fail "$w (2)"; done
both_alive() { echo "$(alive_marked $MARK)$(alive_marked $((MARK + 1)))"; }
wait_until yields 11 both_alive || fail "children not running"
kill -9 "$HERDD_PID"; wait "$HERDD_PID" 2>/dev/null
wait_until yields 00 both_alive || fail "children survived kill -9 of herdd"
pass "SIGTERM in reverse order, SIGKILL after stop_timeout_s, no orphans after kill -9"
