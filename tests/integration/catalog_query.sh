#!/bin/bash
# The catalog query ops (DESIGN.md section 6) end to end through herdctl on
# both real ESPHome catalogs: where clauses (scalar, any-of, not, empty_or,
# fold, dotted paths), any, sort keys and their shorthand, facets (each
# field's own clause left out), relevance and phrase search, get of several
# ids and of slim entries, and the usage and bad_request errors. Every
# answer is checked against an independent recomputation in Python from the
# input JSON.
. "$(dirname "$0")/lib.sh"

gzip -dc "$HERD_TEST_DATA/esphome/components.json.gz" >"$T/components.json"
gzip -dc "$HERD_TEST_DATA/esphome/automations.json.gz" >"$T/automations.json"
cat >"$T/auto-spec.json" <<'JSON'
{"sections": {"triggers": {"partition_field": "applies_to"},
              "light_effects": {"partition_field": "applies_to"},
              "filters": {"partition_field": "applies_to"},
              "actions": {"partition_field": "domain"},
              "conditions": {"partition_field": "domain"}}}
JSON
"$HERDCTL" catalog build "$T/components.json" "$T/comp" >/dev/null || fail "build components"
"$HERDCTL" catalog build --spec "$T/auto-spec.json" "$T/automations.json" "$T/auto" >/dev/null ||
    fail "build automations"
# A board catalog with numbers no C type holds: they reach herdctl's output as written.
w1='{"id":"w1","name":"One-Wire","addr":17008162028057714984,"huge":1e400,"d":0.1234567890123456789012345678901234567890,"neg":-0,"s":"\u00e9"}'
printf '{"boards": [\n%s,\n{"id":"w2","name":"Plain","addr":5}]}\n' "$w1" >"$T/boards.json"
"$HERDCTL" catalog build "$T/boards.json" "$T/boards" >/dev/null || fail "build boards"

cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "comp", "kind": "catalog", "path": "$T/comp"},
  {"name": "auto", "kind": "catalog", "path": "$T/auto"},
  {"name": "boards", "kind": "catalog", "path": "$T/boards"}]}
JSON
start_herdd "$T/herd.json"
wait_until catalog_loaded 0 961 || fail "comp did not load"
wait_until catalog_loaded 1 1127 || fail "auto did not load"
pass "two catalog workers running"

# q NAME ARGS...: `herdctl --json catalog ARGS...` into $T/NAME.json; any
# exit but 0 fails the test with herdctl's message.
q() {
    local name=$1
    shift
    "$HERDCTL" --json catalog "$@" >"$T/$name.json" 2>"$T/$name.err" ||
        fail "catalog $* (exit $?): $(cat "$T/$name.err")"
}
# Text output (no --json), for the readable forms.
qt() {
    local name=$1
    shift
    "$HERDCTL" catalog "$@" >"$T/$name.txt" 2>"$T/$name.err" ||
        fail "catalog $* (exit $?): $(cat "$T/$name.err")"
}

# ---- where, any, domain -------------------------------------------------------
q bin list auto --section triggers --domain binary_sensor
qt bin list auto --section triggers --domain binary_sensor
q anyof list auto --section triggers --where '{"applies_to": ["light", "switch"]}'
q device list auto --section triggers --where '{"is_device_level": true}'
q or list auto --section triggers --any '[{"is_device_level": true}, {"applies_to": "light"}]'
q notlight list auto --section triggers --where '{"applies_to": {"not": "light"}}'
q filters list auto --section filters --domain binary_sensor
q emptyarr list auto --section triggers --where '{"applies_to": {"empty_or": "light"}}'
q emptynull list auto --section actions --where '{"scalar_shorthand_key": {"empty_or": "value"}}'
q actions list auto --section actions --where '{"domain": "light"}' \
    --any '[{"name": {"fold": "LIGHT → TOGGLE"}}, {"domain": {"not": "light"}}]'
q sensors list comp --where '{"category": ["sensor", "binary_sensor"],
                               "supported_platforms": {"empty_or": "esp32"}}'
q platforms list comp --where '{"category": ["light", "output", "text_sensor"],
                                 "supported_platforms": {"empty_or": "esp32"}}'
q foldcat list comp --where '{"category": {"fold": "Binary_SENSOR"}}'
q dotted list comp --where '{"bus_constraints.uart.baud_rate": 9600}'
q notplat list comp --where '{"supported_platforms": {"not": "esp32"}, "category": "light"}'

# ---- order ----------------------------------------------------------------------
q all list comp
q byname list comp --order name
q bynamedesc list comp --order -name
q bycatname list comp --order 'category,-name'
q byfold list comp --order '[{"field": "name", "fold": true}]'
q byindex list comp --q sensor --order index
q paged list comp --order name --offset 100 --limit 25

