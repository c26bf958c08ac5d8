# herdctl --nats URL --host HOST against stand-in hosts: a few lines of
# python speaking the NATS text protocol to a real nats-server, answering
# fleet.<host>.request as a host's nats worker does (the reply is the bus
# reply), exporting events as fleet.<host>.<topic> and recording what is
# published on fleet.<host>.>. Checks: the request body and reply on the
# wire, the same output and exit codes as over the local sockets (status,
# start/stop, req with exact bytes, error replies and --json errors), pub
# and sub through the fleet.<host>. prefix, exit 3 naming the URL (no
# server) or the host (no responder, no reply within --timeout), usage
# errors (2), and fleet status's scatter-gather (rows per host, sorted,
# --json, a host gone, none left).
# Skips (77) without nats-server.
. "$(dirname "$0")/lib.sh"

NATS_SERVER=$(command -v nats-server || ls /usr/sbin/nats-server 2>/dev/null)
[ -x "$NATS_SERVER" ] || { echo "SKIP: nats-server is not installed"; exit 77; }

PORT=$(free_port)
URL="nats://127.0.0.1:$PORT"
"$NATS_SERVER" -a 127.0.0.1 -p "$PORT" >"$T/nats.log" 2>&1 &
NATS_PID=$!
track $NATS_PID
port_open() { python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1"; }
wait_until port_open "$PORT" || fail "nats-server did not listen on $PORT"

# The stand-in: host.py PORT HOST READYFILE.
cat >"$T/host.py" <<'PY'
import json, os, socket, sys

port, host, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
f.readline()  # INFO
def send(b):
    s.sendall(b)
def pub(subject, payload, reply=None):
    data = payload if isinstance(payload, bytes) else payload.encode()
    send(("PUB %s %s%d\r\n" % (subject, reply + " " if reply else "", len(data))).encode()
         + data + b"\r\n")
send(b'CONNECT {"verbose":false,"pedantic":false,"echo":false,"name":"stand-in"}\r\n')
prefix = "fleet.%s." % host
send(("SUB %srequest 1\r\nSUB fleet.all.request 2\r\nSUB %s> 3\r\nPING\r\n"
      % (prefix, prefix)).encode())
seen = []

def ok(result):
    return json.dumps({"ok": True, "result": result})

def err(code, message):
    return json.dumps({"ok": False, "error": {"code": code, "message": message}})

def health(name, state):
    return {"worker": name, "kind": "process", "state": state, "pid": 42 if state == "running" else 0,
            "uptime_s": 7, "restarts": 0, "heap_bytes": 2048,
            "last_error": "exited with status 1" if state == "failed" else None}

def answer(body):
    try:
        r = json.loads(body)
    except ValueError:
        return err("bad_request", "not JSON")
    service, op, args = r.get("service"), r.get("op"), r.get("args")
    if service == "supervisor" and op == "status":
        return ok({"supervisor": {"host": host, "version": "0.9-standin", "pid": os.getpid(),
                                  "uptime_s": 7300, "rss_bytes": 5 << 20, "pss_bytes": 4 << 20,
                                  "uss_bytes": 3 << 20, "runtime_dir": "(stand-in " + host + ")",
                                  "workers": {"running": 2, "failed": 1},
                                  "bus": {"published": 1, "delivered": 2, "requests": 3,
                                          "remote_subscribers": 0, "dropped": {}}},
                   "workers": [health("w", "running"), health("broken", "failed")]})
    if service == "supervisor" and op in ("start", "stop", "restart"):
        w = (args or {}).get("worker")
        if w not in ("w", "broken"):
            return err("not_found", 'no worker "%s"' % w)
        return ok(health(w, "stopped" if op == "stop" else "failed" if w == "broken" else "running"))
    if service == "test" and op == "args":
        return ok(r)  # the request body as it came
    if service == "test" and op == "big":
        return '{"ok":true,"result":{"n":123456789012345678901234567890,"s":"caf\\u00e9"}}'
    if service == "test" and op == "emit":
        pub(prefix + args["topic"], args["raw"] if "raw" in args else json.dumps(args["payload"]))
        return ok({})
    if service == "test" and op == "seen":
        return ok(seen)
    if service == "slow":
        return None
    return err("unknown_service", 'no service "%s"' % service)

while True:
    line = f.readline()
    if not line:
        break
    parts = line.decode().split()
    if not parts:
        continue
    if parts[0] == "PING":
        send(b"PONG\r\n")
    elif parts[0] == "PONG":
        open(ready, "w").close()
    elif parts[0] == "MSG":
        subject, sid = parts[1], parts[2]
        reply = parts[3] if len(parts) == 5 else None
        data = f.read(int(parts[-1]) + 2)[:-2]
        if sid in ("1", "2"):
            a = answer(data.decode())
            if a is not None and reply:
                pub(reply, a)
        elif not subject.endswith(".request"):
            seen.append({"topic": subject[len(prefix):], "payload": data.decode()})
    elif parts[0] == "-ERR":
        print("stand-in %s: %s" % (host, line.decode().strip()), file=sys.stderr)
PY
# start_host HOST: a stand-in for HOST, connected and subscribed.
start_host() {
    python3 "$T/host.py" "$PORT" "$1" "$T/$1.ready" >>"$T/host-$1.log" 2>&1 &
    eval "HOST_PID_$1=$!"
    track $!
    wait_until test -e "$T/$1.ready" || fail "stand-in $1 did not connect"
}
start_host edge1
start_host edge2

N="$HERDCTL --nats $URL --host edge1"

# 1. Usage errors: exit 2, before any connection.
usage() {
    local what=$1 want=$2 rc; shift 2
    "$HERDCTL" "$@" >"$T/out" 2>"$T/err"; rc=$?
    [ $rc = 2 ] || fail "$what: exit $rc, want 2 ($(cat "$T/err"))"
    grep -qF -- "$want" "$T/err" || fail "$what: expected \"$want\" in: $(cat "$T/err")"
}
usage "--nats without --host" "--nats needs --host HOST" --nats "$URL" status
usage "--host without --nats" "--host needs --nats URL" --host edge1 status
usage "--runtime-dir with --nats" "--runtime-dir and --nats exclude each other" \
    --runtime-dir "$RUN" --nats "$URL" --host edge1 status
usage "an http URL" '"http://127.0.0.1:4222": expected nats://HOST[:PORT]' \
    --nats http://127.0.0.1:4222 --host edge1 status
usage "a bad port" "the port is not from 1 to 65535" --nats nats://127.0.0.1:70000 --host edge1 status
usage "a URL without host" "no host" --nats nats:// --host edge1 status
usage "a host with a dot" '"a.b" is not a host name' --nats "$URL" --host a.b status
usage "--host all" "fleet status asks them all" --nats "$URL" --host all status
usage "fleet status without --nats" "needs --nats URL" fleet status
usage "fleet status with --host" "--host does not go with it" --nats "$URL" --host edge1 fleet status
usage "fleet status with an extra argument" 'unexpected argument "x"' fleet status --nats "$URL" x
usage "fleet without a subcommand" "Usage: herdctl fleet" fleet
usage "a command's own usage, over NATS" "expected one worker name" --nats "$URL" --host edge1 start
pass "usage errors (exit 2): --nats/--host/--runtime-dir combinations, bad URLs and hosts, fleet"

# --help names the new options and commands, at every level.
"$HERDCTL" --help >"$T/out" || fail "herdctl --help"
for w in "--nats URL" "--host HOST" "fleet status"; do
    grep -qF -- "$w" "$T/out" || fail "herdctl --help does not mention $w"
done
"$HERDCTL" fleet --help | grep -q "^  status" || fail "herdctl fleet --help"
"$HERDCTL" fleet status --help >"$T/out" || fail "herdctl fleet status --help"
grep -q "Usage: herdctl fleet status --nats URL" "$T/out" || fail "fleet status --help: $(cat "$T/out")"
$N status --help | grep -q "Usage: herdctl status" || fail "status --help with --nats"

# 2. The same output as over the local sockets.
$N status >"$T/out" 2>"$T/err" || fail "status over NATS: $(cat "$T/err")"
grep -q "^herdd 0.9-standin  pid [0-9]*  up 2h  rss 5.0 MiB" "$T/out" || fail "status: $(cat "$T/out")"
grep -q "^bus (stand-in edge1): 1 published" "$T/out" || fail "status bus line: $(cat "$T/out")"
grep -q "^w  *process  *running  *42 " "$T/out" || fail "status worker row: $(cat "$T/out")"
[ "$($N --json status | json_get supervisor.host)" = edge1 ] || fail "--json status host"
[ "$("$HERDCTL" --nats "$URL" --host edge2 --json status | json_get supervisor.host)" = edge2 ] ||
    fail "--host edge2 reached another host"
# The request body on the wire is the bus request body.
$N --json req test args '{"a": [1, "x"]}' >"$T/out" || fail "req test args"
python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); assert r == {"service": "test", "op": "args", "args": {"a": [1, "x"]}}, r' "$T/out" ||
    fail "the request body: $(cat "$T/out")"
