# The webhook kind against HTTP servers this test starts on 127.0.0.1
# (webhook_server.py): a server answering 500 twice, then 200, gets the
# event three times and it is delivered exactly once (done 1, retries 2,
# http_5xx 2), each body {"ts","topic","payload"} with the payload the bytes
# published and the configured headers; a 404 is not retried (one request,
# failed 1, http_4xx 1); a refused connection is retried max_retries times
# then failed; libcurl is in /proc/PID/maps of a herdd with a webhook
# worker and not in one without; a libcurl.so.4 that cannot be loaded fails
# the worker naming the Debian package; bad configs are refused by
# `herdd --check` naming the key.
. "$(dirname "$0")/lib.sh"

# server NAME ARGS...: starts webhook_server.py logging requests to
# $T/NAME.jsonl; PORT is its port.
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
maps_curl() { grep -c 'libcurl' "/proc/$HERDD_PID/maps"; }

# ---- a herdd without webhook workers never maps libcurl ----------------------
cat >"$T/none.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [{"name": "arc", "kind": "archive", "subscribe": ["x.>"], "path": "$T/arc.jsonl"}]}
JSON
start_herdd "$T/none.json" "$T/herdd0.log"
wait_until worker_state_is arc running || fail "arc: $(worker_get arc state)"
$C pub x.y '{}' >/dev/null || fail "publish"
wait_until yields 1 worker_get arc "done" || fail "arc did not archive"
[ "$(maps_curl)" = 0 ] || fail "herdd without a webhook worker maps libcurl"
kill -TERM "$HERDD_PID"
wait "$HERDD_PID" || fail "herdd exit status $?"

server flaky --script 500,500
FLAKY=$PORT
server gone --status 404
GONE=$PORT
# A port nothing listens on.
REFUSED=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "flaky", "kind": "webhook", "subscribe": ["ev.flaky"],
   "url": "http://127.0.0.1:$FLAKY/hooks/in?token=s3cret",
   "headers": {"Authorization": "Bearer t0ken", "X-Herd-Test": "yes"},
   "retry_backoff": {"initial_ms": 200, "max_ms": 1000}},
  {"name": "gone", "kind": "webhook", "subscribe": ["ev.gone"], "url": "http://127.0.0.1:$GONE/",
   "retry_backoff": {"initial_ms": 50}},
  {"name": "refused", "kind": "webhook", "subscribe": ["ev.refused"],
   "url": "http://127.0.0.1:$REFUSED/", "max_retries": 2, "retry_backoff": {"initial_ms": 50}}
 ]}
JSON
"$HERDD" --check -c "$T/herd.json" >"$T/check.out" 2>&1 || fail "good config refused: $(cat "$T/check.out")"
start_herdd "$T/herd.json"
wait_until worker_state_is flaky running || fail "flaky: $(worker_get flaky state)"
[ "$(maps_curl)" -gt 0 ] || fail "a herdd with a running webhook worker does not map libcurl"
grep -q "flaky: loaded libcurl.so.4: libcurl 7" "$T/herdd.log" || fail "libcurl's load not logged"
[ "$(grep -c 'loaded libcurl.so.4' "$T/herdd.log")" = 1 ] || fail "libcurl loaded more than once"

# ---- 500, 500, 200: delivered once, retried twice ----------------------------
PAYLOAD='{"n": 1, "s": "h\u00e9 \"q\"",  "a": [1.50, null]}'
t0=$(date +%s%N)
$C pub ev.flaky "$PAYLOAD" >/dev/null || fail "publish"
wait_until yields 1 worker_get flaky "done" || fail "flaky: $(h flaky)"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -ge 550 ] || fail "flaky done after $ms ms: the backoff (200 ms, then 400) was not kept"
sleep 0.5 # nothing more comes
hf=$(h flaky)
[ "$(jf "$hf" received)" = 1 ] && [ "$(jf "$hf" failed)" = 0 ] && [ "$(jf "$hf" retries)" = 2 ] &&
    [ "$(jf "$hf" http_5xx)" = 2 ] && [ "$(jf "$hf" last_status)" = 200 ] &&
    [ "$(jf "$hf" in_flight)" = 0 ] && [ "$(jf "$hf" conn_errors)" = 0 ] || fail "flaky: $hf"
[ "$(requests flaky)" = 3 ] || fail "flaky server saw $(requests flaky) requests, expected 3"
python3 - "$T/flaky.jsonl" "$PAYLOAD" <<'PY' || fail "flaky: the requests"
import json, re, sys
reqs = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
sent = sys.argv[2]
assert [r["status"] for r in reqs] == [500, 500, 200], [r["status"] for r in reqs]
assert len({r["body"] for r in reqs}) == 1, "the retries sent another body"
for r in reqs:
    assert r["method"] == "POST" and r["path"] == "/hooks/in?token=s3cret", r
    hd = {k.lower(): v for k, v in r["headers"].items()}
    assert hd["content-type"] == "application/json", hd
    assert hd["authorization"] == "Bearer t0ken" and hd["x-herd-test"] == "yes", hd
    assert "expect" not in hd, hd
    v = json.loads(r["body"])
    assert sorted(v) == ["payload", "topic", "ts"], v
    assert v["topic"] == "ev.flaky", v
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", v["ts"]), v
    assert v["payload"] == json.loads(sent), v
    # spliced as received: the published bytes, spacing and 1.50 included
    assert r["body"].endswith('"payload":' + sent + "}"), r["body"]
PY
pass "500, 500, 200: one event delivered once after 2 retries ($ms ms), body and headers as configured"

