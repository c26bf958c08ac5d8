# herdd without -c runs the embedded default from the build tree: a catalog
# worker on the demo catalog the build compiled, a jobs worker and an
# archive worker of every state change; they answer through herdctl. `herdd --check` accepts the built-in config.
# Its HTTP server listens on the default 127.0.0.1:9180 and /healthz is 200.
. "$(dirname "$0")/lib.sh"

"$HERDD" --check | grep -q "(built-in): configuration is valid (3 workers)" || fail "--check built-in"
# The embedded default listens on 127.0.0.1:9180: one test herdd at a time
# holds it (a lock shared by every build tree's ctest run); when another
# program holds the port the embedded default cannot start: skipped (77).
exec 9>"${TMPDIR:-/tmp}/herd-test-http-9180.lock"
flock -w 240 9 || fail "waited 240 s for the lock on 127.0.0.1:9180"
python3 -c 'import socket; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 9180))' 2>/dev/null || {
    echo "SKIP: 127.0.0.1:9180 is in use by another program (make run?)"; exit 77; }
"$HERDD" >"$T/herdd.log" 2>&1 9>&- & HERDD_PID=$!; track $HERDD_PID
wait_for_herdd "$RUN" || fail "herdd did not start"
wait_until worker_state_is catalog running || fail "catalog: $(worker_get catalog state) $(worker_get catalog last_error)"
wait_until worker_state_is jobs running || fail "jobs: $(worker_get jobs state)"
wait_until worker_state_is archive running || fail "archive: $(worker_get archive state) $(worker_get archive last_error)"
wait_until yields 6 worker_get catalog entries || fail "demo catalog entries: $(worker_get catalog entries)"
grep -q "http: listening on http://127.0.0.1:9180/" "$T/herdd.log" || fail "default http.listen not logged"
[ "$(curl -s -o "$T/healthz.json" -w '%{http_code}' http://127.0.0.1:9180/healthz)" = 200 ] ||
    fail "/healthz on the default address: $(cat "$T/healthz.json")"
"$HERDCTL" catalog get catalog wifi | grep -q '"name": "WiFi"' || fail "catalog get"
"$HERDCTL" catalog search catalog humidity | grep -q '^dht ' || fail "catalog search"
id=$("$HERDCTL" job submit jobs --type hello --configuration demo/device.yaml) || fail "job submit"
"$HERDCTL" job follow jobs "$id" >"$T/follow.out" || fail "job follow exit status"
grep -q "hello from herd, configuration: demo/device.yaml" "$T/follow.out" || fail "job output: $(cat "$T/follow.out")"
# the archive worker kept the job's state changes, one JSON line each
archive=$(worker_get archive path)
has_job_line() { grep -q "\"topic\":\"job.jobs.$id.state\"" "$archive" 2>/dev/null; }
wait_until has_job_line || fail "no state line of job $id in $archive"
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$archive" ||
    fail "a line of $archive does not parse"
kill -TERM $HERDD_PID; wait $HERDD_PID || fail "herdd exit status"
pass "embedded default: demo catalog, jobs and archive workers"
