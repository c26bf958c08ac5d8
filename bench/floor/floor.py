"""bench/floor: N idle workers, every way to run them (issue 14).

Driven by bench/floor/run (which checks the tools first); see that file and
docs/benchmarks.md, "The floor". For each N and each run, every
configuration is started fresh, left to settle, and measured from
/proc/PID/smaps_rollup summed over every process of the configuration:

  1 herdd      one herdd hosting N idle archive workers
  2 herdd xN   N herdd processes hosting one such worker each
  3 python xN  N python3 processes, one lean asyncio bus worker each
  4 asyncio    one python3 process, N asyncio tasks under a TaskGroup
  5 erlang     one Erlang VM, N idle gen_servers under a supervisor

Rows 3 and 4 connect to one small unix-socket bus process (py_bus.py),
reported apart and not counted in their totals. Rows 2 and 3 are measured
up to BENCH_FLOOR_PROC_MAX (100) workers and extrapolated beyond from their
slope, marked so. Prints the tables, writes the plot, and ends with
`RESULT {json}`.
"""
import atexit
import datetime
import json
import os
import platform
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BUILD = sys.argv[1]
SVG = sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
HERDD = os.path.join(BUILD, "supervisor", "herdd")
HERDCTL = os.path.join(BUILD, "cli", "herdctl")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
NS = [int(x) for x in os.environ.get("BENCH_FLOOR_NS", "1 10 100 1000").split()]
BIG = os.environ.get("BENCH_FLOOR_BIG", "0") not in ("", "0")
BIG_N = int(os.environ.get("BENCH_FLOOR_BIG_N", "10000"))
PROC_MAX = int(os.environ.get("BENCH_FLOOR_PROC_MAX", "100"))
SETTLE = float(os.environ.get("BENCH_FLOOR_SETTLE", "3"))
HB_SECS = float(os.environ.get("BENCH_FLOOR_HB_SECS", "25"))
INTERVAL = 10  # every heartbeat of every row, seconds
PY = os.environ.get("BENCH_FLOOR_PYTHON") or sys.executable
ERL = shutil.which("erl") and shutil.which("erlc")
GNUPLOT = shutil.which("gnuplot")
ROWS = ["herdd", "herdd_procs", "python_procs", "asyncio_tasks", "erlang"]
LABEL = {
    "herdd": "1 herdd, N workers",
    "herdd_procs": "2 N herdd processes",
    "python_procs": "3 N python3 processes",
    "asyncio_tasks": "4 python3, N asyncio tasks",
    "erlang": "5 Erlang VM, N gen_servers",
}
PROC_ROWS = ("herdd_procs", "python_procs")
NS = sorted(set(NS))

T = tempfile.mkdtemp(prefix="herd-bench-floor.")
procs = []  # every Popen started here, each the leader of its own session


def stop(p, grace=5.0):
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        p.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def stop_all(ps):
    for p in ps:  # all at once, then wait for each
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in ps:
        stop(p)
        if p in procs:
            procs.remove(p)


def cleanup():
    stop_all(list(procs))
    shutil.rmtree(T, ignore_errors=True)


atexit.register(cleanup)
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, lambda *_: sys.exit(130))


def spawn(argv, env=None, stdout=subprocess.DEVNULL, stderr=None, cwd=None):
    p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=stdout,
                         stderr=stderr if stderr is not None else subprocess.DEVNULL,
                         start_new_session=True, cwd=cwd)
    procs.append(p)
    return p


def fail(msg):
    print(f"bench/floor: {msg}", file=sys.stderr)
    sys.exit(1)


# ---- memory -----------------------------------------------------------------