# ---- 404: failed at once, never retried -------------------------------------
$C pub ev.gone '{"n": 2}' >/dev/null || fail "publish"
wait_until yields 1 worker_get gone failed || fail "gone: $(h gone)"
sleep 1 # 20 backoffs of 50 ms: a retry would have come
hg=$(h gone)
[ "$(jf "$hg" done)" = 0 ] && [ "$(jf "$hg" retries)" = 0 ] && [ "$(jf "$hg" http_4xx)" = 1 ] &&
    [ "$(jf "$hg" http_5xx)" = 0 ] && [ "$(jf "$hg" last_status)" = 404 ] || fail "gone: $hg"
[ "$(requests gone)" = 1 ] || fail "the 404 server saw $(requests gone) requests, expected 1"
jf "$hg" last_error | grep -q "event on ev.gone failed: HTTP 404 from http://127.0.0.1:$GONE (not retried): status 404" ||
    fail "gone last_error: $(jf "$hg" last_error)"
grep -q "gone: event on ev.gone failed: HTTP 404" "$T/herdd.log" || fail "the 404 was not logged"
pass "404: one request, failed, not retried"

# ---- refused: max_retries retries, then failed -------------------------------
$C pub ev.refused '{}' >/dev/null || fail "publish"
wait_until yields 1 worker_get refused failed || fail "refused: $(h refused)"
hr=$(h refused)
[ "$(jf "$hr" conn_errors)" = 3 ] && [ "$(jf "$hr" retries)" = 2 ] && [ "$(jf "$hr" done)" = 0 ] ||
    fail "refused: $hr"
jf "$hr" last_error | grep -q "failed after 2 retries: http://127.0.0.1:$REFUSED: " ||
    fail "refused last_error: $(jf "$hr" last_error)"
# The URL's path and query (a token) are never logged.
! grep -q "s3cret" "$T/herdd.log" || fail "the url's query reached the log"
pass "connection refused: 3 attempts, then failed"

kill -TERM "$HERDD_PID"
wait "$HERDD_PID" || fail "herdd exit status $?"

# ---- libcurl.so.4 that cannot be loaded --------------------------------------
mkdir -p "$T/badlib"
printf 'not a library\n' >"$T/badlib/libcurl.so.4"
cat >"$T/bad.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [{"name": "nolib", "kind": "webhook", "subscribe": ["x"], "url": "http://127.0.0.1:1/",
              "restart": "temporary"}]}
JSON
LD_LIBRARY_PATH="$T/badlib" start_herdd "$T/bad.json" "$T/herdd-bad.log"
wait_until worker_state_is nolib failed || fail "nolib: $(worker_get nolib state)"
worker_get nolib last_error | grep -q "cannot load libcurl.so.4 (install the Debian package libcurl4): " ||
    fail "nolib last_error: $(worker_get nolib last_error)"
kill -TERM "$HERDD_PID"
wait "$HERDD_PID" || fail "herdd exit status $?"
pass "an unloadable libcurl fails the worker, naming libcurl4"

n=$(check_refuses <<CASES
{"workers": [{"name": "w", "kind": "webhook", "subscribe": ["x"]}]}|workers[0].url: required, the http:// or https:// URL
{"workers": [{"name": "w", "kind": "webhook", "url": "http://h/"}]}|workers[0].subscribe: required
{"workers": [{"name": "w", "kind": "webhook", "subscribe": ["x"], "url": "gopher://h/"}]}|workers[0].url: "gopher://h/": expected an http:// or https:// URL
{"workers": [{"name": "w", "kind": "webhook", "subscribe": ["x"], "url": "http://h:70000/"}]}|workers[0].url: "http://h:70000/": bad port
{"workers": [{"name": "w", "kind": "webhook", "subscribe": ["x"], "url": "http://h/", "headers": {"X-A": "a\r\nB: c"}}]}|workers[0].headers.X-A: the value contains CR or LF
{"workers": [{"name": "w", "kind": "webhook", "subscribe": ["x"], "url": "http://h/", "headers": {"X A": "b"}}]}|workers[0].headers: "X A" is not a header name
{"workers": [{"name": "w", "kind": "webhook", "subscribe": ["x"], "url": "http://h/", "timeout_s": 0}]}|workers[0].timeout_s: expected whole seconds from 1 to 3600, got 0
{"workers": [{"name": "w", "kind": "webhook", "subscribe": ["x"], "url": "http://h/", "max_in_flight": 100}]}|workers[0].max_in_flight: expected an integer from 1 to 64, got 100
{"workers": [{"name": "w", "kind": "webhook", "subscribe": ["x"], "url": "http://h/", "max_retries": 101}]}|workers[0].max_retries: expected an integer from 0 to 100, got 101
{"workers": [{"name": "w", "kind": "webhook", "subscribe": ["x"], "url": "http://h/", "retry_backoff": {"initial_ms": 0}}]}|workers[0].retry_backoff.initial_ms: expected milliseconds from 1 to 3600000
{"workers": [{"name": "w", "kind": "webhook", "subscribe": ["x"], "url": "https://h/", "ca_file": "$T/no-such.pem"}]}|workers[0].ca_file "$T/no-such.pem": No such file or directory
{"workers": [{"name": "w", "kind": "webhook", "subscribe": ["x"], "url": "http://h/", "verb": "PUT"}]}|workers[0].verb: unknown key (expected subscribe, url, headers,
CASES
) || exit 1
[ "$n" -ge 12 ] || fail "only $n cases ran"
pass "--check refused $n bad webhook configs, each naming its key"
