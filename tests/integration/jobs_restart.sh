# kill -9 of herdd while 3 jobs run and 5 are queued: after a restart all
# 8 are there, the 3 that ran are queued again (a recovery notice in their
# log) and run again, jobs.json parses, and no child of the old herdd is
# left running (the jobs worker kills the recorded process groups).
. "$(dirname "$0")/lib.sh"

# Every child carries MARK in its argv (sh's $0, sleep's duration), so the
# test finds exactly the processes it caused, and kills them by pid.
MARK="$$$(date +%N | cut -c1-4)"
kill_marked() {
    local p
    for p in $(pgrep -f "[j]obs-it-$MARK|^sleep 86$MARK"); do kill -KILL "$p" 2>/dev/null; done
}
trap 'kill_marked; cleanup' EXIT

cat >"$T/c.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [{"name": "jobs", "kind": "jobs", "allow_argv": true, "lanes": {"default": 3},
              "kill_timeout_s": 1}]}
JSON
start_herdd "$T/c.json"
C="$HERDCTL --runtime-dir $RUN"

ids=""
for n in 1 2 3 4 5 6 7 8; do
    id=$($C job submit jobs -- sh -c "echo run $n; sleep 86$MARK; echo never" "jobs-it-$MARK-$n") ||
        fail "submit $n"
    ids="$ids $id"
done
count_status() { $C --json job list jobs --status "$1" | json_get jobs | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
wait_until yields 3 count_status running || fail "3 jobs did not start"
[ "$(count_status queued)" = 5 ] || fail "5 jobs are not queued"
wait_until sh -c "[ \$(pgrep -cf '^sleep 86$MARK') = 3 ]" || fail "3 children are not running"
old_pids=$(pgrep -f "[j]obs-it-$MARK|^sleep 86$MARK" | tr '\n' ' ')
running_before=$($C --json job list jobs --status running | python3 -c '
import json, sys
print(" ".join(j["job_id"] for j in json.load(sys.stdin)["jobs"]))')

kill -KILL "$HERDD_PID"
wait "$HERDD_PID" 2>/dev/null
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$STATE/jobs/jobs.json" ||
    fail "jobs.json does not parse after kill -9"
# The old children outlive herdd until it comes back.
for p in $old_pids; do kill -0 "$p" 2>/dev/null || fail "child $p died with herdd (unexpected)"; done

start_herdd "$T/c.json" "$T/herdd2.log"
# The old process groups are killed at start-up.
gone() { for p in $old_pids; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
wait_until gone || fail "children of the old herdd still run: $(ps -o pid,args -p "${old_pids// /,}" | tail -n +2)"
[ "$($C --json job list jobs | json_get jobs | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 8 ] ||
    fail "not all 8 jobs are there after the restart"
for id in $running_before; do
    grep -q "herdd restarted while this job ran; it was queued again" "$STATE/jobs/logs/$id.log" ||
        fail "no recovery notice in the log of $id: $(cat "$STATE/jobs/logs/$id.log")"
    # It ran again: its first line shows up a second time after the notice.
    wait_until sh -c "[ \$(grep -c '^run ' '$STATE/jobs/logs/$id.log') = 2 ]" ||
        fail "job $id did not run again: $(cat "$STATE/jobs/logs/$id.log")"
done
wait_until yields 3 count_status running || fail "3 jobs are not running again"
[ "$(count_status queued)" = 5 ] || fail "5 jobs are not queued after the restart"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d["jobs"]) == 8, d' \
    "$STATE/jobs/jobs.json" || fail "jobs.json after the restart"
pass "kill -9 while 3 run and 5 wait: all 8 back, no orphans"

# A clean stop kills the running children (they stay `running` on disk to
# be queued again next time) and exits 0.
new_pids=$(pgrep -f "^sleep 86$MARK" | tr '\n' ' ')
kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exit $rc after SIGTERM"
# (kill -0 also sees a child that is dead but not yet reaped: give it a moment.)
old_pids=$new_pids
wait_until gone || fail "children survived a clean stop: $new_pids"
pass "SIGTERM stops the running jobs' children"