$N --json req test args >"$T/out" || fail "req test args without ARGS_JSON"
[ "$(json_get args <"$T/out")" = "{}" ] || fail "args defaults to {}: $(cat "$T/out")"
# req prints the result's bytes as they came (numbers of any size).
[ "$($N --json req test big)" = '{"n":123456789012345678901234567890,"s":"caf\u00e9"}' ] ||
    fail "req keeps the reply's bytes: $($N --json req test big)"
# start/stop/restart: the reply is the settled health; exit 1 when not running.
[ "$($N start w)" = "w: running (pid 42)" ] || fail "start w: $($N start w 2>&1)"
[ "$($N stop w)" = "w: stopped" ] || fail "stop w: $($N stop w 2>&1)"
$N restart broken >"$T/out" 2>&1; rc=$?
[ $rc = 1 ] || fail "restart of a worker that fails: exit $rc, want 1"
grep -qx "broken: failed: exited with status 1" "$T/out" || fail "restart broken: $(cat "$T/out")"
# An error reply: exit 1, its message; with --json, the error object on stderr.
$N start nosuch >"$T/out" 2>"$T/err"; rc=$?
[ $rc = 1 ] && [ "$(cat "$T/err")" = 'herdctl: not_found: no worker "nosuch"' ] ||
    fail "error reply: exit $rc, $(cat "$T/err")"
