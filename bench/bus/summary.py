#!/usr/bin/env python3
"""bench/bus/summary.py RUNS_FILE NOTES_FILE: the bus benchmark's table and
RESULT line, from the `RUN key=value ...` lines bench/bus/run collected.
Every figure is a median over the runs; the machine comes from the
environment run sets (CPU, NPROC, ...)."""
import json
import os
import statistics
import sys

INPROC_TARGET = 1_000_000     # events/s
HERDD_VS_FORWARDER_TARGET = 0.70
P99_TARGET_US = 1000.0


def parse(path):
    runs, fails = [], []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "FAIL":
                fails.append(" ".join(parts[1:]))
                continue
            if parts[0] != "RUN":
                continue
            d = {}
            for kv in parts[1:]:
                k, _, v = kv.partition("=")
                try:
                    d[k] = float(v)
                except ValueError:
                    d[k] = v
            runs.append(d)
    return runs, fails


def med(rows, key):
    vals = [r[key] for r in rows if isinstance(r.get(key), float)]
    return statistics.median(vals) if vals else None


def spread(rows, key):
    vals = [r[key] for r in rows if isinstance(r.get(key), float)]
    return (min(vals), max(vals)) if vals else (None, None)


def fmt(v, unit=""):
    if v is None:
        return "-"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f} M{unit}"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.1f} k{unit}"
    return f"{v:.0f}{unit}"


def rnd(v, nd=0):
    if v is None:
        return None
    return round(v, nd) if nd else int(round(v))


