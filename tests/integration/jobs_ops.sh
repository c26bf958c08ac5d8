# Job ops through herdd and herdctl: depends_on chains, cancel of queued
# and running jobs, queue_full, refused parameters (../x, control bytes,
# NUL), raw argv refused without allow_argv, clear.
. "$(dirname "$0")/lib.sh"

MARK="$$$(date +%N | cut -c1-4)"
kill_marked() {
    local p
    for p in $(pgrep -f "^sleep 87$MARK"); do kill -KILL "$p" 2>/dev/null; done
}
trap 'kill_marked; cleanup' EXIT

cat >"$T/c.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "jobs", "kind": "jobs", "allow_argv": true, "lanes": {"default": 1, "side": 1},
   "max_queued": 3, "kill_timeout_s": 1, "queue_max": 64, "stop_timeout_s": 5,
   "types": {"ok": {"argv": ["sh", "-c", "echo ok $0", "{configuration}"], "lane": "side"},
             "bad": {"argv": ["sh", "-c", "exit 4"], "lane": "side"}}},
  {"name": "strict", "kind": "jobs",
   "types": {"echo": {"argv": ["echo", "{configuration}", "{port}"]}}}]}
JSON
# Config errors of the kind name their path; the common keys are the
# supervisor's (queue_max, stop_timeout_s above are accepted).
while IFS='|' read -r worker want; do
    printf '{"bus": {"dir": "%s"}, "workers": [%s]}' "$RUN" "$worker" >"$T/bad.json"
    "$HERDD" --check -c "$T/bad.json" >"$T/out" 2>&1; rc=$?
    [ $rc = 1 ] || fail "--check exit $rc for $worker"
    grep -qF -- "$want" "$T/out" || fail "for $worker expected \"$want\", got: $(cat "$T/out")"
done <<'CASES'
{"name": "j", "kind": "jobs", "lanse": {}}|workers[0].lanse: unknown key
{"name": "j", "kind": "jobs", "lanes": {"a": 0}}|workers[0].lanes
{"name": "j", "kind": "jobs", "types": {"t": {"argv": "echo"}}}|workers[0].types.t.argv
{"name": "j", "kind": "jobs", "types": {"t": {"argv": ["x{port}"]}}}|workers[0].types.t.argv
{"name": "j", "kind": "jobs", "log_max_bytes": "lots"}|workers[0].log_max_bytes
CASES
"$HERDD" --check -c "$T/c.json" >/dev/null || fail "--check of the test's config"

start_herdd "$T/c.json"
C="$HERDCTL --runtime-dir $RUN"

status() { $C --json job get "${2:-jobs}" "$1" | json_get status; }
wait_status() {
    local i
    for i in $(seq 1 200); do
        [ "$(status "$1" "${3:-jobs}")" = "$2" ] && return 0
        sleep 0.1
    done
    fail "job $1 is $(status "$1" "${3:-jobs}"), expected $2"
}
# expect_error CODE TEXT CMD...: the command exits 1 with CODE and TEXT on stderr.
expect_error() {
    local code=$1 text=$2 rc
    shift 2
    "$@" >/dev/null 2>"$T/err"; rc=$?
    [ $rc = 1 ] || fail "$* exited $rc, expected 1 ($(cat "$T/err"))"
    grep -q "$code" "$T/err" && grep -qF -- "$text" "$T/err" ||
        fail "$*: expected $code \"$text\", got: $(cat "$T/err")"
}

# depends_on: a chain runs in order; a failed link cancels what follows.
a=$($C job submit jobs --type ok --configuration a) || fail "submit a"
b=$($C job submit jobs --type ok --configuration b --depends-on "$a")
c=$($C job submit jobs --type ok --configuration c --depends-on "$b")
wait_status "$c" completed
for id in $a $b; do [ "$(status "$id")" = completed ] || fail "chain link $id"; done
ta=$($C --json job get jobs "$a" | json_get completed_at)
tb=$($C --json job get jobs "$b" | json_get started_at)
[ "$ta" \< "$tb" ] || [ "$ta" = "$tb" ] || fail "b started ($tb) before a completed ($ta)"
x=$($C job submit jobs --type bad)
y=$($C job submit jobs --type ok --configuration y --depends-on "$x")
z=$($C job submit jobs --type ok --configuration z --depends-on "$y")
wait_status "$z" cancelled
[ "$(status "$x")" = failed ] || fail "x should have failed"
[ "$($C --json job get jobs "$x" | json_get exit_code)" = 4 ] || fail "x exit code"
for id in $y $z; do
    [ "$(status "$id")" = cancelled ] || fail "dependent $id not cancelled"
    $C --json job get jobs "$id" | json_get error |
        grep -q "prerequisite job did not complete successfully" || fail "dependent $id error"
done
pass "depends_on chains"

