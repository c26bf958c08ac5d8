# No shell is reached by topics, payloads or job parameters. An exec
# worker's child (a python3 recorder) gets events whose payload carries
# $(...), backticks, ;, |, && and > : it sees them byte for byte on stdin,
# HERD_TOPIC is the topic, and nothing is created; topics with shell
# characters are refused by the bus. A jobs type's {configuration} and
# {port} with such values are each one literal argv element (or refused
# with bad_request naming the parameter); a process worker's argv element
# "$(touch ...)" arrives literally. And no system(), popen(), "/bin/sh" or
# "sh", "-c" call is in the C sources.
. "$(dirname "$0")/lib.sh"

P="$T/pwned"
mkdir -p "$T/rec"
# rec.py OUTDIR [--nostdin] ARGS...: records argv, stdin and HERD_TOPIC.
cat >"$T/rec.py" <<'PY'
import json, os, sys, time
out, args = sys.argv[1], sys.argv[2:]
nostdin = args[:1] == ["--nostdin"]
data = b"" if nostdin else sys.stdin.buffer.read()
rec = {"argv": sys.argv[1:], "stdin": data.decode("latin-1"), "topic": os.environ.get("HERD_TOPIC")}
tmp = "%s/%d.tmp" % (out, os.getpid())
with open(tmp, "w") as f:
    json.dump(rec, f)
os.rename(tmp, "%s/%d.json" % (out, os.getpid()))
if nostdin:
    time.sleep(600)
PY
mkdir -p "$T/proc"
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "ex", "kind": "exec", "subscribe": ["ev.>"], "argv": ["python3", "$T/rec.py", "$T/rec"]},
  {"name": "jobs", "kind": "jobs", "kill_timeout_s": 1, "lanes": {"default": 2},
   "types": {"args": {"argv": ["python3", "-c", "import sys, json; print(json.dumps(sys.argv[1:]))",
                               "{configuration}", "{port}"]}}},
  {"name": "pr", "kind": "process",
   "argv": ["python3", "$T/rec.py", "$T/proc", "--nostdin", "\$(touch $P.p1)", "\`touch $P.p2\`", ";touch $P.p3", "a|touch $P.p4", "a && touch $P.p5"]}
 ]}
JSON
"$HERDD" --check -c "$T/herd.json" >"$T/check.out" 2>&1 || fail "--check: $(cat "$T/check.out")"
start_herdd "$T/herd.json"
C="$HERDCTL --runtime-dir $RUN"
wait_until worker_state_is ex running || fail "ex is $(worker_get ex state)"

nothing_created() { ! ls "$T" | grep -q '^pwned' || fail "$1: a shell ran: $(ls "$T" | grep pwned)"; }

# 1. Shell characters in the payload reach the child's stdin literally.
vals=("\$(touch $P.e1)" "\`touch $P.e2\`" ";touch $P.e3" "x | touch $P.e4" "x && touch $P.e5" "x > $P.e6" "\$HOME \${PATH} 'q' \"dq\" \\\\n")
i=0
for v in "${vals[@]}"; do
    payload=$(python3 -c 'import json, sys; print(json.dumps({"i": int(sys.argv[1]), "v": sys.argv[2]}))' "$i" "$v")
    $C pub "ev.n$i.-rf" "$payload" || fail "publish $i"
    i=$((i + 1))
done
# Topics are tokens of [A-Za-z0-9_-]: shell characters in one are refused.
for bad in "ev.\$(touch $P.t1)" "ev.\`touch $P.t2\`" "ev.a;touch $P.t3" "ev.a|b" "ev.a&&b"; do
    $C pub "$bad" '{}' >/dev/null 2>"$T/err" && fail "a topic with shell characters was accepted: $bad"
