# The fleet rules and dashboard (docs/prometheus/herd.rules.yml,
# docs/grafana/herd-fleet.json) against promtool and a real herdd:
# - `promtool check rules` passes on the rules, `promtool test rules` on
#   their unit tests, which show every alert firing and not firing;
# - every alert has a severity and a summary and description naming the
#   host (and the worker, for per-worker alerts);
# - the dashboard is a Grafana dashboard (schemaVersion, a prometheus
#   datasource variable every panel uses, a multi-select instance variable
#   from label_values, unique panel ids) and every PromQL expression in it
#   (targets, annotations, variable queries), its template variables
#   replaced, passes `promtool check rules` as a recording rule;
# - every metric the rules and the dashboard name is one herdd exports
#   (`up` and the rules' own recorded names aside), with the labels and
#   label values (state, reason, code) used in their selectors, rate() and
#   increase() only of counters, deriv() and delta() only of gauges;
# - and the checks can fail: copies with a misspelled metric, label value,
#   broken expression or changed threshold are refused.
# PROM_DOCS=DIR checks DIR/prometheus and DIR/grafana instead of docs/.
. "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null || fail "promtool missing (scripts/bootstrap installs prometheus)"
DOCS=${PROM_DOCS:-$HERD_SOURCE_DIR/docs}
[ -f "$DOCS/prometheus/herd.rules.yml" ] || fail "no $DOCS/prometheus/herd.rules.yml"
[ -f "$DOCS/prometheus/herd.rules.test.yml" ] || fail "no $DOCS/prometheus/herd.rules.test.yml"
[ -f "$DOCS/grafana/herd-fleet.json" ] || fail "no $DOCS/grafana/herd-fleet.json"

# ---- a real herdd's /metrics: a process worker with memory_max and
# memory_high, a catalog, a jobs worker, one that failed; HTTP on.
PORT=$(free_port)
"$HERDCTL" catalog build "$HERD_SOURCE_DIR/examples/demo-catalog.json" "$T/catalog" \
    >"$T/catalog.log" 2>&1 || fail "catalog build: $(cat "$T/catalog.log")"
cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": "127.0.0.1:$PORT"},
 "workers": [
  {"name": "w", "kind": "process", "argv": ["sleep", "$MARK"], "memory_max": "64M",
   "memory_high": "32M"},
  {"name": "cat", "kind": "catalog", "path": "$T/catalog"},
  {"name": "jobs", "kind": "jobs", "types": {"hi": {"argv": ["true"]}}},
  {"name": "bad", "kind": "process", "argv": ["false"], "restart": "temporary"}
 ]}
JSON
start_herdd "$T/herd.json"
wait_until worker_state_is w running || fail "w: $(worker_get w state) $(worker_get w last_error)"
wait_until worker_state_is cat running || fail "cat: $(worker_get cat state) $(worker_get cat last_error)"
wait_until worker_state_is bad failed || fail "bad: $(worker_get bad state)"
curl -sf "http://127.0.0.1:$PORT/metrics" >"$T/metrics.txt" || fail "curl /metrics"
grep -q '^herd_worker_memory_max_bytes{' "$T/metrics.txt" || fail "no herd_worker_memory_max_bytes"
kill -TERM "$HERDD_PID" 2>/dev/null
wait "$HERDD_PID" 2>/dev/null

# ---- the checks of one docs tree, as a python script.
cat >"$T/check.py" <<'PY'
import json, re, sys

rules_path, test_path, dash_path, metrics_path, gen_path, n_rules = sys.argv[1:7]
problems = []

def problem(msg):
    problems.append(msg)

