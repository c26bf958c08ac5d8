# Arguments: every supervisor op refuses an argument it does not take
# (bad_request naming it; the op has no effect: no restart, no stop, no
# reload), and `herdctl catalog get W -- ID` takes an ID that starts with
# '-' as an ID (not_found for a missing one, its body for a present one),
# while without -- such an ID is a usage error.
. "$(dirname "$0")/lib.sh"

kill_marked() {
    local p
    for p in $(pgrep -fx "sleep $MARK"); do kill -KILL "$p" 2>/dev/null; done
}
trap 'kill_marked; cleanup' EXIT

cat >"$T/cat.json" <<'JSON'
{"things": [{"id": "-dash", "name": "Dash", "category": "c"},
            {"id": "plain", "name": "Plain", "category": "c"}]}
JSON
"$HERDCTL" catalog build "$T/cat.json" "$T/cat" >/dev/null || fail "catalog build"
workers='{"name": "cat", "kind": "catalog", "path": "'"$T/cat"'"},
   {"name": "p", "kind": "process", "argv": ["sleep", "'"$MARK"'"], "stop_timeout_s": 2}'
printf '{"bus": {"dir": "%s"}, "state_dir": "%s", "http": {"listen": ""},\n "workers": [%s]}\n' \
    "$RUN" "$STATE" "$workers" >"$T/c.json"
start_herdd "$T/c.json"
C="$HERDCTL --runtime-dir $RUN"
wait_until worker_state_is p running || fail "p did not start"
wait_until worker_state_is cat running || fail "cat did not start"
wait_until at_least 1 status_get "$RUN" workers.0.entries || fail "cat did not load"

# 1. Supervisor ops with an unknown argument: refused, without effect.
# refused OP ARGS KEY EXPECTED: herdctl req exits 1 with the exact message.
refused() {
    local op=$1 args=$2 key=$3 expected=$4 rc
    $C req supervisor "$op" "$args" >"$T/out" 2>"$T/err"; rc=$?
    [ $rc = 1 ] || fail "supervisor $op $args: exit $rc, want 1 ($(cat "$T/err"))"
    [ -s "$T/out" ] && fail "supervisor $op $args: printed a result: $(cat "$T/out")"
    [ "$(cat "$T/err")" = "herdctl: bad_request: $key: unknown argument of $op (expected $expected)" ] ||
        fail "supervisor $op $args: got: $(cat "$T/err")"
}
pid=$(worker_get p pid)
restarts=$(worker_get p restarts)
[ -n "$pid" ] && [ "$pid" -gt 0 ] || fail "p has no pid"
refused status '{"verbose": true}' verbose none
refused mem '{"worker": "p"}' worker none
refused restart '{"worker": "p", "force": true}' force worker
refused restart '{"name": "p"}' name worker
refused stop '{"worker": "p", "timeout_s": 0}' timeout_s worker
refused start '{"worker": "p", "wait": false}' wait worker
# --json: the error object.
$C --json req supervisor status '{"all": 1}' >/dev/null 2>"$T/err"
[ "$(json_get code <"$T/err")" = bad_request ] || fail "--json error: $(cat "$T/err")"
[ "$(json_get message <"$T/err")" = "all: unknown argument of status (expected none)" ] ||
    fail "--json error message: $(cat "$T/err")"
# None of the refused ops touched p.
sleep 0.3 # a restart or stop that slipped through would be under way by now
worker_state_is p running || fail "p is $(worker_get p state) after refused ops"
[ "$(worker_get p pid)" = "$pid" ] || fail "p was restarted by a refused op (pid $pid -> $(worker_get p pid))"
[ "$(worker_get p restarts)" = "$restarts" ] || fail "p's restarts changed"
kill -0 "$pid" 2>/dev/null || fail "p's process $pid is gone"
# The same ops without the stray argument work.
$C req supervisor status '{}' >/dev/null || fail "status {}"
$C req supervisor restart '{"worker": "p"}' >/dev/null || fail "restart p"
wait_until worker_state_is p running || fail "p did not come back"
npid=$(worker_get p pid)
[ "$npid" != "$pid" ] && [ "$npid" -gt 0 ] || fail "restart p did not make a new process ($pid, $npid)"

