# Log writes that fail: herdd runs under `ulimit -f` with SIGXFSZ ignored,
# so writing a sidecar past the limit fails with EFBIG. The job still
# completes, the error shows in the worker's health, and herdd lives on.
. "$(dirname "$0")/lib.sh"

cat >"$T/c.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [{"name": "jobs", "kind": "jobs", "allow_argv": true}]}
JSON
# 256 KiB per file (bash counts ulimit -f in 1024-byte blocks). The
# subshell execs herdd, so $! is herdd itself.
( trap '' XFSZ; ulimit -f 256; exec "$HERDD" -c "$T/c.json" >"$T/herdd.log" 2>&1 ) &
HERDD_PID=$!
track "$HERDD_PID"
wait_for_herdd "$RUN" || fail "herdd did not answer"
C="$HERDCTL --runtime-dir $RUN"

id=$($C job submit jobs -- sh -c 'seq 1 200000; echo done') || fail "submit"
for i in $(seq 1 200); do
    s=$($C --json job get jobs "$id" | json_get status)
    case $s in completed|failed|cancelled) break ;; esac
    sleep 0.1
done
[ "$s" = completed ] || fail "the job ended $s"
meta=$($C --json job get jobs "$id")
[ "$(echo "$meta" | json_get exit_code)" = 0 ] || fail "exit code: $meta"
# The counters stay exact although the sidecar lost bytes.
[ "$(echo "$meta" | json_get output_lines)" = 200001 ] || fail "output_lines: $meta"
[ "$(stat -c %s "$STATE/jobs/logs/$id.log")" -le $((256 * 1024)) ] || fail "log over the limit?"
health=$($C --json status | python3 -c '
import json, sys
w = [w for w in json.load(sys.stdin)["workers"] if w["worker"] == "jobs"][0]
print(w["state"], w["write_errors"], w["last_write_error"])')
echo "health: $health"
case $health in
running\ [1-9]*) ;;
*) fail "write error not in health: $health" ;;
esac
echo "$health" | grep -q "File too large" || fail "EFBIG not named in health: $health"
grep -q "File too large" "$T/herdd.log" || fail "write error not logged"

# herdd lives and still runs jobs (small ones fit).
kill -0 "$HERDD_PID" || fail "herdd died"
id=$($C job submit jobs -- echo still working) || fail "submit after the error"
for i in $(seq 1 100); do
    [ "$($C --json job get jobs "$id" | json_get status)" = completed ] && break
    sleep 0.1
done
[ "$($C job output jobs "$id")" = "still working" ] || fail "a later job's output"
pass "log write failures: job completes, error in health, herdd lives"

kill -TERM "$HERDD_PID"
for i in $(seq 1 50); do kill -0 "$HERDD_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$HERDD_PID" 2>/dev/null; then fail "herdd did not stop on SIGTERM"; fi