[ -s "$T/out" ] && fail "an error reply printed a result"
$N --json req nosvc op >/dev/null 2>"$T/err"; rc=$?
[ $rc = 1 ] && [ "$(json_get code <"$T/err")" = unknown_service ] || fail "--json error: $rc $(cat "$T/err")"
pass "status, req (body and bytes), start/stop/restart and error replies over NATS, as locally"

# 3. pub and sub through fleet.<host>.
$N pub sensors.kitchen.temp '{"c": 21.5}' || fail "pub over NATS"
printf '[1, 2]\n' | $N pub from.stdin || fail "pub from stdin over NATS"
$N --json req test seen >"$T/out" || fail "req test seen"
python3 -c '
import json, sys
seen = json.load(open(sys.argv[1]))
assert {"topic": "sensors.kitchen.temp", "payload": "{\"c\": 21.5}"} in seen, seen
assert {"topic": "from.stdin", "payload": "[1, 2]"} in seen, seen' "$T/out" ||
    fail "the stand-in did not see the events on fleet.edge1.<topic>: $(cat "$T/out")"
"$HERDCTL" --nats "$URL" --host edge2 --json req test seen | grep -q sensors &&
    fail "an event for edge1 reached edge2"
$N pub system.w.state '{}' 2>/dev/null; [ $? = 2 ] || fail "pub of a topic herdd owns over NATS"
$N pub bad..topic '{}' 2>/dev/null; [ $? = 2 ] || fail "pub of a bad topic over NATS"

# sub: events of fleet.edge1.<topic> print as <topic>; what is not an event
# (a payload that is not JSON) is dropped.
emit_until_seen() { # FILE ARGS_JSON...: emits until FILE has a line
    local file=$1 i a; shift
    for i in $(seq 1 50); do
        for a in "$@"; do $N req test emit "$a" >/dev/null || return 1; done
        [ -s "$file" ] && return 0
        sleep 0.1
    done
    return 1
}
$N sub 'echo.>' --count 1 >"$T/sub.out" 2>"$T/sub.err" &
SUB=$!
track $SUB
emit_until_seen "$T/sub.out" '{"topic": "echo.x", "raw": "not json"}' \
    '{"topic": "other.a", "payload": 0}' '{"topic": "echo.a.b", "payload": {"n": 1}}' ||
    fail "sub over NATS saw nothing: $(cat "$T/sub.err")"
wait $SUB; rc=$?
[ $rc = 0 ] || fail "sub --count 1 exit $rc: $(cat "$T/sub.err")"
[ "$(cat "$T/sub.out")" = 'echo.a.b {"n": 1}' ] || fail "sub over NATS printed: $(cat "$T/sub.out")"
$N --json sub 'echo.*' --count 1 >"$T/sub.out" 2>"$T/sub.err" &
SUB=$!
track $SUB
emit_until_seen "$T/sub.out" '{"topic": "echo.j", "payload": {"k": [true]}}' || fail "sub --json saw nothing"
wait $SUB || fail "sub --json exit"
[ "$(cat "$T/sub.out")" = '{"topic":"echo.j","payload":{"k":[true]}}' ] ||
    fail "sub --json over NATS printed: $(cat "$T/sub.out")"
pass "pub and sub over NATS: TOPIC is fleet.edge1.TOPIC on the wire, the prefix stripped"

# 4. Not reachable: exit 3, naming the URL or the host.
DEAD="nats://127.0.0.1:$(free_port)"
for c in status "pub a.b {}" "sub a.>" "req supervisor status" "start w"; do
    # shellcheck disable=SC2086
    "$HERDCTL" --nats "$DEAD" --host edge1 --timeout 1 $c >/dev/null 2>"$T/err"; rc=$?
    [ $rc = 3 ] || fail "$c with no NATS server: exit $rc, want 3"
    grep -qF "NATS server $DEAD not reachable" "$T/err" || fail "$c, no server: $(cat "$T/err")"
