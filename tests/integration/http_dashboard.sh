# The dashboard page / (issue 12), served by a real herdd and looked at by
# a real browser (headless Chromium driven over its DevTools pipe by
# cdp.py): the page as served (HTML, its CSP and other headers, HEAD with
# no body, no external URL in it); in the browser, every worker running,
# the failed ones marked and sorted first, a last_error holding markup
# shown as text and never run; a stop and a start seen live, without a
# reload (a marker set on the page at load is still there); no script
# error and nothing refused by the CSP; the narrow layout; the
# "disconnected" indicator when herdd goes, and the page live again when
# it is back. Screenshots in $HERD_BUILD_DIR/tests/. Exit 77 (skip)
# without Chromium.
. "$(dirname "$0")/lib.sh"

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ] || [ ! -x "$CHROMIUM" ]; then
    echo "SKIP: no chromium${CHROMIUM:+ at $CHROMIUM}"
    exit 77
fi

OUT=${HERD_BUILD_DIR:-$T}/tests
mkdir -p "$OUT" || fail "cannot make $OUT"
PORT=$(free_port)
URL="http://127.0.0.1:$PORT"

# Chromium runs in its own process group (cdp.py writes its id): killed
# with the group on every way out, before lib.sh's cleanup; so is a herdd
# the browser script started.
stop_browser() {
    local g
    g=$(cat "$T/chromium.pgid" 2>/dev/null)
    if [ -n "$g" ]; then
        kill -TERM -- "-$g" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 -- "-$g" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL -- "-$g" 2>/dev/null
    fi
    [ -f "$T/herdd2.pid" ] && kill -TERM "$(cat "$T/herdd2.pid")" 2>/dev/null
    cleanup
}
trap stop_browser EXIT
trap 'exit 143' TERM INT

cat >"$T/herd.json" <<JSON
{"bus": {"dir": "$RUN"}, "state_dir": "$STATE", "http": {"listen": "127.0.0.1:$PORT"},
 "health_interval_s": 1,
 "workers": [
  {"name": "a", "kind": "process", "argv": ["sleep", "$MARK"]},
  {"name": "b", "kind": "process", "argv": ["sleep", "$((MARK + 1))"]},
  {"name": "c", "kind": "process", "argv": ["sleep", "$((MARK + 2))"], "memory_max": "64M"},
  {"name": "dud", "kind": "process", "argv": ["false"], "restart": "temporary"},
  {"name": "evil", "kind": "exec", "subscribe": ["never"], "restart": "temporary",
   "argv": ["/nonexistent/<img src=x onerror=window.pwned=1>"]}
 ]}
JSON
start_herdd "$T/herd.json"
for w in a b c; do
    wait_until worker_state_is "$w" running || fail "$w did not start"
done
wait_until worker_state_is dud failed || fail "dud did not fail"
wait_until worker_state_is evil failed || fail "evil did not fail"

# ---- the page as served --------------------------------------------------
code=$(curl -s -D "$T/page.head" -o "$T/page.html" -w '%{http_code}' "$URL/") || fail "curl /"
[ "$code" = 200 ] || fail "/ answered $code"
tr -d '\r' <"$T/page.head" >"$T/page.h"
grep -qix 'content-type: text/html; charset=utf-8' "$T/page.h" || fail "content type: $(cat "$T/page.h")"
grep -qix 'cache-control: no-store' "$T/page.h" || fail "no Cache-Control: no-store"
grep -qix 'x-content-type-options: nosniff' "$T/page.h" || fail "no nosniff"
csp=$(grep -i '^content-security-policy: ' "$T/page.h" | cut -d' ' -f2-)
for part in "default-src 'none'" "connect-src 'self'" "script-src 'sha256-" "style-src 'sha256-" \
    "frame-ancestors 'none'"; do
    case $csp in *"$part"*) ;; *) fail "CSP without $part: $csp" ;; esac
done
case $csp in *unsafe-*) fail "CSP allows something unsafe: $csp" ;; esac
len=$(grep -i '^content-length: ' "$T/page.h" | cut -d' ' -f2)
[ "$len" = "$(wc -c <"$T/page.html")" ] || fail "Content-Length $len for $(wc -c <"$T/page.html") bytes"
grep -q '<title>herd</title>' "$T/page.html" || fail "not the dashboard: $(head -c 300 "$T/page.html")"
if grep -Eion 'https?://|//cdn|src=' "$T/page.html"; then
    fail "the page names an external resource (above)"
