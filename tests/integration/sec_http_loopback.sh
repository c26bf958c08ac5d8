# The HTTP server's address: with no "http" key herdd listens on the
# default 127.0.0.1:9180 only (a loopback socket in /proc/net/tcp, no
# 0.0.0.0 one); a non-loopback http.listen such as 0.0.0.0:PORT is
# accepted by --check and listened on as given, without a warning (there
# is no loopback check in supervisor/config.c or http.c).
. "$(dirname "$0")/lib.sh"

# listeners PORT: "ADDR:PORT" (hex, as in /proc/net/tcp) of each listening
# socket on PORT.
listeners() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" 'NR > 1 && $4 == "0A" && substr($2, length($2) - 4) == p {print $2}' \
        ${SEC_HTTP_PROC_TCP:-/proc/net/tcp /proc/net/tcp6}
}

# 1. No http key: the default, loopback only. The lock is the one
# sup_default.sh takes for 127.0.0.1:9180.
exec 9>"${TMPDIR:-/tmp}/herd-test-http-9180.lock"
flock -w 60 9 || fail "waited 60 s for the lock on 127.0.0.1:9180"
if python3 -c 'import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 9180))' 2>/dev/null; then
    cat >"$T/default.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE"}
JSON
    "$HERDD" -c "$T/default.json" >"$T/herdd.log" 2>&1 9>&- & HERDD_PID=$!; track $HERDD_PID
    wait_for_herdd "$RUN" || fail "herdd did not start"
    grep -q "http: listening on http://127.0.0.1:9180/" "$T/herdd.log" || fail "default address not logged"
    l=$(listeners 9180)
    [ "$l" = "0100007F:23DC" ] || fail "listening sockets on port 9180: '${l}', want only 0100007F:23DC (127.0.0.1)"
    kill -TERM $HERDD_PID; wait $HERDD_PID || fail "herdd exit status"
    pass "no http key: listens on 127.0.0.1:9180 only"
else
    echo "SKIP (part 1): 127.0.0.1:9180 is in use by another program"
fi
exec 9>&-

# 2. 0.0.0.0:PORT: accepted and listened on, no warning (a finding: the
# code has no loopback check).
PORT=$(free_port)
cat >"$T/any.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": "0.0.0.0:$PORT"}}
JSON
"$HERDD" --check -c "$T/any.json" >"$T/check.out" 2>&1 || fail "--check refused 0.0.0.0: $(cat "$T/check.out")"
: >"$T/herdd2.log"
start_herdd "$T/any.json" "$T/herdd2.log"
grep -q "http: listening on http://0.0.0.0:$PORT/" "$T/herdd2.log" || fail "0.0.0.0 address not logged"
l=$(listeners "$PORT")
[ "$l" = "00000000:$(printf '%04X' "$PORT")" ] || fail "listening sockets on $PORT: '$l', want 0.0.0.0"
if grep -qiE 'warn|loopback|all interfaces' "$T/herdd2.log" "$T/check.out"; then
    fail "a warning now exists for 0.0.0.0 (update this test and docs/security.md): $(grep -iE 'warn|loopback' "$T/herdd2.log")"
fi
kill -TERM $HERDD_PID; wait $HERDD_PID || fail "herdd exit status"
pass "http.listen 0.0.0.0:$PORT accepted and bound on all interfaces, without a warning (no loopback check)"
