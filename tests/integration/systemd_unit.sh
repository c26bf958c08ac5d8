# systemd/: the example config is valid for herdd; the unit holds what
# DESIGN.md section 4 promises, ties HERD_RUNTIME_DIR to its
# RuntimeDirectory, and passes `systemd-analyze verify` without a warning
# (and `security` within an exposure of 3.0); the sysusers file creates the
# user the unit runs as. The systemd checks are skipped (77) where
# systemd-analyze is missing, once the config check has passed.
. "$(dirname "$0")/lib.sh"

SRC="$HERD_SOURCE_DIR/systemd"
UNIT="$SRC/herd.service"

# The example config, as herdd reads it.
"$HERDD" --check -c "$SRC/herd.json" >"$T/check.out" 2>&1 ||
    fail "systemd/herd.json: $(cat "$T/check.out")"
grep -q "configuration is valid (3 workers)" "$T/check.out" || fail "check: $(cat "$T/check.out")"
python3 - "$SRC/herd.json" <<'PY' || fail "systemd/herd.json lacks a kind"
import json, sys
kinds = {w["kind"] for w in json.load(open(sys.argv[1]))["workers"]}
assert {"catalog", "jobs", "archive"} <= kinds, kinds
PY

# directive KEY: the value of the unit's last KEY= line.
directive() { sed -n "s/^$1=//p" "$UNIT" | tail -n 1; }
want() { # want KEY VALUE
    [ "$(directive "$1")" = "$2" ] || fail "herd.service: $1=$(directive "$1"), expected $2"
}
want Type notify
want NotifyAccess main
want ExecStart "/usr/sbin/herdd -c /etc/herd/herd.json"
want WatchdogSec 30
want Restart on-failure
want KillMode control-group
want User herd
want RuntimeDirectory herd
want StateDirectory herd
want NoNewPrivileges yes
want ProtectSystem strict
want ProtectHome yes
want PrivateTmp yes
grep -qx 'ExecReload=/bin/kill -HUP $MAINPID' "$UNIT" || fail "herd.service: no ExecReload sending SIGHUP"
for k in MemoryHigh MemoryMax; do
    [ -n "$(directive $k)" ] || fail "herd.service: no $k="
done
for af in AF_UNIX AF_INET AF_INET6; do
    directive RestrictAddressFamilies | tr ' ' '\n' | grep -qx "$af" ||
        fail "herd.service: RestrictAddressFamilies lacks $af (HTTP and the bus need it)"
done
# herdd finds its bus directory in HERD_RUNTIME_DIR, not RUNTIME_DIRECTORY.
grep -qx "Environment=HERD_RUNTIME_DIR=/run/$(directive RuntimeDirectory)" "$UNIT" ||
    fail "herd.service: HERD_RUNTIME_DIR is not /run/$(directive RuntimeDirectory)"
grep -q 'STATE_DIRECTORY' "$HERD_SOURCE_DIR/supervisor/config.c" ||
    fail "config.c no longer reads STATE_DIRECTORY: the unit's StateDirectory= is not used"

command -v systemd-analyze >/dev/null 2>&1 || {
    echo "SKIP: no systemd-analyze (the config and the unit's directives passed)"
    exit 77
}
# verify needs ExecStart's binary to exist: a copy naming the built one.
sed "s|/usr/sbin/herdd|$HERDD|g" "$UNIT" >"$T/herd.service"
grep -q "^ExecStart=$HERDD " "$T/herd.service" || fail "could not point the copy at $HERDD"
# It reports most problems (a misspelt directive, a bad value) as warnings
# with exit 0: any line about the unit fails the test.
systemd-analyze verify --man=no "$T/herd.service" >"$T/verify.out" 2>&1
rc=$?
[ $rc = 0 ] || fail "systemd-analyze verify exit $rc: $(cat "$T/verify.out")"
grep -q "herd.service" "$T/verify.out" && fail "systemd-analyze verify: $(cat "$T/verify.out")"
# The sandbox stays tight: exposure at most 3.0 (systemd's "OK" band).
if systemd-analyze --help 2>/dev/null | grep -q -- '--threshold'; then
    systemd-analyze security --offline=yes --threshold=30 "$T/herd.service" >"$T/security.out" 2>&1 ||
        fail "systemd-analyze security: $(tail -n 3 "$T/security.out")"
fi

# sysusers creates the herd user and group the unit runs as.
if command -v systemd-sysusers >/dev/null 2>&1; then
    mkdir -p "$T/root/etc"
    systemd-sysusers --root="$T/root" "$SRC/herd.sysusers" >"$T/sysusers.out" 2>&1 ||
        fail "systemd-sysusers: $(cat "$T/sysusers.out")"
    grep -q "^herd:x:[0-9]*:[0-9]*:.*:/var/lib/herd:" "$T/root/etc/passwd" ||
        fail "no herd user: $(cat "$T/root/etc/passwd" "$T/sysusers.out")"
    grep -q "^herd:x:" "$T/root/etc/group" || fail "no herd group"
fi
pass "systemd/herd.service verifies, systemd/herd.json is valid, herd.sysusers makes the user"
