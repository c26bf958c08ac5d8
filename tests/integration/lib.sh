# Shared helpers for integration tests: a temp dir per test, herdd started
# in it, and a trap that kills every process the test started.
# Environment from ctest: HERDD, HERDCTL, HERD_BUILD_DIR, HERD_SOURCE_DIR,
# HERD_TEST_DATA, HERD_SANITIZE.
set -u

T=$(mktemp -d "${TMPDIR:-/tmp}/herd-it.XXXXXX")
RUN="$T/run"
STATE="$T/state"
export HERD_RUNTIME_DIR="$RUN" HERD_STATE_DIR="$STATE"
PIDS=""
# Sanitizer runs: leaks in short-lived clients are not what these tests check.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"

cleanup() {
    [ -n "${KEEP_LOG:-}" ] && cp "$T"/herdd.log /tmp/kept-herdd.log 2>/dev/null
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.2
    for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$T"/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 30 "$f" >&2; }; done
    exit 1
}

pass() { echo "PASS: $*"; }

track() { PIDS="$PIDS $1"; }

# free_port: a TCP port of 127.0.0.1 nobody listens on now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# write_config FILE [EXTRA_BUS_KEYS]: a config for the test's dirs.
write_config() {
    local file=$1 bus_extra=${2:-}
    cat >"$file" <<JSON
{"bus": {"dir": "$RUN"${bus_extra:+, $bus_extra}}, "state_dir": "$STATE", "http": {"listen": ""}}
JSON
}

# start_herdd CONFIG [LOG]: starts herdd, waits for its request socket.
start_herdd() {
    local cfg=$1 log=${2:-$T/herdd.log}
    "$HERDD" -c "$cfg" >>"$log" 2>&1 &
    HERDD_PID=$!
    track $HERDD_PID
    wait_for_herdd "$(json_get_file "$cfg" bus.dir)" || fail "herdd did not start (see $log)"
}

# wait_for_herdd DIR: until herdctl status answers (10 s).
wait_for_herdd() {
    local dir=$1 i
    for i in $(seq 1 100); do
        "$HERDCTL" --runtime-dir "$dir" --timeout 1 status >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# json_get PATH: reads JSON on stdin, prints the value at a dotted path.
json_get() {
    python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(json.dumps(v) if isinstance(v, (dict, list)) else v)' "$1"
}

json_get_file() { json_get "$2" <"$1"; }

# status_get DIR PATH: a field of `herdctl --json status`.
status_get() {
    "$HERDCTL" --runtime-dir "$1" --json status | json_get "$2"
}

# worker_health W: worker W's status object as one JSON line (status is
# retried a few times: a busy herdd may miss one call).
worker_health() {
    local i out
    for i in 1 2 3 4 5; do
        out=$("$HERDCTL" --runtime-dir "$RUN" --json status 2>/dev/null) && break
        sleep 0.2
    done
    printf '%s' "$out" | python3 -c '
import json, sys
for w in json.load(sys.stdin)["workers"]:
    if w["worker"] == sys.argv[1]:
        print(json.dumps(w, sort_keys=True))' "$1"
}

# catalog_loaded I N: worker number I of herdd in $RUN serves N entries
# (for wait_until).
catalog_loaded() { [ "$(status_get "$RUN" "workers.$1.entries")" = "$2" ]; }

# yields WANT CMD...: CMD prints exactly WANT; at_least N CMD...: CMD
# prints a number >= N. For wait_until, which must run CMD on every try
# (`wait_until test "$(CMD)" = WANT` would run CMD once, before waiting).
yields() { local want=$1; shift; [ "$("$@" 2>/dev/null)" = "$want" ]; }
at_least() { local n=$1 v; shift; v=$("$@" 2>/dev/null) && [ "$v" -ge "$n" ]; }
lines_of() { wc -l <"$1"; }

# wait_until CMD...: retries a command for up to 10 s.
wait_until() {
    local i
    for i in $(seq 1 100); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

remote_subscribers_at_least() {
    [ "$(status_get "$1" supervisor.bus.remote_subscribers)" -ge "$2" ]
}

# A number unique to this test run, for argv markers that pgrep can find.
MARK=$(( (RANDOM << 15 | RANDOM) + 100000 ))

# alive_marked N: how many processes run `sleep N`.
alive_marked() { pgrep -fx "sleep $1" | wc -l; }

# worker_get NAME FIELD: a field of one worker's health in status.
worker_get() {
    "$HERDCTL" --json status | python3 -c '
import json, sys
for w in json.load(sys.stdin)["workers"]:
    if w["worker"] == sys.argv[1]:
        v = w.get(sys.argv[2])
        print("" if v is None else v)' "$1" "$2"
}

worker_state_is() { [ "$(worker_get "$1" state)" = "$2" ]; }

# herdd_rss_mib: herdd's resident set in MiB (smaps_rollup).
herdd_rss_mib() { awk '/^Rss:/{print int($2 / 1024)}' "/proc/$HERDD_PID/smaps_rollup"; }

# job_end WORKER ID: waits until the job is terminal (30 s) and prints its
# status; returns 1 if it never ends.
job_end() {
    local i s
    for i in $(seq 1 300); do
        s=$("$HERDCTL" --json job get "$1" "$2" | json_get status)
        case $s in completed | failed | cancelled) echo "$s"; return 0 ;; esac
        sleep 0.1
    done
    return 1
}

# check_refuses: reads "CONFIG_JSON|EXPECTED MESSAGE PART" lines on stdin;
# `herdd --check` must exit 1 for each config and print the part. Prints
# the number of cases.
check_refuses() {
    local body want rc n=0
    while IFS='|' read -r body want; do
        [ -z "$body" ] && continue
        printf '%s' "$body" >"$T/bad.json"
        "$HERDD" --check -c "$T/bad.json" >"$T/check.out" 2>&1; rc=$?
        [ $rc = 1 ] || fail "--check exit $rc for $body"
        grep -qF -- "$want" "$T/check.out" || fail "for $body expected \"$want\", got: $(cat "$T/check.out")"
        n=$((n + 1))
    done
    echo $n
}
