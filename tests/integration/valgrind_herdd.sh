# herdd under valgrind's memcheck (issue 15): a config with every kind
# (catalog, jobs, process, archive, exec, webhook, forward, nats when
# libnats is installed), each kind of request served, events through every
# subscriber kind, malformed frames and requests, stop/start/restart, a
# reload that changes, adds and removes workers, then SIGTERM. The run must
# end with zero errors (invalid reads/writes, uninitialised use, bad frees)
# and zero bytes definitely lost. Skipped (77) under ASan (the two do not
# mix) and where valgrind is missing.
# Under valgrind every exec child exits 1, `true` included: the exec kind
# starts its children through /proc/self/exe, which under valgrind is
# valgrind's tool, not herdd (the likely cause; not yet confirmed). The
# test checks that herdd spawned and reaped each (received, then counted
# done or failed), which is herdd's side of it.
. "$(dirname "$0")/lib.sh"

[ "${HERD_SANITIZE:-0}" = 1 ] && { echo "SKIP: valgrind does not run an ASan build"; exit 77; }
command -v valgrind >/dev/null || { echo "SKIP: valgrind missing (apt-get install valgrind)"; exit 77; }

# wait_long CMD...: wait_until for a herdd running 20-50x slower (60 s).
wait_long() {
    local i
    for i in $(seq 1 300); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    return 1
}
C() { "$HERDCTL" --timeout 30 "$@"; }

gzip -dc "$HERD_TEST_DATA/esphome/components.json.gz" >"$T/comp.json" || fail "gunzip"
C catalog build "$T/comp.json" "$T/cat" >/dev/null || fail "catalog build"
WPORT=$(free_port)
HPORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 "$WPORT" --directory "$T" >"$T/web.log" 2>&1 &
track $!

nats_worker=""
if [ -e /usr/lib/x86_64-linux-gnu/libnats.so.3.4 ] || ldconfig -p 2>/dev/null | grep -q libnats.so.3.4; then
    # No server: the bridge starts, connects in the background and queues.
    nats_worker=', {"name": "bridge", "kind": "nats", "url": "nats://127.0.0.1:'"$(free_port)"'", "export": ["ev.>"], "host": "vg"}'
fi

write_workers() {
    local extra=$1 arch_keep=$2
    cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": "127.0.0.1:$HPORT"},
 "workers": [
  {"name": "cat", "kind": "catalog", "path": "$T/cat"},
  {"name": "jobs", "kind": "jobs", "types": {"hello": {"argv": ["echo", "{configuration}"]},
                                              "nap": {"argv": ["sleep", "30"]}}},
  {"name": "proc", "kind": "process", "argv": ["sleep", "$MARK"], "stop_timeout_s": 5},
  {"name": "arc", "kind": "archive", "subscribe": ["ev.>"], "path": "$T/arc/events.jsonl", "keep": $arch_keep},
  {"name": "ex", "kind": "exec", "subscribe": ["ev.exec"], "argv": ["true"], "timeout_s": 30},
  {"name": "hook", "kind": "webhook", "subscribe": ["ev.hook"], "url": "http://127.0.0.1:$WPORT/", "max_retries": 0},
  {"name": "fwd", "kind": "forward", "subscribe": ["ev.>"], "to": "ipc://$T/nowhere.ipc"}$nats_worker$extra]}
JSON
}
write_workers "" 2

valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
    --errors-for-leak-kinds=definite --error-exitcode=99 --child-silent-after-fork=yes \
    --log-file="$T/vg.log" "$HERDD" -c "$T/herd.json" >>"$T/herdd.log" 2>&1 &
HERDD_PID=$!
track $HERDD_PID
for i in $(seq 1 300); do C --timeout 2 status >/dev/null 2>&1 && break; kill -0 "$HERDD_PID" 2>/dev/null || break; sleep 0.2; done
C status >/dev/null || fail "herdd under valgrind did not answer"
running() { [ "$(worker_get "$1" state)" = running ]; }
for w in cat jobs proc arc ex hook fwd; do wait_long running $w || fail "$w not running: $(C status)"; done
wait_long yields 961 status_get "$RUN" workers.0.entries || fail "catalog not loaded"
echo "herdd up under valgrind with: cat jobs proc arc ex hook fwd ${nats_worker:+bridge}"

# Requests of every kind.
C status >/dev/null && C --json status >/dev/null && C mem >/dev/null && C --json mem >/dev/null ||
    fail "status/mem"