# reload with an argument: the changed config is not read.
workers2="$workers,"'
   {"name": "added", "kind": "process", "argv": ["sleep", "'"$MARK"'"], "stop_timeout_s": 2}'
printf '{"bus": {"dir": "%s"}, "state_dir": "%s", "http": {"listen": ""},\n "workers": [%s]}\n' \
    "$RUN" "$STATE" "$workers2" >"$T/c.json"
"$HERDD" --check -c "$T/c.json" >/dev/null || fail "--check of the changed config"
refused reload '{"file": "/etc/passwd"}' file none
refused reload '{"dry_run": true}' dry_run none
[ -z "$(worker_get added state)" ] || fail "a refused reload added a worker"
$C req supervisor reload '{}' >"$T/reload.out" || fail "reload {}"
grep -q added "$T/reload.out" || fail "reload summary: $(cat "$T/reload.out")"
wait_until worker_state_is added running || fail "the reload did not add the worker"
pass "supervisor ops refuse unknown arguments (bad_request naming them) and do nothing"

# 2. catalog get: after --, an ID starting with '-' is an ID.
$C catalog get cat -- -weird-id >"$T/out" 2>"$T/err"; rc=$?
[ $rc = 1 ] || fail "catalog get cat -- -weird-id: exit $rc, want 1 ($(cat "$T/err"))"
[ "$(cat "$T/err")" = 'herdctl: not_found: no entry with id "-weird-id"' ] ||
    fail "catalog get cat -- -weird-id: $(cat "$T/err")"
[ -s "$T/out" ] && fail "catalog get of a missing id printed $(cat "$T/out")"
$C --json catalog get cat -- -weird-id >/dev/null 2>"$T/err"; rc=$?
[ $rc = 1 ] && [ "$(json_get code <"$T/err")" = not_found ] || fail "--json: exit $rc, $(cat "$T/err")"
# Even one that looks like --help.
$C catalog get cat -- --help >"$T/out" 2>"$T/err"; rc=$?
[ $rc = 1 ] && [ "$(cat "$T/err")" = 'herdctl: not_found: no entry with id "--help"' ] ||
    fail "catalog get cat -- --help: exit $rc, $(cat "$T/out" "$T/err")"
# A present one: its body.
$C --json catalog get cat -- -dash >"$T/out" || fail "catalog get cat -- -dash"
[ "$(json_get id <"$T/out")" = -dash ] && [ "$(json_get name <"$T/out")" = Dash ] ||
    fail "body of -dash: $(cat "$T/out")"
$C --json catalog get cat --section things -- -dash >"$T/out" || fail "get --section things -- -dash"
[ "$(json_get id <"$T/out")" = -dash ] || fail "body of things/-dash: $(cat "$T/out")"
$C --json catalog get cat -- plain >"$T/out" || fail "catalog get cat -- plain"
[ "$(json_get id <"$T/out")" = plain ] || fail "body of plain: $(cat "$T/out")"
# Without --: a usage error, nothing asked.
$C catalog get cat -weird-id >"$T/out" 2>"$T/err"; rc=$?
[ $rc = 2 ] || fail "catalog get cat -weird-id: exit $rc, want 2"
head -n 1 "$T/err" | grep -qxF "herdctl catalog get: unknown option \"-weird-id\" (an ID starting with '-' goes after --)" ||
    fail "catalog get cat -weird-id: $(cat "$T/err")"
# Several ids, after -- too: one get {ids}, keyed by id, the unknown one left out.
$C --json catalog get cat --section things -- -dash extra >"$T/out" 2>"$T/err" ||
    fail "two ids after --: $(cat "$T/err")"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert list(r) == ["-dash"] and r["-dash"]["id"] == "-dash", r' "$T/out" ||
    fail "two ids after --: $(cat "$T/out")"
pass "catalog get takes an id starting with '-' after -- (not_found when missing)"

kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exit $rc after SIGTERM"
[ "$(alive_marked "$MARK")" = 0 ] || fail "workers' processes left after herdd stopped"
