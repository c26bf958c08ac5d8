# herdd without -c runs the embedded default from the build tree: a catalog
# worker on the demo catalog the build compiled and a jobs worker; both
# answer through herdctl. `herdd --check` accepts the built-in config.
. "$(dirname "$0")/lib.sh"

"$HERDD" --check | grep -q "(built-in): configuration is valid (2 workers)" || fail "--check built-in"
"$HERDD" >"$T/herdd.log" 2>&1 & HERDD_PID=$!; track $HERDD_PID
wait_for_herdd "$RUN" || fail "herdd did not start"
wait_until worker_state_is catalog running || fail "catalog: $(worker_get catalog state) $(worker_get catalog last_error)"
wait_until worker_state_is jobs running || fail "jobs: $(worker_get jobs state)"
[ "$(worker_get catalog entries)" = 6 ] || fail "demo catalog entries: $(worker_get catalog entries)"
"$HERDCTL" catalog get catalog wifi | grep -q '"name": "WiFi"' || fail "catalog get"
"$HERDCTL" catalog search catalog humidity | grep -q '^dht ' || fail "catalog search"
id=$("$HERDCTL" job submit jobs --type hello --configuration demo/device.yaml) || fail "job submit"
"$HERDCTL" job follow jobs "$id" >"$T/follow.out" || fail "job follow exit status"
grep -q "hello from herd, configuration: demo/device.yaml" "$T/follow.out" || fail "job output: $(cat "$T/follow.out")"
kill -TERM $HERDD_PID; wait $HERDD_PID || fail "herdd exit status"
pass "embedded default: demo catalog and jobs worker"
