# herdd under a (pretend) systemd: a datagram socket bound as NOTIFY_SOCKET
# and WATCHDOG_USEC set. READY=1 once every enabled worker has started (one
# whose start fails does not hold it back) after a STATUS= with the counts,
# WATCHDOG=1 at half of WATCHDOG_USEC, RELOADING=1 with MONOTONIC_USEC= then
# READY=1 around SIGHUP and `herdctl reload`, STOPPING=1 on SIGTERM; and a
# process worker's child does not find NOTIFY_SOCKET (or the watchdog's
# variables) in its environment.
. "$(dirname "$0")/lib.sh"

SOCK="$T/notify.sock"
MSGS="$T/notify.msgs"
# The listener: one line per datagram, "<CLOCK_MONOTONIC s> <message>",
# newlines inside a message shown as '|'.
cat >"$T/listen.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        m = s.recv(4096).decode("utf-8", "replace")
        out.write("%.6f %s\n" % (time.monotonic(), m.replace("\n", "|")))
PY
: >"$MSGS"
python3 "$T/listen.py" "$SOCK" "$MSGS" 2>"$T/listen.log" &
track $!
wait_until test -S "$SOCK" || fail "the listener did not bind $SOCK"

conf() { # conf ARCHIVE_FILE_NAME
    cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""}, "workers": [
  {"name": "child", "kind": "process",
   "argv": ["sh", "-c", "env >'$T/child.env'; exec sleep $MARK"]},
  {"name": "archive", "kind": "archive", "subscribe": ["system.*.state"], "path": "$T/$1"},
  {"name": "broken", "kind": "exec", "subscribe": ["x.>"], "argv": ["$T/no-such-program"],
   "restart": "temporary"},
  {"name": "off", "kind": "archive", "subscribe": ["x.>"], "path": "$T/off.jsonl",
   "enabled": false}
]}
JSON
}
# broken's program does not exist: its start fails, and it must not keep
# READY=1 from systemd.
conf a.jsonl

# messages: the messages received, without their times.
messages() { cut -d' ' -f2- "$MSGS"; }
count() { messages | grep -cxF -- "$1"; }
# line_of MSG [AFTER]: the line number of the first MSG after line AFTER.
line_of() { messages | awk -v m="$1" -v a="${2:-0}" 'NR > a && $0 == m { print NR; exit }'; }

export NOTIFY_SOCKET="$SOCK" WATCHDOG_USEC=1000000
start_herdd "$T/herd.json"
unset NOTIFY_SOCKET WATCHDOG_USEC

# Start-up: the counts, then READY=1, once.
wait_until yields 1 count "READY=1" || fail "no READY=1: $(messages)"
wait_until worker_state_is child running || fail "child did not start"
[ "$(worker_get broken state)" = failed ] || fail "broken is $(worker_get broken state)"
status=$(line_of "STATUS=2 workers running, 1 failed")
ready=$(line_of "READY=1")
[ -n "$status" ] && [ "$status" -lt "$ready" ] ||
    fail "expected STATUS=2 workers running, 1 failed before READY=1: $(messages)"
[ "$(messages | grep -c '^READY=1$')" = 1 ] || fail "READY=1 more than once: $(messages)"

# The watchdog: every 0.5 s. Over 2.5 s, at least 3 (4 or 5 on time).
pings=$(count "WATCHDOG=1")
sleep 2.5
pings=$(($(count "WATCHDOG=1") - pings))
[ "$pings" -ge 3 ] || fail "$pings WATCHDOG=1 in 2.5 s with WATCHDOG_USEC=1000000"
[ "$pings" -le 7 ] || fail "$pings WATCHDOG=1 in 2.5 s: faster than half of WATCHDOG_USEC"

# The child's environment: herdd's, without what only herdd may use.
wait_until test -s "$T/child.env" || fail "the child wrote no environment"
grep -q '^HERD_WORKER=child$' "$T/child.env" || fail "child.env is not the child's: $(cat "$T/child.env")"
for v in NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID; do
    grep -q "^$v=" "$T/child.env" && fail "the child inherited $v"
done

# reloaded HOW: RELOADING=1 with MONOTONIC_USEC= (the clock of its sending,
# within 2 s of its receipt), then READY=1 once archive runs its new file.
reloaded() {
    local how=$1 before after line
    before=$(wc -l <"$MSGS")
    case $how in
    SIGHUP) kill -HUP "$HERDD_PID" ;;
    herdctl) "$HERDCTL" reload >/dev/null || fail "herdctl reload" ;;
    esac
    wait_until at_least "$((before + 1))" line_of "READY=1" "$before" ||
        fail "$how: no READY=1 after the reload: $(messages | tail -n +$((before + 1)))"
    line=$(awk -v a="$before" 'NR > a && $2 ~ /^RELOADING=1/ { print; exit }' "$MSGS")
    [ -n "$line" ] || fail "$how: no RELOADING=1: $(messages | tail -n +$((before + 1)))"
    python3 - "$line" <<'PY' || fail "$how: bad RELOADING message: $line"
import re, sys
t, msg = sys.argv[1].split(" ", 1)
m = re.fullmatch(r"RELOADING=1\|MONOTONIC_USEC=(\d+)", msg)
assert m, msg
assert abs(int(m.group(1)) / 1e6 - float(t)) < 2, (m.group(1), t)
PY
    local rl ready
    rl=$(messages | awk -v a="$before" 'NR > a && /^RELOADING=1/ { print NR; exit }')
    ready=$(line_of "READY=1" "$before")
    [ "$rl" -lt "$ready" ] || fail "$how: READY=1 before RELOADING=1: $(messages | tail -n +$((before + 1)))"
    worker_state_is archive running || fail "$how: READY=1 but archive is $(worker_get archive state)"
}
conf b.jsonl
reloaded SIGHUP
wait_until test -e "$T/b.jsonl" || fail "SIGHUP: archive did not move to b.jsonl"
conf c.jsonl
reloaded herdctl
wait_until test -e "$T/c.jsonl" || fail "herdctl reload: archive did not move to c.jsonl"
[ "$(count "READY=1")" = 3 ] || fail "expected 3 READY=1: $(messages)"

# SIGTERM: STOPPING=1, then herdd exits 0, and no READY=1 after it.
kill -TERM "$HERDD_PID"
wait "$HERDD_PID"
rc=$?
[ $rc = 0 ] || fail "herdd exited $rc"
stopping=$(line_of "STOPPING=1")
[ -n "$stopping" ] || fail "no STOPPING=1: $(messages)"
[ -z "$(line_of "READY=1" "$stopping")" ] || fail "READY=1 after STOPPING=1: $(messages)"
[ "$(count "STOPPING=1")" = 1 ] || fail "STOPPING=1 more than once"
grep -q "notify" "$T/herdd.log" && fail "herdd logged a notify problem: $(grep notify "$T/herdd.log")"
pass "READY, STATUS, WATCHDOG, RELOADING and STOPPING reach NOTIFY_SOCKET; children do not see it"
