# Reload (SIGHUP and `herdctl reload`) adds, removes and changes exactly the
# right workers: unchanged ones keep their pid; a bad file changes nothing.
. "$(dirname "$0")/lib.sh"

conf() { # conf FILE WORKERS_JSON
    printf '{"bus": {"dir": "%s"}, "state_dir": "%s", "http": {"listen": ""}, "workers": [%s]}\n' \
        "$RUN" "$STATE" "$2" >"$1"
}
A="{\"name\": \"a\", \"kind\": \"process\", \"argv\": [\"sleep\", \"$MARK\"]}"
B1="{\"name\": \"b\", \"kind\": \"process\", \"argv\": [\"sleep\", \"$((MARK + 1))\"]}"
B2="{\"name\": \"b\", \"kind\": \"process\", \"argv\": [\"sleep\", \"$((MARK + 2))\"]}"
C="{\"name\": \"c\", \"kind\": \"process\", \"argv\": [\"sleep\", \"$((MARK + 3))\"]}"
D="{\"name\": \"d\", \"kind\": \"process\", \"argv\": [\"sleep\", \"$((MARK + 4))\"]}"
conf "$T/herd.json" "$A, $B1, $C"
start_herdd "$T/herd.json"
for w in a b c; do wait_until worker_state_is $w running || fail "$w did not start"; done
pa=$(worker_get a pid) pb=$(worker_get b pid) pc=$(worker_get c pid)

# SIGHUP: a unchanged, b changed, c removed, d added.
conf "$T/herd.json" "$A, $B2, $D"
kill -HUP "$HERDD_PID"
wait_until worker_state_is d running || fail "d not added"
wait_until yields 1 alive_marked $((MARK + 2)) || fail "b not restarted with its new argv"
wait_until yields 0 alive_marked $((MARK + 3)) || fail "c's process still runs"
[ "$(worker_get a pid)" = "$pa" ] || fail "unchanged a was restarted"
[ "$(worker_get b pid)" != "$pb" ] || fail "changed b kept its pid"
[ "$(alive_marked $((MARK + 1)))" = 0 ] || fail "b's old process still runs"
[ -z "$(worker_get c state)" ] || fail "c still listed"
kill -0 "$pc" 2>/dev/null && fail "c's pid alive"

# herdctl reload: the summary names each worker once, in the right list.
conf "$T/herd.json" "$A, $B2"
"$HERDCTL" --json reload >"$T/summary.json" || fail "herdctl reload"
python3 - "$T/summary.json" <<'PY' || fail "reload summary: $(cat "$T/summary.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s == {"added": [], "removed": ["d"], "changed": [], "unchanged": ["a", "b"]}, s
PY
wait_until yields 0 alive_marked $((MARK + 4)) || fail "d's process still runs"
[ "$(worker_get a pid)" = "$pa" ] || fail "a restarted by the second reload"

# A bad file is refused and nothing changes.
echo '{"workers": [{"name": "a", "kind": "process"}]}' >"$T/herd.json"
"$HERDCTL" reload 2>"$T/err"; [ $? = 1 ] || fail "bad reload accepted"
grep -q "workers\[0\].argv" "$T/err" || fail "bad reload message: $(cat "$T/err")"
kill -HUP "$HERDD_PID"; sleep 0.5
[ "$(worker_get a pid)" = "$pa" ] || fail "a touched by a refused reload"
worker_state_is b running || fail "b touched by a refused reload"
grep -q "reload refused" "$T/herdd.log" || fail "refused SIGHUP reload not logged"
pass "reload adds, removes, changes exactly the right workers"
