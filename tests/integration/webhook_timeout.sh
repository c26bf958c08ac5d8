# The webhook kind against a server that accepts, reads the request and
# never answers: each attempt times out at timeout_s (counted in timeouts,
# retried, then failed), `herdctl status` answers within a second all the
# while (nothing blocks the loop), and a stop with requests hanging ends at
# once: what was in flight counted failed, what was queued dropped, no
# abandoned stop.
. "$(dirname "$0")/lib.sh"

server() {
    local name=$1
    shift
    python3 "$(dirname "$0")/webhook_server.py" "$T/$name.jsonl" "$@" >"$T/$name.port" 2>"$T/$name.err" &
    track $!
    wait_until test -s "$T/$name.port" || fail "server $name did not start: $(cat "$T/$name.err")"
    PORT=$(head -n 1 "$T/$name.port")
}
requests() { [ -f "$T/$1.jsonl" ] && wc -l <"$T/$1.jsonl" || echo 0; }
C="$HERDCTL --runtime-dir $RUN"
h() { worker_health "$1"; }
jf() { printf '%s' "$1" | json_get "$2"; }

server deaf --hang
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "slow", "kind": "webhook", "subscribe": ["ev.slow"], "url": "http://127.0.0.1:$PORT/",
   "timeout_s": 2, "max_retries": 1, "retry_backoff": {"initial_ms": 100}},
  {"name": "stuck", "kind": "webhook", "subscribe": ["ev.stuck"], "url": "http://127.0.0.1:$PORT/",
   "timeout_s": 3600, "max_in_flight": 2, "stop_timeout_s": 2}
 ]}
JSON
start_herdd "$T/herd.json"
wait_until worker_state_is slow running || fail "slow: $(worker_get slow state)"

t0=$(date +%s%N)
$C pub ev.slow '{"n": 1}' >/dev/null || fail "publish"
first_ms="" slowest=0 calls=0
# Until the event fails (2 attempts of 2 s and a 100 ms backoff): status
# every 200 ms, each answered within a second.
while :; do
    c0=$(date +%s%N)
    out=$($C --timeout 2 --json status) || fail "status did not answer while requests hang"
    c=$((($(date +%s%N) - c0) / 1000000))
    [ "$c" -gt "$slowest" ] && slowest=$c
    calls=$((calls + 1))
    hs=$(printf '%s' "$out" | python3 -c '
import json, sys
for w in json.load(sys.stdin)["workers"]:
    if w["worker"] == "slow":
        print(w["timeouts"], w["failed"], w["in_flight"], w["retries"])')
    read -r timeouts failed in_flight retries <<<"$hs"
    now=$((($(date +%s%N) - t0) / 1000000))
    [ -z "$first_ms" ] && [ "$timeouts" -ge 1 ] && first_ms=$now
    [ "$failed" = 1 ] && break
    [ "$now" -lt 15000 ] || fail "slow did not fail within 15 s: $(h slow)"
    sleep 0.2
done
total_ms=$(($(date +%s%N) - t0))
total_ms=$((total_ms / 1000000))
[ "$slowest" -lt 1000 ] || fail "a status call took $slowest ms while requests hung"
[ -n "$first_ms" ] && [ "$first_ms" -ge 1900 ] && [ "$first_ms" -lt 3500 ] ||
    fail "the first timeout was seen after ${first_ms:-never} ms (timeout_s 2)"
[ "$total_ms" -ge 4000 ] && [ "$total_ms" -lt 6500 ] || fail "failed after $total_ms ms (2 x 2 s + 100 ms)"
hs=$(h slow)
[ "$(jf "$hs" timeouts)" = 2 ] && [ "$(jf "$hs" retries)" = 1 ] && [ "$(jf "$hs" done)" = 0 ] &&
    [ "$(jf "$hs" in_flight)" = 0 ] && [ "$(jf "$hs" conn_errors)" = 0 ] || fail "slow: $hs"
jf "$hs" last_error | grep -q "event on ev.slow failed after 1 retries: no answer from http://127.0.0.1:$PORT within timeout_s 2 s" ||
    fail "slow last_error: $(jf "$hs" last_error)"
[ "$(requests deaf)" = 2 ] || fail "the server saw $(requests deaf) requests, expected 2"
pass "timeouts at timeout_s 2 (first after $first_ms ms, failed after $total_ms ms); $calls status calls, the slowest $slowest ms"

# ---- a stop while the server never answers -----------------------------------
for i in 1 2 3 4 5; do $C pub ev.stuck "{\"i\": $i}" >/dev/null || fail "publish"; done
wait_until yields 4 requests deaf || fail "stuck: the server saw $(requests deaf) requests"
wait_until yields 3 worker_get stuck queue_depth || fail "stuck: $(h stuck)"
hs=$(h stuck)
[ "$(jf "$hs" in_flight)" = 2 ] && [ "$(jf "$hs" received)" = 5 ] || fail "stuck: $hs"
t0=$(date +%s%N)
$C stop stuck >/dev/null || fail "stop stuck"
wait_until worker_state_is stuck stopped || fail "stuck is $(worker_get stuck state)"
stop_ms=$((($(date +%s%N) - t0) / 1000000))
[ "$stop_ms" -lt 1500 ] || fail "the stop took $stop_ms ms"
grep -q "stuck: stopping: 2 requests aborted (counted failed), 3 queued events dropped" "$T/herdd.log" ||
    fail "the stop's counts were not logged"
! grep -q "abandoned" "$T/herdd.log" || fail "a stop was abandoned"
# And it comes back: a start opens a new session.
$C start stuck >/dev/null || fail "start stuck"
wait_until worker_state_is stuck running || fail "stuck is $(worker_get stuck state)"
$C pub ev.stuck '{}' >/dev/null
wait_until yields 1 worker_get stuck in_flight || fail "stuck after restart: $(h stuck)"
t0=$(date +%s%N)
kill -TERM "$HERDD_PID"
wait "$HERDD_PID" || fail "herdd exit status $?"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 2000 ] || fail "herdd took $ms ms to stop with a request hanging"
pass "a stop with 2 requests hanging took $stop_ms ms (2 failed, 3 dropped); herdd's, with one, $ms ms"
