# A storm of 10,000 malformed frames and 10,000 malformed requests (random
# bytes, no NUL, bad topics, invalid JSON, oversize) leaves herdd answering
# status with every drop counted by reason, and the bus still working.
. "$(dirname "$0")/lib.sh"

MAX=65536
write_config "$T/herd.json" "\"max_message_bytes\": $MAX"
start_herdd "$T/herd.json"

"$HERD_STORM" "$RUN" 10000 10000 $MAX >"$T/expect.json" 2>"$T/storm.log" || fail "storm client failed"

# Frames are counted as herdd drains them: wait for the last reason to match.
check_counts() {
    "$HERDCTL" --json status | python3 -c '
import json, sys
want = json.load(open(sys.argv[1]))
got = json.load(sys.stdin)["supervisor"]["bus"]["dropped"]
bad = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
if bad:
    print("dropped counters differ (got, want):", bad, file=sys.stderr)
    sys.exit(1)' "$T/expect.json"
}
wait_until check_counts || { check_counts; fail "drop counters do not match the storm"; }
total=$(python3 -c 'import json,sys; print(sum(json.load(open(sys.argv[1])).values()))' "$T/expect.json")
[ "$total" -ge 17000 ] || fail "storm produced only $total drops"

# A frame far over the limit is cut by nng itself (the pipe is dropped).
head -c $((3 * MAX)) /dev/zero | tr '\0' 'x' | sed 's/^/big\x00"/' >"$T/huge.bin"
nngcat --push0 --dial "ipc://$RUN/publish.ipc" --file "$T/huge.bin" 2>/dev/null

# Still alive and working.
kill -0 "$HERDD_PID" || fail "herdd died"
"$HERDCTL" sub 'after.storm' --count 1 >"$T/after.out" & spid=$!; track $spid
wait_until remote_subscribers_at_least "$RUN" 1 || fail "subscriber after storm"
"$HERDCTL" pub after.storm '{"ok":true}' || fail "pub after storm"
wait $spid || fail "no event after storm"
pass "storm of $total malformed frames and requests counted; herdd still serves"
