#!/bin/bash
# Catalog workers on both real ESPHome catalogs: compiled with herdctl
# catalog build, every body served by `get` JSON-equal to its input entry,
# list filters exact, search case-insensitive on id, name and description,
# stats and health fields, a swap published on catalog.<worker>.reloaded.
. "$(dirname "$0")/lib.sh"

gzip -dc "$HERD_TEST_DATA/esphome/components.json.gz" >"$T/components.json"
gzip -dc "$HERD_TEST_DATA/esphome/automations.json.gz" >"$T/automations.json"
echo '{"partition_field": "domain"}' >"$T/auto-spec.json"

out=$("$HERDCTL" catalog build "$T/components.json" "$T/comp") || fail "build components"
case "$out" in v-*": 961 entries in 1 section") ;; *) fail "build output: $out" ;; esac
"$HERDCTL" --json catalog build --spec "$T/auto-spec.json" "$T/automations.json" "$T/auto" \
    >"$T/auto-build.json" || fail "build automations"
[ "$(json_get_file "$T/auto-build.json" entries)" = 1127 ] || fail "automations entries"
[ "$(json_get_file "$T/auto-build.json" sections)" = 5 ] || fail "automations sections"
pass "both catalogs compiled"

cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "comp", "kind": "catalog", "path": "$T/comp"},
  {"name": "auto", "kind": "catalog", "path": "$T/auto", "lru_entries": 16, "lru_bytes": "2M"}]}
JSON
start_herdd "$T/herd.json"
wait_until catalog_loaded 0 961 || fail "comp did not load"
wait_until catalog_loaded 1 1127 || fail "auto did not load"
pass "two catalog workers running"

# Every body, both catalogs, JSON-equal to the input's entry.
n=$("$HERD_CATALOG_CHECK" bodies "$RUN" comp "$T/components.json") || fail "components bodies"
[ "$n" = 961 ] || fail "components bodies checked: $n"
n=$("$HERD_CATALOG_CHECK" bodies "$RUN" auto "$T/automations.json") || fail "automations bodies"
[ "$n" = 1127 ] || fail "automations bodies checked: $n"
pass "all 2088 bodies JSON-equal to the input"

# Filters and search against the input, computed independently in Python.
"$HERDCTL" --json catalog list comp >"$T/all.json" || fail "list comp"
"$HERDCTL" --json catalog list comp --category sensor >"$T/sensor.json" || fail "list category"
"$HERDCTL" --json catalog list auto --section actions --domain light >"$T/light.json" ||
    fail "list domain"
"$HERDCTL" --json catalog list auto --domain light >"$T/light-all.json" || fail "list domain all"
"$HERDCTL" --json catalog list comp --category sensor --offset 5 --limit 7 >"$T/page.json" ||
    fail "list page"
"$HERDCTL" --json catalog search comp WiFi >"$T/s-wifi.json" || fail "search"
"$HERDCTL" --json catalog search comp 'BME280' --limit 1000 >"$T/s-bme.json" || fail "search"
"$HERDCTL" --json catalog search auto 'TURN ON' --section actions --limit 1000 >"$T/s-on.json" ||
    fail "search section"
"$HERDCTL" --json catalog search comp 'zzqq-no-such' >"$T/s-none.json" || fail "search none"
python3 - "$T" <<'PY' || fail "filters or search differ from the input"
import json, sys
t = sys.argv[1]
comp = json.load(open(t + "/components.json"))["components"]
auto = json.load(open(t + "/automations.json"))
def ids(f):
    r = json.load(open(t + "/" + f))
    return r["total"], [(e.get("section"), e["id"]) for e in r["entries"]]
def check(name, got, want):
    if got != want:
        sys.exit(f"{name}: got {got[:5]}... ({len(got)}), want {want[:5]}... ({len(want)})")
total, got = ids("all.json")
check("list all", got, [(None, e["id"]) for e in comp]); assert total == 961
total, got = ids("sensor.json")
want = [(None, e["id"]) for e in comp if e.get("category") == "sensor"]
check("category", got, want); assert total == len(want) and len(want) > 100
total, got = ids("light.json")
want = [(None, e["id"]) for e in auto["actions"] if e.get("domain") == "light"]
check("domain", got, want); assert total == len(want) and len(want) > 0
total, got = ids("light-all.json")
want = [(s, e["id"]) for s in auto for e in auto[s] if e.get("domain") == "light"]
check("domain, all sections", got, want); assert total == len(want)
total, got = ids("page.json")
check("offset/limit", got, [(None, e["id"]) for e in comp if e.get("category") == "sensor"][5:12])
def fields(e):
    return [e.get(k) for k in ("id", "name", "description") if isinstance(e.get(k), str)]
def match(e, q):  # terms: each whitespace-separated term in some field, case folded
    return all(any(t in f.lower() for f in fields(e)) for t in q.lower().split())
def tier(e, q):  # relevance: exact id/name, id/name prefix, name, id, other fields
    q, i, n = q.lower(), e["id"].lower(), (e.get("name") or "").lower()
    if q in (i, n): return 0
    if i.startswith(q) or n.startswith(q): return 1
    return 2 if q in n else 3 if q in i else 4
for f, entries, q, limit in (("s-wifi.json", comp, "WiFi", 50), ("s-bme.json", comp, "BME280", 1000),
                             ("s-on.json", auto["actions"], "TURN ON", 1000),
                             ("s-none.json", comp, "zzqq-no-such", 50)):
    total, got = ids(f)
    want = [e for e in entries if match(e, q)]
    want = [(None, e["id"]) for _, e in sorted(enumerate(want), key=lambda x: (tier(x[1], q), x[0]))]
    assert total == len(want), (f, total, len(want))
    check(f, got, want[:limit])
