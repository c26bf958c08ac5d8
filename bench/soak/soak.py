"""bench/soak: minutes of mixed load on one herdd (issue 15).

Driven by bench/soak/run (which checks the tools first); see that file and
docs/benchmarks.md, "Soak". One herdd hosts:

  arch-a, arch-b  archive workers, the counted path: soak.a.> and soak.b.>
  churn           an archive worker on soak.a.> too (restarted under load)
  ex              an exec worker on soak.*.exec (one event in EXEC_EVERY)
  comp            a catalog worker on the ESPHome components (961 entries)
  jobs            a jobs worker with one type, `chatty` (JOB_LINES lines)

and, for SOAK_SECONDS, takes at once: soak-pub's events at SOAK_RATE (two
streams, a and b, half each, sequence-numbered); soak-query's catalog
queries (where/order/facets, search, list all, get ids) at
SOAK_QUERY_RATE, each reply checked; a chatty job every SOAK_JOB_EVERY s,
checked when it ends; `herdctl restart churn` every SOAK_RESTART_EVERY s;
`herdctl reload` every SOAK_RELOAD_EVERY s (from 15 s after the restarts'
phase) with churn's max_bytes changed; `herdctl --json status` every 5 s
and GET /metrics every 10 s, each checked. herdd's RSS, PSS, USS and
anonymous memory (/proc/PID/smaps_rollup) and CPU time are sampled every
second.

At the end: the archive workers drain, every archived line is read back
(all rotated files) and matched against the sequence numbers sent, and the
figures are checked against the targets. Prints a summary and a last line
`RESULT {json}`; exits 1 when a target is missed.
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BUILD = os.path.abspath(sys.argv[1])
SVG = sys.argv[2] if len(sys.argv) > 2 else ""
HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
HERDD = os.path.join(BUILD, "supervisor", "herdd")
HERDCTL = os.path.join(BUILD, "cli", "herdctl")
PUB = os.path.join(BUILD, "bench", "soak", "soak-pub")
QUERY = os.path.join(BUILD, "bench", "soak", "soak-query")


def env_num(name, default, kind=int):
    v = os.environ.get(name, "")
    return kind(v) if v != "" else default


SECONDS = env_num("SOAK_SECONDS", 600)
RATE = env_num("SOAK_RATE", 20000)
EXEC_EVERY = env_num("SOAK_EXEC_EVERY", 4000)  # per stream: 2 x 10,000/s / 4000 = 5/s
QUERY_RATE = env_num("SOAK_QUERY_RATE", 10, float)
JOB_EVERY = env_num("SOAK_JOB_EVERY", 5, float)
JOB_LINES = env_num("SOAK_JOB_LINES", 5000)
RESTART_EVERY = env_num("SOAK_RESTART_EVERY", 30, float)
RELOAD_EVERY = env_num("SOAK_RELOAD_EVERY", 60, float)
QUEUE_MAX = env_num("SOAK_QUEUE_MAX", 65536)
KEEP = os.environ.get("SOAK_KEEP", "") not in ("", "0")
RSS_TOLERANCE = 0.05
STREAMS = ("a", "b")
COUNTED = ("arch-a", "arch-b")

T = tempfile.mkdtemp(prefix="herd-bench-soak.")
RUN, STATE, ARCH = f"{T}/run", f"{T}/state", f"{T}/archive"
CFG = f"{T}/herd.json"
procs = []
lock = threading.Lock()
errors = []  # (t, source, message)
stop_load = threading.Event()
t0 = None


def now():
    return time.monotonic() - t0 if t0 is not None else 0.0


def error(source, message):
    with lock:
        errors.append((round(now(), 1), source, message.strip()[:300]))
        if len(errors) <= 30:
            print(f"  ! {now():7.1f}s {source}: {message.strip()[:200]}", flush=True)


def start(argv, **kw):
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM, grace=10.0):
    if p.poll() is not None:
        return p.returncode
    try:
        os.killpg(p.pid, sig)
    except ProcessLookupError:
        pass
    try:
        return p.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return p.wait()


def cleanup():
    for p in procs:
        stop(p, grace=3)
    if KEEP:
        print(f"bench/soak: kept {T}")
    else:
        shutil.rmtree(T, ignore_errors=True)


def ctl(*args, timeout=30, check=True, source=None):
    """herdctl ARGS; returns stdout, or None after counting the failure."""
    try:
        r = subprocess.run([HERDCTL, "--runtime-dir", RUN, "--timeout", "10", *args],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        error(source or args[0], f"herdctl {' '.join(args)}: no answer in {timeout} s")
        return None
    if r.returncode != 0:
        if check:
            error(source or args[0], f"herdctl {' '.join(args)}: exit {r.returncode}: {r.stderr}")
        return None
    return r.stdout


def status(source="status"):
    out = ctl("--json", "status", source=source)
    try:
        return json.loads(out) if out is not None else None
    except ValueError as e:
        error(source, f"status: not JSON: {e}")
        return None


def workers_of(s):
    return {w["worker"]: w for w in s["workers"]} if s else {}


# ---- configuration ------------------------------------------------------------

def write_config(variant, http_port):
    chatty = ('i=0; while [ $i -lt %d ]; do echo "chatty build line $i: compiling '
              'src/module_$i.c -> build/module_$i.o (-O2 -g -Wall)"; i=$((i+1)); done' % JOB_LINES)
    arch = lambda name, pattern, path, **kw: dict(
        {"name": name, "kind": "archive", "subscribe": [pattern], "path": path}, **kw)
    cfg = {
        "bus": {"dir": RUN},
        "state_dir": STATE,
        "http": {"listen": f"127.0.0.1:{http_port}"},
        "workers": [
            {"name": "comp", "kind": "catalog", "path": f"{T}/comp"},
            {"name": "jobs", "kind": "jobs", "lanes": {"build": 1},
             "types": {"chatty": {"argv": ["/bin/sh", "-c", chatty], "lane": "build"}}},
            arch("arch-a", "soak.a.>", f"{ARCH}/a.jsonl", max_bytes="64M", keep=100,
                 queue_max=QUEUE_MAX),
            arch("arch-b", "soak.b.>", f"{ARCH}/b.jsonl", max_bytes="64M", keep=100,
                 queue_max=QUEUE_MAX),
            # the reload's change: churn's max_bytes, 8M <-> 9M
            arch("churn", "soak.a.>", f"{ARCH}/churn.jsonl", max_bytes=("8M", "9M")[variant],
                 keep=2, queue_max=QUEUE_MAX),
            {"name": "ex", "kind": "exec", "subscribe": ["soak.*.exec"],
             "argv": ["/bin/sh", "-c", f"exec cat >>{ARCH}/exec.jsonl"], "max_concurrent": 2,
             "timeout_s": 30},
        ],
    }
    with open(CFG + ".tmp", "w") as f:
        json.dump(cfg, f, indent=1)
    os.rename(CFG + ".tmp", CFG)


# ---- load and watchers ----------------------------------------------------------

def every(period, phase, fn):
    """Calls fn(k) at t0 + phase + k * period until stop_load."""
    k = 0
    while True:
        due = phase + k * period
        if stop_load.wait(max(0.0, due - now())):
            return
        fn(k)
        k += 1


samples = []  # (t, rss, pss, uss, anon, cpu_s, sent)
pub_sent = [0]


def sampler(pid, done):
    hz = os.sysconf("SC_CLK_TCK")
    k = 0
    while not done.is_set():
        due = k * 1.0
        if done.wait(max(0.0, due - now())):
            break
        v = {}
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 2 and parts[0].endswith(":"):
                        v[parts[0][:-1]] = int(parts[1]) * 1024
            with open(f"/proc/{pid}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
            cpu = (int(st[11]) + int(st[12])) / hz
        except (OSError, ValueError, IndexError):
            break
        samples.append((round(now(), 3), v.get("Rss", 0), v.get("Pss", 0),
                        v.get("Private_Clean", 0) + v.get("Private_Dirty", 0),
                        v.get("Anonymous", 0), cpu, pub_sent[0]))
        k += 1


pub_result = {}


def read_pub(p):
    for line in p.stdout:
        if line.startswith("progress "):
            pub_sent[0] = int(line.split()[2])
        elif line.startswith("done "):
            pub_result.update(json.loads(line[5:]))


jobs_done = {"submitted": 0, "completed": 0, "lines": 0, "seconds": []}


def one_job(k):
    out = ctl("job", "submit", "jobs", "--type", "chatty", source="job")
    if out is None:
        return
    jid = out.strip()
    jobs_done["submitted"] += 1
    t_sub = time.monotonic()
    while time.monotonic() - t_sub < 60:
        g = ctl("--json", "job", "get", "jobs", jid, source="job")
        if g is None:
            return
        meta = json.loads(g)
        if meta.get("status") in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.25)
    else:
        error("job", f"job {jid}: not finished after 60 s")
        return
    if meta.get("status") != "completed" or meta.get("exit_code") != 0:
        error("job", f"job {jid}: {meta.get('status')} exit {meta.get('exit_code')} "
                     f"{meta.get('error')}")
        return
    if meta.get("output_lines") != JOB_LINES:
        error("job", f"job {jid}: {meta.get('output_lines')} output lines, not {JOB_LINES}")
        return
    tail = ctl("job", "output", "jobs", jid, "--tail", "3", source="job")
    if tail is None:
        return
    if f"chatty build line {JOB_LINES - 1}:" not in tail:
        error("job", f"job {jid}: last output line missing from the tail: {tail[-200:]!r}")
        return
    jobs_done["completed"] += 1
    jobs_done["lines"] += JOB_LINES
    jobs_done["seconds"].append(time.monotonic() - t_sub)


control = {"restarts": 0, "reloads": 0}


def wait_churn_running(after_uptime_below, what):
    for _ in range(100):
        w = workers_of(status(source=what)).get("churn")
        if w and w.get("state") == "running" and w.get("uptime_s", 1e9) <= after_uptime_below:
            return True
        time.sleep(0.2)
    error(what, "churn not running again (with a fresh uptime) within 20 s")
    return False


def one_restart(k):
    if ctl("restart", "churn", source="restart") is not None:
        control["restarts"] += 1
        wait_churn_running(5, "restart")


def one_reload(k):
    write_config((k + 1) % 2, HTTP_PORT)
    if ctl("reload", source="reload") is not None:
        control["reloads"] += 1
        wait_churn_running(5, "reload")  # a changed worker restarts: the change took


statuses = []
seen_counts = {}  # (worker, counter) -> the value last reported as an error


def one_status(k):
    s = status()
    if s is None:
        return
    statuses.append((round(now(), 1), s))
    ws = workers_of(s)
    for name, w in ws.items():
        if name != "churn" and w.get("state") != "running":
            error("status", f"{name}: {w.get('state')} ({w.get('last_error')})")
        if w.get("last_error"):
            error("status", f"{name}: last_error {w.get('last_error')}")
        for key in ("failed", "write_errors", "timeouts", "spawn_errors"):
            if (w.get(key) or 0) > seen_counts.get((name, key), 0):
                error("status", f"{name}: {key} {w[key]}")
                seen_counts[(name, key)] = w[key]


metrics = {"scrapes": 0}


def one_scrape(k):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/metrics", timeout=10) as r:
            body = r.read()
            if r.status != 200 or b"herd_worker_up" not in body:
                error("metrics", f"/metrics: {r.status}, {len(body)} bytes")
                return
        metrics["scrapes"] += 1
    except OSError as e:
        error("metrics", f"/metrics: {e}")


# ---- the end ------------------------------------------------------------------------

def count_archive(stream, n_sent):
    """Reads every file of archive `stream` (path, path.1, ...): lines, and
    each sequence number against what was sent."""
    seen = bytearray(n_sent)
    lines = dup = bad = files = 0
    base = f"{ARCH}/{stream}.jsonl"
    names = [base] + [f"{base}.{i}" for i in range(1, 101)]
    key = b'"payload":{"s":"%s","i":' % stream.encode()
    for name in names:
        if not os.path.exists(name):
            continue
        files += 1
        with open(name, "rb") as f:
            for line in f:
                lines += 1
                p = line.find(key)
                if p < 0 or not line.endswith(b"\n"):
                    bad += 1
                    continue
                p += len(key)
                q = line.index(b",", p)
                i = int(line[p:q])
                if i >= n_sent:
                    bad += 1
                elif seen[i]:
                    dup += 1
                else:
                    seen[i] = 1
    unique = lines - dup - bad
    return {"files": files, "lines": lines, "unique": unique, "duplicates": dup, "bad_lines": bad,
            "missing": n_sent - unique}


def median_around(t_lo, t_hi, col):
    xs = [s[col] for s in samples if t_lo <= s[0] <= t_hi]
    return statistics.median(xs) if xs else None


def main():
    global t0, HTTP_PORT
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    HTTP_PORT = s.getsockname()[1]
    s.close()
    os.makedirs(ARCH)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), "?")
    load0 = os.getloadavg()
    print(f"bench/soak: {os.cpu_count()} cpu, {cpu}, kernel {os.uname().release}; "
          f"load average at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    print(f"bench/soak: {SECONDS} s: events {RATE}/s (streams a, b; exec 1 in {EXEC_EVERY} per "
          f"stream = {RATE / EXEC_EVERY:g}/s), catalog queries {QUERY_RATE:g}/s, a {JOB_LINES}-line "
          f"job every {JOB_EVERY:g} s, restart every {RESTART_EVERY:g} s, reload every "
          f"{RELOAD_EVERY:g} s; in {T}", flush=True)

    # the catalog: the ESPHome components
    subprocess.run(f"gzip -dc {SRC}/tests/data/esphome/components.json.gz >{T}/components.json",
                   shell=True, check=True)
    subprocess.run([HERDCTL, "catalog", "build", f"{T}/components.json", f"{T}/comp"], check=True,
                   stdout=subprocess.DEVNULL)
    os.unlink(f"{T}/components.json")
    write_config(0, HTTP_PORT)
    log = open(f"{T}/herdd.log", "w")
    herdd = start([HERDD, "-c", CFG], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        s = status(source="start") if herdd.poll() is None else None
        if s and workers_of(s).get("comp", {}).get("entries") == 961 and \
                s["supervisor"]["workers"].get("running") == 6:
            break
        time.sleep(0.1)
    else:
        print("bench/soak: herdd did not start its 6 workers (see herdd.log):", file=sys.stderr)
        print(open(f"{T}/herdd.log").read()[-2000:], file=sys.stderr)
        return 1
    del errors[:]  # status refused while herdd started is not an error

    t0 = time.monotonic()
    done_sampling = threading.Event()
    th = [threading.Thread(target=sampler, args=(herdd.pid, done_sampling), daemon=True)]
    pub = start([PUB, RUN, str(RATE), str(SECONDS), ",".join(STREAMS), str(EXEC_EVERY)],
                stdout=subprocess.PIPE, text=True)
    th.append(threading.Thread(target=read_pub, args=(pub,), daemon=True))
    qlog = open(f"{T}/query.log", "w")
    query = start([QUERY, RUN, "comp", str(QUERY_RATE)], stdout=subprocess.PIPE, stderr=qlog,
                  text=True)
    th += [threading.Thread(target=every, args=a, daemon=True) for a in (
        (JOB_EVERY, 2.0, one_job),
        (RESTART_EVERY, RESTART_EVERY, one_restart),
        (RELOAD_EVERY, RESTART_EVERY / 2 + RELOAD_EVERY - RESTART_EVERY, one_reload),
        (5.0, 5.0, one_status),
        (10.0, 7.0, one_scrape),
    )]
    for x in th:
        x.start()
    next_line = 60
    while pub.poll() is None:
        time.sleep(0.5)
        if now() >= next_line and samples:
            s = samples[-1]
            print(f"  {now():6.0f} s: sent {pub_sent[0]:,}  RSS {s[1] / 2**20:.2f} MiB  "
                  f"PSS {s[2] / 2**20:.2f}  USS {s[3] / 2**20:.2f}  errors {len(errors)}", flush=True)
            next_line += 60
        if herdd.poll() is not None:
            error("herdd", f"herdd exited ({herdd.returncode}) during the run")
            stop(pub)
    t_end = now()
    th[1].join(5)
    if pub.returncode != 0:
        error("publisher", f"soak-pub exit {pub.returncode}")
    stop_load.set()
    for x in th[2:]:
        x.join(90)
    stop(query, signal.SIGTERM)
    qres = {}
    for line in query.stdout:
        if line.startswith("done "):
            qres = json.loads(line[5:])
    if query.returncode not in (0, -signal.SIGTERM):
        error("query", f"soak-query exit {query.returncode}")
    qlog.close()
    if qres.get("errors"):
        error("query", f"{qres['errors']} failed catalog queries (query.log)")

    # drain: every counted event written or counted
    drained = False
    final = None
    for _ in range(600):
        final = status(source="drain")
        ws = workers_of(final)
        if final and all(ws[w]["queue_depth"] == 0 and ws[w]["in_flight"] == 0 and
                         ws[w]["received"] == ws[w]["done"] + ws[w]["failed"] + ws[w]["dropped"]
                         for w in COUNTED):
            drained = True
            break
        time.sleep(0.1)
    if not drained:
        error("drain", "the archive workers did not drain within 60 s")
    time.sleep(1.5)  # the exec worker's last children
    final = status(source="final") or final
    done_sampling.set()
    th[0].join(5)
    t_stop = time.monotonic()
    rc = stop(herdd, signal.SIGTERM, grace=60)
    stop_s = time.monotonic() - t_stop
    log.close()
    if rc != 0:
        error("herdd", f"herdd exit {rc} after SIGTERM")
    levels = {"error": 0, "warn": 0}
    first = {"error": [], "warn": []}
    for line in open(f"{T}/herdd.log", errors="replace"):
        parts = line.split(" ", 2)
        if len(parts) > 2 and parts[1] in levels:
            levels[parts[1]] += 1
            if len(first[parts[1]]) < 5:
                first[parts[1]].append(line.strip()[:200])
    if levels["error"]:
        error("herdd.log", f"{levels['error']} error lines, first: {first['error'][0]}")

    # ---- figures
    ws = workers_of(final)
    bus = final["supervisor"]["bus"] if final else {}
    streams = {}
    for st, wname in zip(STREAMS, COUNTED):
        sent = pub_result.get("streams", {}).get(st, {}).get("sent", 0)
        c = count_archive(st, sent)
        w = ws.get(wname, {})
        c.update({"sent": sent, "received": w.get("received"), "done": w.get("done"),
                  "failed": w.get("failed"), "dropped": w.get("dropped"),
                  "rotations": w.get("rotations"), "restarts": w.get("restarts")})
        streams[st] = c
    sent = sum(c["sent"] for c in streams.values())
    written = sum(c["unique"] for c in streams.values())
    worker_drops = sum(c["dropped"] or 0 for c in streams.values())
    bus_drops = bus.get("dropped", {}).get("queue_full", 0)
    lost = sent - written - worker_drops - bus_drops
    dup_bad = sum(c["duplicates"] + c["bad_lines"] for c in streams.values())
    if dup_bad:
        error("archive", f"{dup_bad} duplicate or unreadable archive lines")
    for st, c in streams.items():
        if c["received"] is not None and c["received"] != c["sent"]:
            error("archive", f"stream {st}: worker received {c['received']}, sent {c['sent']}")
    ex = ws.get("ex", {})
    exec_lines = 0
    if os.path.exists(f"{ARCH}/exec.jsonl"):
        exec_lines = sum(1 for _ in open(f"{ARCH}/exec.jsonl", "rb"))
    exec_fig = {"sent": pub_result.get("exec", 0), "received": ex.get("received"),
                "done": ex.get("done"), "failed": ex.get("failed"), "dropped": ex.get("dropped"),
                "lines": exec_lines, "exit_codes": ex.get("exit_codes")}
    if ex.get("failed") or ex.get("dropped") or exec_lines != exec_fig["sent"]:
        error("exec", f"exec: sent {exec_fig['sent']}, ran {ex.get('done')}, failed "
                      f"{ex.get('failed')}, dropped {ex.get('dropped')}, lines {exec_lines}")
    for name in ("arch-a", "arch-b", "comp", "jobs", "ex"):
        if ws.get(name, {}).get("restarts"):
            error("workers", f"{name}: restarted {ws[name]['restarts']} times by its policy")

    early_t = 120.0 if SECONDS >= 300 else SECONDS / 5
    late_t = t_end
    rss_early = median_around(early_t - 5, early_t + 5, 1)
    rss_late = median_around(late_t - 10, late_t, 1)
    pss_early, pss_late = median_around(early_t - 5, early_t + 5, 2), median_around(late_t - 10, late_t, 2)
    uss_early, uss_late = median_around(early_t - 5, early_t + 5, 3), median_around(late_t - 10, late_t, 3)
    ratio = rss_late / rss_early if rss_early else float("nan")
    after = [s for s in samples if early_t <= s[0] <= late_t]
    slope = None
    if len(after) > 10:  # least squares, RSS in KiB per minute
        mt = statistics.mean(s[0] for s in after)
        mr = statistics.mean(s[1] for s in after)
        den = sum((s[0] - mt) ** 2 for s in after)
        slope = sum((s[0] - mt) * (s[1] - mr) for s in after) / den * 60 / 1024 if den else 0.0
    rss_all = [s[1] for s in samples]
    cpu_s = samples[-1][5] - samples[0][5] if len(samples) > 1 else 0
    rate = pub_result.get("rate", 0)

    targets = {
        "rss_stable": bool(rss_early) and abs(ratio - 1) <= RSS_TOLERANCE,
        "zero_errors": len(errors) == 0,
        "zero_lost": lost == 0 and sent > 0,
    }
    mib = lambda b: f"{b / 2**20:.2f}" if b else "-"
    print()
    print(f"== soak: {t_end:.0f} s of mixed load on one herdd ({os.cpu_count()} cpu; load average "
          f"at start {load0[0]:.2f}, at end {os.getloadavg()[0]:.2f})")
    print(f"   events: {sent:,} sent at {rate:,.0f}/s (target {RATE:,}/s; lag behind schedule at "
          f"most {max((v.get('lag_max_s', 0) for v in pub_result.get('streams', {}).values()), default=0):.2f} s)")
    for st, c in streams.items():
        print(f"   stream {st}: sent {c['sent']:,}, archived {c['unique']:,} ({c['files']} files, "
              f"{c['rotations']} rotations), dropped (counted) {c['dropped']}, missing "
              f"{c['missing']:,}, duplicates {c['duplicates']}")
    print(f"   archive path: in {sent:,} = written {written:,} + worker drops {worker_drops:,} + bus "
          f"queue_full {bus_drops:,} + lost {lost:,}")
    print(f"   exec: {exec_fig['sent']} events, {exec_fig['done']} ran, {exec_fig['lines']} lines "
          f"written, failed {exec_fig['failed']}, dropped {exec_fig['dropped']}, exit codes "
          f"{exec_fig['exit_codes']}")
    print(f"   catalog queries: {qres.get('queries', 0):,} ({qres.get('errors', '?')} errors), "
          f"p50 {qres.get('latency_ms', {}).get('p50', 0):.2f} ms, p99 "
          f"{qres.get('latency_ms', {}).get('p99', 0):.2f} ms, max "
          f"{qres.get('latency_ms', {}).get('max', 0):.1f} ms")
    js = jobs_done["seconds"]
    print(f"   jobs: {jobs_done['completed']} of {jobs_done['submitted']} completed with "
          f"{JOB_LINES} lines each, submit to end median "
          f"{statistics.median(js) if js else 0:.2f} s")
    print(f"   control: {control['restarts']} restarts of churn, {control['reloads']} reloads; "
          f"{len(statuses)} status polls, {metrics['scrapes']} /metrics scrapes")
    print(f"   herdd: CPU {cpu_s:.0f} s over {t_end:.0f} s ({100 * cpu_s / max(t_end, 1):.0f}% of one "
          f"core), stopped in {stop_s:.2f} s (exit {rc}); log: {levels['error']} error, "
          f"{levels['warn']} warn lines")
    for lvl in ("error", "warn"):
        for line in first[lvl]:
            print(f"     {line}")
    print(f"   RSS MiB: at {early_t:.0f} s {mib(rss_early)}, at {late_t:.0f} s {mib(rss_late)} "
          f"(ratio {ratio:.3f}; target within {RSS_TOLERANCE:.0%}), slope after {early_t:.0f} s "
          f"{slope if slope is not None else float('nan'):+.1f} KiB/min, min {mib(min(rss_all, default=0))} "
          f"max {mib(max(rss_all, default=0))}")
    print(f"   PSS MiB: {mib(pss_early)} -> {mib(pss_late)}; USS MiB: {mib(uss_early)} -> "
          f"{mib(uss_late)}")
    print(f"   errors: {len(errors)}")
    for e in errors[:10]:
        print(f"     {e[0]:7.1f}s {e[1]}: {e[2]}")
    for k, v in targets.items():
        print(f"   target {k}: {'met' if v else 'MISSED'}")

    # samples and plot
    csv = f"{T}/rss.csv"
    with open(csv, "w") as f:
        f.write("t_s,rss_bytes,pss_bytes,uss_bytes,anon_bytes,cpu_s,sent\n")
        for s in samples:
            f.write(",".join(str(x) for x in s) + "\n")
    plotted = False
    if SVG and shutil.which("gnuplot") and len(samples) > 2:
        dat = f"{T}/plot.dat"
        with open(dat, "w") as f:
            for i, b in enumerate(samples[1:], 1):
                a = samples[max(0, i - 10)]  # the rate over 10 s: progress lines come once a second
                rate_s = (b[6] - a[6]) / (b[0] - a[0]) if b[0] > a[0] else 0
                f.write(f"{b[0] / 60:.4f} {b[1] / 2**20:.4f} {b[2] / 2**20:.4f} {b[3] / 2**20:.4f} "
                        f"{rate_s / 1000:.3f}\n")
        title = (f"herdd under {RATE // 1000}k events/s + queries, jobs, restarts, reloads "
                 f"({os.cpu_count()} cpu, shared); RSS {mib(rss_early)} -> {mib(rss_late)} MiB")
        r = subprocess.run(["gnuplot", "-e", f"datafile='{dat}'; outfile='{SVG}'; "
                            f"plottitle='{title}'; early={early_t / 60}; late={late_t / 60}",
                            f"{HERE}/plot.gp"], capture_output=True, text=True)
        plotted = r.returncode == 0
        if plotted:
            print(f"   plot: {SVG}")
        else:
            print(f"   plot failed: {r.stderr.strip()}")
    elif SVG:
        print("   plot skipped: gnuplot not installed (apt-get install gnuplot-nox)")

    result = {
        "bench": "soak", "seconds": round(t_end, 1), "cpus": os.cpu_count(),
        "loadavg_start": round(load0[0], 2), "loadavg_end": round(os.getloadavg()[0], 2),
        "rate_target": RATE, "rate": round(rate, 1), "events_sent": sent,
        "archive": {"written": written, "worker_dropped": worker_drops,
                    "bus_queue_full": bus_drops, "lost": lost, "streams": streams},
        "exec": exec_fig, "catalog_queries": qres, "jobs": {k: v for k, v in jobs_done.items()
                                                            if k != "seconds"},
        "control": control, "status_polls": len(statuses), "metrics_scrapes": metrics["scrapes"],
        "herdd": {"cpu_s": round(cpu_s, 1), "stop_s": round(stop_s, 2), "exit": rc,
                  "log_errors": levels["error"], "log_warnings": levels["warn"]},
        "rss": {"early_t_s": early_t, "late_t_s": round(late_t, 1), "early_bytes": rss_early,
                "late_bytes": rss_late, "ratio": round(ratio, 4),
                "slope_kib_per_min": round(slope, 2) if slope is not None else None,
                "min_bytes": min(rss_all, default=0), "max_bytes": max(rss_all, default=0),
                "pss_early_bytes": pss_early, "pss_late_bytes": pss_late,
                "uss_early_bytes": uss_early, "uss_late_bytes": uss_late},
        "errors": len(errors), "error_list": errors[:20], "plot": SVG if plotted else None,
        "targets": targets, "pass": all(targets.values()),
    }
    if KEEP:
        result["dir"] = T
    missed = [k for k, v in targets.items() if not v]
    if missed:
        print(f"bench/soak: target missed: {', '.join(missed)}")
    print("RESULT " + json.dumps(result))
    return 0 if not missed else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(130))
    signal.signal(signal.SIGHUP, lambda *a: sys.exit(130))
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        cleanup()
