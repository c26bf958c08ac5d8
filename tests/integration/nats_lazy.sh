# libnats is loaded only by the first nats worker (DESIGN.md section 1): a
# herdd without one has no libnats (nor the OpenSSL it brings) in
# /proc/PID/maps; once a reload adds a nats worker, libnats is mapped. A
# nats worker whose token file is missing, or readable by every user, fails
# its start naming the file, and the others keep running. Where the test
# may make a mount namespace (root), libnats hidden behind /dev/null fails
# the start naming the Debian package. Skipped (77) without nats-server.
. "$(dirname "$0")/lib.sh"

NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
[ -x "$NATS_SERVER" ] || { echo "SKIP: nats-server not installed (Debian package nats-server)"; exit 77; }
PROBE=${HERD_NATS_PROBE:-$HERD_BUILD_DIR/tests/herd-nats-probe}
NPORT=$(free_port)
NURL="nats://127.0.0.1:$NPORT"
long_until() { local i; for i in $(seq 1 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
"$NATS_SERVER" -a 127.0.0.1 -p "$NPORT" --auth s3cr3t-token >"$T/nats.log" 2>&1 &
track $!
long_until "$PROBE" "nats://s3cr3t-token@127.0.0.1:$NPORT" pub probe.ready '{}' || fail "nats-server did not start"

workers() { # extra worker JSON (may be empty)
    cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""}, "host": "lazy",
 "workers": [
  {"name": "w", "kind": "process", "argv": ["sleep", "3600"]}${1:+, $1}
 ]}
JSON
}
mapped() { grep -c "$1" "/proc/$HERDD_PID/maps"; }

workers ""
start_herdd "$T/herd.json"
wait_until worker_state_is w running || fail "w not running"
[ "$(mapped libnats)" = 0 ] || fail "libnats mapped without a nats worker"
[ "$(mapped libssl)" = 0 ] || fail "libssl mapped without a nats worker"
pass "nats: no libnats in a herdd without a nats worker"

# A credentials file that is missing, then one open to every user.
workers "{\"name\": \"nb\", \"kind\": \"nats\", \"url\": \"$NURL\", \"token_file\": \"$T/token\", \"restart\": \"temporary\"}"
kill -HUP "$HERDD_PID"
long_until worker_state_is nb failed || fail "nb: $(worker_get nb state)"
worker_get nb last_error | grep -qF "token_file \"$T/token\": No such file" || fail "last_error: $(worker_get nb last_error)"
printf 's3cr3t-token\n' >"$T/token"
chmod 0644 "$T/token"
"$HERDCTL" start nb >/dev/null 2>&1
long_until yields failed worker_get nb state || fail "nb: $(worker_get nb state)"
long_until sh -c "\"$HERDCTL\" --json status | grep -q 'readable or writable by every user'" ||
    fail "last_error: $(worker_get nb last_error)"
"$HERDCTL" --json status | grep -q s3cr3t && fail "the token shows in status"
worker_state_is w running || fail "w affected"

chmod 0600 "$T/token"
"$HERDCTL" start nb >/dev/null || fail "start nb"
long_until yields True worker_get nb connected || fail "nb never connected: $(worker_get nb last_error)"
[ "$(mapped libnats.so.3.4)" -ge 1 ] || fail "libnats not mapped with a nats worker"
grep -q s3cr3t "$T/herdd.log" && fail "the token is in the log"
pass "nats: libnats mapped once a nats worker started; credentials files checked, the token never shown"

# libnats missing: hidden in a private mount namespace (root only).
LIB=$(readlink -f "$(ldconfig -p | awk '/libnats\.so\.3\.4 / {print $NF; exit}')" 2>/dev/null)
if [ -n "$LIB" ] && unshare -m true 2>/dev/null; then
    kill -TERM "$HERDD_PID"; wait "$HERDD_PID" 2>/dev/null
    cat >"$T/miss.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [{"name": "nb", "kind": "nats", "url": "$NURL", "restart": "temporary"}]}
JSON
    unshare -m sh -c "mount --bind /dev/null '$LIB' && exec '$HERDD' -c '$T/miss.json'" >"$T/miss.log" 2>&1 &
    HERDD_PID=$!
    track $HERDD_PID
    wait_for_herdd "$RUN" || fail "herdd (libnats hidden) did not start: $(cat "$T/miss.log")"
    long_until worker_state_is nb failed || fail "nb: $(worker_get nb state)"
    worker_get nb last_error | grep -qF "cannot load libnats.so.3.4 (install the Debian package libnats3.4)" ||
        fail "last_error: $(worker_get nb last_error)"
    pass "nats: without libnats the start fails naming the Debian package libnats3.4"
else
    echo "note: not root (no mount namespace): the missing-libnats case is not run"
fi