done
"$HERDCTL" fleet status --nats "$DEAD" 2>"$T/err"; rc=$?
[ $rc = 3 ] && grep -qF "$DEAD" "$T/err" || fail "fleet status, no server: exit $rc, $(cat "$T/err")"
# A host nobody answers for: at once (the server says no responders).
"$HERDCTL" --nats "$URL" --host edge9 status 2>"$T/err"; rc=$?
[ $rc = 3 ] || fail "an unknown host: exit $rc, want 3"
grep -q "host edge9 not reachable through NATS $URL" "$T/err" || fail "unknown host: $(cat "$T/err")"
# A host that does not reply within --timeout.
start=$(date +%s%N)
$N --timeout 0.5 req slow op 2>"$T/err"; rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
[ $rc = 3 ] || fail "no reply: exit $rc, want 3"
grep -qF "host edge1 did not answer through NATS $URL within 0.5 s" "$T/err" || fail "no reply: $(cat "$T/err")"
[ $ms -ge 450 ] && [ $ms -lt 3000 ] || fail "--timeout 0.5 took $ms ms"
pass "exit 3 naming the URL (no server) or the host (no responder, no reply within --timeout)"

# 5. fleet status: one row per host, sorted; --json; hosts going away.
"$HERDCTL" fleet status --nats "$URL" >"$T/out" 2>"$T/err" || fail "fleet status: $(cat "$T/err")"
[ "$(awk 'NR > 1 {print $1}' "$T/out" | tr '\n' ' ')" = "edge1 edge2 " ] || fail "fleet status rows: $(cat "$T/out")"
head -n 1 "$T/out" | grep -q "^HOST  *VERSION  *UPTIME  *RSS  *WORKERS  *RUNNING  *FAILED" ||
    fail "fleet status header: $(cat "$T/out")"
grep -q "^edge1  *0.9-standin  *2h  *5.0 MiB  *3  *2  *1$" "$T/out" || fail "fleet status row: $(cat "$T/out")"
start_host edge0
"$HERDCTL" --nats "$URL" --json fleet status --timeout 0.5 >"$T/out" || fail "fleet status --json"
python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
assert [r["host"] for r in rows] == ["edge0", "edge1", "edge2"], rows
r = rows[1]
assert r["version"] == "0.9-standin" and r["uptime_s"] == 7300 and r["rss_bytes"] == 5 << 20, r
assert r["workers"] == {"running": 2, "failed": 1} and r["running"] == 2 and r["failed"] == 1, r
assert r["n_workers"] == 3 and r["pid"] > 0, r' "$T/out" || fail "fleet status --json: $(cat "$T/out")"
"$HERDCTL" fleet status --nats "$URL" --json >"$T/out" || fail "fleet status ... --json"
[ "$(json_get 2.host <"$T/out")" = edge2 ] || fail "fleet status --json after the command"
kill "$HOST_PID_edge2"
wait "$HOST_PID_edge2" 2>/dev/null
"$HERDCTL" fleet status --nats "$URL" --timeout 0.5 >"$T/out" || fail "fleet status with edge2 gone"
[ "$(awk 'NR > 1 {print $1}' "$T/out" | tr '\n' ' ')" = "edge0 edge1 " ] || fail "after edge2 left: $(cat "$T/out")"
kill "$HOST_PID_edge0" "$HOST_PID_edge1"
wait "$HOST_PID_edge0" "$HOST_PID_edge1" 2>/dev/null
"$HERDCTL" fleet status --nats "$URL" >"$T/out" 2>"$T/err"; rc=$?
[ $rc = 3 ] || fail "fleet status without hosts: exit $rc, want 3"
grep -q "no host answers on fleet.all.request through NATS $URL" "$T/err" || fail "no hosts: $(cat "$T/err")"
pass "fleet status: a row per host, sorted, --json; a host gone is a row gone; none: exit 3"

# 6. The server going away ends sub with an error, not a hang.
start_host edge1
$N sub 'x.>' >/dev/null 2>"$T/sub.err" &
SUB=$!
track $SUB
sleep 0.5
kill "$NATS_PID"
for i in $(seq 1 50); do kill -0 $SUB 2>/dev/null || break; sleep 0.1; done
kill -0 $SUB 2>/dev/null && fail "sub still runs after the NATS server stopped"
wait $SUB; rc=$?
[ $rc = 1 ] || fail "sub after the server stopped: exit $rc, want 1"
grep -q "closed the connection" "$T/sub.err" || fail "sub's message: $(cat "$T/sub.err")"
pass "sub ends (exit 1) when the NATS server goes away"
