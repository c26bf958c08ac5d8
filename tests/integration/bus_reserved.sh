# Topics herdd owns (system.<w>.state, system.<w>.health,
# system.<w>.warning, system.supervisor.>, job.>, catalog.>) are refused when a client
# publishes them on publish.ipc: dropped, counted as "reserved", never
# delivered to a subscriber. Look-alike topics and system.<w>.control stay
# open. herdctl pub refuses a reserved topic itself (usage error, exit 2)
# and sends nothing.
. "$(dirname "$0")/lib.sh"
command -v nngcat >/dev/null || fail "nngcat not installed (scripts/bootstrap installs nng-utils)"

cat >"$T/c.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [{"name": "jobs", "kind": "jobs", "allow_argv": true, "kill_timeout_s": 1}]}
JSON
start_herdd "$T/c.json"
C="$HERDCTL --runtime-dir $RUN"
bus_stat() { status_get "$RUN" "supervisor.bus.$1"; }

# raw_push TOPIC PAYLOAD: the documented frame, TOPIC NUL PAYLOAD, sent by
# nngcat (not by our client library, which refuses reserved topics itself).
raw_push() {
    printf '%s\0%s' "$1" "$2" >"$T/frame.bin"
    nngcat --push0 --dial "ipc://$RUN/publish.ipc" --file "$T/frame.bin" || fail "nngcat push $1"
}

$C sub 'job.>' >"$T/sub_job.out" 2>"$T/sub_job.log" & track $!
$C sub '>' >"$T/sub_all.out" 2>"$T/sub_all.log" & track $!
wait_until remote_subscribers_at_least "$RUN" 2 || fail "subscribers did not connect"
[ "$(bus_stat dropped.reserved)" = 0 ] || fail "reserved drops before the test"
in0=$(bus_stat remote_in)

# 1. Forged events of every reserved kind, raw on publish.ipc.
n=0
for topic in job.jobs.state job.jobs.0123456789abcdef0123456789abcdef.state \
    job.jobs.0123456789abcdef0123456789abcdef.output system.jobs.state system.jobs.health \
    system.jobs.warning \
    system.supervisor.health system.supervisor.x.y catalog.cat.reloaded; do
    n=$((n + 1))
    raw_push "$topic" "{\"status\":\"completed\",\"forged\":$n}"
done
wait_until yields $n bus_stat dropped.reserved ||
    fail "reserved drops: $(bus_stat dropped.reserved), want $n"
[ "$(bus_stat remote_in)" = $((in0 + n)) ] || fail "remote_in $(bus_stat remote_in), want $((in0 + n))"

# 2. Look-alikes and control, sent the same way, are delivered; as they
# come after the forged frames on herdd's one events socket, once they
# have arrived a forged frame that got through would have too.
raw_push ext.probe '{"probe":1}'
raw_push jobs.x.state '{"probe":2}'
raw_push system.nosuch.control '{"action":"start","probe":3}'
probes_seen() { [ "$(grep -c '"probe":' "$T/sub_all.out")" = 3 ]; }
wait_until probes_seen || fail "non-reserved topics not all delivered: $(cat "$T/sub_all.out")"
for t in ext.probe jobs.x.state system.nosuch.control; do
    grep -q "^$t {" "$T/sub_all.out" || fail "$t not delivered: $(cat "$T/sub_all.out")"
done
[ "$(bus_stat dropped.reserved)" = $n ] || fail "a non-reserved topic was counted as reserved"
grep -q forged "$T/sub_all.out" "$T/sub_job.out" &&
    fail "a forged reserved event was delivered: $(grep -h forged "$T/sub_all.out" "$T/sub_job.out")"

# The job.> subscriber does get herdd's own job events.
id=$($C job submit jobs -- true) || fail "submit"
wait_until grep -q "^job\.jobs\.$id\.state {.*\"completed\"" "$T/sub_job.out" ||
    fail "job.> subscriber missed the real job's events: $(cat "$T/sub_job.out")"
grep -q forged "$T/sub_job.out" && fail "job.> subscriber got a forged event"
[ "$(wc -l <"$T/sub_job.out")" = "$(grep -c "^job\.jobs\.$id\." "$T/sub_job.out")" ] ||
    fail "job.> subscriber got events not of the real job: $(cat "$T/sub_job.out")"
pass "$n forged reserved events dropped and counted; look-alikes and control delivered"

# 3. herdctl pub refuses reserved topics with a usage error; nothing is sent.
in1=$(bus_stat remote_in)
for topic in job.x.state job.jobs.abc.output system.w.state system.w.health \
    system.supervisor.health catalog.c.reloaded; do
    $C pub "$topic" '{"forged":"cli"}' >"$T/pub.out" 2>"$T/pub.err"; rc=$?
    [ $rc = 2 ] || fail "herdctl pub $topic: exit $rc, want 2"
    head -n 1 "$T/pub.err" | grep -qxF "herdctl pub: \"$topic\" is a topic herdd owns (system.<w>.state and .health, system.supervisor.>, job.>, catalog.>): only herdd publishes it" ||
        fail "herdctl pub $topic: $(cat "$T/pub.err")"
    grep -qF "Usage: herdctl pub TOPIC [JSON]" "$T/pub.err" || fail "herdctl pub $topic: no usage line"
done
# The payload from stdin: refused before anything is read or sent.
echo '{"forged":"stdin"}' | $C pub job.x.state 2>/dev/null; rc=$?
[ $rc = 2 ] || fail "herdctl pub job.x.state from stdin: exit $rc, want 2"
$C pub ext.after '{"probe":"after"}' || fail "herdctl pub ext.after"
wait_until grep -q '^ext.after ' "$T/sub_all.out" || fail "ext.after not delivered"
[ "$(bus_stat remote_in)" = $((in1 + 1)) ] ||
    fail "refused herdctl pubs reached herdd: remote_in $in1 -> $(bus_stat remote_in)"
[ "$(bus_stat dropped.reserved)" = $n ] || fail "reserved drops changed by refused herdctl pubs"
grep -q forged "$T/sub_all.out" && fail "a refused herdctl pub was delivered"
pass "herdctl pub refuses reserved topics (exit 2) and sends nothing"

kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exit $rc after SIGTERM"
