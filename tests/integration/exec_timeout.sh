# The exec kind (issue 11): a child that hangs is killed at timeout_s
# (SIGTERM, then SIGKILL after the grace when it ignores SIGTERM), counted
# in timeouts and failed, and nothing of it is left; a child that never
# reads a large event on stdin blocks nothing; what a child leaves running
# goes with it; a stop ends running children within the grace. Then kill -9
# of herdd while children run: a child dies with herdd (PR_SET_PDEATHSIG
# through the trampoline), and what a child started, which only its group
# could reach, is killed by the next herdd's start of the worker.
. "$(dirname "$0")/lib.sh"

# Every marked sleep this test may leave behind, killed by pid.
kill_marked() {
    local n p
    for n in 0 1 2 3 4 5 6; do
        for p in $(pgrep -fx "sleep $((MARK + n))"); do kill -KILL "$p" 2>/dev/null; done
    done
}
trap 'kill_marked; cleanup' EXIT

cat >"$T/deaf.sh" <<SH
trap '' TERM
sleep $((MARK + 1))
echo never
SH
cat >"$T/bg.sh" <<SH
sleep $((MARK + 4)) &
echo left a sleep behind
SH
cat >"$T/tree.sh" <<SH
sleep $((MARK + 3))
echo never
SH
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "hang", "kind": "exec", "subscribe": ["hang"], "max_concurrent": 2, "timeout_s": 3,
   "stop_timeout_s": 1, "argv": ["sleep", "$MARK"]},
  {"name": "deaf", "kind": "exec", "subscribe": ["deaf"], "timeout_s": 1, "stop_timeout_s": 1,
   "argv": ["/bin/sh", "$T/deaf.sh"]},
  {"name": "noread", "kind": "exec", "subscribe": ["noread"], "timeout_s": 4, "stop_timeout_s": 1,
   "argv": ["sleep", "$((MARK + 5))"]},
  {"name": "bg", "kind": "exec", "subscribe": ["bg"], "stop_timeout_s": 1,
   "argv": ["/bin/sh", "$T/bg.sh"]},
  {"name": "stopme", "kind": "exec", "subscribe": ["stopme"], "timeout_s": 0, "stop_timeout_s": 1,
   "argv": ["sleep", "$((MARK + 6))"]}
 ]}
JSON
start_herdd "$T/herd.json"
C="$HERDCTL --runtime-dir $RUN"

# health NAME: the worker's health as one JSON line (herdctl retried: a
# loaded machine may make one status call time out).
health() { worker_health "$1"; }
field() { health "$1" | json_get "$2"; }
jf() { printf '%s' "$1" | json_get "$2"; }
# settled NAME N: received N, nothing queued or running.
settled() {
    health "$1" | python3 -c '
import json, sys
h = json.load(sys.stdin)
sys.exit(0 if h["received"] == int(sys.argv[1]) and h["queue_depth"] == 0 and h["running"] == 0
              else 1)' "$2"
}

start=$(date +%s%N)
$C pub hang '{"n": 1}' && $C pub hang '{"n": 2}' || fail "publish"
$C pub deaf '{}' && $C pub bg '{}' && $C pub stopme '{}' || fail "publish"
# 600 KB on the stdin of a child that never reads it (and hangs).
python3 -c 'import json; print(json.dumps({"big": "x" * 600000}))' | $C pub noread || fail "publish big"
wait_until at_least 2 field hang running || fail "hang: $(health hang)"
# (a child is the trampoline for a moment before it is the sleep)
wait_until yields 2 alive_marked $MARK || fail "hang: $(alive_marked $MARK) children, expected 2"
wait_until yields 1 alive_marked $((MARK + 5)) || fail "noread did not start"
# The loop is not blocked by the pending write: status answers at once.
t0=$(date +%s%N)
$C --timeout 2 status >/dev/null || fail "status while a child does not read its stdin"
ms=$((($(date +%s%N) - t0) / 1000000))
[ $ms -lt 1500 ] || fail "status took $ms ms while a child did not read"

wait_until settled hang 2 || fail "hang did not settle: $(health hang)"
ms=$((($(date +%s%N) - start) / 1000000))
[ $ms -ge 2900 ] && [ $ms -lt 12000 ] || fail "hang: killed after $ms ms (timeout_s 3)"
h=$(health hang)
[ "$(jf "$h" timeouts)" = 2 ] && [ "$(jf "$h" failed)" = 2 ] && [ "$(jf "$h" done)" = 0 ] &&
    [ "$(jf "$h" exit_codes)" = '{"SIGTERM": 2}' ] || fail "hang: $h"
jf "$h" last_error | grep -q "killed after timeout_s 3 s" || fail "hang: $h"
grep -q "hang: [0-9]* (sleep, event on hang) still running after timeout_s 3 s: SIGTERM" "$T/herdd.log" ||
    fail "hang: the timeout was not logged"
[ "$(alive_marked $MARK)" = 0 ] || fail "hang: a child outlived its timeout"

