# /metrics: `promtool check metrics` passes with no lint warning while
# workers of several kinds run, one is stopped and one has failed, an event
# stream is open and refusals were counted; every family has HELP and TYPE
# and is written whole, counters end in _total, the standard process_*
# metrics are there; and the figures match `herdctl status`: per worker
# state, up, restarts, memory_max, the kinds' own fields (catalog entries,
# archive counters, jobs by status), workers by state, the supervisor's
# memory.
. "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null || fail "promtool missing (scripts/bootstrap installs prometheus)"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
CATALOG="$HERD_BUILD_DIR/demo/catalog"
[ -e "$CATALOG/current" ] || fail "no demo catalog in the build tree ($CATALOG)"
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": "127.0.0.1:$PORT"},
 "workers": [
  {"name": "w", "kind": "process", "argv": ["sleep", "$MARK"], "memory_max": "64M",
   "memory_high": "32M"},
  {"name": "cat", "kind": "catalog", "path": "$CATALOG"},
  {"name": "jobs", "kind": "jobs", "types": {"hi": {"argv": ["true"]}}},
  {"name": "arc", "kind": "archive", "subscribe": ["sensor.>"], "path": "$T/arc/events.jsonl"},
  {"name": "x", "kind": "exec", "subscribe": ["never.>"], "argv": ["true"]},
  {"name": "idle", "kind": "process", "argv": ["sleep", "$((MARK + 1))"]},
  {"name": "bad", "kind": "process", "argv": ["false"], "restart": "temporary"}
 ]}
JSON
start_herdd "$T/herd.json"
wait_until worker_state_is cat running || fail "cat: $(worker_get cat state) $(worker_get cat last_error)"
wait_until worker_state_is arc running || fail "arc did not start"
wait_until worker_state_is bad failed || fail "bad: $(worker_get bad state)"
"$HERDCTL" stop idle >/dev/null || fail "stop idle"
for i in 1 2 3; do "$HERDCTL" pub sensor.t "{\"i\": $i}" || fail "pub"; done
wait_until yields 3 worker_get arc done || fail "archive: $(worker_get arc done)"
"$HERDCTL" job submit jobs --type hi >/dev/null || fail "job submit"
curl -s -o /dev/null -X POST "$URL/metrics"
curl -s -o /dev/null "$URL/nope"
curl -sN "$URL/api/events" >/dev/null &
CURL_PID=$!; track $CURL_PID
sleep 0.5

curl -sf "$URL/metrics" >"$T/metrics.txt" || fail "curl /metrics"
curl -sf -D "$T/headers.txt" -o /dev/null "$URL/metrics" || fail "curl -D /metrics"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/headers.txt" || fail "content type: $(cat "$T/headers.txt")"
promtool check metrics <"$T/metrics.txt" >"$T/promtool.out" 2>&1 || fail "promtool: $(cat "$T/promtool.out")"
[ -s "$T/promtool.out" ] && fail "promtool lint: $(cat "$T/promtool.out")"

# The checks promtool's linter leaves to us, and the figures.
"$HERDCTL" --json status >"$T/status.json" || fail "herdctl status"
python3 - "$T/metrics.txt" "$T/status.json" <<'PY' || fail "metrics (see above)"
import json, re, sys
text = open(sys.argv[1]).read()
status = json.load(open(sys.argv[2]))
types, helps, samples, order = {}, {}, {}, []
line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
for line in text.splitlines():
    if line.startswith("# HELP "):
        name = line.split()[2]
        assert name not in helps, "two HELP lines for " + name
        helps[name] = line
        order.append(name)
    elif line.startswith("# TYPE "):
        _, _, name, typ = line.split()
        assert name not in types and order[-1] == name, "TYPE of %s not after its HELP" % name
        types[name] = typ
    else:
        m = line_re.match(line)
        assert m, "bad line: " + line
        name = m.group(1)
        assert order and order[-1] == name, "sample of %s outside its family" % name
        labels = tuple(label_re.findall(m.group(3) or ""))
        assert (name, labels) not in samples, "duplicate sample " + line
        samples[(name, labels)] = float(m.group(4))
