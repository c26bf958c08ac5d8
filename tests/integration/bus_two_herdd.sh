# Two herdd side by side on different runtime directories never interfere;
# a live herdd's directory is refused with a clear error; the stale socket
# files of a killed herdd are cleaned up by the next one.
. "$(dirname "$0")/lib.sh"

RUN_A="$T/a" RUN_B="$T/b"
printf '{"bus":{"dir":"%s"},"state_dir":"%s/sa","http":{"listen":""}}\n' "$RUN_A" "$T" >"$T/a.json"
printf '{"bus":{"dir":"%s"},"state_dir":"%s/sb","http":{"listen":""}}\n' "$RUN_B" "$T" >"$T/b.json"
start_herdd "$T/a.json" "$T/a.log"; PID_A=$HERDD_PID
start_herdd "$T/b.json" "$T/b.log"; PID_B=$HERDD_PID

[ "$(stat -c %a "$RUN_A")" = 750 ] || fail "runtime dir mode $(stat -c %a "$RUN_A")"
for f in events publish request; do
    [ "$(stat -c %a "$RUN_A/$f.ipc")" = 660 ] || fail "$f.ipc mode $(stat -c %a "$RUN_A/$f.ipc")"
done

"$HERDCTL" --runtime-dir "$RUN_A" sub 'side.>' >"$T/sub_a.out" & track $!
"$HERDCTL" --runtime-dir "$RUN_B" sub 'side.>' >"$T/sub_b.out" & track $!
wait_until remote_subscribers_at_least "$RUN_A" 1 || fail "sub a"
wait_until remote_subscribers_at_least "$RUN_B" 1 || fail "sub b"
"$HERDCTL" --runtime-dir "$RUN_A" pub side.a '{"to":"a"}' || fail "pub a"
"$HERDCTL" --runtime-dir "$RUN_B" pub side.b '{"to":"b"}' || fail "pub b"
wait_until grep -q side.a "$T/sub_a.out" || fail "a did not get its event"
wait_until grep -q side.b "$T/sub_b.out" || fail "b did not get its event"
sleep 0.3
grep -q side.b "$T/sub_a.out" && fail "a got b's event"
grep -q side.a "$T/sub_b.out" && fail "b got a's event"
[ "$(status_get "$RUN_A" supervisor.pid)" = "$PID_A" ] || fail "status a answered by another pid"
[ "$(status_get "$RUN_B" supervisor.pid)" = "$PID_B" ] || fail "status b answered by another pid"

# A second herdd on a live directory is refused, and the first keeps serving.
"$HERDD" -c "$T/a.json" >"$T/dup.log" 2>&1 && fail "second herdd on a live dir started"
grep -q "another herdd is listening" "$T/dup.log" || fail "unclear refusal: $(cat "$T/dup.log")"
wait_until "$HERDCTL" --runtime-dir "$RUN_A" --timeout 1 status || fail "a stopped answering"
[ "$(status_get "$RUN_A" supervisor.pid)" = "$PID_A" ] || fail "a replaced"

# kill -9 leaves stale socket files; the next herdd removes them and starts.
kill -9 "$PID_A"; wait "$PID_A" 2>/dev/null
[ -S "$RUN_A/request.ipc" ] || fail "expected a stale socket file after kill -9"
start_herdd "$T/a.json" "$T/a2.log"
grep -q "removed stale socket file" "$T/a2.log" || fail "stale files not reported"
[ "$(status_get "$RUN_A" supervisor.pid)" = "$HERDD_PID" ] || fail "new a not serving"
wait_until "$HERDCTL" --runtime-dir "$RUN_B" --timeout 1 status || fail "b disturbed"

# SIGTERM: exit 0, socket files removed.
kill -TERM "$PID_B"; wait "$PID_B"; rc=$?
[ $rc = 0 ] || fail "herdd b exited $rc on SIGTERM"
for f in events publish request; do [ -e "$RUN_B/$f.ipc" ] && fail "$f.ipc left behind"; done
pass "two herdd side by side, live refused, stale cleaned, SIGTERM clean"
