#!/bin/bash
# The kill -9 crash-and-restart harness (issue 15): herdd runs mixed load
# (a jobs worker with chatty short jobs, failing ones, cancelled ones and
# long sleepers; a catalog worker whose input is rebuilt over and over; two
# archive workers behind a publisher that never stops; a process worker),
# is killed with SIGKILL at a random moment, restarted on the same config,
# and checked after every restart:
#  - jobs: jobs.json parses (as the kill left it and after the restart); no
#    job that was terminal is lost or changed status (on disk and in `job
#    list`); no job is left `running` with the killed herdd's process group.
#  - catalog: the worker serves a whole version: `current`'s, verified by
#    herd-catalog-check, with the entry count of one of the two inputs, each
#    section's `list` total that input's, a `get` of a listed id of each.
#  - archives: every line of every file (rotated ones too) is a JSON object
#    {ts, topic, payload}; a torn last line left by the kill is cut at start.
#  - orphans: no child of the killed herdd (job children, the process
#    worker's child) is left, and exactly one process worker child runs.
#  - sockets: the restarted herdd starts on the first try and answers.
# Short by default (5 iterations); CHAOS_LONG=1 (50) or CHAOS_ITERATIONS=N
# for more (scripts/chaos).
. "$(dirname "$0")/../integration/lib.sh"

CHECK="python3 $(dirname "$0")/check_state.py"
if [ -n "${CHAOS_ITERATIONS:-}" ]; then
    ITER=$CHAOS_ITERATIONS
elif [ -n "${CHAOS_LONG:-}" ] && [ "$CHAOS_LONG" != 0 ]; then
    ITER=50
else
    ITER=5
fi
case $ITER in '' | *[!0-9]* | 0) echo "kill9: CHAOS_ITERATIONS: expected a count, got \"$ITER\"" >&2; exit 2 ;; esac
C="$HERDCTL --runtime-dir $RUN --timeout 5"
# Every child herdd starts for this test carries K in its argv (and
# HERD_JOB_ID or HERD_WORKER in its environment: check_state.py orphans).
K=$MARK
PROC_ARGV="sleep 9$K"

# Whatever happens, nothing this test started outlives it: the loops, the
# herdd instances (lib.sh's cleanup), then any child a killed herdd left.
kill_marked() {
    local p
    for p in $($CHECK orphans "$K" 0 2>/dev/null | cut -d' ' -f2 | tr ',' ' '); do
        kill -KILL "$p" 2>/dev/null
    done
}
LOOPS=""
stop_loops() {
    local p
    touch "$T/stop" 2>/dev/null
    for p in $LOOPS; do
        kill -TERM $(ps -o pid= --ppid "$p" 2>/dev/null) "$p" 2>/dev/null
    done
    for p in $LOOPS; do wait "$p" 2>/dev/null; done
}
trap 'stop_loops; cleanup; kill_marked' EXIT

# ---- inputs ------------------------------------------------------------------
gzip -dc "$HERD_TEST_DATA/esphome/automations.json.gz" >"$T/a.json" || fail "gunzip"
# Input B: fewer sections and entries than A, so a torn mix of the two shows.
python3 - "$T/a.json" "$T/b.json" "$T/counts.json" <<'PY' || fail "input B"
import json, sys
a = json.load(open(sys.argv[1]))
b = {k: v for k, v in a.items() if k != "filters"}
b["actions"] = b["actions"][:300]
json.dump(b, open(sys.argv[2], "w"))
counts = {}
for name, d in (("a", a), ("b", b)):
    counts[name] = {k: len(v) for k, v in d.items() if isinstance(v, list)}
json.dump(counts, open(sys.argv[3], "w"))
PY
echo '{"partition_field": "domain"}' >"$T/spec.json"
"$HERDCTL" catalog build --spec "$T/spec.json" "$T/a.json" "$T/cat" >/dev/null || fail "first catalog build"

