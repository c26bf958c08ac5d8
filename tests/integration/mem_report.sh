#!/bin/bash
# herdctl mem and the `mem` op: herdd's RSS >= PSS >= USS > 0, the malloc
# figures, one row per worker in config order (heap_bytes, what it costs
# herdd: a catalog's index and LRU; child_rss_bytes, a process worker's
# child; memory_bytes, the two together; a stopped worker's 0), the table
# aligned with human sizes. After a catalog worker that served bodies,
# lists and searches stops, status and mem say 0 for it, and the worker
# accounts are back where they were before it started: a second
# start-serve-stop cycle leaves them exactly as the first did (a leak would
# leave its bytes there).
. "$(dirname "$0")/lib.sh"

gzip -dc "$HERD_TEST_DATA/esphome/components.json.gz" >"$T/components.json"
"$HERDCTL" catalog build "$T/components.json" "$T/comp" >/dev/null || fail "catalog build"

cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": ""},
 "workers": [
  {"name": "comp", "kind": "catalog", "path": "$T/comp", "memory_high": "48M", "memory_max": "64M"},
  {"name": "a-process-worker-with-a-long-name", "kind": "process", "argv": ["sleep", "$MARK"]},
  {"name": "idle", "kind": "process", "enabled": false, "argv": ["sleep", "$MARK"]}
 ]}
JSON
start_herdd "$T/herd.json"
wait_until catalog_loaded 0 961 || fail "comp did not load"
P=a-process-worker-with-a-long-name
wait_until worker_state_is $P running || fail "$P did not start"
# The child's RSS is sampled every second.
child_rss_seen() { [ "$("$HERDCTL" --json mem | json_get workers.1.child_rss_bytes)" -gt 4096 ]; }
wait_until child_rss_seen || fail "$P: $("$HERDCTL" --json mem | json_get workers.1)"
for id in $(ls -S "$T/comp/current/bodies/components/" | head -20); do
    "$HERDCTL" --json catalog get comp "${id%.json}" >/dev/null || fail "get $id"
done
"$HERDCTL" --json catalog list comp --category sensor >/dev/null || fail "list"
"$HERDCTL" --json catalog search comp wifi >/dev/null || fail "search"

"$HERDCTL" --json mem >"$T/mem.json" || fail "herdctl --json mem"
"$HERDCTL" --json status >"$T/status.json" || fail "herdctl --json status"
python3 - "$T/mem.json" "$T/status.json" "${HERD_SANITIZE:-0}" "$HERDD_PID" <<'PY' || fail "mem: $(cat "$T/mem.json")"
import json, sys
m = json.load(open(sys.argv[1])); st = json.load(open(sys.argv[2]))
san = sys.argv[3] in ("1", "ON", "TRUE", "true")
assert m["pid"] == int(sys.argv[4]), m["pid"]
s = m["supervisor"]
for k in ("rss_bytes", "pss_bytes", "uss_bytes", "unaccounted_heap_bytes", "worker_accounts_bytes"):
    assert isinstance(s[k], int) and s[k] >= 0, (k, s)
assert s["rss_bytes"] >= s["pss_bytes"] >= s["uss_bytes"] > 0, s
a = m["malloc"]
for k in ("arena_bytes", "mmap_bytes", "in_use_bytes", "free_bytes", "trims", "trimmed_bytes"):
    assert isinstance(a[k], int) and a[k] >= 0, (k, a)
if not san:  # under ASan glibc's heap is bypassed
    assert a["arena_bytes"] > 0 and a["in_use_bytes"] > 0, a
    assert a["in_use_bytes"] >= a["mmap_bytes"], a
    assert a["in_use_bytes"] + a["free_bytes"] <= a["arena_bytes"] + a["mmap_bytes"], a
    assert a["in_use_bytes"] < s["rss_bytes"] * 4, a
rows = m["workers"]
assert [r["worker"] for r in rows] == [w["worker"] for w in st["workers"]], rows
assert sorted(rows[0]) == ["child_rss_bytes", "heap_bytes", "kind", "memory_bytes", "memory_high",
                          "memory_max", "state", "worker"], rows[0]
for r in rows:
    assert r["memory_bytes"] == r["heap_bytes"] + r["child_rss_bytes"], r
