# Reloads in quick succession, while workers are still stopping from the
# last one (some ignore SIGTERM and take stop_timeout_s to go), must end
# with exactly the last config running: a worker removed and added back,
# or changed twice, is not left out or run with an old config.
# HERD_STORM_RELOADS sets the number of reloads (default 30).
. "$(dirname "$0")/lib.sh"

N=${HERD_STORM_RELOADS:-30}
# Three configs over overlapping worker names; every worker's argv carries
# a marker unique to (config, worker), so the children that run tell which
# config each one came from.
python3 - "$T" "$RUN" "$STATE" "$MARK" <<'PY'
import json, sys
t, run, state, mark = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
names = [f"w{i}" for i in range(14)]
for c in range(3):
    workers = []
    for i, n in enumerate(names):
        if (i + c) % 4 == 0:
            continue  # not in this config
        m = mark + c * 100 + i
        w = {"name": n, "kind": "process", "stop_timeout_s": 1}
        if i % 3 == 0:
            w["argv"] = ["sh", "-c", f"trap '' TERM; exec sleep {m}"]  # takes 1 s to stop
        else:
            w["argv"] = ["sleep", str(m)]
        workers.append(w)
    cfg = {"bus": {"dir": run}, "state_dir": state, "http": {"listen": ""}, "workers": workers}
    json.dump(cfg, open(f"{t}/c{c}.json", "w"))
PY
cp "$T/c0.json" "$T/herd.json"
start_herdd "$T/herd.json"
RANDOM=$MARK
last=0
for i in $(seq 1 "$N"); do
    last=$((RANDOM % 3))
    cp "$T/c$last.json" "$T/herd.json"
    kill -HUP "$HERDD_PID"
    sleep "0.$((RANDOM % 4))"
done
kill -0 "$HERDD_PID" || fail "herdd died"

# Settled: every worker of the last config runs, and runs that config's argv.
expected() {
    python3 - "$T/c$last.json" "$MARK" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
for w in cfg["workers"]:
    print(w["name"], w["argv"][-1].split()[-1])
PY
}
settled() {
    local got want
    got=$("$HERDCTL" --runtime-dir "$RUN" --json status | python3 -c '
import json, sys
for w in json.load(sys.stdin)["workers"]:
    print(w["worker"], w["state"])' | sort)
    want=$(expected | awk '{print $1, "running"}' | sort)
    [ "$got" = "$want" ] || return 1
    # and each runs its argv of the last config, nothing of another
    while read -r name m; do
        [ "$(alive_marked "$m")" = 1 ] || return 1
    done < <(expected)
}
for i in $(seq 1 200); do settled && break; sleep 0.1; done
settled || fail "after $N reloads (last: c$last) the running set is not c$last's:
$("$HERDCTL" --runtime-dir "$RUN" status 2>&1 | tail -20)"
# No child of another config is left.
alive=0
for c in 0 1 2; do
    [ $c = $last ] && continue
    for i in $(seq 0 13); do alive=$((alive + $(alive_marked $((MARK + c * 100 + i))))); done
done
[ $alive = 0 ] || fail "$alive children of other configs still run"
pass "$N reloads over 3 configs: exactly c$last runs ($(expected | wc -l) workers)"