def descendants(roots):
    """roots and every process below them."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def rollup(pid):
    m = {"rss": 0, "pss": 0, "uss": 0, "anon": 0}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k == "Rss":
                m["rss"] = int(v.split()[0]) * 1024
            elif k == "Pss":
                m["pss"] = int(v.split()[0]) * 1024
            elif k in ("Private_Clean", "Private_Dirty"):
                m["uss"] += int(v.split()[0]) * 1024
            elif k == "Anonymous":
                m["anon"] = int(v.split()[0]) * 1024
    return m


def measure(roots):
    """Summed over roots and their descendants, read back to back."""
    total = {"rss": 0, "pss": 0, "uss": 0, "anon": 0, "procs": 0}
    for pid in descendants(roots):
        try:
            m = rollup(pid)
        except OSError:
            continue
        for k in m:
            total[k] += m[k]
        total["procs"] += 1
    return total


# ---- herdd -------------------------------------------------------------------

def herd_config(d, n, extra=None):
    os.makedirs(d, exist_ok=True)
    workers = [{"name": f"w{i}", "kind": "archive", "subscribe": [f"idle.{i}.>"],
                "path": f"{d}/archive/{i}.jsonl"} for i in range(n)]
    cfg = {"bus": {"dir": f"{d}/run"}, "state_dir": f"{d}/state", "http": {"listen": ""},
           "health_interval_s": INTERVAL, "workers": workers}
    if extra:
        cfg["bus"].update(extra)
    path = f"{d}/herd.json"
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path


def notify_socket(d):
    path = f"{d}/notify.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    return s, path


def wait_ready(socks, t0, timeout=120.0):
    """Until every socket got READY=1: seconds from t0 to the last. One
    socket per herdd: a unix datagram queue holds 10 messages
    (net.unix.max_dgram_qlen) and herdd drops what does not fit."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    left_socks = len(socks)
    while left_socks:
        left = t0 + timeout - time.monotonic()
        if left <= 0:
            fail(f"{len(socks) - left_socks} of {len(socks)} herdd said READY=1 within {timeout:.0f} s")
        for key, _ in sel.select(left):
            try:
                msg = key.fileobj.recv(4096).decode(errors="replace")
            except BlockingIOError:
                continue
            if "READY=1" in msg.split("\n"):
                sel.unregister(key.fileobj)
                left_socks -= 1
    t = time.monotonic() - t0
    sel.close()
    for s in socks:
        s.close()
    return t


def start_herdd(d, n, extra=None):
    """One herdd hosting n workers, started now: (Popen, seconds to READY=1)."""
    cfg = herd_config(d, n, extra)
    if os.path.exists(f"{d}/notify.sock"):
        os.unlink(f"{d}/notify.sock")
    sock, path = notify_socket(d)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    t0 = time.monotonic()
    p = spawn([HERDD, "-c", cfg], env=env, stderr=open(f"{d}/herdd.log", "w"))
    ready = wait_ready([sock], t0)
    p.ready_cpu_s = cpu_s(p.pid)
    return p, ready


