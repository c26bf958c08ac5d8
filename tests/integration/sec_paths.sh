#!/bin/bash
# Ids and names from a client cannot reach outside their place. Job ids
# (get/output/cancel) must be exactly 32 lowercase hex digits before any
# lookup or log path is built (jobs__id_valid, jobs/util.c): anything else is
# bad_request "id: expected a job id (32 lowercase hex digits)", a well-formed
# unknown id is not_found; nothing changes. Catalog ids are looked up in the
# loaded index, never as paths: not_found. Worker names in start/stop/restart
# are looked up among the configured workers: not_found naming the value.
# Config: worker names and job type names are [a-z0-9_-]{1,64}; an archive
# path that is empty, ends in '/', or (after resolving "..") reaches another
# worker's state dir is refused by herdd --check. A symlinked state dir is
# refused at start: see jobs_modes.sh; the runtime dir: sec_runtime_dir.sh.
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/secret"
echo "do not read" >"$T/secret/x.log"
printf '{"s":[{"id":"a","v":1},{"id":"b","v":2}]}' >"$T/cat.json"
"$HERDCTL" catalog build "$T/cat.json" "$T/cat" >/dev/null || fail "catalog build"
cat >"$T/c.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [{"name": "jobs", "kind": "jobs", "kill_timeout_s": 1,
   "types": {"nap": {"argv": ["sleep", "$MARK"]}}},
  {"name": "cat", "kind": "catalog", "path": "$T/cat"}]}
JSON
"$HERDD" --check -c "$T/c.json" >/dev/null || fail "--check of the test's config"
start_herdd "$T/c.json"
C="$HERDCTL --runtime-dir $RUN"
wait_until catalog_loaded 1 2 || fail "catalog did not load"

live=$($C job submit jobs --type nap) || fail "submit nap"
wait_until yields running sh -c "$C --json job get jobs $live | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"status\"])'" ||
    fail "the nap job does not run"
