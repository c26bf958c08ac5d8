#!/usr/bin/env python3
"""cdp.py: drive a headless Chromium through a script, for integration tests.

    python3 cdp.py [--chromium PATH] [--timeout S] [--pidfile F] DIR < SCRIPT

Starts Chromium (its profile in DIR) with --remote-debugging-pipe, speaking
the DevTools protocol on its fds 3 (commands in) and 4 (replies and events
out), each message JSON ended by a NUL byte: no websocket, stdlib only. One
page is opened; SCRIPT is run a line at a time, in order:

    size W H          the viewport, in CSS pixels
    scheme dark|light prefers-color-scheme as the page sees it
    open URL          navigate and wait for the load event
    wait EXPR         evaluate EXPR until it is truthy (up to --timeout s)
    check EXPR        evaluate EXPR once: it must be truthy
    print EXPR        evaluate EXPR and print its value as JSON
    run CMD           run CMD with sh: it must exit 0
    shot PATH [full]  save a PNG of the viewport (full: the whole page)
    noerrors          no script exception, console error or refusal by the
                      page's Content-Security-Policy so far
    # ...             a comment (blank lines too)

A failing line prints what it saw, and the page's text, and exits 1.
Chromium and its children (its own process group, whose id goes into
--pidfile for the caller's trap) are killed on every way out.
"""
import argparse
import base64
import fcntl
import json
import os
import select
import shlex
import signal
import subprocess
import sys
import time


class Failure(Exception):
    pass


