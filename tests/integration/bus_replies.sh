# Replies that cannot be built or sent: a reply over bus.max_reply_bytes is
# answered too_large (herdctl exit 1, not "not reachable"); a catalog body
# over it is never read; and when nng cannot allocate a reply (an
# LD_PRELOAD shim makes nng_msg_alloc fail over 100 KB) herdd answers a
# short `internal` error and carries on, where it used to crash.
. "$(dirname "$0")/lib.sh"

python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
entries = [{"id": f"e{i:05d}", "name": f"entry {i}", "category": "c%d" % (i % 7)} for i in range(20000)]
entries.append({"id": "big", "name": "a big body", "blob": "x" * 200000})
json.dump({"things": entries}, open(f"{t}/cat.json", "w"))
json.dump({"index_fields": ["name", "category"]}, open(f"{t}/spec.json", "w"))
PY
"$HERDCTL" catalog build --spec "$T/spec.json" "$T/cat.json" "$T/out" >/dev/null || fail "catalog build"

# 1. bus.max_reply_bytes: too_large, exit 1.
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN", "max_reply_bytes": "64K"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [{"name": "cat", "kind": "catalog", "path": "$T/out"}]}
JSON
start_herdd "$T/herd.json"
wait_until worker_state_is cat running || fail "catalog worker"
# running is not loaded: the index is built on the thread pool after start
wait_until catalog_loaded 0 20001 || fail "catalog worker did not load"
"$HERDCTL" req cat list '{"limit": 100000}' >/dev/null 2>"$T/list.err"; rc=$?
[ $rc = 1 ] || fail "a list over max_reply_bytes: exit $rc ($(cat "$T/list.err"))"
grep -q "too_large" "$T/list.err" || fail "list: $(cat "$T/list.err")"
"$HERDCTL" catalog get cat big >/dev/null 2>"$T/get.err"; rc=$?
[ $rc = 1 ] || fail "a body over max_reply_bytes: exit $rc ($(cat "$T/get.err"))"
grep -q "too_large.*max_reply_bytes" "$T/get.err" || fail "get: $(cat "$T/get.err")"
"$HERDCTL" catalog get cat e00042 >/dev/null || fail "a small body after the refusals"
kill -TERM "$HERDD_PID"; wait "$HERDD_PID"

# 2. nng_msg_alloc fails over 100 KB: a short internal error, herdd lives on.
cat >"$T/herd2.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [{"name": "cat", "kind": "catalog", "path": "$T/out"}]}
JSON
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
LD_PRELOAD="$HERD_FAILALLOC" HERD_FAIL_MSG_OVER=100000 "$HERDD" -c "$T/herd2.json" >>"$T/herdd.log" 2>&1 &
HERDD_PID=$!
track $HERDD_PID
wait_for_herdd "$RUN" || fail "herdd with the failing allocator did not start"
wait_until worker_state_is cat running || fail "catalog worker (2)"
wait_until catalog_loaded 0 20001 || fail "catalog worker (2) did not load"
for i in 1 2 3; do
    "$HERDCTL" req cat list '{"limit": 100000}' >/dev/null 2>"$T/oom.err"; rc=$?
    [ $rc = 1 ] || fail "a reply nng cannot allocate: exit $rc ($(cat "$T/oom.err"))"
    grep -q "internal.*out of memory building a [0-9]*-byte reply" "$T/oom.err" ||
        fail "oom: $(cat "$T/oom.err")"
done
kill -0 "$HERDD_PID" || fail "herdd died on a failed reply allocation"
"$HERDCTL" status >/dev/null || fail "status after failed allocations"
dropped=$(status_get "$RUN" supervisor.bus.dropped.send_failed)
[ "$dropped" -ge 3 ] || fail "failed reply allocations not counted ($dropped)"
pass "too_large over max_reply_bytes (list and body); failed reply allocations answered internal and counted ($dropped)"
