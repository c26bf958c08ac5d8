# The runtime directory (bus.dir) must be the user's own and writable by
# no one else (DESIGN.md 3): herdd creates a missing one 0750 and refuses
# one writable by group or others, a symlink, a file, or (as root) one
# owned by another user, exiting 1 with a message naming it and creating
# no socket in it; herdctl refuses to talk through such a directory (the
# request never reaches herdd) and talks again once it is fixed.
. "$(dirname "$0")/lib.sh"

# herdd_refuses DIR WANT: herdd with bus.dir DIR exits 1 at once, prints
# "herdd: DIR: WANT", and leaves no socket behind in DIR.
herdd_refuses() {
    local dir=$1 want=$2 rc
    printf '{"bus": {"dir": "%s"}, "state_dir": "%s", "http": {"listen": ""}}' \
        "$dir" "$STATE" >"$T/bad.json"
    # If the check were gone herdd would serve: timeout ends it (rc 124).
    timeout -s KILL 15 "$HERDD" -c "$T/bad.json" >"$T/refused.out" 2>&1; rc=$?
    [ $rc = 1 ] || fail "herdd with bus.dir $dir: exit $rc, want 1 ($(cat "$T/refused.out"))"
    # Exactly that line: no sanitizer report either.
    [ "$(cat "$T/refused.out")" = "herdd: $dir: $want" ] ||
        fail "herdd with bus.dir $dir: expected \"herdd: $dir: $want\", got: $(cat "$T/refused.out")"
    if [ -e "$dir" ]; then
        [ -z "$(find -L "$dir" -maxdepth 1 -name '*.ipc' 2>/dev/null)" ] ||
            fail "herdd created sockets in the refused $dir: $(ls -la "$dir")"
    fi
}

# 1. herdd refuses bad runtime directories.
mkdir -m 0777 "$T/open"
chmod 0777 "$T/open" # mkdir -m is subject to nothing, but be explicit
herdd_refuses "$T/open" "mode 0777 lets other users write to it; refusing it (chmod go-w)"
[ "$(stat -c %a "$T/open")" = 777 ] || fail "herdd changed the mode of a refused runtime dir"
mkdir "$T/group"; chmod 0770 "$T/group"
herdd_refuses "$T/group" "mode 0770 lets other users write to it; refusing it (chmod go-w)"
mkdir "$T/sticky"; chmod 1777 "$T/sticky"
herdd_refuses "$T/sticky" "mode 1777 lets other users write to it; refusing it (chmod go-w)"
mkdir -m 0750 "$T/real"
ln -s "$T/real" "$T/link"
herdd_refuses "$T/link" "is a symbolic link; refusing it (name the real directory)"
: >"$T/afile"
herdd_refuses "$T/afile" "not a directory"
if [ "$(id -u)" = 0 ] && id -u nobody >/dev/null 2>&1; then
    mkdir -m 0750 "$T/theirs"
    chown nobody "$T/theirs"
    herdd_refuses "$T/theirs" "owned by uid $(id -u nobody), not by this user (uid 0); refusing it"
    pass "herdd refuses a runtime dir owned by another user"
else
    echo "SKIP: runtime dir owned by another user (needs root and a nobody user)"
fi
pass "herdd refuses a runtime dir writable by group/others, a symlink, a file"

# 2. A missing runtime dir is created with mode 0750 exactly, whatever the
# umask; an existing 0755 one (no one else can write) is accepted as it is.
write_config "$T/herd.json"
old_umask=$(umask)
umask 077
start_herdd "$T/herd.json"
umask "$old_umask"
[ "$(stat -c %a "$RUN")" = 750 ] || fail "runtime dir created with mode $(stat -c %a "$RUN"), want 750"
[ "$(stat -c %u "$RUN")" = "$(id -u)" ] || fail "runtime dir not owned by this user"
kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exit $rc after SIGTERM"
mkdir -m 0755 "$T/ro"; chmod 0755 "$T/ro"
printf '{"bus": {"dir": "%s"}, "state_dir": "%s", "http": {"listen": ""}}' "$T/ro" "$STATE" >"$T/ro.json"
start_herdd "$T/ro.json"
"$HERDCTL" --runtime-dir "$T/ro" status >/dev/null || fail "status through a 0755 runtime dir"
kill -TERM "$HERDD_PID"; wait "$HERDD_PID"
pass "a missing runtime dir is created 0750; a 0755 one is accepted"

