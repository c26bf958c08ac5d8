# A child writing output as fast as it can for 5 seconds, with a remote
# subscriber on its output topic: herdd's resident memory stays under
# 64 MiB, and the running log stays under log_max_bytes (8M here).
. "$(dirname "$0")/lib.sh"

LOG_MAX=$((8 << 20))
cat >"$T/c.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [{"name": "jobs", "kind": "jobs", "allow_argv": true, "log_max_bytes": "8M",
              "kill_timeout_s": 1}]}
JSON
start_herdd "$T/c.json"
C="$HERDCTL --runtime-dir $RUN"


# A remote subscriber to the output: what nng queues for it is bounded
# (subscriber_buffer events of at most 16 KiB of output each).
"$HERDCTL" --runtime-dir "$RUN" sub 'job.jobs.*.output' >/dev/null 2>&1 &
track $!
wait_until remote_subscribers_at_least "$RUN" 1 || fail "subscriber did not connect"

id=$($C job submit jobs -- timeout 5 yes "flood line of about sixty bytes, written as fast as possible") ||
    fail "submit"
log="$STATE/jobs/logs/$id.log"
max_rss=0 max_log=0 samples=0
while :; do
    s=$($C --json job get jobs "$id" | json_get status)
    rss=$(status_get "$RUN" supervisor.rss_bytes)
    size=$(stat -c %s "$log" 2>/dev/null || echo 0)
    [ "$rss" -gt "$max_rss" ] && max_rss=$rss
    [ "$size" -gt "$max_log" ] && max_log=$size
    samples=$((samples + 1))
    case $s in completed|failed|cancelled) break ;; esac
    [ $samples -gt 400 ] && fail "the flood job did not end"
    sleep 0.05
done
meta=$($C --json job get jobs "$id")
bytes=$(echo "$meta" | json_get output_bytes)
echo "flood: $bytes bytes in 5 s, herdd RSS max $((max_rss >> 20)) MiB, log max $max_log bytes, $samples samples"
# `timeout` ends yes with SIGTERM: exit code 124.
[ "$(echo "$meta" | json_get exit_code)" = 124 ] || fail "flood job: $meta"
[ "$bytes" -gt $((4 * LOG_MAX)) ] || fail "the flood wrote only $bytes bytes (too slow to test)"
# Under ASan the resident set is mostly shadow memory and the free
# quarantine (256 MiB by default): the memory bound is checked on the
# normal build only.
if [ "${HERD_SANITIZE:-0}" = 1 ]; then
    echo "sanitizer build: RSS bound not checked"
else
    [ "$max_rss" -lt $((64 << 20)) ] || fail "herdd RSS reached $max_rss bytes"
fi
[ "$max_log" -le "$LOG_MAX" ] || fail "the log reached $max_log bytes"
[ "$(stat -c %s "$log")" -le "$LOG_MAX" ] || fail "the final log is $(stat -c %s "$log") bytes"
head -n 1 "$log" | grep -q "output trimmed" || fail "no trim notice in the final log"
pass "5 s of output as fast as possible: RSS and log bounded"

kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exit $rc after SIGTERM"