def cpu_s(pid):
    """utime + stime of a process so far, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def herdd_refuses(n):
    """None when herdd --check takes a config of n workers, else its message."""
    d = os.path.join(T, f"check-{n}")
    out = subprocess.run([HERDD, "--check", "-c", herd_config(d, n)], capture_output=True, text=True)
    shutil.rmtree(d, ignore_errors=True)
    return None if out.returncode == 0 else (out.stderr.strip() or out.stdout.strip())


def herdctl_json(d, *args):
    out = subprocess.run([HERDCTL, "--runtime-dir", f"{d}/run", "--timeout", "10", "--json", *args],
                         capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout) if out.returncode == 0 else None


def run_herdd(n, d):
    p, ready = start_herdd(d, n)
    time.sleep(SETTLE)
    m = measure([p.pid])
    m["ready_s"] = ready
    m["ready_cpu_s"] = p.ready_cpu_s
    # After the reading: what herd's own accounting says (the reply itself
    # allocates, so never before it).
    mem = herdctl_json(d, "mem")
    if mem:
        ws = mem.get("workers", [])
        m["running"] = sum(1 for w in ws if w.get("state") == "running")
        m["heap_bytes"] = sum(w.get("heap_bytes", 0) for w in ws)
        m["unaccounted_heap_bytes"] = mem["supervisor"].get("unaccounted_heap_bytes", 0)
        m["malloc_in_use_bytes"] = mem.get("malloc", {}).get("in_use_bytes", 0)
    stop_all([p])
    # The same herdd started again on the same directories (its state
    # directories and archive files now exist, as at a daemon's restart).
    p, m["ready_restart_s"] = start_herdd(d, n)
    m["ready_restart_cpu_s"] = p.ready_cpu_s
    stop_all([p])
    if m.get("running", n) != n:
        fail(f"herdd with {n} workers: {m.get('running')} running")
    return m


def run_herdd_procs(n, d):
    cfgs = [herd_config(f"{d}/h{i}", 1) for i in range(n)]
    socks = [notify_socket(f"{d}/h{i}") for i in range(n)]
    t0 = time.monotonic()
    ps = []
    for i in range(n):
        env = dict(os.environ, NOTIFY_SOCKET=socks[i][1])
        ps.append(spawn([HERDD, "-c", cfgs[i]], env=env, stderr=open(f"{d}/h{i}/herdd.log", "w")))
    ready = wait_ready([s for s, _ in socks], t0)
    time.sleep(SETTLE)
    m = measure([p.pid for p in ps])
    m["ready_s"] = ready
    stop_all(ps)
    return m


# ---- python -------------------------------------------------------------------

def start_bus(d):
    os.makedirs(d, exist_ok=True)
    path = f"{d}/bus.sock"
    bus = spawn([PY, os.path.join(HERE, "py_bus.py"), path], stdout=subprocess.PIPE)
    if bus.stdout.readline().strip() != b"listening":
        fail("py_bus.py did not start")
    return bus, path


def bus_stat(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(b'{"op": "stat"}\n')
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


def wait_subs(path, n, t0, timeout=120.0):
    while True:
        st = bus_stat(path)
        if st["subs"] >= n:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            fail(f"python: {st['subs']} of {n} subscribed within {timeout:.0f} s")
        time.sleep(0.02)


def run_python_procs(n, d):
    bus, path = start_bus(d)
    t0 = time.monotonic()
    ps = [spawn([PY, os.path.join(HERE, "py_worker.py"), path, str(i), str(INTERVAL)]) for i in range(n)]
    ready = wait_subs(path, n, t0)
    time.sleep(SETTLE)
    m = measure([p.pid for p in ps])
    m["bus"] = measure([bus.pid])
    m["ready_s"] = ready
    stop_all(ps + [bus])
    return m


def run_asyncio_tasks(n, d):
    bus, path = start_bus(d)
    t0 = time.monotonic()
    p = spawn([PY, os.path.join(HERE, "py_tasks.py"), path, str(n), str(INTERVAL)], stdout=subprocess.PIPE)
    if p.stdout.readline().strip() != b"ready":
        fail("py_tasks.py did not start")
    ready = wait_subs(path, n, t0)
    time.sleep(SETTLE)
    m = measure([p.pid])
    m["bus"] = measure([bus.pid])
    m["ready_s"] = ready
    stop_all([p, bus])
    return m


# ---- erlang -------------------------------------------------------------------

ERL_EBIN = os.path.join(T, "ebin")


def run_erlang(n, d):
    os.makedirs(d, exist_ok=True)
    t0 = time.monotonic()
    p = spawn(["erl", "-noshell", "-pa", ERL_EBIN, "-eval", f"floor:main({n}, {INTERVAL * 1000})"],
              stdout=subprocess.PIPE, stderr=open(f"{d}/erl.log", "w"))
    if p.stdout.readline().strip() != b"ready":
        fail("the Erlang VM did not start (see erl.log)")
    ready = time.monotonic() - t0
    time.sleep(SETTLE)
    m = measure([p.pid])
    m["ready_s"] = ready
    stop_all([p])
    return m


RUNNERS = {"herdd": run_herdd, "herdd_procs": run_herdd_procs, "python_procs": run_python_procs,
           "asyncio_tasks": run_asyncio_tasks, "erlang": run_erlang}


# ---- heartbeats ----------------------------------------------------------------

def parse_ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


HBSUB = os.path.join(T, "hbsub")


def build_hbsub():
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return False
    r = subprocess.run([cc, "-O2", "-o", HBSUB, os.path.join(HERE, "hbsub.c"), "-lnng"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"   hbsub did not build ({r.stderr.strip()[:200]}); heartbeats through herdctl sub only")
    return r.returncode == 0


def collect(p, lines, stamped):
    """Reader thread: (arrival, topic, payload) from a subscriber's stdout."""
    for line in p.stdout:
        if stamped:
            t, _, rest = line.decode(errors="replace").rstrip("\n").partition(" ")
            if not t.isdigit():
                continue
            arrival = int(t) / 1e9
        else:
            arrival, rest = time.monotonic(), line.decode(errors="replace").rstrip("\n")
        topic, _, payload = rest.partition(" ")
        lines.append((arrival, topic, payload))