fi
# HEAD: the same head, no body.
python3 - "$PORT" "$len" <<'PY' || fail "HEAD /"
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
got = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    got += d
head, _, body = got.partition(b"\r\n\r\n")
assert head.startswith(b"HTTP/1.1 200 "), head
assert b"\r\nContent-Length: " + sys.argv[2].encode() + b"\r\n" in head, head
assert b"\r\nContent-Security-Policy: " in head, head
assert body == b"", body[:100]
PY
pass "/ serves the page: text/html, CSP by hashes, nosniff, no external URL, HEAD without body ($len bytes)"

# ---- in the browser ---------------------------------------------------------
row() { printf "document.querySelector('tr[data-worker=\"%s\"]')" "$1"; }
python3 "$(dirname "$0")/cdp.py" --chromium "$CHROMIUM" --timeout 60 --pidfile "$T/chromium.pgid" \
    "$T/chromium" >"$T/cdp.log" 2>&1 <<CDP &
size 1280 800
open $URL/
# st(name): the state a worker's row shows. The marker is the page load's:
# a reload would lose it.
check (window.st = n => { const r = document.querySelector('tr[data-worker="' + n + '"]'); return r ? r.dataset.state + '/' + r.querySelector('.pill').textContent : null; }, window.herdMark = 'm$MARK', true)
wait ['a', 'b', 'c'].every(n => st(n) === 'running/running')
wait st('dud') === 'failed/failed' && st('evil') === 'failed/failed'
wait document.getElementById('conn').dataset.conn === 'live'
# Failed workers stand out (class and data-state) and come first.
check $(row dud).classList.contains('bad') && !$(row a).classList.contains('bad')
check getComputedStyle($(row dud)).backgroundColor !== getComputedStyle($(row a)).backgroundColor
check [...document.querySelectorAll('#rows tr')].slice(0, 2).every(r => r.dataset.state === 'failed')
check document.querySelector('.chip[data-s=failed] b').textContent === '2' && document.querySelector('.chip[data-s=running] b').textContent === '3'
check document.getElementById('attn').textContent.includes('dud (failed)')
check $(row dud).querySelector('td.err').textContent.includes('exited with status 1')
# A last_error holding markup is text: shown as it is, never parsed or run.
check $(row evil).querySelector('td.err').textContent.includes('"/nonexistent/<img src=x onerror=window.pwned=1>"')
check !document.querySelector('#rows img') && window.pwned === undefined
check $(row c).querySelectorAll('td')[7].textContent.startsWith('64.0')
check /herdd \S+ · pid $HERDD_PID · up /.test(document.getElementById('who').textContent)
check /MiB|KiB/.test(document.getElementById('m-rss').textContent)
# Heartbeats every second draw the sparklines.
wait $(row a).querySelector('polyline').getAttribute('points').split(' ').length >= 3
wait document.querySelector('#rss polyline').getAttribute('points').split(' ').length >= 3
noerrors
# A stop and a start, seen live.
run "$HERDCTL" --runtime-dir "$RUN" stop b >/dev/null
wait st('b') === 'stopped/stopped' && window.herdMark === 'm$MARK'
check document.querySelector('.chip[data-s=stopped] b').textContent === '1'
run "$HERDCTL" --runtime-dir "$RUN" start b >/dev/null
wait st('b') === 'running/running' && window.herdMark === 'm$MARK'
run sleep 2
shot $OUT/dashboard.png
size 420 900
check getComputedStyle(document.querySelector('thead')).display === 'none'
check document.documentElement.scrollWidth <= 420
shot $OUT/dashboard-narrow.png full
size 1280 800
noerrors
# herdd goes: the page says so, and is live again once herdd is back.
run kill -TERM $HERDD_PID
wait document.getElementById('conn').dataset.conn === 'down' && !document.getElementById('banner').hidden
check window.herdMark === 'm$MARK'
run while kill -0 $HERDD_PID 2>/dev/null; do sleep 0.1; done
run "$HERDD" -c "$T/herd.json" >>"$T/herdd2.log" 2>&1 & echo \$! >"$T/herdd2.pid"
wait document.getElementById('conn').dataset.conn === 'live' && document.getElementById('banner').hidden
wait st('a') === 'running/running' && !document.getElementById('who').textContent.includes('pid $HERDD_PID ')
check window.herdMark === 'm$MARK'
noerrors
CDP
CDP_PID=$!
track $CDP_PID
wait $CDP_PID
rc=$?
cat "$T/cdp.log"
[ $rc = 0 ] || fail "the page in the browser (cdp.py exit $rc; above)"
[ -s "$OUT/dashboard.png" ] || fail "no screenshot"
pass "the page in Chromium: workers live from /api/events, stop and start without a reload, failed rows marked and first, last_error as text, narrow layout, disconnected and back"
echo "screenshots: $OUT/dashboard.png $OUT/dashboard-narrow.png"