class Browser:
    def __init__(self, chromium, profile, pidfile):
        cmd_r, self.cmd_w = os.pipe()  # we write, Chromium reads on fd 3
        self.res_r, res_w = os.pipe()  # Chromium writes on fd 4, we read

        def child_fds():
            # Up out of the way first: a pipe may already sit on 3 or 4.
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu",
            "--remote-debugging-pipe", "--user-data-dir=" + profile,
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", "--mute-audio",
            "--hide-scrollbars", "about:blank",
        ]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(profile, "chromium.log"), "wb"),
            preexec_fn=child_fds, close_fds=False, start_new_session=True)
        os.close(cmd_r)
        os.close(res_w)
        if pidfile:
            with open(pidfile, "w") as f:
                f.write("%d\n" % self.proc.pid)
        self.buf = b""
        self.next_id = 0
        self.session = None
        self.errors = []

    def close(self):
        for fd in (self.cmd_w, self.res_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        # Until the whole group is gone (its children reaped by init).
        for _ in range(50):
            try:
                os.killpg(self.proc.pid, 0)
            except OSError:
                break
            time.sleep(0.1)

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("no answer from Chromium in time")
            ready, _, _ = select.select([self.res_r], [], [], left)
            if ready:
                data = os.read(self.res_r, 1 << 20)
                if not data:
                    raise Failure("Chromium closed its pipe (exit %s)" % self.proc.poll())
                self.buf += data
        msg, _, self.buf = self.buf.partition(b"\0")
        return json.loads(msg)

    def _event(self, m):
        method, p = m.get("method"), m.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.errors.append("exception: %s %s" % (
                d.get("text", ""), d.get("exception", {}).get("description", "")))
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            self.errors.append("console.%s: %s" % (p["type"], " ".join(
                str(a.get("value", a.get("description", ""))) for a in p.get("args", []))))
        elif method == "Log.entryAdded":
            e = p.get("entry", {})
            # A stream or fetch refused while herdd is away is a network
            # entry, not a fault of the page.
            if e.get("level") == "error" and e.get("source") != "network":
                self.errors.append("log (%s): %s" % (e.get("source"), e.get("text")))

    def call(self, method, params=None, timeout=60, session=True):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            n = os.write(self.cmd_w, data)
            data = data[n:]
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise Failure("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            if "method" in m:
                self._event(m)

    def attach(self):
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        r = self.call("Target.attachToTarget",
                      {"targetId": target["targetId"], "flatten": True}, session=False)
        self.session = r["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(domain + ".enable")

    def evaluate(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            raise Failure("%s: %s" % (expr, d.get("exception", {}).get("description",
                                                                        d.get("text"))))
        return r.get("result", {}).get("value")

    def poll(self, expr, timeout, what):
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                last = self.evaluate(expr)
                if last:
                    return last
            except Failure as e:
                last = str(e)
            if time.monotonic() > deadline:
                raise Failure("%s: still %s after %g s" % (what, json.dumps(last), timeout))
            time.sleep(0.2)


def run_script(b, lines, timeout):
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cmd, _, arg = line.partition(" ")
        arg = arg.strip()
        where = "line %d (%s)" % (number, line if len(line) < 160 else line[:157] + "...")
        try:
            if cmd == "size":
                w, h = (int(x) for x in arg.split())
                b.call("Emulation.setDeviceMetricsOverride",
                       {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": False})
            elif cmd == "scheme":
                b.call("Emulation.setEmulatedMedia",
                       {"features": [{"name": "prefers-color-scheme", "value": arg}]})
            elif cmd == "open":
                r = b.call("Page.navigate", {"url": arg})
                if r.get("errorText"):
                    raise Failure("cannot open %s: %s" % (arg, r["errorText"]))
                b.poll("document.readyState === 'complete'", timeout, "loading " + arg)
            elif cmd == "wait":
                b.poll(arg, timeout, "waiting for " + arg)
            elif cmd == "check":
                v = b.evaluate(arg)
                if not v:
                    raise Failure("%s is %s" % (arg, json.dumps(v)))
            elif cmd == "print":
                print(json.dumps(b.evaluate(arg)), flush=True)
            elif cmd == "run":
                p = subprocess.Popen(arg, shell=True, start_new_session=True)
                try:
                    rc = p.wait(timeout)
                except BaseException as e:  # a timeout, or this script told to stop
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
                    if isinstance(e, subprocess.TimeoutExpired):
                        raise Failure("still running after %g s" % timeout)
                    raise
                if rc != 0:
                    raise Failure("exit %d" % rc)
            elif cmd == "shot":
                parts = shlex.split(arg)
                params = {"format": "png"}
                if parts[1:] == ["full"]:
                    params["captureBeyondViewport"] = True
                    m = b.call("Page.getLayoutMetrics")["cssContentSize"]
                    params["clip"] = {"x": 0, "y": 0, "width": m["width"],
                                      "height": m["height"], "scale": 1}
                png = base64.b64decode(b.call("Page.captureScreenshot", params)["data"])
                with open(parts[0], "wb") as f:
                    f.write(png)
                print("screenshot: %s" % parts[0], flush=True)
            elif cmd == "noerrors":
                b.evaluate("0")  # take in what events are pending
                if b.errors:
                    raise Failure("the page reported errors:\n  " + "\n  ".join(b.errors))
            else:
                raise Failure("unknown command %r" % cmd)
        except Failure as e:
            try:
                page = b.evaluate("document.body ? document.body.innerText : ''")
            except Failure:
                page = "(unreadable)"
            sys.stderr.write("cdp.py: %s: %s\n--- the page's text:\n%s\n" % (
                where, e, (page or "")[:3000]))
            return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chromium", default="chromium")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--pidfile")
    ap.add_argument("profile")
    opts = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    signal.signal(signal.SIGINT, lambda *a: sys.exit(130))
    os.makedirs(opts.profile, exist_ok=True)
    lines = sys.stdin.read().splitlines()
    b = Browser(opts.chromium, opts.profile, opts.pidfile)
    try:
        b.call("Browser.getVersion", timeout=opts.timeout, session=False)
        b.attach()
        ok = run_script(b, lines, opts.timeout)
    except Failure as e:
        sys.stderr.write("cdp.py: %s\n" % e)
        ok = False
    finally:
        b.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
