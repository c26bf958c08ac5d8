# herdd and herdctl command lines: --help and --version everywhere, --check,
# config errors that name the path, exit codes (2 usage, 3 no herdd), SIGINT.
. "$(dirname "$0")/lib.sh"

"$HERDD" --help | grep -q "Usage: herdd" || fail "herdd --help"
"$HERDD" --version | grep -q "^herdd [0-9]" || fail "herdd --version"
"$HERDD" --bogus 2>/dev/null; [ $? = 2 ] || fail "herdd unknown option exit code"
"$HERDCTL" --help | grep -q "Usage: herdctl" || fail "herdctl --help"
"$HERDCTL" --version | grep -q "^herdctl [0-9]" || fail "herdctl --version"
for c in status mem pub sub req; do
    "$HERDCTL" "$c" --help | grep -q "Usage: herdctl $c" || fail "herdctl $c --help"
done
"$HERDCTL" 2>/dev/null; [ $? = 2 ] || fail "herdctl without command"
"$HERDCTL" frobnicate 2>/dev/null; [ $? = 2 ] || fail "herdctl unknown command"
"$HERDCTL" --timeout abc status 2>/dev/null; [ $? = 2 ] || fail "bad --timeout"
"$HERDCTL" req supervisor 2>/dev/null; [ $? = 2 ] || fail "req usage"
"$HERDCTL" req supervisor status '[1]' 2>/dev/null; [ $? = 2 ] || fail "req args must be object"

# No herdd: exit 3 for every command that needs one.
"$HERDCTL" --runtime-dir "$T/nobody" status 2>"$T/err"; [ $? = 3 ] || fail "status without herdd"
grep -q "not reachable" "$T/err" || fail "unclear unreachable message"
"$HERDCTL" --runtime-dir "$T/nobody" pub a.b '{}' 2>/dev/null; [ $? = 3 ] || fail "pub without herdd"
"$HERDCTL" --runtime-dir "$T/nobody" sub 'a.>' 2>/dev/null; [ $? = 3 ] || fail "sub without herdd"
"$HERDCTL" --runtime-dir "$T/nobody" req supervisor status 2>/dev/null; [ $? = 3 ] || fail "req without herdd"

# --check: valid and invalid configs; each error names the path.
write_config "$T/good.json"
"$HERDD" --check -c "$T/good.json" >/dev/null || fail "--check good config"
n=$(check_refuses <<'CASES'
{"bus": {"dir": 5}}|bus.dir: expected a non-empty path string
{"bus": {"max_message_bytes": "12Q"}}|bus.max_message_bytes: expected a size
{"bus": {"queue_max": 0}}|bus.queue_max: expected an integer from 1
{"bus": {"subscriber_buffer": "x"}}|bus.subscriber_buffer: expected an integer
{"bus": {"colour": 1}}|bus.colour: unknown key
{"http": {"listen": "nohost"}}|http.listen: expected "HOST:PORT"
{"http": {"listen": "127.0.0.1:99999"}}|http.listen: expected "HOST:PORT"
{"state_dir": ""}|state_dir: expected a non-empty path string
{"wrokers": []}|wrokers: unknown key
[1, 2]|(top level): expected an object
{"bus": {"dir": "/x"}, "bus": {}}|duplicate object key
{"bus": |invalid JSON
CASES
) || exit 1
[ "$n" = 12 ] || fail "only $n --check cases ran"
"$HERDD" --check -c "$T/missing.json" 2>"$T/out"; [ $? = 1 ] || fail "--check missing file"
grep -q "missing.json" "$T/out" || fail "missing file not named"

# SIGINT stops herdd with exit 0.
start_herdd "$T/good.json"
kill -INT "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "SIGINT exit $rc"
[ -e "$RUN/request.ipc" ] && fail "socket file left after SIGINT"
pass "command lines, --check, exit codes, SIGINT"
