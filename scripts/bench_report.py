#!/usr/bin/env python3
"""Turns the raw figures of scripts/bench.sh (lines of FIGURE, SERVER, VALUE) into Markdown:
medians, ratios to each anchor, and whether each target of the benchmark issue is met."""

import argparse
import statistics
from collections import defaultdict

SERVERS = [("sockdemo", "sockdemo serve"), ("python", "Python tutorial, sleep 0"),
           ("plain", "plain Rust thread per connection")]
FETCHERS = ["sockdemo fetch (1 KiB receives)", "sockdemo fetch --recv-size 65536",
            "curl -s -o FILE", "wget -q -O FILE"]


def load(path):
    values = defaultdict(list)
    with open(path) as f:
        for line in f:
            figure, who, value = line.rstrip("\n").split("\t")
            values[(figure, who)].append(float(value))
    return values


class Figures:
    def __init__(self, values):
        self.values = values

    def median(self, figure, who):
        v = self.values.get((figure, who))
        return statistics.median(v) if v else None

    def runs(self, figure, who):
        return len(self.values.get((figure, who), []))


def num(x, digits=0):
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def rx(r):
    return "n/a" if r is None else f"{r:.2f}x"


def round_trip_tables(f, out):
    names = " | ".join(label for _, label in SERVERS)
    out.append("### Round trips: messages/s (higher is better)\n")
    out.append(f"| clients | {names} | sockdemo / Python | sockdemo / plain |")
    out.append("|---:|---:|---:|---:|---:|---:|")
    for c in ("1", "10", "100"):
        m = [f.median(f"mps_{c}", s) for s, _ in SERVERS]
        out.append(f"| {c} | " + " | ".join(num(x) for x in m)
                   + f" | {rx(ratio(m[0], m[1]))} | {rx(ratio(m[0], m[2]))} |")
    out.append("")
    out.append("### Round trips: p99 latency in µs (lower is better)\n")
    out.append(f"| clients | {names} | sockdemo / Python | sockdemo / plain |")
    out.append("|---:|---:|---:|---:|---:|---:|")
    for c in ("1", "10", "100"):
        m = [f.median(f"p99_{c}", s) for s, _ in SERVERS]
        out.append(f"| {c} | " + " | ".join(num(x) for x in m)
                   + f" | {rx(ratio(m[0], m[1]))} | {rx(ratio(m[0], m[2]))} |")
    out.append("")
    out.append("### Connection churn: connections/s, `--reconnect`, 4 clients (higher is better)\n")
    out.append(f"| | {names} | sockdemo / Python | sockdemo / plain |")
    out.append("|---|---:|---:|---:|---:|---:|")
    m = [f.median("cps_4", s) for s, _ in SERVERS]
    out.append("| connections/s | " + " | ".join(num(x) for x in m)
               + f" | {rx(ratio(m[0], m[1]))} | {rx(ratio(m[0], m[2]))} |")
    errors = {s: sum(f.values.get(("errors", s), [])) for s, _ in SERVERS}
    out.append("")
    out.append("Bench errors over all runs: "
               + ", ".join(f"{label} {int(errors[s])}" for s, label in SERVERS) + ".")
    out.append("")


def memory_table(f, out):
    names = " | ".join(label for _, label in SERVERS)
    out.append("### Memory: server VmRSS in MiB with idle connections held (lower is better)\n")
    out.append(f"| | {names} | sockdemo / Python | sockdemo / plain |")
    out.append("|---|---:|---:|---:|---:|---:|")
    mib = lambda kib: None if kib is None else kib / 1024  # noqa: E731
    rows = [("no connections", "rss_idle"), ("1,000 connections", "rss_1000"),
            ("10,000 connections", "rss_10000")]
    for label, key in rows:
        m = [mib(f.median(key, s)) for s, _ in SERVERS]
        out.append(f"| {label} | " + " | ".join(num(x, 1) for x in m)
                   + f" | {rx(ratio(m[0], m[1]))} | {rx(ratio(m[0], m[2]))} |")
    per = []
    for s, _ in SERVERS:
        big, idle = f.median("rss_10000", s), f.median("rss_idle", s)
        per.append(None if big is None or idle is None else (big - idle) / 10000)
    out.append("| KiB per connection (10,000 minus none, / 10,000) | "
               + " | ".join(num(x, 1) for x in per)
               + f" | {rx(ratio(per[0], per[1]))} | {rx(ratio(per[0], per[2]))} |")
    for n in ("1000", "10000"):
        cells = []
        for s, _ in SERVERS:
            got = f.values.get((f"answered_{n}", s), [])
            cells.append("n/a" if not got else
                         f"{int(min(got)):,}/{int(n):,} (worst of {len(got)})")
        out.append(f"| still answering after {int(n):,} held | " + " | ".join(cells)
                   + " | | |")
    out.append("")


