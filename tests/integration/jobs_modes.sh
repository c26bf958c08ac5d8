# File modes of herdd's state: jobs.json is written 0600, job logs 0640,
# the state directories (state_dir, a worker's directory, a jobs worker's
# own state_dir and its logs) 0750, even under umask 000. Wider existing
# directories and logs are narrowed at start and the log says so; a stale
# jobs.json.tmp cannot widen jobs.json. A state directory that is a symlink
# or (as root) owned by another user is refused: the worker does not start,
# herdd leaves the directory as it is; a top-level state_dir like that
# stops herdd (exit 1).
. "$(dirname "$0")/lib.sh"

OTHER="$T/elsewhere/j"
cat >"$T/c.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "jobs", "kind": "jobs", "kill_timeout_s": 1,
   "types": {"hello": {"argv": ["echo", "hello", "{configuration}"]}}},
  {"name": "other", "kind": "jobs", "allow_argv": true, "kill_timeout_s": 1, "state_dir": "$OTHER"},
  {"name": "fresh", "kind": "jobs", "allow_argv": true, "kill_timeout_s": 1}]}
JSON
C="$HERDCTL --runtime-dir $RUN"
mode() { stat -c %a "$1"; }
expect_mode() {
    [ "$(mode "$1")" = "$2" ] || fail "$1: mode $(mode "$1"), want $2"
}
# logged LEVEL SOURCE TEXT: herdd's log has the line (after the timestamp).
logged() {
    grep -qF -- " $1 $2: $3" "$T/herdd.log" || fail "herdd's log lacks \"$1 $2: $3\""
}
stop_herdd() {
    kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; local rc=$?
    [ $rc = 0 ] || fail "herdd exit $rc after SIGTERM"
}

# 1. Wide existing directories are narrowed to 0750 and logged; new ones
# are made 0750; files are 0600 and 0640 whatever the umask.
mkdir -p "$STATE/jobs/logs" "$OTHER/logs"
chmod 0777 "$STATE" "$STATE/jobs" "$OTHER"
chmod 0755 "$STATE/jobs/logs"
chmod 0775 "$OTHER/logs"
old_umask=$(umask)
umask 000
start_herdd "$T/c.json"
umask "$old_umask"
for w in jobs other fresh; do
    wait_until worker_state_is "$w" running || fail "worker $w is $(worker_get "$w" state)"
done
for d in "$STATE" "$STATE/jobs" "$STATE/jobs/logs" "$OTHER" "$OTHER/logs" "$STATE/fresh" \
    "$STATE/fresh/logs" "$STATE/other"; do
    expect_mode "$d" 750
done
logged warn supervisor "state_dir $STATE was open to other users; now mode 0750"
logged warn jobs "$STATE/jobs was open to other users; now mode 0750"
logged warn jobs "$STATE/jobs/logs: was open to other users; now mode 0750"
logged warn other "$OTHER: was open to other users; now mode 0750"
logged warn other "$OTHER/logs: was open to other users; now mode 0750"
grep -F "fresh" "$T/herdd.log" | grep -q "open to other users" &&
    fail "a directory herdd created was reported as narrowed"

a=$($C job submit jobs --type hello --configuration a) || fail "submit jobs"
b=$($C job submit other -- echo b) || fail "submit other"
c=$($C job submit fresh -- echo c) || fail "submit fresh"
[ "$(job_end jobs "$a")" = completed ] || fail "job on jobs"
[ "$(job_end other "$b")" = completed ] || fail "job on other"
[ "$(job_end fresh "$c")" = completed ] || fail "job on fresh"
[ "$($C job output jobs "$a")" = "hello a" ] || fail "output of $a"
for f in "$STATE/jobs/jobs.json" "$OTHER/jobs.json" "$STATE/fresh/jobs.json"; do
    wait_until test -f "$f" || fail "$f not written"
    expect_mode "$f" 600
done
expect_mode "$STATE/jobs/logs/$a.log" 640
expect_mode "$OTHER/logs/$b.log" 640
expect_mode "$STATE/fresh/logs/$c.log" 640
stop_herdd
pass "state dirs 0750 (wide ones narrowed and logged), jobs.json 0600, logs 0640 under umask 000"

# 2. Restart over an older herd's wider files: logs and jobs.json
# narrowed at start and logged; a stale 0666 jobs.json.tmp cannot carry its mode into jobs.json.
chmod 0644 "$STATE/jobs/logs/$a.log" "$STATE/jobs/jobs.json"
chmod 0777 "$STATE/jobs/logs"
(umask 000; echo '{}' >"$STATE/jobs/jobs.json.tmp"; chmod 0666 "$STATE/jobs/jobs.json.tmp")
: >"$T/herdd.log"
start_herdd "$T/c.json"
wait_until worker_state_is jobs running || fail "jobs did not restart"
expect_mode "$STATE/jobs/logs/$a.log" 640
expect_mode "$STATE/jobs/logs" 750
expect_mode "$STATE/jobs/jobs.json" 600
logged warn jobs "$STATE/jobs/jobs.json: was mode 0644; now 0600"
logged warn jobs "$STATE/jobs/logs: 1 logs were readable by other users; now mode 0640"
logged warn jobs "$STATE/jobs/logs: was open to other users; now mode 0750"
[ -e "$STATE/jobs/jobs.json.tmp" ] && fail "stale jobs.json.tmp left at start"
# Every jobs.json the writes leave is 0600 (a reused 0666 tmp would show
# for at least the 100 ms between two writes): watched while a job runs.
(
    while [ ! -e "$T/stop-watch" ]; do
        stat -c %a "$STATE/jobs/jobs.json" 2>/dev/null
        sleep 0.01
    done
) >"$T/json-modes" &
watcher=$!
track $watcher
sleep 0.1
d=$($C job submit jobs --type hello --configuration d) || fail "submit after restart"
[ "$(job_end jobs "$d")" = completed ] || fail "job after restart"
wait_until yields 600 mode "$STATE/jobs/jobs.json" || fail "jobs.json mode $(mode "$STATE/jobs/jobs.json") after a write"
sleep 0.2 # the last write is seen by the watcher
touch "$T/stop-watch"
wait $watcher
[ "$(sort -u "$T/json-modes")" = 600 ] ||
    fail "jobs.json had modes $(sort -u "$T/json-modes" | tr '\n' ' ')while jobs ran"
