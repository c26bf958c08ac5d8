# A process worker that exits 1 every time is restarted with doubling
# backoff, then `failed` after max_restarts, with its state events on the
# bus in order; meanwhile a steady worker's heartbeats keep their rhythm and
# its pid never changes. transient and temporary workers follow their rules.
. "$(dirname "$0")/lib.sh"

cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "steady", "kind": "process", "argv": ["sleep", "$MARK"], "health_interval_s": 1},
  {"name": "crasher", "kind": "process", "enabled": false,
   "argv": ["sh", "-c", "echo crashing; exit 1"],
   "backoff": {"initial_ms": 200, "max_ms": 5000}, "intensity": {"max_restarts": 3, "period_s": 60}},
  {"name": "transient-ok", "kind": "process", "enabled": false, "restart": "transient", "argv": ["true"]},
  {"name": "transient-bad", "kind": "process", "enabled": false, "restart": "transient",
   "argv": ["false"], "backoff": {"initial_ms": 100, "max_ms": 100}, "intensity": {"max_restarts": 2, "period_s": 60}},
  {"name": "temporary-bad", "kind": "process", "enabled": false, "restart": "temporary", "argv": ["false"]},
  {"name": "temporary-ok", "kind": "process", "enabled": false, "restart": "temporary", "argv": ["true"]}
 ]}
JSON
start_herdd "$T/herd.json"
wait_until worker_state_is steady running || fail "steady did not start"
steady_pid=$(worker_get steady pid)

"$HERDCTL" --json sub 'system.crasher.state' >"$T/states.out" 2>/dev/null & track $!
"$HERDCTL" --json sub 'system.steady.health' >"$T/health.out" 2>/dev/null & track $!
wait_until remote_subscribers_at_least "$RUN" 2 || fail "subscribers"
sleep 1.2

"$HERDCTL" start crasher >/dev/null 2>&1 # it runs, then crashes at once
wait_until worker_state_is crasher failed || fail "crasher never failed: $(worker_get crasher state)"
sleep 1.5 # a few more heartbeats of steady after the storm
[ "$(worker_get crasher restarts)" = 3 ] || fail "crasher restarts: $(worker_get crasher restarts)"
worker_get crasher last_error | grep -q "gave up" || fail "last_error: $(worker_get crasher last_error)"

# The state events, in order: 4 starts, 3 backoffs with doubling delays, failed.
python3 - "$T/states.out" <<'PY' || fail "state events out of order"
import json, sys
ev = [json.loads(l)["payload"] for l in open(sys.argv[1])]
seq = [(e["from"], e["to"]) for e in ev]
run = [("stopped", "starting"), ("starting", "running"), ("running", "stopping")]
again = [("stopping", "backoff"), ("backoff", "starting"), ("starting", "running"), ("running", "stopping")]
want = run + again * 3 + [("stopping", "failed")]
if seq != want:
    print("got ", seq, "\nwant", want, file=sys.stderr); sys.exit(1)
delays = [e["reason"].split("restart in ")[1] for e in ev if e["to"] == "backoff"]
if delays != ["200 ms", "400 ms", "800 ms"]:
    print("delays", delays, file=sys.stderr); sys.exit(1)
PY

# steady: heartbeats about every second throughout, same pid.
python3 - "$T/health.out" "$steady_pid" <<'PY' || fail "steady heartbeats disturbed"
import json, sys, datetime
hs = [json.loads(l)["payload"] for l in open(sys.argv[1])]
ts = [datetime.datetime.strptime(h["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() for h in hs]
gaps = [b - a for a, b in zip(ts, ts[1:])]
if len(hs) < 3 or max(gaps) > 2.5:
    print("heartbeats", len(hs), "gaps", gaps, file=sys.stderr); sys.exit(1)
if {h["pid"] for h in hs} != {int(sys.argv[2])} or {h["state"] for h in hs} != {"running"}:
    print("pids/states", {h["pid"] for h in hs}, {h["state"] for h in hs}, file=sys.stderr); sys.exit(1)
PY
[ "$(worker_get steady pid)" = "$steady_pid" ] || fail "steady pid changed"

# transient: a clean exit stays stopped; a failure is restarted, then gives up.
"$HERDCTL" start transient-ok >/dev/null 2>&1
wait_until worker_state_is transient-ok stopped || fail "transient-ok: $(worker_get transient-ok state)"
sleep 0.5
[ "$(worker_get transient-ok restarts)" = 0 ] || fail "transient-ok was restarted"
"$HERDCTL" start transient-bad >/dev/null 2>&1
wait_until worker_state_is transient-bad failed || fail "transient-bad: $(worker_get transient-bad state)"
[ "$(worker_get transient-bad restarts)" = 2 ] || fail "transient-bad restarts $(worker_get transient-bad restarts)"
# temporary: never restarted, whatever the exit.
"$HERDCTL" start temporary-bad >/dev/null 2>&1
wait_until worker_state_is temporary-bad failed || fail "temporary-bad: $(worker_get temporary-bad state)"
"$HERDCTL" start temporary-ok >/dev/null 2>&1
wait_until worker_state_is temporary-ok stopped || fail "temporary-ok: $(worker_get temporary-ok state)"
sleep 0.5
[ "$(worker_get temporary-bad restarts)" = 0 ] || fail "temporary-bad was restarted"
[ "$(worker_get temporary-ok restarts)" = 0 ] || fail "temporary-ok was restarted"
# herdctl start says so when the worker does not end up running.
"$HERDCTL" start temporary-bad >/dev/null 2>&1; [ $? = 1 ] || true
pass "restart policies: doubling backoff, give-up, transient, temporary; steady undisturbed"
