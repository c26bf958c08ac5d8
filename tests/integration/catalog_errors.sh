#!/bin/bash
# Bad catalog inputs are refused with the place and nothing is written;
# workers pointed at a missing, empty or corrupt OUTDIR fail with a clear
# last_error and are restarted per policy while herdd and the other workers
# carry on; a bad new version is refused and the old one keeps serving.
. "$(dirname "$0")/lib.sh"

# ---- bad inputs ------------------------------------------------------------------
good='{"s":[{"id":"a","v":1},{"id":"b","v":2}]}'
printf '%s' "$good" >"$T/good.json"
"$HERDCTL" catalog build "$T/good.json" "$T/out" >/dev/null || fail "good build"
snapshot() { (cd "$T/out" && find . -printf '%p %l %s\n' | sort); }
before=$(snapshot)
long=$(printf 'x%.0s' $(seq 1 201))
# input | expected message (a grep -F pattern)
while IFS='|' read -r input want; do
    printf '%s' "$input" >"$T/bad.json"
    "$HERDCTL" catalog build "$T/bad.json" "$T/out" 2>"$T/err.txt" >/dev/null
    rc=$?
    [ $rc = 1 ] || fail "$input: exit $rc"
    grep -qF -- "$want" "$T/err.txt" || fail "$input: message $(cat "$T/err.txt"), want $want"
    [ "$(snapshot)" = "$before" ] || fail "$input: OUTDIR changed"
    "$HERDCTL" catalog build "$T/bad.json" "$T/fresh" 2>/dev/null >/dev/null
    [ -e "$T/fresh" ] && fail "$input: a fresh OUTDIR was created"
done <<EOF
{"s":[{"id":"a"},{"id":"a"}]}|s[1]: duplicate id "a"
{"s":[{"id":"a"}],"t":[{"id":"x"},{"id":"a/b"}]}|t[1]: id "a/b" contains '/'
{"s":[{"id":".."}]}|s[0]: id ".." contains '..'
{"s":[{"id":"a\\u0000b"}]}|s[0]: id "a\\u0000b" contains a NUL byte
{"s":[{"id":"a\\u001fb"}]}|s[0]: id "a\\u001fb" contains a control byte
{"s":[{"id":"$long"}]}|is 201 bytes, over 200
{"s":[{"id":"a"},5]}|s[1]: entry is not an object
{"s":[{"id":"a"},{"id":"b",}]}|s[1]: invalid JSON at line 1 column
{"s":[{"id":"a"},{"name":"b"}]}|s[1]: missing id member "id"
{"s":[{"id":7}]}|s[0]: id "id" is not a string
[1]|input: invalid JSON at line 1 column 1
EOF
echo '{"sections": 5}' >"$T/bad-spec.json"
"$HERDCTL" catalog build --spec "$T/bad-spec.json" "$T/good.json" "$T/out" 2>"$T/err.txt"
[ $? = 1 ] && grep -q 'spec.sections: expected an object' "$T/err.txt" || fail "bad spec"
[ "$(snapshot)" = "$before" ] || fail "bad spec: OUTDIR changed"
"$HERDCTL" catalog build "$T/missing.json" "$T/out" 2>"$T/err.txt"
[ $? = 1 ] && grep -q 'missing.json: open: No such file' "$T/err.txt" || fail "missing input"
"$HERDCTL" catalog build "$T/good.json" 2>/dev/null
[ $? = 2 ] || fail "usage"
pass "every bad-input class refused with its place, nothing written"

# An entry whose slim fields are over max_slim_bytes (default 64 KiB) is
# refused with its place, id and size; the spec raises the cap; bad values
# of it are refused; the loader refuses an index over the cap it names.
python3 -c 'import sys; sys.stdout.write("{\"s\":[{\"id\":\"a\"},{\"id\":\"big\",\"d\":\"%s\"}]}" % ("x" * 70000))' >"$T/big.json"
"$HERDCTL" catalog build "$T/big.json" "$T/out" 2>"$T/err.txt" >/dev/null
[ $? = 1 ] || fail "slim over the cap: not refused"
grep -qF 's[1] (id "big"): slim fields take 70019 bytes, over max_slim_bytes 65536' "$T/err.txt" ||
    fail "slim over the cap: message $(cat "$T/err.txt")"
[ "$(snapshot)" = "$before" ] || fail "slim over the cap: OUTDIR changed"
echo '{"max_slim_bytes": 70019}' >"$T/cap-spec.json"
"$HERDCTL" catalog build --spec "$T/cap-spec.json" "$T/big.json" "$T/big" >/dev/null ||
    fail "slim at a raised cap: refused"
"$HERD_CATALOG_CHECK" verify "$T/big" >/dev/null || fail "slim at a raised cap: does not load"
for v in 0 -1 1.5 '"64K"' 16777217; do
    echo "{\"max_slim_bytes\": $v}" >"$T/cap-spec.json"
    "$HERDCTL" catalog build --spec "$T/cap-spec.json" "$T/good.json" "$T/out" 2>"$T/err.txt"
    [ $? = 1 ] || fail "max_slim_bytes $v: not refused"
    grep -qF "spec.max_slim_bytes: expected an integer from 1 to 16777216 (bytes), got $v" \
        "$T/err.txt" || fail "max_slim_bytes $v: message $(cat "$T/err.txt")"
    [ "$(snapshot)" = "$before" ] || fail "max_slim_bytes $v: OUTDIR changed"