def fetch_table(f, out):
    out.append("### Fetch: a 256 MiB file from a local nginx\n")
    out.append("| client | wall s | peak RSS MiB | wall / curl | wall / wget |")
    out.append("|---|---:|---:|---:|---:|")
    curl, wget = f.median("fetch_wall", FETCHERS[2]), f.median("fetch_wall", FETCHERS[3])
    for who in FETCHERS:
        wall, rss = f.median("fetch_wall", who), f.median("fetch_rss", who)
        rss = None if rss is None else rss / 1024
        out.append(f"| {who} | {num(wall, 2)} | {num(rss, 1)} | {rx(ratio(wall, curl))} "
                   f"| {rx(ratio(wall, wget))} |")
    out.append("")


def verdict(ok):
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def targets(f, out, with_serve, with_fetch):
    out.append("### Targets\n")
    out.append("| target | measured | |")
    out.append("|---|---|---|")
    if with_serve:
        for c in ("1", "10", "100"):
            ours = f.median(f"mps_{c}", "sockdemo")
            py, plain = f.median(f"mps_{c}", "python"), f.median(f"mps_{c}", "plain")
            best = max((x for x in (py, plain) if x is not None), default=None)
            r = ratio(ours, best)
            ok = None if r is None else r >= 1.0
            text = f"{rx(r)} the best anchor"
            if c == "100":
                r2 = ratio(ours, py)
                text += f", {rx(r2)} Python"
                ok = None if r is None or r2 is None else (r >= 1.0 and r2 >= 2.0)
                name = "messages/s at 100 clients >= best anchor and >= 2x Python"
            else:
                name = f"messages/s at {c} client{'s' if c != '1' else ''} >= best anchor"
            out.append(f"| {name} | {text} | {verdict(ok)} |")
        r = ratio(f.median("cps_4", "sockdemo"), f.median("cps_4", "plain"))
        out.append(f"| connections/s (`--reconnect`, 4 clients) >= 1.3x plain | {rx(r)} plain | "
                   f"{verdict(None if r is None else r >= 1.3)} |")
        rss = f.median("rss_10000", "sockdemo")
        answered = f.values.get(("answered_10000", "sockdemo"), [])
        all_answered = bool(answered) and min(answered) >= 10000
        mib = None if rss is None else rss / 1024
        out.append(f"| 10,000 idle connections <= 80 MiB, every one answering | "
                   f"{num(mib, 1)} MiB, {'all' if all_answered else 'NOT all'} answering | "
                   f"{verdict(None if mib is None else mib <= 80 and all_answered)} |")
        p99 = f.median("p99_1", "sockdemo")
        out.append(f"| p99 at 1 client < 1 ms | {num(p99)} µs | "
                   f"{verdict(None if p99 is None else p99 < 1000)} |")
    if with_fetch:
        curl = f.median("fetch_wall", FETCHERS[2])
        for who, label in ((FETCHERS[0], "1 KiB"), (FETCHERS[1], "64 KiB")):
            rss = f.median("fetch_rss", who)
            rss = None if rss is None else rss / 1024
            out.append(f"| fetch peak RSS <= 5 MiB ({label} receives) | {num(rss, 1)} MiB | "
                       f"{verdict(None if rss is None else rss <= 5)} |")
        r64 = ratio(f.median("fetch_wall", FETCHERS[1]), curl)
        out.append(f"| fetch `--recv-size 65536` wall <= 1.2x curl | {rx(r64)} curl | "
                   f"{verdict(None if r64 is None else r64 <= 1.2)} |")
        r1 = ratio(f.median("fetch_wall", FETCHERS[0]), curl)
        out.append(f"| fetch 1 KiB receives wall < 4x curl | {rx(r1)} curl | "
                   f"{verdict(None if r1 is None else r1 < 4)} |")
    out.append("")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("results")
    p.add_argument("--date", required=True)
    p.add_argument("--nproc", required=True)
    p.add_argument("--mem-kib", type=int, required=True)
    p.add_argument("--kernel", required=True)
    p.add_argument("--runs", type=int, required=True)
    p.add_argument("--duration", required=True)
    p.add_argument("--fetch-note", default="")
    a = p.parse_args()
    f = Figures(load(a.results))
    with_serve = any(k[0].startswith("mps_") for k in f.values)
    with_fetch = any(k[0].startswith("fetch_") for k in f.values)
    out = ["## Results\n",
           f"Machine: {a.nproc} CPUs, {a.mem_kib / 1024 / 1024:.1f} GiB memory, "
           f"Linux {a.kernel}. Date: {a.date}. Medians of {a.runs} run"
           f"{'s' if a.runs != 1 else ''}; each bench ran `--duration {a.duration}`.\n"]
    if with_serve:
        round_trip_tables(f, out)
        memory_table(f, out)
    if with_fetch:
        fetch_table(f, out)
    elif a.fetch_note:
        out.append(f"Fetch: {a.fetch_note}.\n")
    targets(f, out, with_serve, with_fetch)
    print("\n".join(out))


if __name__ == "__main__":
    main()
