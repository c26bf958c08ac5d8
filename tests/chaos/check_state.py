#!/usr/bin/env python3
"""Checks for tests/chaos/kill9.sh (stdlib only). Each subcommand prints a
short result on stdout and exits 1 with the reason on stderr when the
state is wrong.

  jobs-dead JOBS_JSON TERMINAL_MAP
      jobs.json as herdd left it when it was killed: it parses; its terminal
      jobs are merged into TERMINAL_MAP (a JSON file {"terminal": {id:
      status}, "running": {id: pgid}}, created if missing), and its running
      jobs replace "running". A job terminal in the map whose status on disk
      is now different or that is gone is an error. Prints "<terminal>
      <running> <queued>": the map's terminal jobs, the file's others.
  jobs-alive JOBS_JSON TERMINAL_MAP HERDD_PID [LIST_JSON]
      after the restart: jobs.json parses, every job of TERMINAL_MAP is
      there with its status (and in LIST_JSON, the result of `herdctl --json
      job list`, when given), and every job `running` on disk has a pgid
      whose leader lives under HERDD_PID (a running job of the killed herdd
      was queued again, not left `running`): no job of the map's "running"
      is running with the pgid it had at the kill. Prints "<terminal>
      <running>".
  archive FILE...
      every existing FILE ends in a newline and each of its lines is a JSON
      object with exactly ts (string), topic (string), payload. Prints the
      number of lines.
  orphans MARK HERDD_PID
      children herdd started for this test (HERD_JOB_ID or HERD_WORKER in
      their environment, MARK in their argv) that do not descend from
      HERDD_PID (HERDD_PID 0: every one). Prints "<n> <pid,...>"; exit 1
      when n > 0.
  count-argv ARGV
      how many live processes run exactly ARGV (space-separated).
"""
import json
import os
import sys


def die(msg):
    sys.stderr.write(msg + "\n")
    sys.exit(1)


TERMINAL = ("completed", "failed", "cancelled")


def load_jobs(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        die("%s: %s" % (path, e))
    try:
        root = json.loads(data)
    except ValueError as e:
        die("%s does not parse (%s): %r" % (path, e, data[-120:]))
    if not isinstance(root, dict) or not isinstance(root.get("jobs"), list):
        die("%s: no \"jobs\" array" % path)
    jobs = {}
    for j in root["jobs"]:
        if not isinstance(j, dict) or "job_id" not in j or "status" not in j:
            die("%s: an entry without job_id and status: %r" % (path, j))
        jobs[j["job_id"]] = j
    return jobs


def load_map(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {"terminal": {}, "running": {}}


def check_terminal(terminal, jobs, where):
    for jid, status in terminal.items():
        j = jobs.get(jid)
        if j is None:
            die("%s: job %s was %s before the kill and is gone" % (where, jid, status))
        if j["status"] != status:
            die("%s: job %s was %s before the kill and is now %s" % (where, jid, status,
                                                                     j["status"]))


def jobs_dead(path, map_path):
    jobs = load_jobs(path)
    m = load_map(map_path)
    terminal = m["terminal"]
    check_terminal(terminal, jobs, path)
    for jid, j in jobs.items():
        if j["status"] in TERMINAL:
            terminal[jid] = j["status"]
    m["running"] = {jid: j.get("pgid", 0) for jid, j in jobs.items() if j["status"] == "running"}
    tmp = map_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(m, f)
    os.replace(tmp, map_path)
    count = lambda s: sum(1 for j in jobs.values() if j["status"] == s)
    print(len(terminal), count("running"), count("queued"))


def stat_of(pid):
    """(state, ppid, pgrp) of pid, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2])


def descends(pid, ancestor):
    seen = 0
    while pid > 1 and seen < 64:
        if pid == ancestor:
            return True
        st = stat_of(pid)
        if st is None:
            return False
        pid = st[1]
        seen += 1
    return False


def jobs_alive(path, map_path, herdd, list_path=None):
    jobs = load_jobs(path)
    m = load_map(map_path)
    terminal = m["terminal"]
    check_terminal(terminal, jobs, path)
    if list_path is not None:
        with open(list_path) as f:
            listed = {j["job_id"]: j for j in json.load(f)["jobs"]}
        check_terminal(terminal, listed, "herdctl job list")
    running = 0
    for jid, j in jobs.items():
        if j["status"] != "running":
            continue
        running += 1
        pgid = j.get("pgid", 0)
        if m["running"].get(jid) == pgid:
            die("%s: job %s is still running with pgid %s, the killed herdd's" %
                (path, jid, pgid))
        # A job of this herdd: its leader lives under it, unless it has just
        # exited (its end not on disk yet).
        st = stat_of(pgid) if pgid > 1 else None
        if st is not None and st[0] != "Z" and not descends(pgid, herdd):
            die("%s: job %s is running with pgid %s, which is not a child of herdd %d" %
                (path, jid, pgid, herdd))
    print(len([j for j in jobs.values() if j["status"] in TERMINAL]), running)


def archive(paths):
    total = 0
    for p in paths:
        try:
            with open(p, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            continue
        if data and not data.endswith(b"\n"):
            die("%s: ends in a torn line: %r" % (p, data[-120:]))
        for n, line in enumerate(data.split(b"\n")[:-1]):
            try:
                v = json.loads(line)
            except ValueError as e:
                die("%s line %d does not parse (%s): %r" % (p, n + 1, e, line[:160]))
            if (not isinstance(v, dict) or sorted(v) != ["payload", "topic", "ts"] or
                    not isinstance(v["ts"], str) or not isinstance(v["topic"], str)):
                die("%s line %d is not {ts,topic,payload}: %r" % (p, n + 1, line[:160]))
            total += 1
    print(total)


def marked_children(mark):
    """pids of live processes with mark in argv and a herdd child's env."""
    out = []
    me = os.getpid()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        pid = int(d)
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read()
            if mark.encode() not in argv:
                continue
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if not any(e.startswith(b"HERD_JOB_ID=") or e.startswith(b"HERD_WORKER=") for e in env):
            continue
        st = stat_of(pid)
        if st is None or st[0] == "Z":
            continue
        out.append(pid)
    return out


def orphans(mark, herdd):
    bad = [p for p in marked_children(mark) if herdd == 0 or not descends(p, herdd)]
    print(len(bad), ",".join(str(p) for p in bad))
    if bad:
        sys.exit(1)


def count_argv(argv):
    want = argv.encode().replace(b" ", b"\0") + b"\0"
    n = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                if f.read() != want:
                    continue
        except OSError:
            continue
        st = stat_of(int(d))
        if st is not None and st[0] != "Z":
            n += 1
    print(n)


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "jobs-dead":
        jobs_dead(a[1], a[2])
    elif len(a) in (4, 5) and a[0] == "jobs-alive":
        jobs_alive(a[1], a[2], int(a[3]), a[4] if len(a) == 5 else None)
    elif len(a) >= 1 and a[0] == "archive":
        archive(a[1:])
    elif len(a) == 3 and a[0] == "orphans":
        orphans(a[1], int(a[2]))
    elif len(a) == 2 and a[0] == "count-argv":
        count_argv(a[1])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