A1="$T/arc1/events.jsonl"
A2="$T/arc2/events.jsonl"
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "jobs", "kind": "jobs", "allow_argv": true, "lanes": {"short": 3, "long": 2},
   "kill_timeout_s": 1, "aux_max": 1000000, "primary_max": 1000000},
  {"name": "cat", "kind": "catalog", "path": "$T/cat", "lru_entries": 8},
  {"name": "arc1", "kind": "archive", "subscribe": ["k9.>"], "path": "$A1",
   "max_bytes": "256K", "keep": 3, "fsync": "never", "queue_max": 100000},
  {"name": "arc2", "kind": "archive", "subscribe": ["k9.ev.>"], "path": "$A2",
   "max_bytes": "1M", "keep": 2, "fsync": "rotate", "queue_max": 100000},
  {"name": "proc", "kind": "process", "argv": ["sleep", "9$K"], "stop_timeout_s": 1,
   "backoff": {"initial_ms": 100, "max_ms": 500}, "intensity": {"max_restarts": 1000, "period_s": 60}}
 ]}
JSON
"$HERDD" --check -c "$T/herd.json" >/dev/null || fail "config: $("$HERDD" --check -c "$T/herd.json" 2>&1)"

# ---- the load: loops that pause while the checks run ------------------------
# A loop runs its body until $T/stop exists; while $T/pause holds a
# generation G it writes G to $T/<name>.idle and waits (pause_loops waits
# for every loop to be idle in the current generation).
GEN=0
paused_loop() {
    local name=$1
    shift
    while [ ! -e "$T/stop" ]; do
        if [ -e "$T/pause" ]; then
            cat "$T/pause" >"$T/$name.idle" 2>/dev/null
            sleep 0.05
            continue
        fi
        "$@"
    done
}
pause_loops() {
    local n
    GEN=$((GEN + 1))
    echo $GEN >"$T/pause"
    idle() { for n in pub submit build; do [ "$(cat "$T/$n.idle" 2>/dev/null)" = $GEN ] || return 1; done; }
    for n in 1 2 3; do wait_until idle && return 0; done
    fail "the load loops did not pause: $(for n in pub submit build; do echo "$n: $(cat "$T/$n.idle" 2>/dev/null)"; done; ps -o pid,etime,args --ppid "${LOOPS// /,}" 2>/dev/null)"
}
resume_loops() { rm -f "$T/pause"; }

# publisher: 1000 events a round (a run cut off by a kill ends within 3 s) on two topics, both archives get k9.ev
publish_round() {
    timeout 3 "$HERD_PUB" "$RUN" k9.ev.x 500 100 >/dev/null 2>&1 || sleep 0.1
    timeout 3 "$HERD_PUB" "$RUN" k9.other.y 500 10 >/dev/null 2>&1 || sleep 0.1
}

# jobs: two short chatty ones (one in 5 fails) and a long sleeper a round
# (one in 4 of those cancelled), while fewer than 6 wait
N_SUB=0
submit_round() {
    local q id k
    q=$($C job list jobs 2>/dev/null | grep -c ' queued ') || true
    if [ -z "$q" ] || [ "$q" -ge 6 ]; then
        sleep 0.3
        return
    fi
    for k in 1 2; do
        N_SUB=$((N_SUB + 1))
        $C job submit jobs --type chatty --lane short -- \
            sh -c 'i=0; while [ $i -lt 400 ]; do echo "chatty $1 line $i"; i=$((i + 1)); done; sleep 0.$2; exit $(($1 % 5 == 0))' \
            "k9job-$K" "$N_SUB" "3$K" >/dev/null 2>&1 || return
    done
    N_SUB=$((N_SUB + 1))
    id=$($C job submit jobs --type long --lane long -- \
        sh -c 'echo begin $1; sleep 6.$2; echo end' "k9job-$K" "$N_SUB" "$K" 2>/dev/null) || return
    if [ $((N_SUB % 4)) = 0 ]; then
        sleep 0.2
        $C job cancel jobs "$id" >/dev/null 2>&1
    fi
}

# catalog: rebuild from A and B in turn, a new version each time
N_BUILD=0
build_round() {
    local in=a
    N_BUILD=$((N_BUILD + 1))
    [ $((N_BUILD % 2)) = 0 ] || in=b
    echo "{\"partition_field\": \"domain\", \"index_fields\": [\"name\", \"k$N_BUILD\"]}" >"$T/spec-k.json"
    "$HERDCTL" catalog build --spec "$T/spec-k.json" "$T/$in.json" "$T/cat" >/dev/null 2>&1 ||
        echo "build $N_BUILD failed" >>"$T/build.log"
    sleep 1
}

# ---- checks ----------------------------------------------------------------------
archive_files() { local f i; for f in "$A1" "$A2"; do echo "$f"; for i in 1 2 3; do echo "$f.$i"; done; done; }

# archives_quiet: nothing queued or in flight, received all accounted for,
# and the same figures twice 0.2 s apart
arc_figures() {
    "$HERDCTL" --runtime-dir "$RUN" --json status 2>/dev/null | python3 -c '
import json, sys
out = []
for w in json.load(sys.stdin)["workers"]:
    if w["worker"] in ("arc1", "arc2"):
        if w["state"] != "running" or w["queue_depth"] or w["in_flight"] or \
           w["received"] != w["done"] + w["failed"] + w["dropped"]:
            sys.exit(1)
        out.append("%d/%d" % (w["received"], w["bytes"]))
print(" ".join(out))'
}
archives_quiet() {
    local a b
    a=$(arc_figures) || return 1
    sleep 0.2
    b=$(arc_figures) || return 1
    [ "$a" = "$b" ]
}

check_catalog() {
    local ver cur v try
    for try in 1 2 3 4 5 6 7 8 9 10; do
        cur=$(readlink "$T/cat/current") || fail "catalog: current does not resolve"
        ver=$(worker_get cat version)
        [ "$ver" = "$cur" ] && break
        sleep 0.2
    done
    [ "$ver" = "$cur" ] || fail "catalog: serves $ver, current is $cur"
    v=$("$HERD_CATALOG_CHECK" verify "$T/cat") || fail "catalog: $cur does not verify"
    [ "${v%% *}" = "$cur" ] || fail "catalog: verify said $v, current is $cur"
    # every section's total and one get per section, against the input whose
    # count the worker reports
    "$HERDCTL" --runtime-dir "$RUN" --json req cat stats '{}' >"$T/stats.json" || fail "catalog stats"
    python3 - "$T/stats.json" "$T/counts.json" "${v#* }" "$HERDCTL" "$RUN" <<'PY' || fail "catalog: torn"
import json, subprocess, sys
stats = json.load(open(sys.argv[1]))
counts = json.load(open(sys.argv[2]))
n = stats["entries"]
if n != int(sys.argv[3]):
    sys.exit("stats says %d entries, the version on disk %s" % (n, sys.argv[3]))
which = [k for k, c in counts.items() if sum(c.values()) == n]
if len(which) != 1:
    sys.exit("%d entries: neither input's count (%s)" % (n, counts))
want = counts[which[0]]
herdctl, run = sys.argv[4], sys.argv[5]
def req(op, args):
    out = subprocess.run([herdctl, "--runtime-dir", run, "--json", "req", "cat", op,
                          json.dumps(args)], capture_output=True, check=True).stdout
    return json.loads(out)
for sec, c in want.items():
    r = req("list", {"section": sec, "limit": 1, "offset": c // 2})
    if r["total"] != c:
        sys.exit("section %s: %d entries, input %s has %d" % (sec, r["total"], which[0], c))
    eid = r["entries"][0]["id"]
    body = req("get", {"section": sec, "id": eid})
    if body.get("id") != eid:
        sys.exit("get %s/%s answered %r" % (sec, eid, body)[:300])
print(which[0])
PY
}

# ---- run ------------------------------------------------------------------------
start_herdd "$T/herd.json"
wait_until catalog_loaded 1 1127 || fail "cat did not load"
wait_until yields 1 $CHECK count-argv "$PROC_ARGV" || fail "the process worker's child did not start"
pass "herdd runs jobs, cat, arc1, arc2, proc"

paused_loop pub publish_round >"$T/pub.log" 2>&1 &
LOOPS="$LOOPS $!"
paused_loop submit submit_round >"$T/submit.log" 2>&1 &
LOOPS="$LOOPS $!"
paused_loop build build_round >"$T/build.log" 2>&1 &
LOOPS="$LOOPS $!"
for p in $LOOPS; do track "$p"; done
# let the load build up before the first kill: jobs running, archives growing
has_running() { $C --json job list jobs --status running | grep -q job_id; }
wait_until has_running || fail "no job started"

t0=$(date +%s)
cuts=0 arc_lines=0 running_at_kills=0 orphans=0 terminal=0 torn_at_kill=0 inputs_seen=""
for it in $(seq 1 "$ITER"); do
    # a random moment from 0.2 to 2.2 s into the load
    sleep "$((RANDOM % 2000 / 1000 + 0)).$(printf '%03d' $((RANDOM % 1000)))"
    sleep 0.2
    old=$HERDD_PID
    kill -KILL "$old"
    wait "$old" 2>/dev/null

    # As the kill left things (herdd dead, its children alive).
    r=$($CHECK jobs-dead "$STATE/jobs/jobs.json" "$T/terminal.json") ||
        fail "iteration $it: jobs.json as the kill left it"
    read -r terminal ran _ <<<"$r"
    running_at_kills=$((running_at_kills + ran))
    for f in "$A1" "$A2"; do
        [ -s "$f" ] && [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" != '\n' ] && torn_at_kill=$((torn_at_kill + 1))
    done

    # The same config again: it must start at once (no stale socket or lock).
    start_herdd "$T/herd.json"
    kill -0 "$HERDD_PID" 2>/dev/null || fail "iteration $it: the restarted herdd exited"
    for s in events publish request; do
        [ -S "$RUN/$s.ipc" ] || fail "iteration $it: $RUN/$s.ipc is not a socket"
    done
    pass "iteration $it: killed herdd $old, restarted as $HERDD_PID on the first try"

    # No child of the killed herdd survives its successor's start (a few
    # seconds for the sweep), and the process worker runs one child again.
    if ! wait_until $CHECK orphans "$K" "$HERDD_PID"; then
        o=$($CHECK orphans "$K" "$HERDD_PID")
        ps -o pid,ppid,pgid,args -p "$(echo "${o#* }")" >&2
        fail "iteration $it: orphans of herdd $old: $o"
    fi
    wait_until yields 1 $CHECK count-argv "$PROC_ARGV" ||
        fail "iteration $it: $($CHECK count-argv "$PROC_ARGV") instances of the process worker's child"
    pass "iteration $it: no orphan of herdd $old; one process worker child"

    pause_loops
    # Jobs: every terminal job kept, none left running with the old groups.
    jobs_ok() {
        $C --json job list jobs >"$T/list.json" 2>/dev/null &&
            $CHECK jobs-alive "$STATE/jobs/jobs.json" "$T/terminal.json" "$HERDD_PID" "$T/list.json" >"$T/jobs-alive.out" 2>&1
    }
    wait_until jobs_ok || fail "iteration $it: jobs after the restart: $(cat "$T/jobs-alive.out")"
    pass "iteration $it: jobs.json parses; $terminal terminal jobs kept; $ran that ran at the kill not left running"

    # Catalog: a whole version served.
    which=$(check_catalog)
    case " $inputs_seen " in *" $which "*) ;; *) inputs_seen="$inputs_seen $which" ;; esac
    pass "iteration $it: catalog serves $(readlink "$T/cat/current") whole (input $which)"

    # Archives: quiet (torn lines cut at start, everything queued written),
    # then every line of every file.
    wait_until archives_quiet || fail "iteration $it: archives did not settle: $(worker_health arc1) $(worker_health arc2)"
    n=$($CHECK archive $(archive_files)) || fail "iteration $it: archive files"
    arc_lines=$n
    c=$(($(worker_get arc1 torn_lines_cut) + $(worker_get arc2 torn_lines_cut)))
    cuts=$((cuts + c))
    pass "iteration $it: $n archive lines whole ($c torn lines cut at this start)"
    resume_loops
done
stop_loops
elapsed=$(($(date +%s) - t0))

# The load was real: jobs ended in every way, the archives rotated, the
# catalog served both inputs (in a long enough run).
python3 - "$T/terminal.json" <<'PY' || fail "jobs did not end in each way"
import json, sys
st = list(json.load(open(sys.argv[1]))["terminal"].values())
for s in ("completed", "failed"):
    if s not in st:
        sys.exit("no %s job among %d" % (s, len(st)))
PY
[ -e "$A1.1" ] || fail "arc1 never rotated"
[ "$running_at_kills" -gt 0 ] || fail "no kill hit a running job"
! grep -q "failed" "$T/build.log" || fail "catalog builds failed: $(head -3 "$T/build.log")"
pass "summary: $ITER iterations in ${elapsed}s; $terminal jobs seen terminal (all kept), $running_at_kills running at the kills; $arc_lines archive lines checked (last pass), $torn_at_kill torn at a kill, $cuts cut at start; catalog inputs served:$inputs_seen; orphans found 0"