comp, proc, idle = rows
assert comp["kind"] == "catalog" and comp["state"] == "running", comp
assert comp["memory_high"] == 48 << 20 and comp["memory_max"] == 64 << 20, comp
# index plus 20 large bodies: a few MiB, what status says too
assert 2 << 20 < comp["heap_bytes"] < 48 << 20, comp
assert comp["heap_bytes"] == st["workers"][0]["heap_bytes"], (comp, st["workers"][0])
assert comp["child_rss_bytes"] == 0, comp
assert proc["kind"] == "process" and proc["memory_max"] is None and proc["memory_high"] is None
assert 0 < proc["heap_bytes"] < 1 << 20, proc  # its record and state in herdd
assert 4096 < proc["child_rss_bytes"] < 64 << 20, proc  # sleep's RSS
assert idle["state"] == "stopped" and idle["heap_bytes"] == 0, idle
PY
pass "mem --json: supervisor, malloc, one row per worker"

"$HERDCTL" mem >"$T/mem.txt" || fail "herdctl mem"
python3 - "$T/mem.txt" "$P" <<'PY' || fail "mem table: $(cat "$T/mem.txt")"
import re, sys
lines = open(sys.argv[1]).read().splitlines()
size = r"\d+(\.\d)? (B|KiB|MiB|GiB|TiB)"
for label in ("resident (RSS)", "proportional (PSS)", "unique (USS)", "arenas", "in use",
              "free in the arenas", "workers (all accounts)", "unaccounted"):
    l = [x for x in lines if x.strip().startswith(label)]
    assert len(l) == 1 and re.search(size + "$", l[0]), (label, l)
head = [i for i, x in enumerate(lines) if x.startswith("NAME ")]
assert len(head) == 1, lines
table = lines[head[0]:]
assert table[0].split() == ["NAME", "KIND", "STATE", "HEAP", "CHILD", "RSS", "HIGH", "MAX", "USE"], table[0]
assert len(table) == 4, table
assert len({len(x) for x in table}) == 1, "rows not aligned:\n" + "\n".join(table)
name_col = len(sys.argv[2])
for x in table[1:]:
    assert x[name_col] == " ", x
    assert re.search(size, x), x
assert re.match(r"comp +catalog +running +" + size + r" +- +48\.0 MiB +64\.0 MiB +\d+%$", table[1]), table[1]
assert re.match(r"\S+ +process +running +" + size + " +" + size + r" +- +- +-$", table[2]), table[2]
assert re.match(r"idle +process +stopped +0 B +- +- +- +-$", table[3]), table[3]
PY
pass "mem table: aligned, human sizes"

accounts() { "$HERDCTL" --json mem | json_get supervisor.worker_accounts_bytes; }
"$HERDCTL" stop comp >/dev/null || fail "stop comp"
[ "$(worker_get comp heap_bytes)" = 0 ] || fail "stopped comp heap_bytes: $(worker_get comp heap_bytes)"
[ "$("$HERDCTL" --json mem | json_get workers.0.memory_bytes)" = 0 ] || fail "mem: stopped comp not 0"
first=$(accounts)
for cycle in 1 2; do
    "$HERDCTL" start comp >/dev/null || fail "start comp ($cycle)"
    wait_until catalog_loaded 0 961 || fail "comp did not load again ($cycle)"
    again=$(worker_get comp heap_bytes)
    [ "$again" -gt 0 ] && [ "$again" -lt $((2 << 20)) ] || fail "comp restarted at $again bytes"
    for id in $(ls -S "$T/comp/current/bodies/components/" | head -20); do
        "$HERDCTL" --json catalog get comp "${id%.json}" >/dev/null || fail "get $id"
    done
    "$HERDCTL" --json catalog list comp --category sensor >/dev/null || fail "list"
    "$HERDCTL" --json catalog search comp wifi >/dev/null || fail "search"
    "$HERDCTL" stop comp >/dev/null || fail "stop comp ($cycle)"
    [ "$(worker_get comp heap_bytes)" = 0 ] || fail "stopped comp heap_bytes ($cycle)"
    [ "$(accounts)" = "$first" ] || fail "worker accounts $first bytes, $(accounts) after cycle $cycle"
done
pass "stopped: heap_bytes 0; two more start-serve-stop cycles leave the accounts at $first bytes"

kill -TERM "$HERDD_PID"; wait "$HERDD_PID"; rc=$?
[ $rc = 0 ] || fail "herdd exit $rc after SIGTERM (a sanitizer build exits non-zero on a leak)"