# ---- facets ---------------------------------------------------------------------
q facets list comp --where '{"category": "light", "supported_platforms": {"empty_or": "esp32"}}' \
    --facets category,dependencies
q facetsany list comp --where '{"category": "sensor"}' \
    --any '[{"category": "light"}, {"dependencies": "i2c"}]' --facets category --facets dependencies
q facetsq list comp --q temperature --where '{"category": "sensor"}' \
    --facets category,dependencies --limit 5
# 1127 entries: two pages of 1000, the facets from the first (of every match)
q pagedfacets list auto --facets domain
qt facets list comp --where '{"category": "light", "supported_platforms": {"empty_or": "esp32"}}' \
    --facets category,dependencies --limit 3

# ---- search ---------------------------------------------------------------------
q wifi search comp wifi
q wifiupper search comp WIFI --limit 1000
q adc search comp adc
q touch search comp touchscreen
q gpio search comp GPIO
q terms search comp 'temperature sensor' --order index --limit 1000
q phrase search comp 'temperature sensor' --phrase --order index --limit 1000
q termsrel search comp 'temperature sensor' --limit 1000
q phraserel search comp 'temperature sensor' --phrase --limit 1000
q listq list comp --q 'temperature sensor' --phrase --order index
q searchwhere search comp sensor --where '{"category": "binary_sensor"}' --order index --limit 1000

# ---- get ------------------------------------------------------------------------
q get3 get comp wifi sensor.bme280_i2c api
q get4 get comp wifi no_such_thing logger wifi
q getslim get comp --slim wifi sensor.dht api
q getslim1 get comp --slim light.rgb
q getone get comp sensor.dht
q getsec get auto --section actions light.toggle light.turn_on

python3 - "$T" <<'PY' || fail "query answers differ from the input"
import collections, json, sys

t = sys.argv[1]
comp = json.load(open(t + "/components.json"))["components"]
auto = json.load(open(t + "/automations.json"))
MISSING = object()
bad = []


def load(name):
    return json.load(open(f"{t}/{name}.json"))


def short(v):
    s = json.dumps(v, ensure_ascii=False)
    return s if len(s) < 300 else s[:300] + f"... ({len(v)} items)"


def check(name, got, want):
    if got != want:
        bad.append(f"{name}: got {short(got)}, want {short(want)}")


def fold(s):
    # casefold() is full case folding; where every character folds to one
    # (checked below for every text of the input), it is the simple case
    # folding DESIGN.md asks for (µ finds Μ, no ß -> ss)
    return s.casefold()


for e in comp + [e for s in auto.values() for e in s]:
    for k in ("id", "name", "description", "category"):
        v = e.get(k)
        assert not isinstance(v, str) or all(len(c.casefold()) == 1 for c in v), (e["id"], k)


def get(e, path):
    for k in path.split("."):
        if not isinstance(e, dict) or k not in e:
            return MISSING
        e = e[k]
    return e


def same(a, b, folded):
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, str) and isinstance(b, str) and folded:
        return fold(a) == fold(b)
    return type(a) is type(b) and a == b


def holds(v, spec, folded=False):
    if isinstance(spec, dict):
        if "not" in spec:
            return not holds(v, spec["not"], folded)
        if "empty_or" in spec:
            return v is MISSING or v is None or v == [] or holds(v, spec["empty_or"], folded)
        if "fold" in spec:
            return holds(v, spec["fold"], True)
        raise ValueError(spec)
    if isinstance(spec, list):
        return any(holds(v, s, folded) for s in spec)
    if v is MISSING:
        return False
    if isinstance(v, list):
        return any(same(x, spec, folded) for x in v)
    return same(v, spec, folded)


def where_ok(e, where):
    return all(holds(get(e, k), v) for k, v in where.items())


def matches(entries, where={}, any_=None):
    return [e for e in entries
            if where_ok(e, where) and (any_ is None or any(where_ok(e, w) for w in any_))]


def ids(entries):
    return [e["id"] for e in entries]


def check_list(name, want, need_some=True):
    r = load(name)
    check(name + " ids", ids(r["entries"]), ids(want))
    check(name + " total", r["total"], len(want))
    if need_some and not want:
        bad.append(f"{name}: the case selects nothing, so it checks nothing")


