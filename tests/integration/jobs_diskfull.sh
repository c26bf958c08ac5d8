# A full disk under the jobs state dir (a 4 MiB tmpfs, filled to about
# 1 MiB free): a job writing 5 MB completes but says its log is incomplete
# and how much was lost; health names ENOSPC; a submit that cannot reach
# jobs.json is refused `unavailable` and leaves no job; once space is back
# everything works and survives a restart. Needs root (mount); skipped
# otherwise.
. "$(dirname "$0")/lib.sh"

SMALL="$T/small"
mkdir -p "$SMALL"
if [ "$(id -u)" != 0 ] || ! mount -t tmpfs -o size=4m,mode=0700 herd-test "$SMALL" 2>/dev/null; then
    echo "SKIP: needs root to mount a small tmpfs"
    exit 0
fi
unmount_small() { umount -l "$SMALL" 2>/dev/null; }
trap 'cleanup_all' EXIT
cleanup_all() {
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.3
    unmount_small
    cleanup
}

cat >"$T/c.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$SMALL/state", "http": {"listen": ""},
 "workers": [{"name": "jobs", "kind": "jobs", "allow_argv": true}]}
JSON
start_herdd "$T/c.json"
C="$HERDCTL --runtime-dir $RUN"
# Never fill anything but the test's own tmpfs.
mountpoint -q "$SMALL" || fail "$SMALL is not a mount point"
avail=$(df --output=avail -B1 "$SMALL" | tail -1)
[ "$avail" -le $((4 * 1048576)) ] || fail "$SMALL has $avail bytes free, not the 4 MiB tmpfs"

dd if=/dev/zero of="$SMALL/fill" bs=64k count=$(((avail - 1048576) / 65536)) 2>/dev/null


id=$($C job submit jobs -- sh -c 'yes 0123456789abcdef | head -c 5000005') || fail "submit"
[ "$(job_end jobs "$id")" = completed ] || fail "the job did not complete"
$C --json job get jobs "$id" >"$T/meta.json"
cat "$T/meta.json"
[ "$(json_get_file "$T/meta.json" exit_code)" = 0 ] || fail "exit code"
[ "$(json_get_file "$T/meta.json" output_bytes)" = 5000005 ] || fail "output_bytes"
lost=$(json_get_file "$T/meta.json" log_lost_bytes)
# About 1 MiB of the 5 MB can have reached the disk.
[ "$lost" -ge $((5000005 - 2 * 1048576)) ] && [ "$lost" -lt 5000005 ] || fail "log_lost_bytes $lost"
want="its log is incomplete: $lost of 5000005 output bytes could not be written (No space left on device)"
[ "$(json_get_file "$T/meta.json" error)" = "$want" ] ||
    fail "error: $(json_get_file "$T/meta.json" error), expected: $want"

worker_json() {
    $C --json status | python3 -c '
import json, sys
w = [w for w in json.load(sys.stdin)["workers"] if w["worker"] == "jobs"][0]
print(w["write_errors"], w["last_write_error"])'
}
health=$(worker_json)
echo "health: $health"
case $health in
[1-9]*"No space left on device"*) ;;
*) fail "ENOSPC not in health: $health" ;;
esac

# Take the rest of the space: jobs.json cannot be replaced any more.
dd if=/dev/zero of="$SMALL/fill2" bs=64k 2>/dev/null
before=$($C --json job list jobs | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')
$C job submit jobs -- echo never >"$T/out" 2>"$T/err"; rc=$?
[ $rc = 1 ] || fail "submit on a full disk exited $rc: $(cat "$T/out" "$T/err")"
grep -q "unavailable" "$T/err" && grep -q "the job could not be recorded" "$T/err" &&
    grep -q "No space left on device" "$T/err" || fail "submit on a full disk: $(cat "$T/err")"
[ ! -s "$T/out" ] || fail "a refused submit printed a job id: $(cat "$T/out")"
after=$($C --json job list jobs | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')
[ "$after" = "$before" ] || fail "the refused submit left a job ($before -> $after)"
pass "full disk: the job says its log is incomplete, a submit is refused unavailable"

# Space back: submits are recorded, jobs run, and all of it survives a restart.
rm -f "$SMALL/fill" "$SMALL/fill2"
id2=$($C job submit jobs -- echo back again) || fail "submit once space is back"
[ "$(job_end jobs "$id2")" = completed ] || fail "the later job"
[ "$($C job output jobs "$id2")" = "back again" ] || fail "the later job's output"
kill -TERM "$HERDD_PID"
for i in $(seq 1 100); do kill -0 "$HERDD_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$HERDD_PID" 2>/dev/null && fail "herdd did not stop"
start_herdd "$T/c.json"
$C --json job get jobs "$id" >"$T/meta2.json" || fail "the first job after a restart"
[ "$(json_get_file "$T/meta2.json" log_lost_bytes)" = "$lost" ] || fail "log_lost_bytes not kept"
[ "$(json_get_file "$T/meta2.json" error)" = "$want" ] || fail "error not kept"
n=$($C --json job list jobs | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["jobs"]))')
[ "$n" = 2 ] || fail "after the restart $n jobs, expected 2"
pass "space back: submits recorded, state kept across a restart"