# /metrics: types, label names and values of every family.
label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
types, label_names, label_values = {}, {}, {}
for line in open(metrics_path):
    line = line.rstrip("\n")
    if line.startswith("# TYPE "):
        _, _, name, typ = line.split()
        types[name] = typ
        label_names.setdefault(name, set())
    elif line and not line.startswith("#"):
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$', line)
        if not m:
            problem("unparsable /metrics line: " + line)
            continue
        for k, v in label_re.findall(m.group(2) or ""):
            label_names.setdefault(m.group(1), set()).add(k)
            label_values.setdefault((m.group(1), k), set()).add(v)
TARGET_LABELS = {"job", "instance"}  # added by Prometheus to every series
types["up"] = "gauge"
label_names["up"] = set()
all_labels = set(TARGET_LABELS).union(*label_names.values())
ENUMERATED = {"state", "reason", "code"}  # herdd always writes every value

# The rules: a small reader for the YAML herd.rules.yml is written in
# (plain, quoted and block scalars); its count is checked against promtool's.
def rules_read(path):
    lines = open(path).read().split("\n")
    rules, cur = [], None
    i = 0
    while i < len(lines):
        m = re.match(r'^(\s*)(- )?(record|alert|expr|for):\s*(.*?)\s*$', lines[i])
        i += 1
        if not m:
            continue
        indent, key, val = len(m.group(1)) + len(m.group(2) or ""), m.group(3), m.group(4)
        if val in (">", ">-", ">+", "|", "|-", "|+"):
            block = []
            while i < len(lines) and (lines[i].strip() == "" or
                                      len(lines[i]) - len(lines[i].lstrip()) > indent):
                block.append(lines[i].strip())
                i += 1
            val = " ".join(b for b in block if b)
        elif val.startswith('"'):
            val = json.loads(val)
        elif val.startswith("'"):
            val = val[1:-1].replace("''", "'")
        if key in ("record", "alert"):
            cur = {"kind": key, "name": val, "start": i - 1}
            rules.append(cur)
        elif cur is not None:
            cur[key] = val
    for n, r in enumerate(rules):
        end = rules[n + 1]["start"] if n + 1 < len(rules) else len(lines)
        r["text"] = "\n".join(lines[r["start"]:end])
    return rules

rules = rules_read(rules_path)
if len(rules) != int(n_rules) or any("expr" not in r for r in rules):
    problem("read %d rules with exprs, promtool found %s" %
            (sum("expr" in r for r in rules), n_rules))
recorded = {r["name"] for r in rules if r["kind"] == "record"}
alerts = [r for r in rules if r["kind"] == "alert"]
if not alerts:
    problem("no alerts")
for r in alerts:
    t = r["text"]
    sev = re.search(r'^\s+severity:\s*"?(\w+)"?\s*$', t, re.M)
    if not sev or sev.group(1) not in ("critical", "warning", "info"):
        problem("%s: no severity label critical, warning or info" % r["name"])
    if "for" not in r:
        problem("%s: no for:" % r["name"])
    for a in ("summary", "description"):
        m = re.search(r'^(\s+)%s:(.*(?:\n\1\s.*)*)' % a, t, re.M)
        if not m:
            problem("%s: no %s annotation" % (r["name"], a))
            continue
        if "$labels.instance" not in m.group(2):
            problem("%s: %s does not name the host ($labels.instance)" % (r["name"], a))
        if "herd_worker_" in r["expr"] and "$labels.worker" not in m.group(2):
            problem("%s: %s does not name the worker ($labels.worker)" % (r["name"], a))

# The unit tests: each alert fires in one case and does not in another.
fires, quiet = set(), set()
tl = open(test_path).read().split("\n")
for n, l in enumerate(tl):
    m = re.match(r'^\s*(?:- )?alertname:\s*(\S+)\s*$', l)
    if m:
        for k in tl[n + 1:]:
            e = re.match(r'^\s*exp_alerts:\s*(.*?)\s*$', k)
            if e:
                (quiet if e.group(1) == "[]" else fires).add(m.group(1))
                break
