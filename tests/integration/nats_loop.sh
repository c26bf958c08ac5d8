# Two herdd hosts (a, b), each with a nats worker exporting `>` and
# importing `>`, through one nats-server: every event is seen exactly once
# per host. A's local event reaches b once as fleet.a.<topic> and never
# comes back to a; an event on fleet.all.<topic> is delivered on both as
# <topic> once, and its local copy is not exported again (counted in
# ignored); a burst of 500 arrives whole, once; nothing on NATS ever has a
# subject fleet.<h>.fleet.*. Skipped (77) without nats-server.
. "$(dirname "$0")/lib.sh"

NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
[ -x "$NATS_SERVER" ] || { echo "SKIP: nats-server not installed (Debian package nats-server)"; exit 77; }
PROBE=${HERD_NATS_PROBE:-$HERD_BUILD_DIR/tests/herd-nats-probe}
[ -x "$PROBE" ] || fail "no herd-nats-probe at $PROBE"
NPORT=$(free_port)
NURL="nats://127.0.0.1:$NPORT"
long_until() { local i; for i in $(seq 1 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

"$NATS_SERVER" -a 127.0.0.1 -p "$NPORT" >"$T/nats.log" 2>&1 &
track $!
long_until "$PROBE" "$NURL" pub probe.ready '{}' || fail "nats-server did not start"

for h in a b; do
    mkdir -p "$T/$h"
    cat >"$T/$h.json" <<JSON
{"bus": {"dir": "$T/run-$h"}, "state_dir": "$T/state-$h", "http": {"listen": ""}, "host": "$h",
 "workers": [
  {"name": "nb", "kind": "nats", "url": "$NURL", "export": [">"], "import": [">"], "queue_max": 5000},
  {"name": "arc", "kind": "archive", "subscribe": ["loop.>", "fleet.>"], "path": "$T/$h/seen.jsonl",
   "fsync": "never"}
 ]}
JSON
    start_herdd "$T/$h.json" "$T/$h.log"
done
hget() {
    "$HERDCTL" --runtime-dir "$T/run-$1" --json status | python3 -c '
import json, sys
for w in json.load(sys.stdin)["workers"]:
    if w["worker"] == sys.argv[1]:
        v = w.get(sys.argv[2])
        print("" if v is None else v)' "$2" "$3"
}
for h in a b; do long_until yields True hget $h nb connected || fail "$h never connected"; done

# Everything on NATS, for the no-loop checks.
"$PROBE" "$NURL" sub '>' 0 60 >"$T/nats.out" 2>"$T/nats.err" &
track $!
long_until grep -q ready "$T/nats.err" || fail "probe never subscribed"

count() { grep -c "\"topic\":\"$2\"" "$T/$1/seen.jsonl" 2>/dev/null; }
on_nats() { grep -c "^$1 " "$T/nats.out"; }

"$HERDCTL" --runtime-dir "$T/run-a" pub loop.from_a '{"n": 1}' || fail pub
"$HERDCTL" --runtime-dir "$T/run-b" pub loop.from_b '{"n": 2}' || fail pub
"$PROBE" "$NURL" pub fleet.all.loop.everyone '{"n": 3}' || fail "probe pub"
"$HERD_PUB" "$T/run-a" loop.burst 500 >/dev/null || fail "herd-pub"

long_until yields 1 count b fleet.a.loop.from_a || fail "b did not get a's event"
long_until yields 1 count a fleet.b.loop.from_b || fail "a did not get b's event"
long_until yields 500 count b fleet.a.loop.burst || fail "b got $(count b fleet.a.loop.burst) of the burst"
for h in a b; do long_until yields 1 count $h loop.everyone || fail "$h: loop.everyone $(count $h loop.everyone)"; done
sleep 2 # time for a loop to show

for h in a b; do
    [ "$(count $h loop.everyone)" = 1 ] || fail "$h saw fleet.all's event $(count $h loop.everyone) times"
    [ "$(count $h fleet.$h.loop)" = 0 ] || fail "$h saw its own events come back"
done
[ "$(count a loop.from_a)" = 1 ] || fail "a saw its event $(count a loop.from_a) times"
[ "$(count b loop.from_b)" = 1 ] || fail "b saw its event $(count b loop.from_b) times"
[ "$(count b fleet.a.loop.from_a)" = 1 ] || fail "b saw a's event $(count b fleet.a.loop.from_a) times"
[ "$(count a fleet.b.loop.from_b)" = 1 ] || fail "a saw b's event $(count a fleet.b.loop.from_b) times"
[ "$(count a loop.burst)" = 500 ] || fail "a: loop.burst $(count a loop.burst)"
[ "$(count b fleet.a.loop.burst)" = 500 ] || fail "b: fleet.a.loop.burst $(count b fleet.a.loop.burst)"
[ "$(count a fleet.b.fleet)" = 0 ] && [ "$(count b fleet.a.fleet)" = 0 ] || fail "a fleet.* event was exported"

[ "$(on_nats fleet.a.loop.from_a)" = 1 ] || fail "fleet.a.loop.from_a on NATS $(on_nats fleet.a.loop.from_a) times"
[ "$(on_nats fleet.a.loop.burst)" = 500 ] || fail "fleet.a.loop.burst on NATS $(on_nats fleet.a.loop.burst) times"
[ "$(on_nats fleet.all.loop.everyone)" = 1 ] || fail "fleet.all.loop.everyone on NATS $(on_nats fleet.all.loop.everyone) times"
grep -q '^fleet\.[ab]\.loop\.everyone ' "$T/nats.out" && fail "an imported event was exported again"
grep -q '^fleet\.[a-z]*\.fleet\.' "$T/nats.out" && fail "a fleet.* topic went out again: $(grep '^fleet\.[a-z]*\.fleet\.' "$T/nats.out" | head -3)"
for h in a b; do
    at_least 1 hget $h nb ignored || fail "$h ignored nothing: $(hget $h nb ignored)"
done
pass "nats: two hosts exporting and importing everything see each event exactly once"