def judge(lines, n, t_start):
    """Every worker heard at least twice, and no gap between two consecutive
    heartbeats of one worker over INTERVAL + 1 s (by arrival, and by ts)."""
    seen = {}
    bad = 0
    for arrival, topic, payload in lines:
        parts = topic.split(".")
        if len(parts) != 3 or parts[0] != "system" or parts[2] != "health" or parts[1] == "supervisor":
            continue
        try:
            ts = parse_ts(json.loads(payload)["ts"])
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        seen.setdefault(parts[1], []).append((arrival, ts))
    missing = sum(1 for i in range(n) if f"w{i}" not in seen)
    once = sum(1 for v in seen.values() if len(v) < 2)
    gaps_arr, gaps_ts, first = [], [], []
    for v in seen.values():
        first.append(v[0][0] - t_start)
        for a, b in zip(v, v[1:]):
            gaps_arr.append(b[0] - a[0])
            gaps_ts.append(b[1] - a[1])
    late_arr = sum(1 for g in gaps_arr if g > INTERVAL + 1)
    late_ts = sum(1 for g in gaps_ts if g > INTERVAL + 1)
    counts = [len(v) for v in seen.values()] or [0]
    return {
        "heartbeats": sum(counts), "workers_heard": len(seen), "missing": missing,
        "heard_once_only": once, "per_worker_min": min(counts), "per_worker_max": max(counts),
        "gaps": len(gaps_arr),
        "max_gap_arrival_s": round(max(gaps_arr), 3) if gaps_arr else None,
        "max_gap_ts_s": round(max(gaps_ts), 3) if gaps_ts else None,
        "min_gap_arrival_s": round(min(gaps_arr), 3) if gaps_arr else None,
        "late_arrival": late_arr, "late_ts": late_ts, "unparsed": bad,
        "first_heard_max_s": round(max(first), 3) if first else None,
        "ok": missing == 0 and once == 0 and late_arr == 0 and late_ts == 0 and bad == 0,
    }


def heartbeat_check(n, use_hbsub):
    """Start herdd with n workers; listen to system.*.health for HB_SECS with
    hbsub (a sub0 with nng's largest receive buffer: the judge of herdd) and
    with `herdctl sub 'system.*.health'` side by side (what an operator's
    tool sees)."""
    d = os.path.join(T, f"hb-{n}")
    p, ready = start_herdd(d, n)
    subs = {}
    t_start = time.monotonic()
    if use_hbsub:
        hs = spawn([HBSUB, f"ipc://{d}/run/events.ipc"], stdout=subprocess.PIPE, stderr=open(f"{d}/hbsub.log", "w"))
        if hs.stdout.readline().strip() != b"connected":
            fail("hbsub did not connect")
        subs["hbsub"] = (hs, [], True)
    hc = spawn([HERDCTL, "--runtime-dir", f"{d}/run", "sub", "system.*.health"],
               stdout=subprocess.PIPE, stderr=open(f"{d}/sub.log", "w"))
    subs["herdctl"] = (hc, [], False)
    threads = [threading.Thread(target=collect, args=(sp, lines, st), daemon=True) for sp, lines, st in subs.values()]
    for th in threads:
        th.start()
    time.sleep(HB_SECS)
    t_end = time.monotonic()
    status = herdctl_json(d, "status")
    stop_all([sp for sp, _, _ in subs.values()])
    for th in threads:
        th.join(5)
    stop_all([p])
    out = {"workers": n, "seconds": round(t_end - t_start, 1), "ready_s": ready,
           "judge": "hbsub" if use_hbsub else "herdctl",
           "herdd_bus": ((status or {}).get("supervisor", {}).get("bus", {}))}
    for name, (_, lines, _) in subs.items():
        out[name] = judge([x for x in lines if x[0] <= t_end], n, t_start)
    out["ok"] = out[out["judge"]]["ok"]
    if use_hbsub:
        out["herdctl_lost"] = out["hbsub"]["heartbeats"] - out["herdctl"]["heartbeats"]
    return out


# ---- the run ---------------------------------------------------------------------

def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    otp = None
    if ERL:
        otp = subprocess.run(["erl", "-noshell", "-eval",
                              'io:format("~s", [erlang:system_info(otp_release)]), halt().'],
                             capture_output=True, text=True).stdout.strip()
    pyv = subprocess.run([PY, "-c", "import sys; print(sys.version.split()[0])"],
                         capture_output=True, text=True).stdout.strip()
    herdv = subprocess.run([HERDD, "--version"], capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "python": f"{PY} {pyv}", "erlang_otp": otp, "herdd": herdv,
            "loadavg_start": os.getloadavg()[0]}