done
# the same version without the spec's cap (as an older compiler would have
# written it): the default applies and the version is refused
sed -i 's/"max_slim_bytes":70019,//' "$T/big/current/index.json"
"$HERD_CATALOG_CHECK" verify "$T/big" 2>"$T/err.txt" && fail "index over the default cap loaded"
grep -qF 's[1]: slim entry is 70019 bytes, over max_slim_bytes 65536' "$T/err.txt" ||
    fail "index over the cap: message $(cat "$T/err.txt")"
pass "slim fields over max_slim_bytes refused (compiler and loader), the cap validated"

# ---- workers on bad OUTDIRs -----------------------------------------------------
mkdir -p "$T/empty" "$T/corrupt"
"$HERDCTL" catalog build "$T/good.json" "$T/corrupt" >/dev/null || fail "corrupt base"
v=$(readlink "$T/corrupt/current")
echo '{"format": 1, "sections": ' >"$T/corrupt/$v/index.json"
"$HERDCTL" catalog build "$T/good.json" "$T/fine" >/dev/null || fail "fine build"
policy='"restart": "permanent", "backoff": {"initial_ms": 100, "max_ms": 400}, "intensity": {"max_restarts": 1000, "period_s": 60}'
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "missing", "kind": "catalog", "path": "$T/missing", $policy},
  {"name": "empty", "kind": "catalog", "path": "$T/empty", $policy},
  {"name": "corrupt", "kind": "catalog", "path": "$T/corrupt", $policy},
  {"name": "fine", "kind": "catalog", "path": "$T/fine"}]}
JSON
start_herdd "$T/herd.json"
restarted() { [ "$(status_get "$RUN" "workers.$1.restarts")" -ge 3 ]; }
for i in 0 1 2; do wait_until restarted $i || fail "worker $i not restarted"; done
"$HERDCTL" --json status >"$T/status.json" || fail "status"
python3 - "$T/status.json" "$T" <<'PY' || fail "last_error or states"
import json, sys
ws = {w["worker"]: w for w in json.load(open(sys.argv[1]))["workers"]}
t = sys.argv[2]
want = {"missing": t + "/missing: No such file or directory",
        "empty": t + "/empty/current: No such file or directory (no catalog built here?)",
        "corrupt": "index.json"}
for name, msg in want.items():
    w = ws[name]
    assert w["state"] in ("backoff", "starting", "running", "stopping"), w
    assert w["last_error"] and "catalog not loaded" in w["last_error"], w
    assert msg in w["last_error"], (msg, w["last_error"])
assert ws["fine"]["state"] == "running" and ws["fine"]["restarts"] == 0, ws["fine"]
assert ws["fine"]["entries"] == 2 and ws["fine"]["last_error"] is None, ws["fine"]
PY
"$HERDCTL" --json catalog get fine a | grep -q '"v":1' || fail "fine worker not serving"
kill -0 $HERDD_PID || fail "herdd crashed"
pass "missing, empty, corrupt OUTDIR: clear last_error, restarted per policy, others unaffected"

# A catalog appears where the worker looks: the next restart loads it.
"$HERDCTL" catalog build "$T/good.json" "$T/empty" >/dev/null || fail "build into empty"
running() { [ "$(status_get "$RUN" workers.1.state)" = running ] &&
    [ "$(status_get "$RUN" workers.1.entries)" = 2 ]; }
wait_until running || fail "empty did not recover"
"$HERDCTL" --json catalog get empty b | grep -q '"v":2' || fail "recovered worker get"
pass "a worker recovers once its catalog is built"

# A bad new version is refused; the old one keeps serving; a good one clears it.
old=$(readlink "$T/fine/current")
cp -a "$T/fine/$old" "$T/fine/v-0000000000000bad"
echo '{"id":"a","v":"tampered"}' >"$T/fine/v-0000000000000bad/bodies/s/a.json"
ln -s v-0000000000000bad "$T/fine/.tmp-link" && mv -T "$T/fine/.tmp-link" "$T/fine/current"
refused() { status_get "$RUN" workers.3.last_error | grep -q 'refused v-0000000000000bad'; }
wait_until refused || fail "bad version not refused: $(status_get "$RUN" workers.3.last_error)"
status_get "$RUN" workers.3.last_error | grep -q "still serving $old" || fail "refusal message"
[ "$(status_get "$RUN" workers.3.version)" = "$old" ] || fail "version changed"
[ "$(status_get "$RUN" workers.3.state)" = running ] || fail "refusal stopped the worker"
"$HERDCTL" --json catalog get fine a | grep -q '"v":1' || fail "old version not serving"
printf '%s' '{"s":[{"id":"a","v":10}]}' >"$T/good2.json"
"$HERDCTL" catalog build "$T/good2.json" "$T/fine" >/dev/null || fail "good rebuild"
cleared() { [ "$(status_get "$RUN" workers.3.last_error)" = None ] &&
    [ "$(status_get "$RUN" workers.3.entries)" = 1 ]; }
wait_until cleared || fail "good version did not clear last_error"
"$HERDCTL" --json catalog get fine a | grep -q '"v":10' || fail "new version not serving"
pass "bad version refused with last_error, old one served, cleared by the next good build"
kill -0 $HERDD_PID || fail "herdd crashed"
