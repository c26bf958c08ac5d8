# Job parameters that start with '-' are refused by the worker (each would
# be an argv element of its own, read as an option): bad_request with the
# parameter's name, from herdctl job submit and from a raw request, and no
# job is created. NUL bytes in a job's output come out exactly, through
# `job output` (whole and --tail) and `job follow` (after the end and live).
. "$(dirname "$0")/lib.sh"

cat >"$T/c.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [{"name": "jobs", "kind": "jobs", "allow_argv": true, "kill_timeout_s": 1,
   "lanes": {"default": 2},
   "types": {"args": {"argv": ["echo", "{configuration}", "{port}", "{new_name}"]},
             "nul": {"argv": ["sh", "-c", "printf 'a\\\\000b\\\\n'"]},
             "nul2": {"argv": ["sh", "-c", "printf 'x\\\\000y\\\\nz\\\\000w\\\\n'"]}}}]}
JSON
"$HERDD" --check -c "$T/c.json" >/dev/null || fail "--check of the test's config"
start_herdd "$T/c.json"
C="$HERDCTL --runtime-dir $RUN"

n_jobs() { $C --json job list jobs | json_get jobs | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
# expect_refused PARAM CMD...: exit 1 and exactly herdctl's rendering of
# the worker's bad_request for PARAM; nothing on stdout.
expect_refused() {
    local param=$1 rc
    shift
    "$@" >"$T/out" 2>"$T/err"; rc=$?
    [ $rc = 1 ] || fail "$*: exit $rc, want 1 ($(cat "$T/err"))"
    [ -s "$T/out" ] && fail "$*: printed \"$(cat "$T/out")\""
    [ "$(cat "$T/err")" = "herdctl: bad_request: $param: must not start with '-' (the command would read it as an option)" ] ||
        fail "$*: got: $(cat "$T/err")"
}

# 1. Parameters starting with '-'.
n0=$(n_jobs)
[ "$n0" = 0 ] || fail "jobs before the test: $n0"
expect_refused configuration $C job submit jobs --type args --configuration -rf --port 1 --new-name n
expect_refused configuration $C job submit jobs --type args --configuration --delete --port 1 --new-name n
expect_refused configuration $C job submit jobs --type args --configuration - --port 1 --new-name n
expect_refused port $C job submit jobs --type args --configuration a --port -1 --new-name n
expect_refused new_name $C job submit jobs --type args --configuration a --port 1 --new-name --force
# A raw request, not through herdctl's option parsing: the same refusal.
$C req jobs submit '{"type": "args", "configuration": "a", "port": "1", "new_name": "-x"}' \
    >/dev/null 2>"$T/err"; rc=$?
[ $rc = 1 ] || fail "raw submit with new_name -x: exit $rc"
grep -qF "bad_request: new_name: must not start with '-'" "$T/err" || fail "raw submit: $(cat "$T/err")"
# --json: the error object with its code.
$C --json job submit jobs --type args --configuration -x --port 1 --new-name n 2>"$T/err" >/dev/null
[ "$(json_get code <"$T/err")" = bad_request ] || fail "--json error: $(cat "$T/err")"
[ "$(json_get message <"$T/err")" = "configuration: must not start with '-' (the command would read it as an option)" ] ||
    fail "--json error message: $(cat "$T/err")"
[ "$(n_jobs)" = 0 ] || fail "a refused submit created a job: $($C job list jobs)"
[ -z "$(ls "$STATE/jobs/logs")" ] || fail "a refused submit left a log: $(ls "$STATE/jobs/logs")"
# A '-' inside a value, or a path that starts "./-", is fine.
id=$($C job submit jobs --type args --configuration ./-rf --port 1-2 --new-name a-b) || fail "submit ./-rf"
[ "$(job_end jobs "$id")" = completed ] || fail "job with ./-rf"
[ "$($C job output jobs "$id")" = "./-rf 1-2 a-b" ] || fail "output: $($C job output jobs "$id")"
[ "$(n_jobs)" = 1 ] || fail "jobs: $(n_jobs), want 1"
pass "parameters starting with '-' refused (bad_request naming the parameter), no job created"

# 2. NUL bytes in output: `job output` and `job follow` after the end.
printf 'a\000b\n' >"$T/want"
id=$($C job submit jobs --type nul) || fail "submit nul"
[ "$(job_end jobs "$id")" = completed ] || fail "nul job"
cmp "$T/want" "$STATE/jobs/logs/$id.log" || fail "the log differs: $(od -c "$STATE/jobs/logs/$id.log")"
$C job output jobs "$id" >"$T/out"; rc=$?
[ $rc = 0 ] || fail "job output exit $rc"
cmp "$T/want" "$T/out" || fail "job output: $(od -c "$T/out")"
$C job follow jobs "$id" >"$T/out"; rc=$?
[ $rc = 0 ] || fail "job follow exit $rc"
cmp "$T/want" "$T/out" || fail "job follow: $(od -c "$T/out")"
[ "$($C --json job output jobs "$id" | json_get data | od -c | head -n 1)" = "$(printf 'a\000b\n\n' | od -c | head -n 1)" ] ||
    fail "--json job output data"
id2=$($C job submit jobs --type nul2) || fail "submit nul2"
[ "$(job_end jobs "$id2")" = completed ] || fail "nul2 job"
$C job output jobs "$id2" --tail 1 >"$T/out" || fail "job output --tail 1"
printf 'z\000w\n' | cmp - "$T/out" || fail "job output --tail 1: $(od -c "$T/out")"
$C job output jobs "$id2" >"$T/out" || fail "job output nul2"
printf 'x\000y\nz\000w\n' | cmp - "$T/out" || fail "job output nul2: $(od -c "$T/out")"
pass "NUL bytes kept by job output (whole, --tail) and follow of a finished job"

# 3. follow of a running job: the NUL bytes arrive as events.
script='while [ ! -e "$0" ]; do sleep 0.05; done; printf "p\000q\n"; printf "\000\000r"; exit 0'
live=$($C job submit jobs -- sh -c "$script" "$T/go") || fail "submit live"
wait_until yields running eval "$C --json job get jobs $live | json_get status" || fail "live job not running"
$C job follow jobs "$live" >"$T/follow" 2>"$T/follow.err" & fpid=$!; track $fpid
wait_until remote_subscribers_at_least "$RUN" 1 || fail "follow did not subscribe"
sleep 0.3 # follow has fetched the (empty) output so far: what comes next is live
touch "$T/go"
wait $fpid; rc=$?
[ $rc = 0 ] || fail "follow of the live job: exit $rc ($(cat "$T/follow.err"))"
printf 'p\000q\n\000\000r' | cmp - "$T/follow" || fail "live follow: $(od -c "$T/follow")"
$C job output jobs "$live" | cmp - "$T/follow" || fail "job output of the live job differs"
pass "NUL bytes kept by follow of a running job"

kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exit $rc after SIGTERM"
