# Jobs through herdd and herdctl: output kept byte for byte (\n and \r),
# 10,000 lines trimmed to the last 2,000 behind the notice, `job output`
# (whole and --tail), `job follow` (live and after the end) exiting with the
# job's exit code, and --help at every level of `herdctl job`.
. "$(dirname "$0")/lib.sh"

cat >"$T/c.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [{"name": "jobs", "kind": "jobs", "allow_argv": true, "lanes": {"default": 2},
              "kill_timeout_s": 1,
              "types": {"compile": {"argv": ["echo", "compiling", "{configuration}"]}}}]}
JSON
start_herdd "$T/c.json"
C="$HERDCTL --runtime-dir $RUN"
LOGS="$STATE/jobs/logs"


# --help on every level.
$C job --help | grep -q "Usage: herdctl job SUBCOMMAND" || fail "job --help"
for s in submit list get output follow cancel clear; do
    $C job "$s" --help | grep -q "Usage: herdctl job $s" || fail "job $s --help"
done
$C job 2>/dev/null; [ $? = 2 ] || fail "job without subcommand: exit 2"
$C job frob jobs 2>/dev/null; [ $? = 2 ] || fail "unknown subcommand: exit 2"
$C job get jobs 2>/dev/null; [ $? = 2 ] || fail "get without id: exit 2"
$C job output jobs x --tail 0 2>/dev/null; [ $? = 2 ] || fail "--tail 0: exit 2"
$C --help | grep -q "job SUBCOMMAND" || fail "job missing from herdctl --help"

# 100 lines, every third ended by \r: the sidecar and `output` hold the
# child's bytes exactly.
script='i=0; while [ $i -lt 100 ]; do if [ $((i%3)) = 0 ]; then printf "line %d\r" $i; else printf "line %d\n" $i; fi; i=$((i+1)); done'
sh -c "$script" >"$T/want100"
id=$($C job submit jobs -- sh -c "$script") || fail "submit"
echo "$id" | grep -Eq '^[0-9a-f]{32}$' || fail "submit printed \"$id\", not a job id"
[ "$(job_end jobs "$id")" = completed ] || fail "100-line job did not complete"
cmp "$T/want100" "$LOGS/$id.log" || fail "sidecar differs from the child's bytes"
$C job output jobs "$id" >"$T/out100" || fail "job output"
cmp "$T/want100" "$T/out100" || fail "job output differs from the child's bytes"
[ "$($C --json job get jobs "$id" | json_get output_lines)" = 100 ] || fail "output_lines"
$C job output jobs "$id" --tail 3 >"$T/tail3"
printf 'line 97\nline 98\nline 99\r' | cmp - "$T/tail3" || fail "--tail 3: $(od -c "$T/tail3" | head)"
# Following a finished job prints it all and exits with its code.
$C job follow jobs "$id" >"$T/f100"; rc=$?
[ $rc = 0 ] || fail "follow of a completed job: exit $rc"
cmp "$T/want100" "$T/f100" || fail "follow output of a finished job differs"
pass "100 lines with \\n and \\r kept exactly"

# 10,000 lines: afterwards the sidecar is the trim notice plus the last 2,000.
id=$($C job submit jobs -- sh -c 'seq 1 10000 | sed "s/^/output line /"') || fail "submit 10k"
[ "$(job_end jobs "$id")" = completed ] || fail "10k job did not complete"
[ "$($C --json job get jobs "$id" | json_get output_lines)" = 10000 ] || fail "10k output_lines"
head -n 1 "$LOGS/$id.log" | grep -q "trim" || fail "no trim notice: $(head -n 1 "$LOGS/$id.log")"
[ "$(wc -l <"$LOGS/$id.log")" = 2001 ] || fail "10k log holds $(wc -l <"$LOGS/$id.log") lines"
seq 8001 10000 | sed "s/^/output line /" >"$T/want2000"
tail -n +2 "$LOGS/$id.log" | cmp - "$T/want2000" || fail "10k log is not the last 2,000 lines"
$C job output jobs "$id" | tail -n +2 | cmp - "$T/want2000" || fail "10k job output"
pass "10,000 lines trimmed to the last 2,000 behind the notice"

# follow of a running job: everything, in order, live; exit code 7.
id=$($C job submit jobs -- sh -c 'for i in $(seq 1 20); do echo "tick $i"; sleep 0.1; done; exit 7')
sleep 0.5 # some output exists before follow starts, some comes after
$C job follow jobs "$id" >"$T/follow"; rc=$?
[ $rc = 7 ] || fail "follow exit $rc, want 7"
seq 1 20 | sed 's/^/tick /' | cmp - "$T/follow" || fail "follow output: $(cat "$T/follow")"
# A job killed by a signal: 128 + the signal.
id=$($C job submit jobs -- sh -c 'kill -9 $$')
$C job follow jobs "$id" >/dev/null; rc=$?
[ $rc = 137 ] || fail "follow of a SIGKILLed job: exit $rc, want 137"
# A job that writes fast once follow is listening: all of it arrives live
# (the log itself is compacted to 2,000 lines at the end).
# The job ends only once follow has printed everything, so follow cannot
# miss the live part by starting late.
id=$($C job submit jobs -- sh -c "while [ ! -e '$T/go' ]; do sleep 0.05; done; seq 1 50000;
    while [ ! -e '$T/end' ]; do sleep 0.05; done; exit 3")
$C job follow jobs "$id" >"$T/fast" &
fpid=$!
track $fpid
wait_until remote_subscribers_at_least "$RUN" 1 || fail "follow did not subscribe"
touch "$T/go"
wait_until sh -c "[ \$(wc -l <'$T/fast') -ge 50000 ]" || fail "follow printed $(wc -l <"$T/fast") lines"
touch "$T/end"
wait $fpid; rc=$?
[ $rc = 3 ] || fail "fast follow exit $rc"
seq 1 50000 | cmp - "$T/fast" || fail "fast follow lost or repeated output ($(wc -l <"$T/fast") lines)"
pass "job follow streams live output and exits with the job's code"

# A configured type: the placeholder is one argv element.
id=$($C job submit jobs --type compile --configuration "dir/my device.yaml")
[ "$(job_end jobs "$id")" = completed ] || fail "typed job"
[ "$($C job output jobs "$id")" = "compiling dir/my device.yaml" ] || fail "typed output"
$C job list jobs | grep -q "$id  completed  compile" || fail "job list: $($C job list jobs)"
$C --json job list jobs --status completed | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert all(j["status"] == "completed" for j in r["jobs"]) and len(r["jobs"]) >= 3, r' ||
    fail "list --status completed"
pass "types, list"

kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exit $rc after SIGTERM"
