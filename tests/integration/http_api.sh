# herdd's HTTP server (http.listen on a free port): /healthz 200, then 503
# naming a stopped permanent worker (not a transient or disabled one);
# /api/status is herdctl status; /api/events streams a stop's state
# changes and the heartbeats, and subscribes to the bus only while a client
# is connected; 405, 404, 413, 431; keep-alive (two requests on one
# connection, and pipelined); at most 64 connections (the next answered
# 503); a client that does not finish its head within 10 s closed with a
# 408; an event stream never read cut off at 256 KiB; a busy or bad
# address stops herdd with a message naming it.
. "$(dirname "$0")/lib.sh"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": "127.0.0.1:$PORT"},
 "health_interval_s": 1,
 "workers": [
  {"name": "w", "kind": "process", "argv": ["sleep", "$MARK"]},
  {"name": "t", "kind": "process", "argv": ["sleep", "$((MARK + 1))"], "restart": "transient"},
  {"name": "off", "kind": "process", "argv": ["sleep", "1"], "enabled": false},
  {"name": "loop", "kind": "process", "argv": ["false"], "enabled": false, "restart": "transient",
   "backoff": {"initial_ms": 0, "max_ms": 0}, "intensity": {"max_restarts": 1000, "period_s": 1}}
 ]}
JSON
start_herdd "$T/herd.json"
wait_until worker_state_is w running || fail "w did not start"
grep -q "http: listening on http://127.0.0.1:$PORT/" "$T/herdd.log" || fail "listening address not logged"

# A small client for what curl cannot do: raw bytes, several requests on
# one connection, many connections, a slow client.
cat >"$T/client.py" <<'PY'
import socket, sys, time
host, port = "127.0.0.1", int(sys.argv[1])

def connect():
    return socket.create_connection((host, port), timeout=20)

def read_response(s, buf=b"", head_only=False):
    """One response (Content-Length bodies; none when head_only, as for
    HEAD); returns (status, headers, body, rest)."""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise SystemExit("EOF before a response head: %r" % buf)
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
    n = 0 if head_only else int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        d = s.recv(65536)
        if not d:
            raise SystemExit("EOF in a body")
        rest += d
    return status, hdrs, rest[:n], rest[n:]