def main():
    runs, fails = parse(sys.argv[1])
    with open(sys.argv[2]) as f:
        notes = [l.strip() for l in f if l.strip()]
    env = os.environ

    def rows(label, mode=None):
        return [r for r in runs if r.get("label") == label and (mode is None or r.get("mode") == mode)]

    result = {
        "bench": "bus",
        "command": "bench/bus/run " + os.path.relpath(env.get("BUILD", "build")),
        "machine": {
            "nproc": int(env.get("NPROC", "0")),
            "cpu": env.get("CPU", ""),
            "nng": env.get("NNG_VERSION", ""),
            "load_start": env.get("LOAD", ""),
            "load_end": env.get("LOAD_END", ""),
        },
        "runs": int(env.get("RUNS", "0")),
        "payload_bytes": 100,
    }

    print()
    print(f"== bus benchmark: medians of {result['runs']} runs "
          f"({result['machine']['nproc']} cpu, {result['machine']['cpu']}, nng {result['machine']['nng']})")

    # 1. in-process
    print()
    print(f"1. in-process publish -> subscribe, {env.get('INPROC_EVENTS')} events "
          f"(target >= {fmt(INPROC_TARGET, '/s')})")
    print(f"   {'variant':<34} {'delivered/s':>12} {'min..max':>20} {'dropped':>8}")
    inproc = {}
    for label, name in (("inproc", "no_sockets"), ("inproc_sockets", "sockets, no remote sub")):
        rs = rows(label)
        if not rs:
            continue
        r, (lo, hi) = med(rs, "rate"), spread(rs, "rate")
        inproc[label] = {"events_per_s": rnd(r), "min": rnd(lo), "max": rnd(hi),
                         "dropped": rnd(med(rs, "dropped")), "n": len(rs)}
        print(f"   {name:<34} {fmt(r, '/s'):>12} {fmt(lo) + '..' + fmt(hi):>20} "
              f"{fmt(med(rs, 'dropped')):>8}")
    result["inproc"] = inproc

    # 2. external throughput
    print()
    print("2. external publish -> broker -> subscriber, received events/s "
          f"(herdd target >= {HERDD_VS_FORWARDER_TARGET:.0%} of the forwarder)")
    print(f"   {'broker':<26} {'sent':>9} {'received':>9} {'loss':>7} {'received/s':>12} "
          f"{'min..max':>18} {'vs fwd':>7} {'cpu us/ev':>9}")
    ext = {}
    fwd_rate = med(rows("forwarder", "tput"), "rate")
    for label, name in (("herdd", "herdd (nng ipc)"), ("forwarder", "plain nng forwarder (ipc)"),
                        ("forwarder_poll", "nng forwarder, RECVFD+poll"),
                        ("mosquitto", "mosquitto (MQTT QoS0 tcp)"), ("nats", "nats-server (tcp)")):
        rs = rows(label, "tput")
        if not rs:
            continue
        r, (lo, hi) = med(rs, "rate"), spread(rs, "rate")
        ratio = r / fwd_rate if r and fwd_rate else None
        e = {"sent": rnd(med(rs, "sent")), "received": rnd(med(rs, "received")),
             "received_per_s": rnd(r), "min": rnd(lo), "max": rnd(hi),
             "loss_pct": rnd(med(rs, "loss_pct"), 2), "vs_forwarder": rnd(ratio, 3),
             "server_cpu_us_per_event": rnd(med(rs, "server_cpu_us_per_event"), 2), "n": len(rs)}
        if label == "herdd" and med(rs, "herdd_out") is not None:
            e["herdd_in"] = rnd(med(rs, "herdd_in"))
            e["herdd_out"] = rnd(med(rs, "herdd_out"))
            e["herdd_dropped"] = rnd(med(rs, "herdd_dropped"))
        ext[label] = e
        cpu = "-" if e["server_cpu_us_per_event"] is None else f"{e['server_cpu_us_per_event']:.1f}"
        print(f"   {name:<26} {fmt(e['sent']):>9} {fmt(e['received']):>9} "
              f"{e['loss_pct']:>6.2f}% {fmt(r, '/s'):>12} {fmt(lo) + '..' + fmt(hi):>18} "
              f"{(f'{ratio:.0%}' if ratio else '-'):>7} {cpu:>9}")
    result["external"] = ext

    # 3. latency
    print()
    print(f"3. latency publish -> external subscriber at {env.get('LAT_RATE')} events/s for "
          f"{env.get('LAT_SECS')} s (target p99 < {P99_TARGET_US:.0f} us)")
    print(f"   {'broker':<26} {'received':>9} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} "
          f"{'p99.9 us':>9} {'max us':>8} {'p99 min..max':>16}")
    lat = {}
    for label, name in (("herdd", "herdd"), ("forwarder", "plain nng forwarder"),
                        ("forwarder_poll", "nng forwarder, RECVFD+poll"),
                        ("mosquitto", "mosquitto"), ("nats", "nats-server")):
        rs = rows(label, "lat")
        if not rs:
            continue
        lo, hi = spread(rs, "p99_us")
        e = {"sent": rnd(med(rs, "sent")), "received": rnd(med(rs, "received")),
             "p50_us": rnd(med(rs, "p50_us"), 1), "p90_us": rnd(med(rs, "p90_us"), 1),
             "p99_us": rnd(med(rs, "p99_us"), 1), "p999_us": rnd(med(rs, "p999_us"), 1),
             "max_us": rnd(med(rs, "max_us"), 1), "p99_min_us": rnd(lo, 1),
             "p99_max_us": rnd(hi, 1), "n": len(rs)}
        lat[label] = e
        print(f"   {name:<26} {fmt(e['received']):>9} {e['p50_us']:>8.1f} {e['p90_us']:>8.1f} "
              f"{e['p99_us']:>8.1f} {e['p999_us']:>9.1f} {e['max_us']:>8.1f} "
              f"{f'{lo:.0f}..{hi:.0f}':>16}")
    result["latency"] = lat

    targets = {}
    if "inproc" in inproc:
        targets["inproc_ge_1M_per_s"] = inproc["inproc"]["events_per_s"] >= INPROC_TARGET
    if "inproc_sockets" in inproc:
        targets["inproc_sockets_ge_1M_per_s"] = \
            inproc["inproc_sockets"]["events_per_s"] >= INPROC_TARGET
    if "herdd" in ext and ext["herdd"]["vs_forwarder"] is not None:
        targets["herdd_ge_70pct_forwarder"] = \
            ext["herdd"]["vs_forwarder"] >= HERDD_VS_FORWARDER_TARGET
    if "herdd" in lat:
        targets["herdd_p99_lt_1ms"] = lat["herdd"]["p99_us"] < P99_TARGET_US
    result["targets"] = targets
    result["notes"] = notes
    result["failed_runs"] = fails

    print()
    for k, v in targets.items():
        print(f"   target {k}: {'met' if v else 'NOT met'}")
    for n in notes:
        print(f"   note: {n}")
    for f in fails:
        print(f"   failed run: {f}")
    print(f"   machine load (1/5/15 min) at start {result['machine']['load_start']}, "
          f"at end {result['machine']['load_end']}")
    print("RESULT " + json.dumps(result, separators=(",", ":")))


if __name__ == "__main__":
    main()
