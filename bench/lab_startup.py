"""Lab start-up time: how long `Lab.start` takes for a scenario, and `mtasts lab run -- true`.

    .venv/bin/python bench/lab_startup.py [--scenario FILE] [--runs N]
    .venv/bin/python bench/lab_startup.py --domains 10000 [--runs N]

``--domains N`` starts a generated lab instead: N domains, each with its MX and
``_mta-sts`` records and a listening policy host, and an MX host with an address but no
SMTP server (the scenario of bench/resolver_cold.py); the command is then not timed.

Prints the median, p95 and max of N in-process starts (DNS, every policy host, MX,
attacker and receiver listening, certificates issued) and of N stops, then the wall
time of the whole command `mtasts lab run --scenario FILE -- true` (which includes the
Python interpreter and imports).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

from mtasts.lab import DomainSpec, HostSpec, Lab, Scenario
from mtasts.lab.testing import policy_text

DEMO = Path(__file__).resolve().parents[1] / "examples" / "scenarios" / "demo.toml"


def summary(label: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    return (
        f"{label:<34} median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms"
        f"   max {ms[-1]:7.1f} ms   (n={len(ms)})"
    )


async def in_process(scenario: Scenario, runs: int) -> tuple[list[float], list[float]]:
    starts, stops = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        lab = await Lab.start(scenario)
        t1 = time.perf_counter()
        await lab.stop()
        starts.append(t1 - t0)
        stops.append(time.perf_counter() - t1)
    return starts, stops


def command(path: Path, runs: int) -> list[float]:
    mtasts = str(Path(sys.executable).with_name("mtasts"))
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([mtasts, "lab", "run", "--scenario", str(path), "--", "true"], check=True)
        times.append(time.perf_counter() - t0)
    return times


def generated(domains: int) -> Scenario:
    names = [f"d{i}.bench.test" for i in range(domains)]
    return Scenario(
        domains=tuple(
            DomainSpec(
                name=n,
                mx=(f"mx1.{n}",),
                sts=((f"v=STSv1; id={i}",),),
                policy=policy_text((f"mx1.{n}",)),
            )
            for i, n in enumerate(names)
        ),
        hosts=tuple(HostSpec(f"mx1.{n}") for n in names),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=DEMO)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--domains", type=int, default=0)
    args = parser.parse_args()
    if args.domains:
        scenario, label = generated(args.domains), f"generated ({args.domains} domains)"
    else:
        scenario, label = Scenario.load(args.scenario), args.scenario.name
    hosts = len(scenario.domains) + len(scenario.hosts)
    print(f"scenario {label}: {len(scenario.domains)} domains, {hosts} entries")
    starts, stops = asyncio.run(in_process(scenario, args.runs))
    print(summary("Lab.start (in process)", starts))
    print(summary("Lab.stop (in process)", stops))
    if not args.domains:
        times = command(args.scenario, max(3, args.runs // 4))
        print(summary("mtasts lab run -- true (wall)", times))


if __name__ == "__main__":
    main()
