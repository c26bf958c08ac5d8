# One client cannot stall the others or pin memory: a raw req0 client that
# pipelines 400 catalog lists (about 500 KB each) and never reads its
# replies gets `busy` once pending_reply_bytes of its replies wait unread,
# herdd's RSS stays under a bound, and another client's status still
# answers. Under a descriptor limit of 128, 300 held connections are capped
# (the oldest idle ones make room: connections_evicted) and a job can still
# be submitted.
. "$(dirname "$0")/lib.sh"

RSS_BOUND_MB=160
python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
entries = [{"id": f"entry-{i:05d}", "name": f"an entry named {i}", "description": "d" * 20}
           for i in range(6000)]
json.dump({"things": entries}, open(f"{t}/cat.json", "w"))
PY
"$HERDCTL" catalog build "$T/cat.json" "$T/out" >/dev/null || fail "catalog build"
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN", "pending_reply_bytes": "4M"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [{"name": "cat", "kind": "catalog", "path": "$T/out"},
             {"name": "jobs", "kind": "jobs", "types": {"hello": {"argv": ["echo", "hi"]}}}]}
JSON
start_herdd "$T/herd.json"
wait_until worker_state_is cat running || fail "catalog worker"
wait_until at_least 1 status_get "$RUN" workers.0.entries || fail "catalog worker did not load"
size=$("$HERDCTL" req cat list '{"limit": 100000}' | wc -c)
[ "$size" -gt 300000 ] || fail "a list reply is only $size bytes"

# A raw req0 client: SP handshake, 400 requests, and it never reads.
python3 - "$RUN/request.ipc" >"$T/raw.log" 2>&1 <<'PY' &
import json, socket, struct, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
s.sendall(b"\x00SP\x00\x00\x30\x00\x00")  # req0
assert len(s.recv(8)) == 8
body = json.dumps({"service": "cat", "op": "list", "args": {"limit": 100000}}).encode()
for i in range(400):
    msg = struct.pack(">I", 0x80000000 | i) + body
    s.sendall(b"\x01" + struct.pack(">Q", len(msg)) + msg)
time.sleep(30)  # hold the connection, read nothing
PY
raw=$!
track $raw
peak=0
slow=0
for i in $(seq 1 20); do
    r=$(herdd_rss_mib); [ "$r" -gt "$peak" ] && peak=$r
    start=$(date +%s%N)
    "$HERDCTL" --timeout 3 status >/dev/null || fail "status failed while a client does not read"
    ms=$((($(date +%s%N) - start) / 1000000))
    [ $ms -gt $slow ] && slow=$ms
    sleep 0.2
done
busy=$(status_get "$RUN" supervisor.bus.dropped.busy)
[ "$busy" -gt 0 ] || fail "the client that does not read was never answered busy"
[ "$peak" -lt $RSS_BOUND_MB ] || fail "herdd's RSS reached $peak MiB (bound $RSS_BOUND_MB)"
kill $raw 2>/dev/null
pass "a client that never reads: $busy requests answered busy, herdd peak RSS $peak MiB (< $RSS_BOUND_MB), status at most $slow ms"

# Descriptors: herdd under nofile=128 with 300 connections held.
kill -TERM "$HERDD_PID"; wait "$HERDD_PID"
prlimit --nofile=128:128 "$HERDD" -c "$T/herd.json" >>"$T/herdd.log" 2>&1 &
HERDD_PID=$!
track $HERDD_PID
wait_for_herdd "$RUN" || fail "herdd under nofile=128 did not start"
python3 - "$RUN/request.ipc" <<'PY' &
import socket, sys, time
held = []
for i in range(300):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(sys.argv[1])
        s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
        s.recv(8)
    except OSError:
        pass
    held.append(s)
time.sleep(20)
PY
holder=$!
track $holder
sleep 3
refused=$(status_get "$RUN" supervisor.bus.connections_refused)
evicted=$(status_get "$RUN" supervisor.bus.connections_evicted)
[ $((refused + evicted)) -gt 0 ] || fail "300 held connections under nofile=128 were not capped"
wait_until worker_state_is jobs running || fail "jobs worker under nofile=128"
id=$("$HERDCTL" job submit jobs --type hello) || fail "job submit with 300 connections held"
"$HERDCTL" job follow jobs "$id" >/dev/null || fail "the job did not run"
kill $holder 2>/dev/null
pass "nofile=128: of 300 held connections $evicted idle ones closed for newer ones, $refused refused; a job still submitted and run"