trig = auto["triggers"]
check_list("bin", matches(trig, {"applies_to": "binary_sensor"}))
check_list("anyof", matches(trig, {"applies_to": ["light", "switch"]}))
check_list("device", matches(trig, {"is_device_level": True}))
check_list("or", matches(trig, {}, [{"is_device_level": True}, {"applies_to": "light"}]))
check_list("notlight", matches(trig, {"applies_to": {"not": "light"}}))
check_list("filters", matches(auto["filters"], {"applies_to": "binary_sensor"}))
want = matches(trig, {"applies_to": {"empty_or": "light"}})
check_list("emptyarr", want)
assert any(e["applies_to"] == [] for e in want)
want = matches(auto["actions"], {"scalar_shorthand_key": {"empty_or": "value"}})
check_list("emptynull", want)
assert any(e["scalar_shorthand_key"] is None for e in want)
assert any(e["scalar_shorthand_key"] == "value" for e in want)
want = matches(auto["actions"], {"domain": "light"},
               [{"name": {"fold": "LIGHT → TOGGLE"}}, {"domain": {"not": "light"}}])
check_list("actions", want)
assert len(load("or")["entries"]) > len(load("device")["entries"])
assert 0 < len(load("notlight")["entries"]) < len(trig)
check_list("sensors", matches(comp, {"category": ["sensor", "binary_sensor"],
                                     "supported_platforms": {"empty_or": "esp32"}}))
want = matches(comp, {"category": ["light", "output", "text_sensor"],
                      "supported_platforms": {"empty_or": "esp32"}})
check_list("platforms", want)
# empty_or really excludes entries here (platforms that are not esp32)
assert len(want) < len(matches(comp, {"category": ["light", "output", "text_sensor"]}))
check_list("foldcat", [e for e in comp if e["category"] == "binary_sensor"])
check_list("dotted", matches(comp, {"bus_constraints.uart.baud_rate": 9600}))
check_list("notplat", matches(comp, {"supported_platforms": {"not": "esp32"}, "category": "light"}))

# The text form: "id  name  category" a line, in the same order.
lines = open(t + "/bin.txt", encoding="utf-8").read().splitlines()
check("bin text ids", [l.split()[0] for l in lines],
      ids(matches(trig, {"applies_to": "binary_sensor"})))


# Sort keys: stable, missing values last in either direction, strings bytewise
# (UTF-8) or folded.
def sort_by(entries, keys):
    out = list(entries)
    for field, desc, folded in reversed(keys):
        present = [e for e in out if get(e, field) is not MISSING]
        missing = [e for e in out if get(e, field) is MISSING]
        present.sort(key=lambda e: (fold(e[field]) if folded else e[field]).encode(), reverse=desc)
        out = present + missing
    return out


check_list("all", comp)
check_list("byname", sort_by(comp, [("name", False, False)]))
check_list("bynamedesc", sort_by(comp, [("name", True, False)]))
check_list("bycatname", sort_by(comp, [("category", False, False), ("name", True, False)]))
check_list("byfold", sort_by(comp, [("name", False, True)]))
# ties exist (equal names), so input order on ties is exercised; so is the
# difference between bytewise and folded order
assert len({e["name"] for e in comp}) < len(comp)
assert ids(sort_by(comp, [("name", False, True)])) != ids(sort_by(comp, [("name", False, False)]))
r = load("paged")
check("paged ids", ids(r["entries"]), ids(sort_by(comp, [("name", False, False)]))[100:125])
check("paged total", r["total"], len(comp))


def search_fields(e):
    return [e[k] for k in ("id", "name", "description") if isinstance(e.get(k), str)]


def found(e, q, phrase=False):
    texts = [fold(s) for s in search_fields(e)]
    words = [fold(q)] if phrase else fold(q).split()
    return all(any(w in s for s in texts) for w in words)


def tier(e, q):
    q, i, n = fold(q), fold(e["id"]), fold(e.get("name") or "")
    if i == q or n == q:
        return 0
    if i.startswith(q) or n.startswith(q):
        return 1
    if q in n:
        return 2
    if q in i:
        return 3
    return 4


check_list("byindex", [e for e in comp if found(e, "sensor")])


# Facets: per field, the matches of every clause but that field's own (and
# of q and any), each element of an array field counted.
def facet(entries, where, field, any_=None, q=None):
    c = collections.Counter()
    for e in matches(entries, {k: v for k, v in where.items() if k != field}, any_):
        if q is not None and not found(e, q):
            continue
        v = get(e, field)
        for x in v if isinstance(v, list) else [v]:
            if isinstance(x, str):
                c[x] += 1
    return dict(c)


where = {"category": "light", "supported_platforms": {"empty_or": "esp32"}}
r = load("facets")
check("facets entries", ids(r["entries"]), ids(matches(comp, where)))
check("facets category", r.get("facets", {}).get("category"), facet(comp, where, "category"))
check("facets dependencies", r.get("facets", {}).get("dependencies"),
      facet(comp, where, "dependencies"))