cmd = sys.argv[2]
if cmd == "keepalive":
    s = connect()
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    a = read_response(s)
    s.sendall(b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n")
    b = read_response(s)
    # pipelined: three at once, answered in order
    s.sendall(b"GET /healthz HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\nHEAD /healthz HTTP/1.1\r\n\r\n")
    c, rest = [], b""
    for i in range(3):
        st, h, body, rest = read_response(s, rest, head_only=i == 2)
        c.append(st)
    assert int(h["content-length"]) > 0 and rest == b"", (h, rest)
    print(a[0], b[0], b[2].startswith(b'{"supervisor"'), *c)
elif cmd == "raw":  # raw REQUEST (escapes allowed): prints the status line
    s = connect()
    s.sendall(sys.argv[3].encode().decode("unicode_escape").encode("latin-1"))
    print(read_response(s)[0])
elif cmd == "bigheader":
    s = connect()
    s.sendall(b"GET /healthz HTTP/1.1\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n")
    print(read_response(s)[0])
elif cmd == "flood":  # N connections in the middle of a head, then one more
    n = int(sys.argv[3])
    held = []
    for _ in range(n):
        s = connect()
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        held.append(s)
    time.sleep(0.3)
    s = connect()
    s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
    st, h, body, _ = read_response(s)
    print(st, body.decode().strip())
    for h in held:
        h.close()
elif cmd == "noread":  # an event stream never read, through a small window
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((host, port))
    s.sendall(b"GET /api/events HTTP/1.1\r\n\r\n")
    time.sleep(float(sys.argv[3]))
elif cmd == "slow":  # a head never finished: seconds until closed, and what came
    s = connect()
    s.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
    t0, got = time.time(), b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
    print("%.1f" % (time.time() - t0), got.split(b"\r\n")[0].decode())
PY
client() { python3 "$T/client.py" "$PORT" "$@"; }

# /healthz: every enabled permanent worker runs.
code=$(curl -s -o "$T/h.json" -w '%{http_code}' "$URL/healthz") || fail "curl /healthz"
[ "$code" = 200 ] || fail "/healthz $code: $(cat "$T/h.json")"
[ "$(json_get ok <"$T/h.json")" = True ] || fail "/healthz body: $(cat "$T/h.json")"
[ "$(json_get checked <"$T/h.json")" = 1 ] || fail "/healthz checks only w: $(cat "$T/h.json")"

# /api/status is the status op's result: same workers, same supervisor.
curl -sf "$URL/api/status" >"$T/status.json" || fail "curl /api/status"
"$HERDCTL" --json status >"$T/herdctl.json" || fail "herdctl status"
python3 - "$T/status.json" "$T/herdctl.json" <<'PY' || fail "/api/status differs from herdctl status"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
names = lambda s: [w["worker"] for w in s["workers"]]
assert names(a) == names(b) == ["w", "t", "off", "loop"], (names(a), names(b))
assert a["supervisor"]["pid"] == b["supervisor"]["pid"]
assert [w["state"] for w in a["workers"]] == [w["state"] for w in b["workers"]]
assert set(a["supervisor"]) == set(b["supervisor"])
PY

# /api/events: nothing subscribed without a client; the stream gets the
# stop's state changes and heartbeats; the subscription goes with it.
subs0=$(status_get "$RUN" supervisor.bus.subscriptions)
curl -sN "$URL/api/events" >"$T/events.txt" 2>"$T/curl-events.err" &
CURL_PID=$!; track $CURL_PID
has_retry() { grep -q '^retry: ' "$T/events.txt"; }
wait_until has_retry || fail "no stream opened: $(cat "$T/events.txt" "$T/curl-events.err")"
[ "$(status_get "$RUN" supervisor.bus.subscriptions)" = $((subs0 + 1)) ] ||
    fail "the event stream should hold one subscription"
"$HERDCTL" stop w >/dev/null || fail "herdctl stop w"
has_stop() { grep -A1 '^event: system.w.state$' "$T/events.txt" | grep -q '"to":"stopped"'; }
has_beat() { grep -q '^event: system.supervisor.health$' "$T/events.txt" &&
    grep -A1 '^event: system.t.health$' "$T/events.txt" | grep -q '^data: {"worker":"t"'; }
wait_until has_stop || fail "no state change on /api/events: $(head -c 2000 "$T/events.txt")"
wait_until has_beat || fail "no heartbeat on /api/events: $(head -c 2000 "$T/events.txt")"
python3 - "$T/events.txt" <<'PY' || fail "malformed event stream"
import json, sys
text = open(sys.argv[1]).read()
events = [e for e in text.split("\n\n") if e.startswith("event: ")]
assert events, "no events"
for e in events:
    lines = e.split("\n")
    topic = lines[0][len("event: "):]
    assert topic.startswith("system.") and topic.rsplit(".", 1)[1] in ("state", "health"), topic
    data = "\n".join(l[len("data: "):] for l in lines[1:])
    assert json.loads(data), e
PY
kill $CURL_PID; wait $CURL_PID 2>/dev/null
wait_until yields "$subs0" status_get "$RUN" supervisor.bus.subscriptions ||
    fail "subscription kept after the last client left: $(status_get "$RUN" supervisor.bus.subscriptions)"

# /healthz: 503 naming the stopped permanent worker, and only it.
code=$(curl -s -o "$T/h.json" -w '%{http_code}' "$URL/healthz")
[ "$code" = 503 ] || fail "/healthz after stop: $code $(cat "$T/h.json")"
python3 - "$T/h.json" <<'PY' || fail "/healthz 503 body: $(cat "$T/h.json")"
import json, sys
b = json.load(open(sys.argv[1]))
assert b["ok"] is False
assert [(w["worker"], w["state"]) for w in b["not_running"]] == [("w", "stopped")], b
PY
"$HERDCTL" start w >/dev/null || fail "herdctl start w"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200 ] || fail "/healthz after start"

# Refusals.
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/healthz")" = 405 ] || fail "POST not 405"
curl -s -D - -o /dev/null -X DELETE "$URL/metrics" | grep -qi '^Allow: GET, HEAD' || fail "405 without Allow"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/")" = 200 ] || fail "/ (the dashboard) not 200"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/nothing")" = 404 ] || fail "/nothing not 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' --data 'x=1' -X GET "$URL/healthz")" = 413 ] || fail "body not 413"
[ "$(client bigheader)" = 431 ] || fail "9 KiB header not 431"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/$(printf 'a%.0s' $(seq 9000))")" = 431 ] ||
    fail "9 KiB target not 431"
[ "$(client raw 'BREW /pot HTCPCP/1.0\r\n\r\n')" = 400 ] || fail "garbage not 400"
[ "$(curl -s -o /dev/null -w '%{http_code}' -I "$URL/metrics")" = 200 ] || fail "HEAD /metrics"