for r in alerts:
    if r["name"] not in fires:
        problem("%s: no unit test shows it firing" % r["name"])
    if r["name"] not in quiet:
        problem("%s: no unit test shows it not firing" % r["name"])

# The dashboard.
d = json.load(open(dash_path))
if not isinstance(d.get("schemaVersion"), int) or not 36 <= d["schemaVersion"] <= 41:
    problem("dashboard: schemaVersion %r" % d.get("schemaVersion"))
for k in ("title", "uid", "panels", "templating"):
    if k not in d:
        problem("dashboard: no " + k)
tvars = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
ds = [v for v in tvars.values() if v.get("type") == "datasource"]
if len(ds) != 1 or ds[0].get("query") != "prometheus":
    problem("dashboard: no single datasource variable of type prometheus")
DS_UID = "${%s}" % (ds[0]["name"] if ds else "datasource")
inst = tvars.get("instance", {})
def var_query(v):
    q = v.get("query")
    return q.get("query", "") if isinstance(q, dict) else (q or "")
if not (inst.get("type") == "query" and inst.get("multi") is True and
        re.match(r'^label_values\(.+,\s*instance\s*\)$', var_query(inst))):
    problem("dashboard: no multi-select instance variable from label_values(..., instance)")

exprs = []  # (where, expr)
panels, ids = [], []
def walk(ps):
    for p in ps:
        panels.append(p)
        walk(p.get("panels", []))
walk(d.get("panels", []))
for p in panels:
    where = "panel %r" % p.get("title")
    ids.append(p.get("id"))
    gp = p.get("gridPos", {})
    if not all(isinstance(gp.get(k), int) for k in ("x", "y", "w", "h")) or gp["x"] + gp["w"] > 24:
        problem(where + ": bad gridPos %r" % gp)
    if p.get("type") == "row":
        continue
    if (p.get("datasource") or {}).get("uid") != DS_UID:
        problem(where + ": datasource is not " + DS_UID)
    refs = [t.get("refId") for t in p.get("targets", [])]
    if not refs or len(set(refs)) != len(refs):
        problem(where + ": no targets, or refIds not unique")
    for t in p.get("targets", []):
        if (t.get("datasource") or {}).get("uid", DS_UID) != DS_UID:
            problem(where + ": a target's datasource is not " + DS_UID)
        if not t.get("expr"):
            problem(where + ": target %s has no expr" % t.get("refId"))
        else:
            exprs.append(("%s %s" % (where, t.get("refId")), t["expr"]))
if len(set(ids)) != len(ids) or None in ids:
    problem("dashboard: panel ids missing or not unique")
for a in d.get("annotations", {}).get("list", []):
    if a.get("expr"):
        exprs.append(("annotation %r" % a.get("name"), a["expr"]))
for name, v in tvars.items():
    if v.get("type") != "query":
        continue
    q = var_query(v).strip()
    m = re.match(r'^label_values\((.*?),?\s*([a-zA-Z_]\w*)\s*\)$', q)
    if m:
        if m.group(1).strip():
            exprs.append(("variable " + name, m.group(1)))
    elif re.match(r'^query_result\((.*)\)$', q):
        exprs.append(("variable " + name, q[len("query_result("):-1]))
    elif re.match(r'^(metrics|label_names)\(', q):
        pass
    else:
        exprs.append(("variable " + name, q))

# Template variables: Grafana's intervals become durations, the
# dashboard's own variables a regex (they all sit in =~ matchers).
BUILTIN = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "__range_s": "3600",
           "__interval_ms": "60000", "__range_ms": "3600000"}
def substitute(where, e):
    def repl(m):
        n = m.group(1) or m.group(2) or m.group(3)
        if n in BUILTIN:
            return BUILTIN[n]
        if n in tvars and tvars[n].get("type") != "datasource":
            return ".+"
        problem("%s: undefined variable $%s" % (where, n))
        return "undefined"
    return re.sub(r'\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]', repl, e)
