# herdctl sub receives what herdctl pub sends, through exact topics, `*` and
# `>` patterns, and nothing for non-matching topics.
. "$(dirname "$0")/lib.sh"

write_config "$T/herd.json"
start_herdd "$T/herd.json"

"$HERDCTL" sub 'sensors.*.temp' >"$T/star.out" 2>"$T/star.log" & track $!
"$HERDCTL" sub 'sensors.>' >"$T/gt.out" 2>"$T/gt.log" & track $!
"$HERDCTL" sub 'sensors.kitchen.temp' >"$T/exact.out" 2>"$T/exact.log" & track $!
"$HERDCTL" --json sub '>' >"$T/all.out" 2>"$T/all.log" & track $!
wait_until remote_subscribers_at_least "$RUN" 4 || fail "subscribers did not connect"

"$HERDCTL" pub sensors.kitchen.temp '{"c": 21.5}' || fail "pub 1"
"$HERDCTL" pub sensors.hall.temp '{"c": 19}' || fail "pub 2"
"$HERDCTL" pub sensors.hall.humidity '{"rh": 40}' || fail "pub 3"
"$HERDCTL" pub sensors '{"bare": true}' || fail "pub 4"
echo '{"from": "stdin"}' | "$HERDCTL" pub other.topic || fail "pub 5"
"$HERDCTL" pub sensors.kitchen.temp.extra '[1,2]' || fail "pub 6"

# The catch-all subscriber sees all six; wait for it, then compare.
wait_until at_least 6 lines_of "$T/all.out" || fail "catch-all saw $(wc -l <"$T/all.out") of 6"
sleep 0.3

expect() {
    printf '%s\n' "$2" >"$T/want"
    diff -u "$T/want" "$T/$1.out" || fail "$1 subscriber got unexpected events"
}
expect star 'sensors.kitchen.temp {"c": 21.5}
sensors.hall.temp {"c": 19}'
expect gt 'sensors.kitchen.temp {"c": 21.5}
sensors.hall.temp {"c": 19}
sensors.hall.humidity {"rh": 40}
sensors.kitchen.temp.extra [1,2]'
expect exact 'sensors.kitchen.temp {"c": 21.5}'
# --json: one object a line, the payload parsed.
[ "$(sed -n 5p "$T/all.out" | json_get payload.from)" = "stdin" ] || fail "--json sub line 5"
[ "$(sed -n 4p "$T/all.out" | json_get topic)" = "sensors" ] || fail "--json sub line 4"

# --count exits after N events.
timeout 10 "$HERDCTL" sub 'count.>' --count 2 >"$T/count.out" & cpid=$!; track $cpid
wait_until remote_subscribers_at_least "$RUN" 5 || fail "count subscriber did not connect"
for i in 1 2 3; do "$HERDCTL" pub count.n "$i"; done
wait $cpid || fail "sub --count 2 did not exit 0"
[ "$(cat "$T/count.out")" = "$(printf 'count.n 1\ncount.n 2')" ] || fail "sub --count output"

# Bad input from herdctl is a usage error and nothing is sent.
"$HERDCTL" pub 'bad..topic' '{}' 2>/dev/null; [ $? -eq 2 ] || fail "bad topic exit code"
"$HERDCTL" pub good.topic '{nope' 2>/dev/null; [ $? -eq 2 ] || fail "bad JSON exit code"
"$HERDCTL" sub 'a.>.b' 2>/dev/null; [ $? -eq 2 ] || fail "bad pattern exit code"
pass "pub/sub through exact, * and > patterns"
