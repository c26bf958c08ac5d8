# herdd --check on a dozen bad worker configs: exit 1 and a message naming
# the JSON path, for each; a good one exits 0.
. "$(dirname "$0")/lib.sh"

printf '{"workers": [{"name": "ok", "kind": "process", "argv": ["true"], "restart": "transient", "backoff": {"initial_ms": 10, "max_ms": 20}, "intensity": {"max_restarts": 2, "period_s": 5}, "memory_high": "32M", "memory_max": "64M", "health_interval_s": 5, "stop_timeout_s": 3, "queue_max": 16, "env": {"X": "1"}}], "on_give_up": "exit"}' >"$T/good.json"
"$HERDD" --check -c "$T/good.json" >"$T/out" || fail "good config refused: $(cat "$T/out")"
grep -q "1 workers" "$T/out" || fail "--check output: $(cat "$T/out")"
n=$(check_refuses <<'CASES'
{"workers": [{"kind": "process", "argv": ["x"]}]}|workers[0].name: expected 1-64 characters
{"workers": [{"name": "x", "kind": "process", "argv": ["x"]}, {"name": "UPPER", "kind": "process"}]}|workers[1].name
{"workers": [{"name": "x", "kind": "sorcery"}]}|workers[0].kind: expected one of process
{"workers": [{"name": "x", "kind": "process"}]}|workers[0].argv: expected a non-empty array of strings
{"workers": [{"name": "x", "kind": "process", "argv": ["x", 2]}]}|workers[0].argv[1]: expected a string
{"workers": [{"name": "x", "kind": "process", "argv": ["x"], "restart": "always"}]}|workers[0].restart: expected "permanent", "transient" or "temporary"
{"workers": [{"name": "x", "kind": "process", "argv": ["x"], "memory_max": "64 MB"}]}|workers[0].memory_max: expected a size such as "64M"
{"workers": [{"name": "x", "kind": "process", "argv": ["x"], "backoff": {"initial_ms": "fast"}}]}|workers[0].backoff.initial_ms: expected an integer
{"workers": [{"name": "x", "kind": "process", "argv": ["x"], "intensity": {"period_s": 0}}]}|workers[0].intensity.period_s: expected an integer from 1 to 86400
{"workers": [{"name": "x", "kind": "process", "argv": ["x"], "enabled": "yes"}]}|workers[0].enabled: expected true or false
{"workers": [{"name": "x", "kind": "process", "argv": ["x"], "health_interval_s": 0}]}|workers[0].health_interval_s: expected an integer from 1
{"workers": [{"name": "x", "kind": "process", "argv": ["x"], "cwd": 5}]}|workers[0].cwd: expected a directory path
{"workers": [{"name": "x", "kind": "process", "argv": ["x"], "shell": true}]}|workers[0].shell: unknown key
{"workers": [{"name": "x", "kind": "process", "argv": ["x"]}, {"name": "x", "kind": "process", "argv": ["y"]}]}|workers[1].name: "x" is already the name of workers[0]
{"on_give_up": 1}|on_give_up: expected "exit" or "stay"
{"workers": [{"name": "j", "kind": "jobs", "kill_timeout_s": 30}]}|workers[0].kill_timeout_s: 30 s is longer than the worker's stop_timeout_s (10 s)
{"workers": [{"name": "c", "kind": "catalog"}]}|workers[0].path
{"workers": [{"name": "x", "kind": "process", "argv": ["x"], "cwd": "/nonexistent/herd-cwd"}]}|workers[0].cwd: "/nonexistent/herd-cwd": No such file or directory
{"bus": {"dir": "/tmp/a-runtime-directory-whose-name-is-far-too-long-to-hold-a-unix-socket-path-of-108-bytes-at-all"}}|bus.dir: "/tmp/a-runtime-directory
{"state_dir": "/s", "workers": [{"name": "a", "kind": "jobs", "state_dir": "/q/jobs"}, {"name": "b", "kind": "jobs", "state_dir": "/q/jobs/"}]}|workers[1] (b) would use /q/jobs, which overlaps /q/jobs of workers[0] (a)
{"state_dir": "/s", "workers": [{"name": "a", "kind": "jobs"}, {"name": "b", "kind": "jobs", "state_dir": "/s/a/logs/.."}]}|workers[1] (b) would use /s/a, which overlaps /s/a of workers[0] (a)
{"state_dir": "/s", "workers": [{"name": "a", "kind": "jobs", "state_dir": "/q/j"}, {"name": "c", "kind": "catalog", "path": "/q/j/cat"}]}|workers[1] (c) would use /q/j/cat, which overlaps /q/j of workers[0] (a)
CASES
) || exit 1
[ $n -ge 22 ] || fail "only $n cases ran"
# Two catalog workers may read one catalog.
printf '{"state_dir": "%s", "workers": [{"name": "c1", "kind": "catalog", "path": "/q/cat"}, {"name": "c2", "kind": "catalog", "path": "/q/cat"}]}' "$STATE" >"$T/two-catalogs.json"
"$HERDD" --check -c "$T/two-catalogs.json" >"$T/out" 2>&1 || fail "two catalog workers on one OUTDIR refused: $(cat "$T/out")"
pass "--check refused $n bad worker configs, each naming its path"