# case-insensitivity really exercised: matches by name and by description only
assert any("wifi" in e["id"] for e in comp if match(e, "WiFi"))
assert any("wifi" not in e["id"].lower() and "wifi" not in (e.get("name") or "").lower()
           for e in comp if match(e, "WiFi"))
PY
pass "list filters and search match the input exactly"

# Readable output, errors, categories, domains, stats, health.
"$HERDCTL" catalog list comp --category sensor --limit 3 >"$T/readable.txt" 2>"$T/readable.err" ||
    fail "readable list"
[ "$(wc -l <"$T/readable.txt")" = 3 ] || fail "readable list lines"
grep -q '^sensor\.[a-z0-9_]* .* sensor$' "$T/readable.txt" || fail "readable list format"
grep -q 'shown of' "$T/readable.err" || fail "readable list footer"
"$HERDCTL" catalog get comp wifi | python3 -c 'import json,sys; assert json.load(sys.stdin)["id"] == "wifi"' ||
    fail "readable get"
"$HERDCTL" catalog get comp no_such_thing 2>"$T/err.txt"
[ $? = 1 ] || fail "unknown id exit code"
grep -q 'not_found' "$T/err.txt" || fail "unknown id: $(cat "$T/err.txt")"
"$HERDCTL" --json req comp get '{"id": 5}' 2>"$T/err.txt"
[ $? = 1 ] && grep -q '"bad_request".*id: expected' "$T/err.txt" || fail "bad id type"
"$HERDCTL" --json req comp list '{"offset": "x"}' 2>"$T/err.txt"
[ $? = 1 ] && grep -q 'offset: expected' "$T/err.txt" || fail "bad offset"
"$HERDCTL" --json req comp search '{}' 2>"$T/err.txt"
[ $? = 1 ] && grep -q '"bad_request".*q: required' "$T/err.txt" || fail "search without q"
"$HERDCTL" --json req auto list '{"section": "nope"}' 2>"$T/err.txt"
[ $? = 1 ] && grep -q '"not_found"' "$T/err.txt" || fail "unknown section"
"$HERDCTL" --json req comp frobnicate 2>"$T/err.txt"
[ $? = 1 ] && grep -q '"unknown_op"' "$T/err.txt" || fail "unknown op"
"$HERDCTL" catalog list 2>/dev/null
[ $? = 2 ] || fail "usage exit code"
"$HERDCTL" catalog search --help | grep -q 'ignoring ASCII case' || fail "search --help"
"$HERDCTL" --json req auto domains '{"section": "actions"}' >"$T/domains.json" || fail "domains"
"$HERDCTL" --json req comp categories >"$T/cats.json" || fail "categories"
python3 - "$T" <<'PY' || fail "categories or domains differ"
import json, sys, collections
t = sys.argv[1]
comp = json.load(open(t + "/components.json"))["components"]
auto = json.load(open(t + "/automations.json"))
want = collections.Counter(e["category"] for e in comp if isinstance(e.get("category"), str))
assert json.load(open(t + "/cats.json")) == dict(want)
want = collections.Counter(e["domain"] for e in auto["actions"] if isinstance(e.get("domain"), str))
assert json.load(open(t + "/domains.json")) == dict(want)
PY
"$HERDCTL" --json req comp stats >"$T/stats.json" || fail "stats"
[ "$(json_get_file "$T/stats.json" entries)" = 961 ] || fail "stats entries"
[ "$(json_get_file "$T/stats.json" lru.misses)" -gt 0 ] || fail "stats lru"
"$HERDCTL" --json status >"$T/status.json"
python3 - "$T/status.json" <<'PY' || fail "health fields"
import json, sys
ws = {w["worker"]: w for w in json.load(open(sys.argv[1]))["workers"]}
for name, n in (("comp", 961), ("auto", 1127)):
    w = ws[name]
    assert w["state"] == "running" and w["kind"] == "catalog", w
    assert w["entries"] == n and w["version"].startswith("v-"), w
    assert 0 < w["index_bytes"] <= w["heap_bytes"], w
    assert set(w["lru"]) == {"entries", "bytes", "hits", "misses"}, w
    assert w["last_error"] is None, w
assert ws["auto"]["lru"]["entries"] <= 16 and ws["auto"]["lru"]["bytes"] <= 2 << 20
PY
pass "errors, categories, domains, stats and health"

# A rebuild with another spec is swapped in and announced.
"$HERDCTL" sub 'catalog.>' --count 1 >"$T/reloaded.txt" &
SUB=$!
track $SUB
wait_until remote_subscribers_at_least "$RUN" 1 || fail "subscriber"
echo '{"index_fields": ["name", "category"]}' >"$T/comp-spec.json"
v=$("$HERDCTL" --json catalog build --spec "$T/comp-spec.json" "$T/components.json" "$T/comp" |
    json_get version) || fail "rebuild"
for i in $(seq 1 100); do kill -0 $SUB 2>/dev/null || break; sleep 0.1; done
grep -q "^catalog.comp.reloaded {\"version\":\"$v\",\"entries\":961}$" "$T/reloaded.txt" ||
    fail "reloaded event: $(cat "$T/reloaded.txt")"
[ "$(status_get "$RUN" workers.0.version)" = "$v" ] || fail "version after swap"
"$HERDCTL" --json catalog list comp --limit 1 | grep -q '"description"' && fail "slim after swap"
pass "swap announced on catalog.comp.reloaded"

kill -0 $HERDD_PID || fail "herdd died"