done
n_rec() { ls "$T/rec" | grep -c '\.json$'; }
wait_until yields ${#vals[@]} n_rec || fail "exec recorded $(n_rec) of ${#vals[@]} events"
sleep 0.3
python3 - "$T" "${vals[@]}" <<'PY' || fail "exec: see above"
import glob, json, sys
t, vals = sys.argv[1], sys.argv[2:]
seen = set()
for f in glob.glob(t + "/rec/*.json"):
    r = json.load(open(f))
    if r["argv"] != [t + "/rec"]:
        sys.exit("argv %r" % r["argv"])
    ev = json.loads(r["stdin"])
    i = ev["payload"]["i"]
    if ev["payload"]["v"] != vals[i]:
        sys.exit("event %d: stdin value %r, sent %r" % (i, ev["payload"]["v"], vals[i]))
    if ev["topic"] != "ev.n%d.-rf" % i or r["topic"] != ev["topic"]:
        sys.exit("event %d: topic %r, HERD_TOPIC %r" % (i, ev["topic"], r["topic"]))
    seen.add(i)
if seen != set(range(len(vals))):
    sys.exit("events seen: %r" % sorted(seen))
PY
nothing_created "exec"
pass "exec: ${#vals[@]} payloads with shell characters literal on stdin, HERD_TOPIC exact; 5 topics with shell characters refused"

# 2. Job parameters: one literal argv element each, or refused naming the parameter.
jvals=("\$(touch $P.j1)" "\`touch $P.j2\`" ";touch $P.j3" "a|touch $P.j4" "a && touch $P.j5" "a > $P.j6" "a b	c")
nj=0
check_job() {
    local st got
    st=$(job_end jobs "$1") ; [ "$st" = completed ] || fail "job $1 ($2): $st"
    got=$($C job output jobs "$1")
    [ "$got" = "$2" ] || fail "job $1: argv $got, want $2"
    nj=$((nj + 1))
}
refused=""
for v in "${jvals[@]}"; do
    body=$(python3 -c 'import json, sys; print(json.dumps({"type": "args", "configuration": sys.argv[1], "port": sys.argv[1]}))' "$v")
    if id=$($C req jobs submit "$body" 2>"$T/err" | json_get job_id) && [ -n "$id" ]; then
        check_job "$id" "$(python3 -c 'import json, sys; print(json.dumps([sys.argv[1], sys.argv[1]]))' "$v")"
    else
        grep -qE 'bad_request: (configuration|port)' "$T/err" || fail "submit of $v: neither run nor refused by name: $(cat "$T/err")"
        refused="$refused [$(cat "$T/err")]"
    fi
    case $v in '$('* | 'a|'*) ;; *) continue ;; esac # two through herdctl's options too
    if id=$($C job submit jobs --type args --configuration "$v" --port 1 2>"$T/err"); then
        check_job "$id" "$(python3 -c 'import json, sys; print(json.dumps([sys.argv[1], "1"]))' "$v")"
    else
        grep -qE 'bad_request: configuration' "$T/err" || fail "herdctl submit of $v: $(cat "$T/err")"
    fi
done
[ "$nj" -ge 7 ] || fail "only $nj jobs ran"
nothing_created "jobs"
pass "jobs: $nj jobs, each parameter value with shell characters one literal argv element; refused:$refused"

# 3. A process worker's argv elements are passed literally.
wait_until yields 1 eval 'ls "$T/proc" | grep -c "\.json$"' || fail "process recorder did not run"
python3 - "$T" "$P" <<'PY' || fail "process: see above"
import glob, json, sys
t, p = sys.argv[1], sys.argv[2]
r = json.load(open(glob.glob(t + "/proc/*.json")[0]))
want = [t + "/proc", "--nostdin", "$(touch %s.p1)" % p, "`touch %s.p2`" % p, ";touch %s.p3" % p,
        "a|touch %s.p4" % p, "a && touch %s.p5" % p]
if r["argv"] != want:
    sys.exit("process argv %r, want %r" % (r["argv"], want))
PY
nothing_created "process"
pass "process: argv elements with \$(...), backticks, ;, |, && passed literally"

# 4. No shell call in the C sources.
SRC=${SEC_NO_SHELL_SRC:-$HERD_SOURCE_DIR}
n=0
for d in supervisor bus workers jobs catalog base cli; do
    [ -d "$SRC/$d" ] || fail "no $SRC/$d"
    n=$((n + $(find "$SRC/$d" -name '*.c' | wc -l)))
done
[ "$n" -gt 10 ] || fail "only $n C files under $SRC"
hits=$(cd "$SRC" && find supervisor bus workers jobs catalog base cli -name '*.c' -print0 |
    xargs -0 grep -nE '(^|[^A-Za-z0-9_])(system|popen)[[:space:]]*\(|"/bin/sh"|"sh"[[:space:]]*,[[:space:]]*"-c"')
[ -z "$hits" ] || fail "shell calls in the sources: $hits"
pass "no system(, popen(, \"/bin/sh\" or \"sh\", \"-c\" in $n C files"

kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exited $rc"
nothing_created "shutdown"