snapshot() { (cd "$T" && find secret state cat -printf '%p %s %m\n' | sort); }
before=$(snapshot)
n_jobs() { $C --json job list jobs | json_get jobs | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
[ "$(n_jobs)" = 1 ] || fail "jobs before: $(n_jobs)"

# 1. Bad job ids, through herdctl and as raw requests.
long=$(printf 'a%.0s' $(seq 1 5000))
idmsg="herdctl: bad_request: id: expected a job id (32 lowercase hex digits)"
n=0
for id in "../jobs" "..%2f..%2fsecret%2fx" "../../secret/x" "/etc/passwd" "a/b" "." ".." \
    "$(printf 'a\tb')" "$(printf 'a\033[2Jb')" "$(printf '\001\002\037')" "$long" \
    "${live^^}" "${live}/" "${live}x" "/${live:1}" "..${live:2}" "${live:0:31}"; do
    for op in get output cancel; do
        $C job "$op" jobs "$id" >"$T/out" 2>"$T/err"; rc=$?
        [ $rc = 1 ] || fail "job $op '${id:0:40}': exit $rc ($(cat "$T/err"))"
        [ -s "$T/out" ] && fail "job $op '${id:0:40}': printed $(head -c 200 "$T/out")"
        [ "$(cat "$T/err")" = "$idmsg" ] || fail "job $op '${id:0:40}': got: $(head -c 300 "$T/err")"
        n=$((n + 1))
    done
done
# Raw requests: empty, non-string, missing id; JSON escapes herdctl cannot take.
for args in '{"id": ""}' '{"id": 5}' '{"id": null}' '{}' '{"id": ["../x"]}' \
    '{"id": "..\/..\/secret\/x"}' '{"id": "\u00e9aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}'; do
    for op in get output cancel; do
        $C --json req jobs "$op" "$args" >/dev/null 2>"$T/err"; rc=$?
        [ $rc = 1 ] || fail "req jobs $op $args: exit $rc"
        [ "$(json_get code <"$T/err")" = bad_request ] || fail "req jobs $op $args: $(cat "$T/err")"
        [ "$(json_get message <"$T/err")" = "id: expected a job id (32 lowercase hex digits)" ] ||
            fail "req jobs $op $args: $(cat "$T/err")"
        n=$((n + 1))
    done
done
# A NUL in an id: herdctl refuses the JSON itself (usage error), sends nothing.
$C req jobs get '{"id": "\u0000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}' >/dev/null 2>"$T/err"; rc=$?
[ $rc = 2 ] && grep -q 'JSON_ALLOW_NUL' "$T/err" || fail "req with a NUL id: exit $rc: $(cat "$T/err")"
# A well-formed id of no job: not_found naming it.
unknown=0123456789abcdef0123456789abcdef
[ "$unknown" != "$live" ] || fail "unlucky id"
for op in get output cancel; do
    $C job "$op" jobs "$unknown" >/dev/null 2>"$T/err"; rc=$?
    [ $rc = 1 ] || fail "job $op $unknown: exit $rc"
    [ "$(cat "$T/err")" = "herdctl: not_found: id: no job $unknown" ] || fail "job $op $unknown: $(cat "$T/err")"
done
# A job type that is a path: refused, no job made.
$C job submit jobs --type ../../secret/x >/dev/null 2>"$T/err"; rc=$?
[ $rc = 1 ] || fail "submit --type ../../secret/x: exit $rc"
grep -q 'bad_request: type' "$T/err" || fail "submit --type ../../secret/x: $(cat "$T/err")"
[ "$(n_jobs)" = 1 ] || fail "jobs after bad ids: $(n_jobs)"
[ "$($C --json job get jobs "$live" | json_get status)" = running ] || fail "the live job was touched"
[ "$(snapshot)" = "$before" ] || fail "files changed: $(diff <(echo "$before") <(snapshot))"
pass "$n bad job ids refused with bad_request before any lookup; unknown id not_found; nothing changed"

# 2. Catalog ids that look like paths: not_found, naming the id.
n=0
for id in "../x" "../cat/manifest.json" "/etc/passwd" "a/../b" ".." "a/" "$(printf 'a\033b')" "$long"; do
    $C catalog get cat -- "$id" >"$T/out" 2>"$T/err"; rc=$?
    [ $rc = 1 ] || fail "catalog get '${id:0:40}': exit $rc ($(head -c 200 "$T/out"))"
    grep -q '^herdctl: not_found: ' "$T/err" || fail "catalog get '${id:0:40}': $(head -c 300 "$T/err")"
    n=$((n + 1))
done
$C catalog get cat -- "../x" 2>&1 | grep -qF '../x' || fail "catalog not_found does not name the id: $($C catalog get cat -- ../x 2>&1)"
$C --json catalog get cat a | grep -q '"v":1' || fail "catalog get a: $($C --json catalog get cat a 2>&1)"
pass "$n catalog ids shaped like paths: not_found; a real id still served"

# 3. Worker names with '/' or '..' in start/stop/restart: not_found naming it.
n=0
for w in "../jobs" "jobs/" "/jobs" "a/b" ".." "./jobs" "jobs/../cat"; do
    for op in start stop restart; do
        $C --timeout 5 "$op" "$w" >/dev/null 2>"$T/err"; rc=$?
        [ $rc = 1 ] || fail "$op '$w': exit $rc ($(cat "$T/err"))"
        grep -qF "not_found: no worker named \"$w\"" "$T/err" || fail "$op '$w': $(cat "$T/err")"
        n=$((n + 1))
    done
done
[ "$(worker_get jobs state)" = running ] && [ "$(worker_get cat state)" = running ] ||
    fail "a worker changed state: $($C status)"
[ "$($C --json job get jobs "$live" | json_get status)" = running ] || fail "the live job was touched"
pass "$n start/stop/restart with path-like worker names: not_found, workers untouched"

# 4. Configs: names and archive paths with tricks, refused by --check.
base="\"bus\": {\"dir\": \"$RUN\"}, \"state_dir\": \"$STATE\", \"http\": {\"listen\": \"\"}"
jobsw='{"name": "jobs", "kind": "jobs", "types": {"t": {"argv": ["true"]}}}'
n=$(check_refuses <<EOF
{$base, "workers": [{"name": "../x", "kind": "jobs"}]}|workers[0].name: expected 1-64 characters of [a-z0-9_-]
{$base, "workers": [{"name": "a/b", "kind": "jobs"}]}|workers[0].name: expected 1-64 characters of [a-z0-9_-]
{$base, "workers": [{"name": "..", "kind": "jobs"}]}|workers[0].name: expected 1-64 characters of [a-z0-9_-]
{$base, "workers": [{"name": "", "kind": "jobs"}]}|workers[0].name: expected 1-64 characters of [a-z0-9_-]
{$base, "workers": [{"name": "/etc", "kind": "jobs"}]}|workers[0].name: expected 1-64 characters of [a-z0-9_-]
{$base, "workers": [{"name": "jobs", "kind": "jobs", "types": {"../t": {"argv": ["true"]}}}]}|types.../t: type names are 1-64 of [a-z0-9_-]
{$base, "workers": [{"name": "ar", "kind": "archive", "subscribe": ["x.>"], "path": ""}]}|workers[0].path: expected a file path
{$base, "workers": [{"name": "ar", "kind": "archive", "subscribe": ["x.>"], "path": "$T/dir/"}]}|workers[0].path: expected a file path
{$base, "workers": [$jobsw, {"name": "ar", "kind": "archive", "subscribe": ["x.>"], "path": "$STATE/jobs/jobs.jsonl"}]}|overlaps
{$base, "workers": [$jobsw, {"name": "ar", "kind": "archive", "subscribe": ["x.>"], "path": "$STATE/ar/../jobs/logs/x.log"}]}|overlaps
{$base, "workers": [$jobsw, {"name": "ar", "kind": "archive", "subscribe": ["x.>"], "path": "$STATE/./jobs//x"}]}|overlaps
EOF
)
pass "$n configs with path tricks in names, type names and archive paths refused by --check"

$C job cancel jobs "$live" >/dev/null || fail "cancel the live job"
[ "$(job_end jobs "$live")" = cancelled ] || fail "the live job did not end cancelled"

# 5. An archive file that is a symlink is refused, not followed: whoever
# can write in the archive's directory must not aim herdd's appends at
# another file (here a jobs store). The target stays byte for byte.
mkdir -p "$T/arcdir"
printf '{"keep": "me"}\n' >"$T/victim.json"
ln -s "$T/victim.json" "$T/arcdir/events.jsonl"
R2="$T/run2"
cat >"$T/sym.json" <<JSON
{"bus": {"dir": "$R2"}, "state_dir": "$T/state2", "http": {"listen": ""},
 "workers": [{"name": "ar", "kind": "archive", "subscribe": ["x.>"], "restart": "temporary",
              "path": "$T/arcdir/events.jsonl"}]}
JSON
"$HERDD" -c "$T/sym.json" >>"$T/herdd2.log" 2>&1 &
track $!
wait_for_herdd "$R2" || fail "second herdd did not start"
sym_failed() { "$HERDCTL" --runtime-dir "$R2" --json status | python3 -c '
import json, sys
w = json.load(sys.stdin)["workers"][0]
sys.exit(0 if w["state"] == "failed" and "is a symbolic link" in (w.get("last_error") or "") else 1)'; }
wait_until sym_failed || fail "archive on a symlink not refused: $("$HERDCTL" --runtime-dir "$R2" status)"
"$HERDCTL" --runtime-dir "$R2" pub x.y '{"a":1}' >/dev/null 2>&1
sleep 0.3
[ "$(cat "$T/victim.json")" = '{"keep": "me"}' ] || fail "the symlink's target was written: $(cat "$T/victim.json")"
pass "an archive path that is a symlink: the worker fails naming it, the target untouched"