# cancel: a running job (SIGTERM to its group) and one queued behind it.
r=$($C job submit jobs -- sleep "87$MARK")
wait_status "$r" running
q=$($C job submit jobs -- sh -c 'echo should not run')
[ "$(status "$q")" = queued ] || fail "q should wait for the lane"
out=$($C job cancel jobs "$q") || fail "cancel queued"
[ "$out" = "$q cancelled" ] || fail "cancel printed \"$out\""
out=$($C job cancel jobs "$r") || fail "cancel running"
[ "$out" = "$r cancelled" ] || fail "cancel running printed \"$out\""
[ "$($C --json job get jobs "$r" | json_get signal)" = 15 ] || fail "running job not ended by SIGTERM"
[ "$($C --json job get jobs "$q" | json_get started_at)" = None ] || fail "queued job ran"
pgrep -f "^sleep 87$MARK" >/dev/null && fail "the cancelled job's child still runs"
# Cancelling a finished job answers its state; an unknown id is not_found.
$C job cancel jobs "$a" | grep -q "$a completed" || fail "cancel of a finished job"
expect_error not_found "no job" $C job cancel jobs 0123456789abcdef0123456789abcdef
pass "cancel of queued and running jobs"

# queue_full: max_queued 3 behind a busy lane.
r=$($C job submit jobs -- sleep "87$MARK")
wait_status "$r" running
waiting=""
for n in 1 2 3; do waiting="$waiting $($C job submit jobs -- true)" || fail "queue slot $n"; done
expect_error queue_full "max_queued" $C job submit jobs -- true
$C job cancel jobs "$r" >/dev/null
for id in $waiting; do wait_status "$id" completed; done
pass "queue_full"

# Parameters: checked, each one argv element; raw argv needs allow_argv.
expect_error bad_request 'configuration: must be a relative path without ".."' \
    $C job submit jobs --type ok --configuration ../x
expect_error bad_request 'configuration: must be a relative path without ".."' \
    $C job submit jobs --type ok --configuration a/../../x
expect_error bad_request "configuration: must not contain control characters" \
    $C job submit jobs --type ok --configuration "$(printf 'a\001b')"
expect_error bad_request "configuration: must not contain control characters" \
    $C job submit jobs --type ok --configuration "$(printf 'a\nb')"
# herdctl cannot carry a NUL; nngcat sends the request as it is. The bus
# already refuses the request (jansson without JSON_ALLOW_NUL); the worker's
# own check is covered by test_jobs_run.
n_before=$($C --json job list jobs | json_get jobs | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
# nngcat 1.5.2 sometimes quits before the reply ("Cannot set recv timeout"):
# retried.
for i in 1 2 3 4 5; do
    nngcat --req0 --dial "ipc://$RUN/request.ipc" --raw --count 1 \
        --data '{"service": "jobs", "op": "submit", "args": {"type": "ok", "configuration": "a\u0000b"}}' \
        >"$T/nul" 2>&1
    grep -q '"ok"' "$T/nul" && break
    sleep 0.2
done
grep -q '"code": *"bad_request"' "$T/nul" || fail "NUL in a configuration: $(cat "$T/nul")"
[ "$($C --json job list jobs | json_get jobs | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = "$n_before" ] ||
    fail "a job was created with a NUL in its configuration"
expect_error bad_request "configuration: must be a relative path, not an absolute one" \
    $C job submit jobs --type ok --configuration /etc/passwd
expect_error bad_request 'type: unknown job type "nope"' $C job submit jobs --type nope
expect_error bad_request "argv: not allowed by this worker (allow_argv is false)" \
    $C job submit strict -- sh -c 'echo pwned'
expect_error bad_request "port: required" $C job submit strict --type echo --configuration a
expect_error bad_request "depends_on: expected a job id" \
    $C job submit jobs --type ok --configuration a --depends-on nothex
id=$($C job submit strict --type echo --configuration 'x; rm -rf /' --port '$(id)')
wait_status "$id" completed strict
[ "$($C job output strict "$id")" = 'x; rm -rf / $(id)' ] || fail "parameters were interpreted"
expect_error unknown_service "" $C job list nosuchworker
expect_error bad_request "status:" $C job list jobs --status bogus
pass "parameters checked, raw argv only with allow_argv"

# clear removes finished jobs and their logs.
n_logs=$(ls "$STATE/jobs/logs" | wc -l)
[ "$n_logs" -gt 0 ] || fail "no logs before clear"
$C job clear jobs | grep -q "removed" || fail "clear"
[ "$($C --json job list jobs | json_get jobs)" = "[]" ] || fail "jobs left after clear"
[ -z "$(ls "$STATE/jobs/logs")" ] || fail "logs left after clear: $(ls "$STATE/jobs/logs")"
pass "clear"

kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exit $rc after SIGTERM"
