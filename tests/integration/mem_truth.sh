#!/usr/bin/env bash
# heap_bytes tells the truth (DESIGN.md section 4): for the catalog, jobs
# and process kinds, what an instance costs herdd (the unique memory of
# herdd hosting N idle instances, minus herdd hosting none, over N) and the
# instances' mean heap_bytes agree within 25%. The unique memory is the
# Anonymous line of smaps_rollup: USS less the pages of shared libraries,
# which count as herdd's own only while no other process maps them (libnng
# alone moved between 28 and 436 KiB of "USS" with other herdd processes
# coming and going), noise no instance causes. Sampled every second for a
# few seconds, the least taken, once the 1 s tick's heap trim has given
# start-up's free pages back. Not under ASan: its allocator is not glibc's.
. "$(dirname "$0")/lib.sh"

if [ "${HERD_SANITIZE:-0}" = "1" ] || [ "${HERD_SANITIZE:-}" = "ON" ]; then
    echo "SKIP: USS under the sanitizers' allocator says nothing of glibc's"
    exit 77
fi
N=${MEM_TRUTH_N:-300}
TOLERANCE=0.25

"$HERDCTL" catalog build "$HERD_SOURCE_DIR/examples/demo-catalog.json" "$T/catalog" >/dev/null ||
    fail "catalog build"

# measure KIND COUNT: prints "USS_BYTES HEAP_SUM_BYTES" of herdd hosting
# COUNT idle workers of KIND.
measure() {
    local kind=$1 n=$2 d=$T/$1-$2 i r uss best=""
    mkdir -p "$d"
    python3 - "$d" "$kind" "$n" "$T/catalog" <<'PY' || fail "config"
import json, sys
d, kind, n, catalog = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ws = []
for i in range(n):
    w = {"name": f"w{i}", "kind": kind}
    if kind == "catalog":
        w["path"] = catalog
    elif kind == "jobs":
        w["types"] = {"hello": {"argv": ["true"]}}
    else:
        w["argv"] = ["sleep", "600"]
    ws.append(w)
json.dump({"bus": {"dir": f"{d}/run"}, "state_dir": f"{d}/state", "http": {"listen": ""},
           "workers": ws}, open(f"{d}/herd.json", "w"))
PY
    "$HERDD" -c "$d/herd.json" >"$d/herdd.log" 2>&1 &
    local pid=$!
    track $pid
    wait_for_herdd "$d/run" || fail "$kind x$n: herdd did not start"
    for i in $(seq 1 600); do
        r=$("$HERDCTL" --runtime-dir "$d/run" --json status 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(s["supervisor"]["workers"].get("running", 0))' 2>/dev/null)
        [ "$r" = "$n" ] && break
        sleep 0.1
    done
    [ "$r" = "$n" ] || fail "$kind x$n: only ${r:-0} running"
    for i in $(seq 1 12); do
        sleep 1
        uss=$(awk '/^Anonymous:/ {print $2 * 1024}' "/proc/$pid/smaps_rollup")
        if [ -z "$best" ] || [ "$uss" -lt "$best" ]; then best=$uss; fi
    done
    r=$("$HERDCTL" --runtime-dir "$d/run" --json status | python3 -c '
import json, sys
print(sum(w.get("heap_bytes", 0) for w in json.load(sys.stdin)["workers"]))')
    kill -TERM $pid
    wait $pid 2>/dev/null
    echo "$best $r"
}

bad=""
for kind in catalog jobs process; do
    none=$(measure "$kind" 0)
    many=$(measure "$kind" "$N")
    verdict=$(python3 - "$kind" "$N" "$TOLERANCE" $none $many <<'PY'
import sys
kind, n, tol = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
uss0, _, uss, heap = map(int, sys.argv[4:8])
per_uss, per_heap = (uss - uss0) / n, heap / n
ratio = per_heap / per_uss if per_uss > 0 else 0
ok = abs(ratio - 1) <= tol
print(f"{kind}: unique memory per instance {per_uss:.0f} B, heap_bytes {per_heap:.0f} B, "
      f"heap/USS {ratio:.2f} {'ok' if ok else 'OFF BY MORE THAN %d%%' % (tol * 100)}")
PY
    )
    echo "$verdict"
    case $verdict in *OFF*) bad="$bad $kind" ;; esac
done
[ -z "$bad" ] || fail "heap_bytes does not tell the truth for:$bad"
pass "heap_bytes within 25% of the unique memory per instance for catalog, jobs and process"
