# Modes of what herdd creates, and the descriptors a child inherits
# (docs/security.md): the runtime dir 0750 (or the given one kept), the
# sockets 0660, the state dir 0750; a `process` worker's child holds only
# stdin/stdout/stderr and what herdd's own parent passed down: none of
# herdd's sockets, logs, pipes or state files.
. "$(dirname "$0")/lib.sh"

cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [{"name": "p", "kind": "process",
              "argv": ["sh", "-c", "ls -l /proc/self/fd > $T/fds.tmp && mv $T/fds.tmp $T/fds; exec sleep 60"]}]}
JSON
start_herdd "$T/herd.json"
wait_until test -s "$T/fds" || fail "process child did not list its fds"

[ "$(stat -c %a "$RUN")" = 750 ] || fail "runtime dir mode $(stat -c %a "$RUN"), want 750"
for s in events publish request; do
    [ "$(stat -c %a "$RUN/$s.ipc")" = 660 ] || fail "$s.ipc mode $(stat -c %a "$RUN/$s.ipc"), want 660"
done
[ "$(stat -c %a "$STATE")" = 750 ] || fail "state dir mode $(stat -c %a "$STATE"), want 750"
pass "runtime dir 0750, sockets 0660, state dir 0750"

# fds the child has beyond 0-2 must all be fds this shell (herdd's parent)
# holds too: anything else was opened by herdd and leaked (no O_CLOEXEC).
mine=" $(ls /proc/$$/fd | tr '\n' ' ') "
for fd in $(awk '$NF !~ "^/proc/" && $9 ~ /^[0-9]+$/ {print $9}' "$T/fds"); do
    case $fd in 0 | 1 | 2) continue ;; esac
    case $mine in *" $fd "*) continue ;; esac
    fail "process child inherited fd $fd from herdd ($(cat "$T/fds"))"
done
pass "a process worker's child inherits none of herdd's own descriptors"