exprs = [(w, substitute(w, e)) for w, e in exprs]

# PromQL, read enough to find the metrics, selectors and groupings.
STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "offset", "bool", "inf", "nan"}
def check_expr(where, e):
    if "__name__" in e:
        problem(where + ": __name__ matchers are not checked; name the metric")
    # selectors with matchers, strings intact
    for m in re.finditer(r'([a-zA-Z_:][\w:]*)?\s*\{((?:[^}"]|"(?:[^"\\]|\\.)*")*)\}', e):
        name = m.group(1)
        if name is None or name in KEYWORDS or name in recorded or name not in types:
            continue
        for lm in re.finditer(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', m.group(2)):
            lab, op, val = lm.groups()
            if lab not in label_names[name] and lab not in TARGET_LABELS:
                problem("%s: %s has no label %s" % (where, name, lab))
            elif lab in ENUMERATED:
                seen = label_values.get((name, lab), set())
                alts = val.split("|") if op in ("=~", "!~") and re.match(r'^[\w|]+$', val) else \
                    [val] if op in ("=", "!=") else []
                for a in alts:
                    if a not in seen:
                        problem("%s: %s{%s} has no value %r (herdd writes %s)" %
                                (where, name, lab, a, ", ".join(sorted(seen))))
    bare = re.sub(STRING, '""', e)
    bare = re.sub(r'\{[^}]*\}', " ", bare)
    bare = re.sub(r'\[[^\]]*\]', " ", bare)
    for g in re.finditer(r'\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)', bare):
        for lab in re.findall(r'[a-zA-Z_]\w*', g.group(2)):
            if lab not in all_labels:
                problem("%s: no metric herdd exports has a label %s (in %s)" % (where, lab, g.group(1)))
    bare = re.sub(r'\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)', " ", bare)
    for fm in re.finditer(r'\b(rate|irate|increase|resets|deriv|delta|idelta|predict_linear)\s*\(\s*([a-zA-Z_:][\w:]*)\s*\[?', bare):
        fn, name = fm.groups()
        want = "counter" if fn in ("rate", "irate", "increase", "resets") else "gauge"
        if name in types and types[name] != want:
            problem("%s: %s() of %s, a %s" % (where, fn, name, types[name]))
    for nm in re.finditer(r'(?<![\w.:$])([a-zA-Z_:][\w:]*)(\s*\()?', bare):
        name, call = nm.groups()
        if call or name.lower() in KEYWORDS:
            continue
        if name not in types and name not in recorded:
            problem("%s: %s is not a metric herdd exports" % (where, name))
        names.add(name)

names = set()
for r in rules:
    check_expr("rule " + r["name"], r["expr"])
n_rule_names = len(names)
for w, e in exprs:
    check_expr(w, e)

with open(gen_path, "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for n, (w, e) in enumerate(exprs):
        f.write("      # %s\n      - record: dashboard:expr_%d\n        expr: %s\n" %
                (w.replace("\n", " "), n, json.dumps(e)))
for p in problems:
    print("problem:", p)
print("%d rules (%d alerts), %d dashboard expressions, %d metric names checked" %
      (len(rules), len(alerts), len(exprs), len(names)))
sys.exit(1 if problems else 0)
PY

# check_docs DIR LOG: every check of the docs tree DIR (all of them, so
# that each mistake is named); 0 when all pass.
check_docs() {
    local dir=$1 log=$2 n rc=0
    : >"$log"
    promtool check rules "$dir/prometheus/herd.rules.yml" >>"$log" 2>&1 || rc=1
    n=$(sed -n 's/.*SUCCESS: \([0-9]*\) rules found.*/\1/p' "$log")
    (cd "$dir/prometheus" && promtool test rules herd.rules.test.yml) >>"$log" 2>&1 || rc=1
    rm -f "$T/dashboard.rules.yml"
    python3 "$T/check.py" "$dir/prometheus/herd.rules.yml" "$dir/prometheus/herd.rules.test.yml" \
        "$dir/grafana/herd-fleet.json" "$T/metrics.txt" "$T/dashboard.rules.yml" "${n:-0}" \
        >>"$log" 2>&1 || rc=1
    promtool check rules "$T/dashboard.rules.yml" >>"$log" 2>&1 || rc=1
    return $rc
}

check_docs "$DOCS" "$T/check.log" || { cat "$T/check.log" >&2; fail "the docs do not pass (above)"; }
cat "$T/check.log"

# ---- the checks can fail: a copy with one mistake each must be refused,
# for the reason named.
# refused NAME FILE PERL_SUBST EXPECTED...: copies the docs, applies the
# substitution to prometheus/ or grafana/ FILE, expects check_docs to fail
# with each EXPECTED in its log.
refused() {
    local name=$1 file=$2 subst=$3 dir="$T/bad-$1"
    shift 3
    mkdir -p "$dir"
    cp -r "$DOCS/prometheus" "$DOCS/grafana" "$dir/"
    perl -0pi -e "$subst" "$dir/$file"
    cmp -s "$DOCS/$file" "$dir/$file" && fail "$name: the substitution changed nothing"
    check_docs "$dir" "$T/bad-$name.log" && fail "$name: a broken copy passed"
    for want in "$@"; do
        grep -qF -- "$want" "$T/bad-$name.log" ||
            fail "$name: no \"$want\" in: $(cat "$T/bad-$name.log")"
    done
    echo "refused as it should: $name"
}
# shellcheck disable=SC2016 # the substitutions are perl's, $ included
{
    refused rule-metric prometheus/herd.rules.yml \
        's/herd_worker_heap_bytes\{job="herd"\}\n          \/ herd_worker_memory_max_bytes/herd_worker_heap_byte{job="herd"}\n          \/ herd_worker_memory_max_bytes/' \
        "rule HerdWorkerNearMemoryMax: herd_worker_heap_byte is not a metric herdd exports"
    refused rule-label-value prometheus/herd.rules.yml \
        's/state="failed"\} == 1\n/state="fail"} == 1\n/' \
        "rule HerdWorkerFailed: herd_worker_state{state} has no value 'fail'"
    refused rule-threshold prometheus/herd.rules.yml \
        's/memory_max_bytes\{job="herd"\} > 0\.9/memory_max_bytes{job="herd"} > 0.99/' \
        "alertname: HerdWorkerNearMemoryMax"
    refused rule-no-severity prometheus/herd.rules.yml \
        's/severity: info\n(.*\n.*summary: "herdd on)/team: herd\n$1/' \
        "HerdSupervisorRestarted: no severity label"
    refused dashboard-metric grafana/herd-fleet.json \
        's/"process_resident_memory_bytes\{/"process_resident_memory{/' \
        "process_resident_memory is not a metric herdd exports"
    refused dashboard-label grafana/herd-fleet.json \
        's/herd_worker_state\{job=~\\"\$job\\", instance=~\\"\$instance\\", state=\\"failed\\"\}/herd_worker_state{job=~\\"\$job\\", instance=~\\"\$instance\\", status=\\"failed\\"}/' \
        "herd_worker_state has no label status"
    refused dashboard-rate-of-gauge grafana/herd-fleet.json \
        's/rate\(process_cpu_seconds_total/rate(process_open_fds/' \
        "rate() of process_open_fds, a gauge"
    refused dashboard-syntax grafana/herd-fleet.json \
        's/sum by \(state\) \(herd_worker_state/sum by (state) herd_worker_state/' \
        "could not parse expression"
    refused dashboard-variable grafana/herd-fleet.json \
        's/\$__rate_interval/\$__rate_intervall/' \
        "undefined variable \$__rate_intervall"
}

pass "rules, unit tests and dashboard: promtool clean, every metric one herdd exports"