def main():
    info = machine()
    only = os.environ.get("BENCH_FLOOR_ROWS", "1 2 3 4 5").split()
    rows = [r for i, r in enumerate(ROWS) if (r != "erlang" or ERL) and (i == 0 or str(i + 1) in only)]
    if ERL:
        os.makedirs(ERL_EBIN)
        subprocess.run(["erlc", "-o", ERL_EBIN, os.path.join(HERE, "floor.erl")], check=True)
    print(f"== bench/floor: N idle workers, every way to run them ({info['nproc']} cpu, {info['cpu']}, "
          f"Linux {info['kernel']}, load {info['loadavg_start']:.2f})")
    print(f"   N = {' '.join(map(str, NS))}; runs {RUNS}; settle {SETTLE:g} s; heartbeats every {INTERVAL} s; "
          f"rows 2 and 3 measured up to N = {PROC_MAX}")
    if not ERL:
        print("   row 5 (Erlang): erl/erlc not installed, skipped: apt-get install -y erlang-base")
    big_n, big_note = BIG_N, None
    if BIG:
        why = herdd_refuses(BIG_N)
        if why:
            import re
            m = re.search(r"at most (\d+) workers", why)
            if not m:
                fail(f"herdd refuses {BIG_N} workers: {why}")
            big_n = int(m.group(1))
            big_note = f"herdd refuses {BIG_N} workers ({why}); measured at its limit, {big_n}"
            print(f"   big: {big_note}")
    raw = {r: {n: [] for n in NS} for r in rows}
    raw_none = []
    raw_big = []
    t_begin = time.monotonic()
    for run in range(RUNS):
        d = os.path.join(T, f"r{run}")
        m = run_herdd(0, f"{d}/none")
        raw_none.append(m)
        for n in NS:
            for r in rows:
                if r in PROC_ROWS and n > PROC_MAX:
                    continue
                m = RUNNERS[r](n, f"{d}/{r}-{n}")
                raw[r][n].append(m)
                print(f"   run {run + 1}/{RUNS} N={n:<5} {LABEL[r]:28} PSS {m['pss'] / 1048576:9.2f} MiB  "
                      f"USS {m['uss'] / 1048576:9.2f} MiB  {m['procs']:4} procs  ready {m['ready_s']:.3f} s",
                      flush=True)
                shutil.rmtree(f"{d}/{r}-{n}", ignore_errors=True)
        if BIG:
            m = run_herdd(big_n, f"{d}/big")
            raw_big.append(m)
            print(f"   run {run + 1}/{RUNS} N={big_n:<5} {LABEL['herdd']:28} PSS {m['pss'] / 1048576:9.2f} MiB  "
                  f"USS {m['uss'] / 1048576:9.2f} MiB  ready {m['ready_s']:.3f} s", flush=True)
            shutil.rmtree(f"{d}/big", ignore_errors=True)

    hb_n = 1000 if 1000 in NS else max(NS)
    print(f"   heartbeats: herdd with {hb_n} workers, subscribed to system.*.health for {HB_SECS:g} s ...", flush=True)
    use_hbsub = build_hbsub()
    hb = heartbeat_check(hb_n, use_hbsub)
    hb_big = None
    if BIG:
        print(f"   heartbeats: herdd with {big_n} workers ...", flush=True)
        hb_big = heartbeat_check(big_n, use_hbsub)
    elapsed = time.monotonic() - t_begin
    info["loadavg_end"] = os.getloadavg()[0]

    keys = ("rss", "pss", "uss", "anon", "procs", "ready_s", "ready_cpu_s", "ready_restart_s", "ready_restart_cpu_s",
            "heap_bytes", "unaccounted_heap_bytes")

    def med(ms):
        out = {}
        for k in keys:
            v = [m[k] for m in ms if k in m]
            if v:
                out[k] = statistics.median(v)
        if ms and "bus" in ms[0]:
            out["bus"] = {k: statistics.median(m["bus"][k] for m in ms) for k in ("rss", "pss", "uss", "anon")}
        return out

    table = {r: {} for r in rows}
    for r in rows:
        for n in NS:
            if raw[r][n]:
                table[r][n] = med(raw[r][n])
                table[r][n]["extrapolated"] = False
    # Rows 2 and 3 beyond PROC_MAX: from the slope between their two largest Ns.
    for r in PROC_ROWS:
        if r not in table:
            continue
        measured = sorted(table[r])
        for n in NS:
            if n in table[r]:
                continue
            if len(measured) < 2:
                continue
            a, b = measured[-2], measured[-1]
            e = {"extrapolated": True, "from": [a, b]}
            for k in ("rss", "pss", "uss", "anon"):
                slope = (table[r][b][k] - table[r][a][k]) / (b - a)
                e[k] = table[r][b][k] + slope * (n - b)
            e["procs"] = n
            table[r][n] = e
    none = med(raw_none)
    big = med(raw_big) if raw_big else None

    # Per extra worker: between 100 and 1,000 when both are there, else the two largest.
    lo, hi = (100, 1000) if 100 in NS and 1000 in NS else (NS[-2], NS[-1]) if len(NS) > 1 else (0, NS[0])
    slope = {}
    for r in rows:
        a = none if lo == 0 and r == "herdd" else table[r].get(lo)
        b = table[r].get(hi)
        if a and b:
            slope[r] = {k: (b[k] - a[k]) / (hi - lo) for k in ("rss", "pss", "uss", "anon")}
            slope[r]["extrapolated"] = bool(b.get("extrapolated") or a.get("extrapolated"))
    big_slope = None
    if big and 1000 in table["herdd"]:
        big_slope = {k: (big[k] - table["herdd"][1000][k]) / (big_n - 1000) for k in ("rss", "pss", "uss", "anon")}
    ratios = {}
    for n in NS:
        base = table["herdd"][n]
        ratios[n] = {}
        for r in rows[1:]:
            if n in table[r]:
                ratios[n][r] = {"pss": table[r][n]["pss"] / base["pss"], "uss": table[r][n]["uss"] / base["uss"],
                                "extrapolated": table[r][n]["extrapolated"]}

    # ---- print ----
    mib = lambda b: f"{b / 1048576:.2f}"

    def cell(r, n, k):
        e = table[r].get(n)
        if e is None:
            return "-"
        return ("~" if e["extrapolated"] else "") + mib(e[k])

    width = 30
    for k, what in (("pss", "PSS"), ("uss", "USS (Private_Clean + Private_Dirty)")):
        print()
        print(f"total {what}, MiB, summed over every process of the configuration (medians of {RUNS}; ~ extrapolated)")
        print(f"   {'N':>{6}} " + " ".join(f"{LABEL[r][:width]:>{width}}" for r in rows))
        for n in NS:
            print(f"   {n:>6} " + " ".join(f"{cell(r, n, k):>{width}}" for r in rows))
        if big:
            print(f"   {big_n:>6} " + f"{mib(big[k]):>{width}}")
    print()
    print(f"per extra worker, KiB (slope between N={lo} and N={hi}; ~ extrapolated rows: their slope below N={PROC_MAX})")
    print(f"   {'':28} {'PSS':>9} {'USS':>9} {'anon':>9}")
    for r in rows:
        if r in slope:
            s = slope[r]
            x = "~" if s["extrapolated"] else ""
            print(f"   {LABEL[r]:28} {x + format(s['pss'] / 1024, '.2f'):>9} {x + format(s['uss'] / 1024, '.2f'):>9} "
                  f"{x + format(s['anon'] / 1024, '.2f'):>9}")
    if big_slope:
        print(f"   {'1 herdd, 1000 -> ' + str(big_n):28} {big_slope['pss'] / 1024:9.2f} {big_slope['uss'] / 1024:9.2f} "
              f"{big_slope['anon'] / 1024:9.2f}")
    print()
    print("ratios to row 1 (one herdd), PSS (USS)")
    print(f"   {'N':>6} " + " ".join(f"{LABEL[r][0] + '/1':>20}" for r in rows[1:]))
    for n in NS:
        cells = []
        for r in rows[1:]:
            q = ratios[n].get(r)
            cells.append("-" if q is None else ("~" if q["extrapolated"] else "") + f"{q['pss']:.1f}x ({q['uss']:.1f}x)")
        print(f"   {n:>6} " + " ".join(f"{c:>20}" for c in cells))
    print()
    print(f"herdd with no worker: RSS {mib(none['rss'])} MiB, PSS {mib(none['pss'])} MiB, USS {mib(none['uss'])} MiB, "
          f"anonymous {mib(none['anon'])} MiB")
    for n in NS:
        h = table["herdd"][n]
        if "heap_bytes" in h and n:
            print(f"herdd with {n}: heap_bytes {h['heap_bytes'] / n:.0f} B per worker; USS over none "
                  f"{(h['uss'] - none['uss']) / n / 1024:.2f} KiB per worker; anonymous over none "
                  f"{(h['anon'] - none['anon']) / n / 1024:.2f} KiB per worker")
    for r in ("python_procs", "asyncio_tasks"):
        if r in table:
            b = [table[r][n]["bus"] for n in NS if "bus" in table[r][n]]
            if b:
                print(f"the Python bus process of row {LABEL[r][0]} (not in its totals): PSS "
                      f"{mib(statistics.median(x['pss'] for x in b))} MiB, USS {mib(statistics.median(x['uss'] for x in b))} MiB")
    print("time to all N running (herdd: start to READY=1; python: to every subscription at the bus; erlang: to 'ready'), s")
    print(f"   {'N':>6} " + " ".join(f"{LABEL[r][0]:>14}" for r in rows))
    for n in NS:
        print(f"   {n:>6} " + " ".join(f"{table[r][n]['ready_s']:14.3f}" if n in table[r] and not table[r][n]["extrapolated"]
                                       else f"{'-':>14}" for r in rows))
    if big:
        print(f"   {big_n:>6} {big['ready_s']:14.3f}")
    hs = [(n, table["herdd"][n]) for n in NS] + ([(big_n, big)] if big else [])
    print("herdd, start to READY=1 (s): fresh directories / restarted on existing ones; its CPU time (utime + stime) for each")
    for n, h in hs:
        print(f"   N={n:<6} fresh {h['ready_s']:.3f} s (cpu {h['ready_cpu_s']:.2f})   restart {h['ready_restart_s']:.3f} s "
              f"(cpu {h['ready_restart_cpu_s']:.2f})")
    for h in [hb] + ([hb_big] if hb_big else []):
        for name in ("hbsub", "herdctl"):
            if name not in h:
                continue
            j = h[name]
            print(f"heartbeats, herdd with {h['workers']} workers, {h['seconds']} s, seen by "
                  f"{'hbsub (sub0, 8192 buffer)' if name == 'hbsub' else 'herdctl sub'}: {j['heartbeats']} from "
                  f"{j['workers_heard']} workers ({j['missing']} missing, {j['heard_once_only']} heard once), "
                  f"{j['per_worker_min']}-{j['per_worker_max']} each; gaps {j['min_gap_arrival_s']}-{j['max_gap_arrival_s']} s "
                  f"by arrival, largest {j['max_gap_ts_s']} s by ts; {j['late_arrival']} over {INTERVAL + 1} s -> "
                  f"{'on time' if j['ok'] else 'NOT on time'}")
        if h.get("herdctl_lost", 0) > 0:
            print(f"   herdctl sub saw {h['herdctl_lost']} heartbeats fewer than hbsub: its sub0 socket keeps nng's "
                  f"default receive buffer, which a burst of {h['workers']} heartbeats can overflow while it prints")

    # ---- targets ----
    targets = {}

    def target(name, value, limit, ok, text):
        targets[name] = {"value": value, "limit": limit, "met": ok}
        print(f"   {'met    ' if ok else 'NOT met'} {text}")

    print()
    print("targets")
    if "herdd" in slope:
        v = slope["herdd"]["uss"]
        target("herdd_uss_per_worker", v, 4096, v <= 4096,
               f"herdd per extra idle worker <= 4 KiB USS: {v / 1024:.2f} KiB (N {lo} -> {hi})")
    target("herdd_idle_uss", none["uss"], 1048576, none["uss"] <= 1048576,
           f"herdd idle, no worker, <= 1 MiB USS: {none['uss'] / 1048576:.2f} MiB")
    if 100 in NS:
        if "herdd_procs" in ratios[100]:
            v = ratios[100]["herdd_procs"]["pss"]
            target("n100_herdd_procs_ratio", v, 8, v >= 8, f"N=100: 100 herdd processes >= 8x one herdd in PSS: {v:.1f}x")
        if "python_procs" in ratios[100]:
            v = ratios[100]["python_procs"]["pss"]
            target("n100_python_procs_ratio", v, 150, v >= 150,
                   f"N=100: 100 python3 processes >= 150x one herdd in PSS: {v:.1f}x")
        if "asyncio_tasks" in ratios[100]:
            a, b = table["herdd"][100]["pss"], table["asyncio_tasks"][100]["pss"]
            target("n100_below_asyncio", a, b, a < b,
                   f"N=100: one herdd below one asyncio process in total PSS: {mib(a)} against {mib(b)} MiB")
    if 1000 in NS:
        v = table["herdd"][1000]["ready_s"]
        target("ready_1000_s", v, 1.0, v < 1.0, f"N=1000: start to READY=1 under 1 s: {v:.3f} s fresh, "
               f"{table['herdd'][1000]['ready_restart_s']:.3f} s restarted (medians)")
    j = hb[hb["judge"]]
    target("heartbeats", j["max_gap_arrival_s"], INTERVAL + 1, hb["ok"],
           f"N={hb_n}: every worker's heartbeat arrives, none late by more than 1 s: {j['heartbeats']} heartbeats, "
           f"{j['missing']} workers missing, {j['heard_once_only']} heard once, largest gap {j['max_gap_arrival_s']} s "
           f"(seen by {hb['judge']})")
    if big:
        ok = hb_big["ok"] and big_slope is not None and "herdd" in slope and \
            abs(big_slope["uss"] - slope["herdd"]["uss"]) <= 0.25 * slope["herdd"]["uss"]
        target("big", big_slope["uss"] if big_slope else None, None, ok,
               f"N={big_n}: starts ({big['ready_s']:.3f} s), heartbeats {'on time' if hb_big['ok'] else 'NOT on time'}, "
               f"USS per worker {big_slope['uss'] / 1024:.2f} KiB (1000 -> {big_n}) against "
               f"{slope['herdd']['uss'] / 1024:.2f} KiB ({lo} -> {hi})")

    # ---- plot ----
    svg = None
    if GNUPLOT:
        dat = os.path.join(T, "floor.dat")
        with open(dat, "w") as f:
            for r in ROWS:  # every row has its block, empty when not run
                f.write(f"# {LABEL[r]}\n")
                for n in NS:
                    e = table.get(r, {}).get(n)
                    if e and not e["extrapolated"]:
                        f.write(f"{n} {e['pss'] / 1048576:.4f}\n")
                if r == "herdd" and big:
                    f.write(f"{big_n} {big['pss'] / 1048576:.4f}\n")
                f.write("\n\n")
            for r in PROC_ROWS:  # the extrapolated continuation, dashed
                f.write(f"# {LABEL[r]}, extrapolated\n")
                if r in table:
                    ms = [n for n in NS if n in table[r] and not table[r][n]["extrapolated"]]
                    xs = [n for n in NS if n in table[r] and table[r][n]["extrapolated"]]
                    for n in (ms[-1:] + xs) if xs else []:
                        f.write(f"{n} {table[r][n]['pss'] / 1048576:.4f}\n")
                f.write("\n\n")
        title = (f"N idle workers: total PSS (medians of {RUNS}, {info['nproc']} cpu {info['cpu']}, "
                 f"{datetime.date.today().isoformat()})")
        rc = subprocess.run([GNUPLOT, "-e", f"datafile='{dat}'; outfile='{SVG}'; plottitle='{title}'; "
                             f"haserl={1 if 'erlang' in rows else 0}; procmax={PROC_MAX}; bign={big_n if big else 0}",
                             os.path.join(HERE, "plot.gp")]).returncode
        svg = SVG if rc == 0 else None
        print(f"\nplot: {svg}" if svg else "\nplot: gnuplot failed")
    else:
        print("\nplot: gnuplot not installed, no plot: apt-get install -y gnuplot-nox")

    def clean(e):
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in e.items()}

    result = {
        "bench": "floor", "runs": RUNS, "ns": NS, "settle_s": SETTLE, "heartbeat_interval_s": INTERVAL,
        "proc_rows_measured_up_to": PROC_MAX, "elapsed_s": round(elapsed), "machine": info,
        "erlang": bool(ERL), "bus_server": "reported apart, not in rows 3 and 4",
        "totals_bytes": {r: {str(n): clean({k: v for k, v in e.items() if k != "bus"}) for n, e in table[r].items()}
                         for r in rows},
        "python_bus_bytes": {r: {str(n): table[r][n]["bus"] for n in NS if n in table[r] and "bus" in table[r][n]}
                             for r in ("python_procs", "asyncio_tasks") if r in table},
        "herdd_no_worker_bytes": clean(none),
        "per_worker_bytes": {"between": [lo, hi], **{r: clean(s) for r, s in slope.items()}},
        "ratios_to_herdd": {str(n): {r: clean(q) for r, q in v.items()} for n, v in ratios.items()},
        "per_run": {r: {str(n): [{k: (round(m[k], 4) if isinstance(m[k], float) else m[k])
                                   for k in ("pss", "uss", "ready_s") if k in m} for m in raw[r][n]]
                            for n in NS if raw[r][n]} for r in rows},
        "heartbeats": hb, "targets": targets,
        "svg": svg,
    }
    if big:
        result["big"] = {"workers": big_n, "asked": BIG_N, "note": big_note, "totals_bytes": clean(big),
                         "per_run": [{k: m[k] for k in ("pss", "uss", "ready_s", "ready_restart_s")} for m in raw_big],
                         "per_worker_bytes": clean(big_slope) if big_slope else None, "heartbeats": hb_big}
    print("RESULT " + json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    if not (os.access(HERDD, os.X_OK) and os.access(HERDCTL, os.X_OK)):
        fail(f"build first ({HERDD} or {HERDCTL} missing)")
    main()