expect_mode "$STATE/jobs/logs/$d.log" 640
stop_herdd
pass "an older herd's wide logs narrowed at start and logged; jobs.json written 0600 over a stale tmp"

# 3. A state directory that is a symlink is refused; the worker does not
# run and herdd goes on with the others.
mv "$OTHER" "$T/elsewhere/real"
ln -s "$T/elsewhere/real" "$OTHER"
: >"$T/herdd.log"
start_herdd "$T/c.json"
wait_until worker_state_is jobs running || fail "jobs did not start"
logged error other "$OTHER: is a symbolic link; refusing it (name the real directory)"
worker_get other last_error | grep -qF "cannot start the job runner in $OTHER" ||
    fail "other's last_error: $(worker_get other last_error)"
worker_state_is other running && fail "a worker with a symlinked state_dir runs"
$C job list other >/dev/null 2>"$T/err"; rc=$?
[ $rc = 1 ] && grep -q unavailable "$T/err" || fail "job list on the refused worker: exit $rc, $(cat "$T/err")"
stop_herdd
rm "$OTHER"; mv "$T/elsewhere/real" "$OTHER"
pass "a symlinked jobs state_dir is refused"

# 4. Another user's directories (root only): refused, left as they are.
if [ "$(id -u)" = 0 ] && id -u nobody >/dev/null 2>&1; then
    nob=$(id -u nobody)
    chown nobody "$STATE/jobs"; chmod 0777 "$STATE/jobs"
    chown nobody "$OTHER/logs"
    sum=$(md5sum <"$STATE/jobs/jobs.json")
    : >"$T/herdd.log"
    start_herdd "$T/c.json"
    wait_until worker_state_is fresh running || fail "fresh did not start"
    wait_until grep -qF "error other: $OTHER/logs: owned by uid $nob, not by this user (uid 0); refusing it" \
        "$T/herdd.log" || fail "no refusal of $OTHER/logs in the log"
    want="jobs: state directory $STATE/jobs: owned by uid $nob, not by this user (uid 0); refusing it"
    worker_get jobs last_error | grep -qF "$want" || fail "jobs' last_error: $(worker_get jobs last_error)"
    grep -qF "start failed: $want" "$T/herdd.log" || fail "no refusal of $STATE/jobs in the log"
    for w in jobs other; do
        worker_state_is "$w" running && fail "worker $w runs on another user's directory"
    done
    $C job submit jobs --type hello --configuration x >/dev/null 2>"$T/err" &&
        fail "a job was accepted by the refused worker"
    grep -q unavailable "$T/err" || fail "submit to the refused worker: $(cat "$T/err")"
    expect_mode "$STATE/jobs" 777 # not narrowed: it is not ours
    [ "$(stat -c %u "$STATE/jobs")" = "$nob" ] || fail "owner of $STATE/jobs changed"
    [ "$(md5sum <"$STATE/jobs/jobs.json")" = "$sum" ] || fail "jobs.json changed in another user's dir"
    stop_herdd
    chown root "$STATE/jobs" "$OTHER/logs"; chmod 0750 "$STATE/jobs"

    # A top-level state_dir of another user, or a symlink: herdd exits 1.
    mkdir -m 0750 "$T/theirs"; chown nobody "$T/theirs"
    ln -s "$STATE" "$T/statelink"
    for sd in theirs statelink; do
        printf '{"bus": {"dir": "%s"}, "state_dir": "%s", "http": {"listen": ""}}' \
            "$T/run-$sd" "$T/$sd" >"$T/sd.json"
        timeout -s KILL 15 "$HERDD" -c "$T/sd.json" >"$T/sd.out" 2>&1; rc=$?
        [ $rc = 1 ] || fail "herdd with state_dir $T/$sd: exit $rc ($(cat "$T/sd.out"))"
        case $sd in
        theirs) want="herdd: state_dir $T/theirs: owned by uid $nob, not by this user (uid 0); refusing it" ;;
        statelink) want="herdd: state_dir $T/statelink: is a symbolic link; refusing it (name the real directory)" ;;
        esac
        [ "$(cat "$T/sd.out")" = "$want" ] || fail "state_dir $sd: expected \"$want\", got: $(cat "$T/sd.out")"
        [ -e "$T/run-$sd" ] && fail "herdd opened its bus despite a refused state_dir"
    done
    pass "another user's state directories refused and left untouched"
else
    echo "SKIP: state directories owned by another user (needs root and a nobody user)"
fi
