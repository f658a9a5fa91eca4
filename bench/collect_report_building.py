"""Report building for many policy domains: time and peak memory (no peer: sys4's
reportd builds one domain per fetcher process, so there is no like-for-like run).

    .venv/bin/python bench/collect_report_building.py -n 100000
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from datetime import date

from mtasts.results import PolicyType
from mtasts.tlsrpt.aggregate import ReportSettings, build_reports
from mtasts.tlsrpt.collect.counters import Counters
from mtasts.tlsrpt.collect.datagram import FailureOutcome, PolicyOutcome, SessionOutcome
from mtasts.tlsrpt.report import write_report_gzip

DAY = date(2026, 11, 22)


def counters(n: int) -> Counters:
    c = Counters()
    for i in range(n):
        d = f"d{i}.example"
        lines = ("version: STSv1", "mode: enforce", f"mx: mx.{d}", "max_age: 86400")
        ok = PolicyOutcome(PolicyType.STS, d, lines, (f"mx.{d}",))
        c.add(DAY, SessionOutcome(d, f"v=TLSRPTv1; rua=mailto:r@{d}", (ok,)))
        if i % 10 == 0:
            f = FailureOutcome("certificate-expired", "192.0.2.1", f"mx.{d}", "", "198.51.100.7")
            bad = PolicyOutcome(PolicyType.STS, d, lines, (f"mx.{d}",), True, (f,))
            c.add(DAY, SessionOutcome(d, "", (bad,)))
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=100_000, help="policy domains")
    args = ap.parse_args()
    c = counters(args.n)
    settings = ReportSettings("Example", "tlsrpt@sender.example")
    t0 = time.perf_counter()
    built = build_reports(c, DAY, settings)
    t1 = time.perf_counter()
    size = sum(len(write_report_gzip(b.report)) for b in built)
    t2 = time.perf_counter()
    del built
    tracemalloc.start()  # a second pass, traced (tracing slows it down, so not timed)
    built = build_reports(c, DAY, settings)
    for b in built:
        write_report_gzip(b.report)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{args.n} policy domains -> {len(built)} reports")
    print(f"build: {t1 - t0:.2f} s ({(t1 - t0) / args.n * 1e6:.1f} µs per domain)")
    print(f"gzip JSON: {t2 - t1:.2f} s, {size / 1e6:.1f} MB in all")
    print(f"peak memory allocated while building (tracemalloc): {peak / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
