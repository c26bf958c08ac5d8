#!/bin/bash
# Catalog builds are atomic under SIGKILL, and a worker swaps versions under
# load without failing a single get.
#  1. 20 builds over an existing version, each killed with SIGKILL at a
#     fixed point from 5% to 95% of the measured build time (a build that
#     finishes first is run again with a shorter delay): after each,
#     `current` resolves to a complete version whose manifest verifies
#     (herd-catalog-check verify recomputes it from the bodies on disk).
#  2. Hot swap: gets in flight (three clients, mostly LRU misses, so bodies
#     are read from disk) during 10 rebuilds to new versions all succeed.
#     The compiler keeps the previous version on disk for exactly this.
. "$(dirname "$0")/lib.sh"

gzip -dc "$HERD_TEST_DATA/esphome/automations.json.gz" >"$T/automations.json"
echo '{"partition_field": "domain"}' >"$T/spec.json"

# ---- 1. kill -9 at fixed moments through a build ------------------------------
"$HERDCTL" catalog build --spec "$T/spec.json" "$T/automations.json" "$T/auto" >/dev/null ||
    fail "first build"
first=$(readlink "$T/auto/current")
# How long one build takes here (the median of three timed builds), so the
# kills spread over all of it.
times=""
for t in 1 2 3; do
    echo "{\"partition_field\": \"domain\", \"index_fields\": [\"name\", \"timing$t\"]}" >"$T/spec-t.json"
    start=$(date +%s%N)
    "$HERDCTL" catalog build --spec "$T/spec-t.json" "$T/automations.json" "$T/auto" >/dev/null ||
        fail "timed build $t"
    times="$times $((($(date +%s%N) - start) / 1000000))"
done
build_ms=$(printf '%s\n' $times | sort -n | sed -n 2p)
killed=0 completed=0
declare -A seen
for i in $(seq 1 20); do
    # kill i at 5% + (i - 1) * 90% / 19 of build_ms (ms * per mille = us). A
    # build that finished before its kill (exit 0, not 137: a faster run on a
    # loaded box) is run again with half the delay, the last time with none.
    delay_us=$((build_ms * (50 + (i - 1) * 900 / 19)))
    for try in 1 2 3 4 5 6; do
        [ $try = 6 ] && delay_us=0
        # a new spec each time: every build makes a new version
        echo "{\"partition_field\": \"domain\", \"index_fields\": [\"name\", \"k$i-$try\"]}" >"$T/spec-k.json"
        "$HERDCTL" catalog build --spec "$T/spec-k.json" "$T/automations.json" "$T/auto" \
            >/dev/null 2>&1 &
        b=$!
        track $b
        sleep "$((delay_us / 1000000)).$(printf '%06d' $((delay_us % 1000000)))"
        kill -KILL $b 2>/dev/null
        wait $b 2>/dev/null
        rc=$?
        [ $rc = 137 ] && break
        [ $rc = 0 ] || fail "kill $i: build exited $rc, neither killed nor complete"
        completed=$((completed + 1))
        delay_us=$((delay_us / 2))
    done
    [ $rc = 137 ] || fail "kill $i: every build finished before its kill, the last one with no delay"
    killed=$((killed + 1))
    cur=$(readlink "$T/auto/current") || fail "kill $i: current does not resolve"
    [ -d "$T/auto/$cur" ] || fail "kill $i: current names $cur, which is missing"
    v=$("$HERD_CATALOG_CHECK" verify "$T/auto") || fail "kill $i: $cur does not verify"
    [ "${v%% *}" = "$cur" ] && [ "${v#* }" = 1127 ] || fail "kill $i: verify said $v"
    seen[$cur]=1
done
[ $killed = 20 ] || fail "only $killed of 20 builds were killed mid-way (build takes ${build_ms} ms)"
# the next complete build sweeps what killed builds left behind
"$HERDCTL" catalog build --spec "$T/spec.json" "$T/automations.json" "$T/auto" >/dev/null ||
    fail "build after kills"
[ "$(readlink "$T/auto/current")" = "$first" ] || fail "rebuild of the first input"
left=$(ls -A "$T/auto" | grep -c '^\.tmp-')
[ "$left" = 0 ] || fail "$left temp entries left after a complete build"
[ "$(ls "$T/auto" | grep -c '^v-')" -le 2 ] || fail "more than current and previous kept"
pass "20 builds killed at 5..95% of a ${build_ms} ms build ($killed mid-way, $completed finished first and ran again sooner; ${#seen[@]} versions seen): current always complete and verified"

# ---- 2. hot swap under load -----------------------------------------------------
"$HERDCTL" catalog build --spec "$T/spec.json" "$T/automations.json" "$T/comp" >/dev/null ||
    fail "second catalog build"
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [{"name": "comp", "kind": "catalog", "path": "$T/comp", "lru_entries": 16}]}
JSON
start_herdd "$T/herd.json"
loaded() { [ "$(status_get "$RUN" workers.0.entries)" = 1127 ]; }
wait_until loaded || fail "comp did not load"
"$HERDCTL" --json catalog list comp --section actions | python3 -c '
import json, sys
for e in json.load(sys.stdin)["entries"]: print(e["id"])' >"$T/ids.txt"
[ "$(wc -l <"$T/ids.txt")" = 575 ] || fail "ids"

"$HERDCTL" sub 'catalog.comp.reloaded' --count 10 >"$T/reloaded.txt" &
SUB=$!
track $SUB
wait_until remote_subscribers_at_least "$RUN" 1 || fail "subscriber"
HAMMERS=""
for h in 1 2 3; do
    "$HERD_CATALOG_CHECK" hammer "$RUN" comp actions "$T/ids.txt" "$T/stop" \
        >"$T/hammer$h.out" 2>"$T/hammer$h.log" &
    track $!
    HAMMERS="$HAMMERS $!"
done
sleep 0.5
for i in $(seq 1 10); do
    echo "{\"partition_field\": \"domain\", \"index_fields\": [\"name\", \"h$i\"]}" >"$T/spec-h.json"
    "$HERDCTL" catalog build --spec "$T/spec-h.json" "$T/automations.json" "$T/comp" \
        >/dev/null || fail "rebuild $i"
done
last=$(readlink "$T/comp/current")
swapped() { [ "$(status_get "$RUN" workers.0.version)" = "$last" ]; }
wait_until swapped || fail "the worker did not reach $last"
sleep 0.5
touch "$T/stop"
for p in $HAMMERS; do
    wait $p || fail "gets failed during the swaps: $(cat "$T"/hammer*.log | head -5)"
done
total=$(cat "$T"/hammer*.out | awk '{ ok += $1; bad += $2 } END { print ok " " bad }')
[ "${total#* }" = 0 ] && [ "${total% *}" -gt 100 ] || fail "hammer counts: $total"
swaps=$(grep -c '^catalog.comp.reloaded ' "$T/reloaded.txt")
[ "$swaps" -ge 2 ] || fail "only $swaps swaps seen"
misses=$(status_get "$RUN" workers.0.lru.misses)
[ "$misses" -gt 100 ] || fail "only $misses LRU misses: bodies were not read from disk"
[ "$(status_get "$RUN" workers.0.last_error)" = None ] || fail "last_error after swaps"
pass "${total% *} gets during 10 rebuilds ($swaps swaps seen, $misses disk reads), none failed"
kill -0 $HERDD_PID || fail "herdd died"