# the sidebar counts: other categories counted, and not as plain totals
assert len(r["facets"]["category"]) > 1
assert r["facets"]["category"] != dict(collections.Counter(e["category"] for e in comp))
any_ = [{"category": "light"}, {"dependencies": "i2c"}]
r = load("facetsany")
where = {"category": "sensor"}
check("facetsany entries", ids(r["entries"]), ids(matches(comp, where, any_)))
check("facetsany category", r.get("facets", {}).get("category"),
      facet(comp, where, "category", any_))
check("facetsany dependencies", r.get("facets", {}).get("dependencies"),
      facet(comp, where, "dependencies", any_))
r = load("facetsq")
check("facetsq category", r.get("facets", {}).get("category"),
      facet(comp, where, "category", None, "temperature"))
check("facetsq dependencies", r.get("facets", {}).get("dependencies"),
      facet(comp, where, "dependencies", None, "temperature"))
check("facetsq total", r["total"],
      len([e for e in matches(comp, where) if found(e, "temperature")]))

r = load("pagedfacets")
every = [(s, e) for s in auto for e in auto[s]]
check("paged facets ids", [(e.get("section"), e["id"]) for e in r["entries"]],
      [(s, e["id"]) for s, e in every])
check("paged facets total", r["total"], len(every))
check("paged facets", r.get("facets", {}).get("domain"),
      dict(collections.Counter(e["domain"] for s, e in every if isinstance(e.get("domain"), str))))

# Facets as text: entries, then "field:" blocks of "  value  count" lines.
want_f = load("facets")["facets"]
lines = open(t + "/facets.txt", encoding="utf-8").read().split("\n")
where = {"category": "light", "supported_platforms": {"empty_or": "esp32"}}
check("facets text entries", [l.split()[0] for l in lines[:3]], ids(matches(comp, where))[:3])
check("facets text layout", lines[3:5], ["", "category:"])
got_f, field = {}, None
for l in lines[3:]:
    if l == "":
        continue
    if not l.startswith("  "):
        field = l.rstrip(":")
        got_f[field] = {}
    else:
        value, count = l.strip().rsplit(None, 1)
        got_f[field][value] = int(count)
check("facets text", got_f, want_f)
check("facets text order", list(got_f), list(want_f))


# Search: terms or phrase; relevance order, ties in input order.
def relevance(entries, q, phrase=False):
    hits = [e for e in entries if found(e, q, phrase)]
    return sorted(hits, key=lambda e: tier(e, q))


r = load("wifi")
want = relevance(comp, "wifi")
check("search wifi", ids(r["entries"]), ids(want)[:50])
check("search wifi total", r["total"], len(want))
assert {tier(e, "wifi") for e in want} >= {0, 1, 4}, "wifi: tiers not exercised"
check("search WIFI", ids(load("wifiupper")["entries"]), ids(want))
# every tier from prefix to other fields, in an order that is not the input's
for name, q in (("adc", "adc"), ("gpio", "GPIO")):
    want = relevance(comp, q)
    check("search " + q, ids(load(name)["entries"]), ids(want))
    assert {tier(e, q) for e in want} >= {1, 2, 3, 4}, q
    assert ids(want) != ids([e for e in comp if found(e, q)]), q
# an exact name ahead of earlier id prefixes
want = relevance(comp, "touchscreen")
check("search touchscreen", ids(load("touch")["entries"]), ids(want))
assert want[0]["id"] == "binary_sensor.touchscreen" and tier(want[0], "touchscreen") == 0
terms = [e for e in comp if found(e, "temperature sensor")]
phrase = [e for e in comp if found(e, "temperature sensor", True)]
check_list("terms", terms)
check_list("phrase", phrase)
check_list("listq", phrase)
assert len(phrase) < len(terms)
check("terms by relevance", sorted(ids(load("termsrel")["entries"])), sorted(ids(terms)))
check("phrase by relevance", ids(load("phraserel")["entries"]),
      ids(relevance(comp, "temperature sensor", True)))
check_list("searchwhere",
           [e for e in comp if e["category"] == "binary_sensor" and found(e, "sensor")])

