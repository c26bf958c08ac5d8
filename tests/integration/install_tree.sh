# `cmake --install` puts every file where an operator and systemd look:
# herdd in sbin, herdctl in bin, the unit (naming the installed herdd and
# config), the sysusers file, the example config (as the config itself and
# under the docs), the operations guide and the man pages; the installed
# herdd accepts the installed config; a reinstall keeps an edited config;
# DESTDIR stages the same tree.
. "$(dirname "$0")/lib.sh"

[ -n "${HERD_BUILD_DIR:-}" ] && [ -f "$HERD_BUILD_DIR/cmake_install.cmake" ] ||
    fail "HERD_BUILD_DIR ($HERD_BUILD_DIR) is not a configured build tree"
P="$T/prefix"
cmake --install "$HERD_BUILD_DIR" --prefix "$P" >"$T/install.log" 2>&1 ||
    fail "cmake --install: $(tail -n 20 "$T/install.log")"

# The paths of the configured tree (the unit names them, not $P's).
cache() { sed -n "s/^$1:[A-Z]*=//p" "$HERD_BUILD_DIR/CMakeCache.txt"; }
PREFIX=$(cache CMAKE_INSTALL_PREFIX)
ETC=$(cache CMAKE_INSTALL_SYSCONFDIR)
ETC=${ETC:-etc}
case $ETC in /*) ETC_DEST="$P$ETC" ;; *) ETC_DEST="$P/$ETC" ;; esac

for f in sbin/herdd bin/herdctl; do
    [ -x "$P/$f" ] || fail "$f not installed (or not executable): $(ls -R "$P")"
done
for f in lib/systemd/system/herd.service lib/sysusers.d/herd.conf \
    share/doc/herd/examples/herd.json share/doc/herd/operations.md; do
    [ -s "$P/$f" ] || fail "$f not installed: $(cd "$P" && find . -type f)"
done
[ -s "$ETC_DEST/herd/herd.json" ] || fail "no $ETC_DEST/herd/herd.json"
cmp -s "$ETC_DEST/herd/herd.json" "$HERD_SOURCE_DIR/systemd/herd.json" ||
    fail "the installed config is not systemd/herd.json"
cmp -s "$P/lib/sysusers.d/herd.conf" "$HERD_SOURCE_DIR/systemd/herd.sysusers" ||
    fail "lib/sysusers.d/herd.conf is not systemd/herd.sysusers"
# Every man page in the tree lands in its section.
n_man=0
for page in herdd.8 herdctl.1 herd.json.5; do
    [ -f "$HERD_SOURCE_DIR/docs/man/$page" ] || continue
    [ -s "$P/share/man/man${page##*.}/$page" ] || fail "docs/man/$page not in share/man/man${page##*.}"
    n_man=$((n_man + 1))
done

# The unit as installed names the herdd and the config this tree installs.
unit="$P/lib/systemd/system/herd.service"
grep -qx "ExecStart=$PREFIX/sbin/herdd -c .*/herd/herd.json" "$unit" ||
    fail "installed unit: $(grep '^Exec' "$unit") (prefix $PREFIX)"
[ "$(grep -c "^ExecReload=$PREFIX/sbin/herdd --check" "$unit")" = 1 ] ||
    fail "installed unit's ExecReload: $(grep '^ExecReload' "$unit")"
"$P/sbin/herdd" --version | grep -q '^herdd ' || fail "installed herdd does not run"
"$P/bin/herdctl" --help >/dev/null 2>&1 || fail "installed herdctl does not run"
"$P/sbin/herdd" --check -c "$ETC_DEST/herd/herd.json" >"$T/check.out" 2>&1 ||
    fail "installed herdd refuses the installed config: $(cat "$T/check.out")"

# A reinstall keeps an operator's config and says so; the example is renewed.
echo '{"workers": []}' >"$ETC_DEST/herd/herd.json"
rm "$P/share/doc/herd/examples/herd.json"
cmake --install "$HERD_BUILD_DIR" --prefix "$P" >"$T/install2.log" 2>&1 ||
    fail "second cmake --install: $(tail -n 20 "$T/install2.log")"
[ "$(cat "$ETC_DEST/herd/herd.json")" = '{"workers": []}' ] || fail "a reinstall replaced the config"
grep -q "Kept: .*herd/herd.json" "$T/install2.log" || fail "the kept config is not reported"
[ -s "$P/share/doc/herd/examples/herd.json" ] || fail "a reinstall did not renew the example"

# DESTDIR: the same files, under it.
D="$T/destdir"
DESTDIR="$D" cmake --install "$HERD_BUILD_DIR" --prefix /opt/herd >"$T/install3.log" 2>&1 ||
    fail "DESTDIR install: $(tail -n 20 "$T/install3.log")"
for f in sbin/herdd bin/herdctl lib/systemd/system/herd.service lib/sysusers.d/herd.conf; do
    [ -e "$D/opt/herd/$f" ] || fail "DESTDIR: /opt/herd/$f not staged: $(cd "$D" && find . -type f)"
done
case $ETC in /*) staged="$D$ETC" ;; *) staged="$D/opt/herd/$ETC" ;; esac
[ -s "$staged/herd/herd.json" ] || fail "DESTDIR: no $staged/herd/herd.json"
pass "cmake --install lands herdd, herdctl, the unit, sysusers, the config, docs and $n_man man pages"