# Keep-alive: two requests, then three pipelined, on one connection.
out=$(client keepalive) || fail "keep-alive client: $out"
[ "$out" = "200 200 True 200 404 200" ] || fail "keep-alive: $out"

# At most 64 connections: 64 mid-head, the next one is answered 503.
out=$(client flood 64) || fail "flood client: $out"
case $out in "503 "*"too many connections"*) ;; *) fail "65th connection: $out" ;; esac
[ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200 ] || fail "not served after the flood"

# A client that does not finish its head is closed after 10 s, with a 408.
out=$(client slow) || fail "slow client: $out"
set -- $out
python3 -c 'import sys; sys.exit(not 9 <= float(sys.argv[1]) <= 14)' "$1" || fail "slow client closed after $1 s"
[ "$2 $3" = "HTTP/1.1 408" ] || fail "slow client got: $out"
curl -s "$URL/metrics" >"$T/m.txt"
grep -q '^herd_http_timeouts_total 1$' "$T/m.txt" || fail "timeout not counted: $(grep timeouts "$T/m.txt")"
grep -Eq '^herd_http_connections_refused_total [1-9]' "$T/m.txt" || fail "refusal not counted"
grep -q '^herd_http_event_streams_started_total 1$' "$T/m.txt" || fail "stream not counted"
kill -0 "$HERDD_PID" || fail "herdd died"

# /api/events is bounded per client: one that does not read is cut off
# once 256 KiB wait for it (events from a worker restarting in a loop).
python3 "$T/client.py" "$PORT" noread 30 &
NOREAD_PID=$!; track $NOREAD_PID
sleep 0.5
"$HERDCTL" pub system.loop.control '{"action": "start"}' || fail "start loop"
cut_off() { curl -s "$URL/metrics" | grep -q '^herd_http_event_streams_cut_total 1$'; }
wait_until cut_off || fail "a stream never read was not cut off: $(curl -s "$URL/metrics" | grep streams)"
"$HERDCTL" stop loop >/dev/null 2>&1
wait_until worker_state_is loop stopped || fail "loop did not stop: $(worker_get loop state)"
grep -q "http: event stream cut off: the client left [0-9]* bytes unread (limit 262144)" "$T/herdd.log" ||
    fail "cut-off not logged"
kill $NOREAD_PID 2>/dev/null
curl -s "$URL/metrics" | grep -q '^herd_http_event_streams_open 0$' || fail "a stream left open"

# A busy address and one not on this host stop a second herdd at start.
RUN2="$T/run2"
printf '{"bus": {"dir": "%s"}, "state_dir": "%s/s2", "http": {"listen": "127.0.0.1:%s"}}\n' \
    "$RUN2" "$T" "$PORT" >"$T/busy.json"
timeout -s KILL 15 "$HERDD" -c "$T/busy.json" >"$T/busy.out" 2>&1; rc=$?
[ $rc = 1 ] || fail "herdd on a busy port: exit $rc"
grep -q "http.listen \"127.0.0.1:$PORT\": cannot listen: address already in use" "$T/busy.out" ||
    fail "busy port message: $(cat "$T/busy.out")"
[ -e "$RUN2/request.ipc" ] && fail "bus sockets left behind"
printf '{"bus": {"dir": "%s"}, "state_dir": "%s/s2", "http": {"listen": "192.0.2.1:%s"}}\n' \
    "$RUN2" "$T" "$PORT" >"$T/bad.json"
timeout -s KILL 15 "$HERDD" -c "$T/bad.json" >"$T/bad.out" 2>&1; rc=$?
[ $rc = 1 ] || fail "herdd on an address not here: exit $rc"
grep -q "http.listen \"192.0.2.1:$PORT\": cannot listen" "$T/bad.out" || fail "bad address message: $(cat "$T/bad.out")"

# SIGTERM with a stream open: herdd stops cleanly, the stream ends.
timeout 60 curl -sN "$URL/api/events" >"$T/events2.txt" 2>/dev/null &
CURL_PID=$!; track $CURL_PID
has_retry2() { grep -q '^retry: ' "$T/events2.txt"; }
wait_until has_retry2 || fail "second stream"
kill -TERM "$HERDD_PID"; wait "$HERDD_PID" || fail "herdd exit status with a stream open"
wait "$CURL_PID"; [ $? != 124 ] || fail "stream not ended by the shutdown"
grep -q '"to":"stopping"' "$T/events2.txt" || fail "the shutdown's state changes not streamed"
grep -q "handles open" "$T/herdd.log" && fail "loop closed with handles open"
pass "healthz, status, events, refusals, keep-alive, connection limit, slow client, addresses"