# get: bodies JSON-equal to the input; several ids an object keyed by id
# (unknown ids left out, duplicates once); --slim the entries list shows.
by_id = {e["id"]: e for e in comp}
slim = {e["id"]: e for e in load("all")["entries"]}
check("get 3", load("get3"), {i: by_id[i] for i in ("wifi", "sensor.bme280_i2c", "api")})
check("get unknown and duplicate", load("get4"), {i: by_id[i] for i in ("wifi", "logger")})
check("get --slim", load("getslim"), {i: slim[i] for i in ("wifi", "sensor.dht", "api")})
check("get --slim one", load("getslim1"), slim["light.rgb"])
check("get one", load("getone"), by_id["sensor.dht"])
acts = {e["id"]: e for e in auto["actions"]}
check("get --section", load("getsec"), {i: acts[i] for i in ("light.toggle", "light.turn_on")})
assert slim["wifi"] != by_id["wifi"]

if bad:
    sys.exit("\n".join(bad))
PY
pass "where, any, order, facets, search and get agree with the input"

# ---- errors -------------------------------------------------------------------
"$HERDCTL" catalog list comp --where '{' >/dev/null 2>"$T/err"; rc=$?
[ $rc = 2 ] || fail "--where '{': exit $rc, want 2"
grep -q -- '--where: invalid JSON: .*line 1, column' "$T/err" || fail "--where '{': $(cat "$T/err")"
"$HERDCTL" catalog list comp --where '["category"]' >/dev/null 2>"$T/err"; rc=$?
[ $rc = 2 ] && grep -q -- '--where: expected a JSON object' "$T/err" ||
    fail "--where array: exit $rc, $(cat "$T/err")"
"$HERDCTL" catalog list comp --any '[{"category": "light"}, 5]' >/dev/null 2>"$T/err"; rc=$?
[ $rc = 2 ] && grep -q -- '--any\[1\]: expected an object' "$T/err" ||
    fail "--any: exit $rc, $(cat "$T/err")"
"$HERDCTL" catalog list comp --order 'name,,id' >/dev/null 2>"$T/err"; rc=$?
[ $rc = 2 ] && grep -qF -- '--order: empty field name in "name,,id"' "$T/err" ||
    fail "--order: exit $rc, $(cat "$T/err")"
"$HERDCTL" catalog list comp --where '{"no_such_field": 1}' >/dev/null 2>"$T/err"; rc=$?
[ $rc = 1 ] && grep -q 'bad_request' "$T/err" && grep -q 'no_such_field' "$T/err" ||
    fail "unknown field: exit $rc, $(cat "$T/err")"
for sub in list search get; do
    "$HERDCTL" catalog $sub --help >"$T/help.txt" || fail "catalog $sub --help"
done
for opt in --where --any --order --facets --phrase --offset --limit --q; do
    "$HERDCTL" catalog list --help | grep -q -- "^  $opt " || fail "list --help lacks $opt"
done
"$HERDCTL" catalog get --help | grep -q -- '--slim' || fail "get --help lacks --slim"
pass "usage errors (exit 2) and bad_request (exit 1) named"

# Exact numbers end to end: get, list --json, get of several ids and req
# print the catalog's bytes; the text listing is not stopped by them.
wait_until catalog_loaded 2 2 || fail "boards did not load"
[ "$("$HERDCTL" --json catalog get boards w1)" = "$w1" ] || fail "get w1: not the input's bytes"
"$HERDCTL" catalog get boards w1 | grep -qx '  "addr": 17008162028057714984,' ||
    fail "get w1 (indented): $("$HERDCTL" catalog get boards w1)"
[ "$("$HERDCTL" --json catalog get boards --slim w1)" = "$w1" ] || fail "slim w1"
[ "$("$HERDCTL" --json catalog list boards --where '{"addr": {"not": 5}}')" = \
    "{\"total\":1,\"entries\":[$w1]}" ] || fail "list --json with exact numbers"
[ "$("$HERDCTL" --json catalog get boards w1 w2 zz)" = "{\"w1\":$w1,\"w2\":{\"id\":\"w2\",\"name\":\"Plain\",\"addr\":5}}" ] ||
    fail "get w1 w2: $("$HERDCTL" --json catalog get boards w1 w2 zz)"
[ "$("$HERDCTL" --json req boards get '{"id": "w1"}')" = "$w1" ] || fail "req get w1"
"$HERDCTL" catalog list boards | grep -q '^w1 .*One-Wire' || fail "text list of boards"
"$HERDCTL" --json catalog list boards --order '[{"field": "addr", "desc": true}]' |
    python3 -c 'import json,sys; r=json.loads(sys.stdin.read(), parse_int=str, parse_float=str); assert [e["id"] for e in r["entries"]] == ["w1","w2"], r' ||
    fail "order by a number beyond int64"
pass "numbers beyond int64 and double, and escapes, printed as the catalog holds them"

kill -0 $HERDD_PID || fail "herdd died"