# deaf ignores SIGTERM: SIGKILL 1 s (stop_timeout_s) later.
wait_until settled deaf 1 || fail "deaf did not settle: $(health deaf)"
h=$(health deaf)
[ "$(jf "$h" exit_codes)" = '{"SIGKILL": 1}' ] && [ "$(jf "$h" timeouts)" = 1 ] &&
    [ "$(jf "$h" failed)" = 1 ] || fail "deaf: $h"
grep -q "deaf: [0-9]* (/bin/sh) or what it started still running 1 s after SIGTERM: SIGKILL" "$T/herdd.log" ||
    fail "deaf: no SIGKILL logged"
[ "$(alive_marked $((MARK + 1)))" = 0 ] || fail "deaf: its sleep outlived the SIGKILL"
! grep -q "deaf: .*stdout: never" "$T/herdd.log" || fail "deaf: ran on after SIGTERM"

# noread: the write never finished; the timeout ended it all.
wait_until settled noread 1 || fail "noread did not settle: $(health noread)"
h=$(health noread)
[ "$(jf "$h" timeouts)" = 1 ] && [ "$(jf "$h" exit_codes)" = '{"SIGTERM": 1}' ] || fail "noread: $h"
[ "$(alive_marked $((MARK + 5)))" = 0 ] || fail "noread: child left"

# bg: the leader exits 0 leaving a sleep that holds its output: it goes.
wait_until settled bg 1 || fail "bg did not settle: $(health bg)"
h=$(health bg)
[ "$(jf "$h" exit_codes)" = '{"0": 1}' ] && [ "$(jf "$h" done)" = 1 ] || fail "bg: $h"
[ "$(alive_marked $((MARK + 4)))" = 0 ] || fail "bg: the sleep it left outlived it"

# stopme (no timeout) still runs; a stop ends it within the grace (1 s).
[ "$(field stopme running)" = 1 ] || fail "stopme: $(health stopme)"
wait_until yields 1 alive_marked $((MARK + 6)) || fail "stopme: its child is not running"
t0=$(date +%s%N)
$C stop stopme >/dev/null || fail "stop stopme"
wait_until worker_state_is stopme stopped || fail "stopme is $(worker_get stopme state)"
ms=$((($(date +%s%N) - t0) / 1000000))
[ $ms -lt 5000 ] || fail "stopme took $ms ms to stop (stop_timeout_s 1)"
[ "$(alive_marked $((MARK + 6)))" = 0 ] || fail "stopme: the child outlived the stop"
! grep -q "abandoned" "$T/herdd.log" || fail "a stop was abandoned"

kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exited $rc"

# ---- kill -9 of herdd while children run -----------------------------------
cat >"$T/herd2.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "long", "kind": "exec", "subscribe": ["long"], "timeout_s": 0,
   "argv": ["sleep", "$((MARK + 2))"]},
  {"name": "tree", "kind": "exec", "subscribe": ["tree"], "timeout_s": 0,
   "argv": ["/bin/sh", "$T/tree.sh"]}
 ]}
JSON
start_herdd "$T/herd2.json" "$T/herdd2.log"
$C pub long '{}' && $C pub tree '{}' || fail "publish"
wait_until yields 1 alive_marked $((MARK + 2)) || fail "long did not start"
wait_until yields 1 alive_marked $((MARK + 3)) || fail "tree did not start"
kill -KILL "$HERDD_PID"; wait "$HERDD_PID" 2>/dev/null
wait_until yields 0 alive_marked $((MARK + 2)) || fail "the child of long outlived kill -9 of herdd"
wait_until test -z "$(pgrep -f "$T/tree.sh")" || fail "the child of tree outlived kill -9 of herdd"
# The grandchild (tree.sh's sleep) only had the child's group to reach it.
left=$(alive_marked $((MARK + 3)))
start_herdd "$T/herd2.json" "$T/herdd3.log"
wait_until yields 0 alive_marked $((MARK + 3)) || fail "tree's grandchild outlived the next herdd's start"
if [ "$left" = 1 ]; then
    grep -q "tree: killed 1 process group left running by a previous herdd" "$T/herdd3.log" ||
        fail "the sweep was not logged"
    [ "$(field tree leftovers_killed)" = 1 ] || fail "tree: $(health tree)"
fi
[ "$(field long leftovers_killed)" = 0 ] || fail "long: $(health long)"
# This herdd's own child is left alone (its marker names this herdd).
$C pub tree '{}'
wait_until yields 1 alive_marked $((MARK + 3)) || fail "tree did not start again"
kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exited $rc"
[ "$(alive_marked $((MARK + 3)))" = 0 ] || fail "tree's child outlived herdd's stop"
pass "timeouts: SIGTERM at timeout_s, SIGKILL after the grace, counted, nothing left; a child not reading 600 KB blocks nothing; leftovers of an exited child go; stop within the grace; kill -9 of herdd: the child died with it, the grandchild (left: $left) by the next start"