C catalog list cat --limit 5 >/dev/null || fail "catalog list"
C catalog list cat --where '{"category": "light"}' --facets category --order name >/dev/null ||
    fail "catalog list where/facets/order"
C catalog search cat sensor >/dev/null || fail "catalog search"
id=$(C --json catalog list cat --limit 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["entries"][0]["id"])') ||
    fail "catalog id"
C catalog get cat "$id" >/dev/null || fail "catalog get $id"
C catalog get cat no-such-id >/dev/null 2>&1 && fail "catalog get of a missing id succeeded"
j1=$(C job submit jobs --type hello --configuration vg.yaml) || fail "job submit"
j2=$(C job submit jobs --type nap) || fail "job submit nap"
[ "$(job_end jobs "$j1")" = completed ] || fail "job $j1 did not complete"
C job output jobs "$j1" | grep -q "vg.yaml" || fail "job output"
C job list jobs >/dev/null && C job get jobs "$j2" >/dev/null || fail "job list/get"
C job cancel jobs "$j2" >/dev/null || fail "job cancel"
job_end jobs "$j2" >/dev/null || fail "cancelled job did not end"
C job clear jobs >/dev/null 2>&1 || true
C req supervisor nosuchop >/dev/null 2>&1 && fail "an unknown op succeeded"
C req nosuchservice status >/dev/null 2>&1 && fail "an unknown service succeeded"

# Events through every subscriber kind, and malformed input.
for i in 1 2 3; do
    C pub ev.exec '{"n": '$i'}' && C pub ev.hook '{"n": '$i'}' && C pub ev.other '{"n": '$i'}' ||
        fail "pub"
done
"$HERD_PUB" "$RUN" ev.bulk 2000 100 >/dev/null || fail "herd-pub"
"$HERD_STORM" "$RUN" 200 50 1048576 >/dev/null 2>&1 || true
done_at_least() { [ "$(worker_get "$1" "$2")" -ge "$3" ]; }
ran() { [ $(($(worker_get ex done) + $(worker_get ex failed))) -ge 3 ]; }
wait_long ran || fail "exec did not run 3 events: $(worker_health ex)"
wait_long done_at_least arc done 2009 || fail "archive did not write 2009 events: $(worker_health arc)"
curl -sf "http://127.0.0.1:$HPORT/healthz" >/dev/null || fail "/healthz"
curl -sf "http://127.0.0.1:$HPORT/metrics" >/dev/null || fail "/metrics"
curl -sf "http://127.0.0.1:$HPORT/api/status" >/dev/null || fail "/api/status"
curl -s "http://127.0.0.1:$HPORT/nope" >/dev/null

# Control, then reloads that change, add and remove workers.
C stop arc >/dev/null && C start arc >/dev/null && C restart hook >/dev/null || fail "stop/start/restart"
write_workers ', {"name": "extra", "kind": "archive", "subscribe": ["x.>"], "path": "'"$T"'/extra.jsonl"}' 3
C reload >/dev/null || fail "reload (change arc, add extra)"
wait_long running extra || fail "extra not running after reload"
write_workers "" 3
kill -HUP "$HERDD_PID"
gone() { ! C --json status | grep -q '"worker": *"extra"'; }
wait_long gone || fail "extra still there after SIGHUP"
C status >/dev/null || fail "status after reloads"

kill -TERM "$HERDD_PID"
for i in $(seq 1 300); do kill -0 "$HERDD_PID" 2>/dev/null || break; sleep 0.2; done
wait "$HERDD_PID"; rc=$?
sed -n '/HEAP SUMMARY/,$p' "$T/vg.log"
[ "$(alive_marked "$MARK")" = 0 ] || fail "the process worker's child outlived herdd"
errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$T/vg.log" | tail -1)
definite=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$T/vg.log" | tail -1 | tr -d ,)
[ -n "$errors" ] || fail "no valgrind summary in $T/vg.log: $(tail -20 "$T/vg.log")"
[ "$errors" = 0 ] && [ "${definite:-0}" = 0 ] || {
    sed -n '1,200p' "$T/vg.log" >&2
    fail "valgrind: $errors errors, ${definite:-0} bytes definitely lost (herdd exit $rc)"
}
[ $rc = 0 ] || fail "herdd under valgrind exited $rc"
pass "memcheck: every kind, every kind of request, reloads, SIGTERM: 0 errors, 0 bytes definitely lost"