# 3. herdctl refuses to talk through a runtime dir others can write to, or
# a symlink, or another user's; requests never reach herdd.
start_herdd "$T/herd.json"
C="$HERDCTL --runtime-dir $RUN"
requests() { status_get "$RUN" supervisor.bus.requests; }
remote_in() { status_get "$RUN" supervisor.bus.remote_in; }

# client_refuses DESCRIPTION HERDCTL_ARGS...: status, req, pub and sub
# through that runtime dir fail, and herdd sees none of them.
client_refuses() {
    local what=$1 rc
    shift
    "$@" --timeout 2 status >"$T/c.out" 2>"$T/c.err"; rc=$?
    [ $rc = 3 ] || fail "$what: status exit $rc, want 3 ($(cat "$T/c.err"))"
    [ -s "$T/c.out" ] && fail "$what: status printed a result: $(cat "$T/c.out")"
    # The message names the directory or at least the refusal.
    grep -q "refusing it" "$T/c.err" ||
        fail "$what: unexpected message: $(cat "$T/c.err")"
    cp "$T/c.err" "$T/status.err"
    "$@" --timeout 2 req supervisor status >/dev/null 2>&1 && fail "$what: req answered"
    "$@" --timeout 2 pub ext.refused '{"n":1}' >/dev/null 2>&1 && fail "$what: pub succeeded"
    # Were the check gone, sub would wait for an event: timeout ends it.
    timeout -s KILL 10 "$@" sub 'ext.>' --count 1 >/dev/null 2>"$T/c.err"; rc=$?
    [ $rc = 1 ] || fail "$what: sub exit $rc, want 1 ($(cat "$T/c.err"))"
    return 0
}

before_req=$(requests); before_in=$(remote_in)
chmod o+w "$RUN"
client_refuses "runtime dir o+w" $C
grep -qF "$RUN: mode 0752 lets other users write to it; refusing it" "$T/status.err" ||
    fail "herdctl's refusal does not name the directory and why: $(cat "$T/status.err")"
chmod 0750 "$RUN"; chmod g+w "$RUN"
client_refuses "runtime dir g+w" $C
chmod 0750 "$RUN"
ln -s "$RUN" "$T/runlink"
client_refuses "runtime dir through a symlink" "$HERDCTL" --runtime-dir "$T/runlink"
# The default directory ($HERD_RUNTIME_DIR) goes through the same check.
client_refuses "HERD_RUNTIME_DIR a symlink" env HERD_RUNTIME_DIR="$T/runlink" "$HERDCTL"
if [ "$(id -u)" = 0 ] && id -u nobody >/dev/null 2>&1; then
    chown nobody "$RUN"
    client_refuses "runtime dir owned by nobody" $C
    chown "$(id -u)" "$RUN"
fi
# Fixed: herdctl talks again, and none of the refused calls reached herdd
# (the status_get calls here are the only requests since).
after_in=$(remote_in)
[ "$after_in" = "$before_in" ] || fail "refused pubs reached herdd: remote_in $before_in -> $after_in"
after_req=$(requests)
# before_req was read by one request, remote_in by two more: 3 in all.
[ "$after_req" -le $((before_req + 3)) ] ||
    fail "refused requests reached herdd: requests $before_req -> $after_req"
$C status >/dev/null || fail "status after the runtime dir was fixed"
$C pub ext.fixed '{"n":2}' || fail "pub after the runtime dir was fixed"
wait_until yields $((after_in + 1)) remote_in || fail "pub after the fix did not arrive"
pass "herdctl refuses a runtime dir writable by others, a symlink, another user's; talks again once fixed"

kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exit $rc after SIGTERM"