for name, typ in types.items():
    assert name.startswith(("herd_", "process_")), name
    assert (typ == "counter") == name.endswith("_total"), (name, typ)
for p in ("resident_memory_bytes", "virtual_memory_bytes", "cpu_seconds_total", "open_fds",
          "max_fds", "start_time_seconds"):
    assert "process_" + p in types, "no process_" + p

def get(name, **labels):
    for (n, ls), v in samples.items():
        if n == name and dict(ls) == {k: str(v) for k, v in labels.items()}:
            return v
    raise AssertionError("no sample %s%s" % (name, labels))

states = ["stopped", "starting", "running", "stopping", "backoff", "failed"]
for w in status["workers"]:
    wl = {"worker": w["worker"], "kind": w["kind"]}
    assert get("herd_worker_up", **wl) == (w["state"] == "running"), w["worker"]
    for st in states:
        assert get("herd_worker_state", state=st, **wl) == (w["state"] == st), (w["worker"], st)
    assert get("herd_worker_restarts_total", **wl) == w["restarts"], w["worker"]
    if w["memory_max"] is not None:
        assert get("herd_worker_memory_max_bytes", **wl) == w["memory_max"]
    else:
        try:
            get("herd_worker_memory_max_bytes", **wl)
            raise SystemExit("memory_max_bytes for %s without one" % w["worker"])
        except AssertionError:
            pass
for st in states:
    assert get("herd_workers", state=st) == status["supervisor"]["workers"].get(st, 0), st
assert get("herd_worker_memory_max_bytes", worker="w", kind="process") == 64 << 20
assert get("herd_worker_memory_high_bytes", worker="w", kind="process") == 32 << 20
by = {w["worker"]: w for w in status["workers"]}
assert get("herd_worker_entries", worker="cat", kind="catalog") == by["cat"]["entries"] == 6
assert "herd_worker_lru_hits_total" in types and types["herd_worker_lru_hits_total"] == "counter"
assert get("herd_worker_received_total", worker="arc", kind="archive") == by["arc"]["received"] == 3
assert get("herd_worker_done_total", worker="arc", kind="archive") == 3
assert get("herd_worker_queue_depth", worker="x", kind="exec") == 0
assert types["herd_worker_queue_depth"] == "gauge"
assert "herd_worker_jobs_completed" in types or "herd_worker_jobs_queued" in types, "no jobs fields"
assert not any(n.startswith("herd_worker_exit_codes") for n in types), "exit_codes exported"
assert not any(n.startswith("herd_worker_lanes") for n in types), "lanes exported"
# a stopped worker reports no kind fields, a running one does
assert not any(n == "herd_worker_rss_bytes" and dict(l)["worker"] == "idle" for n, l in samples)
assert get("herd_worker_rss_bytes", worker="w", kind="process") > 0
sup = status["supervisor"]
# the host's name in fleet topics, so a dashboard can join instance and host
assert any(n == "herd_build_info" and dict(l).get("host") == sup["host"] for n, l in samples)
assert get("herd_supervisor_uss_bytes") > 0 and get("herd_supervisor_rss_bytes") > 0
assert abs(get("herd_supervisor_rss_bytes") - sup["rss_bytes"]) < 16 << 20
assert get("herd_bus_dropped_total", reason="reserved") == sup["bus"]["dropped"]["reserved"]
assert get("herd_bus_published_total") <= sup["bus"]["published"]
assert get("herd_http_responses_total", code="405") == 1
assert get("herd_http_responses_total", code="404") == 1
assert get("herd_http_event_streams_open") == 1
assert get("herd_bus_subscriptions") == sup["bus"]["subscriptions"]
print("checked %d families, %d samples" % (len(types), len(samples)))
PY
kill $CURL_PID 2>/dev/null
kill -0 "$HERDD_PID" || fail "herdd died"
pass "/metrics: promtool clean, families whole, figures as in status"
