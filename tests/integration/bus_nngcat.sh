# nngcat (nng-utils, a client we did not write) speaks the documented frame
# in both directions: it subscribes to events.ipc and publishes to
# publish.ipc; a malformed frame from it is dropped and counted.
. "$(dirname "$0")/lib.sh"
command -v nngcat >/dev/null || fail "nngcat not installed (scripts/bootstrap installs nng-utils)"

write_config "$T/herd.json"
start_herdd "$T/herd.json"

# herdd -> nngcat. Only the literal prefix is an nng filter: "ext." here.
nngcat --sub0 --dial "ipc://$RUN/events.ipc" --subscribe "ext." --quoted --count 2 \
    >"$T/nngcat.out" 2>"$T/nngcat.log" & ncpid=$!; track $ncpid
wait_until remote_subscribers_at_least "$RUN" 1 || fail "nngcat did not connect"
"$HERDCTL" pub other.topic '{"skip":1}' || fail "pub other"
"$HERDCTL" pub ext.a '{"n":1}' || fail "pub ext.a"
"$HERDCTL" pub ext.b '{"s":"x y"}' || fail "pub ext.b"
wait_until at_least 2 lines_of "$T/nngcat.out" || fail "nngcat got $(cat "$T/nngcat.out")"
cat >"$T/want" <<'OUT'
"ext.a\x00{\"n\":1}"
"ext.b\x00{\"s\":\"x y\"}"
OUT
diff -u "$T/want" "$T/nngcat.out" || fail "nngcat received unexpected frames"

# nngcat -> herdd -> herdctl sub. The first nngcat has gone (it exits after
# two frames), so the subscriber counted next is herdctl's.
wait $ncpid || fail "nngcat sub failed"
wait_until yields 0 status_get "$RUN" supervisor.bus.remote_subscribers || fail "nngcat sub still counted"
printf 'ext.from_nngcat\0{"k":true}' >"$T/frame.bin"
"$HERDCTL" sub 'ext.from_nngcat' --count 1 >"$T/sub.out" 2>"$T/sub.log" & spid=$!; track $spid
wait_until remote_subscribers_at_least "$RUN" 1 || fail "herdctl sub did not connect"
nngcat --push0 --dial "ipc://$RUN/publish.ipc" --file "$T/frame.bin" || fail "nngcat push"
wait $spid || fail "herdctl sub did not get the nngcat frame"
[ "$(cat "$T/sub.out")" = 'ext.from_nngcat {"k":true}' ] || fail "got: $(cat "$T/sub.out")"

# Malformed frames from nngcat are dropped and counted by reason.
nngcat --push0 --dial "ipc://$RUN/publish.ipc" --data "no-terminator" || fail "nngcat push 2"
printf 'bad..topic\0{}' >"$T/bad_topic.bin"
nngcat --push0 --dial "ipc://$RUN/publish.ipc" --file "$T/bad_topic.bin" || fail "nngcat push 3"
printf 'ok.topic\0{not json' >"$T/bad_json.bin"
nngcat --push0 --dial "ipc://$RUN/publish.ipc" --file "$T/bad_json.bin" || fail "nngcat push 4"
wait_until yields 1 status_get "$RUN" supervisor.bus.dropped.bad_json || fail "bad_json not counted"
[ "$(status_get "$RUN" supervisor.bus.dropped.no_nul)" = 1 ] || fail "no_nul not counted"
[ "$(status_get "$RUN" supervisor.bus.dropped.bad_topic)" = 1 ] || fail "bad_topic not counted"
pass "nngcat subscribes and publishes with the documented frame"
