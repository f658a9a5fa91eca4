"""`mtasts --version` and `mtasts --help`: CPU and wall time per run, as a fresh process.

    .venv/bin/python bench/cli_startup.py [--runs N]
    PYTHONPATH=OTHER/src .venv/bin/python bench/cli_startup.py   # an older tree

Each run is a new interpreter (`python -c "from mtasts.cli.main import main; main()"`), as
a shell or a completion script starts it. CPU is the child's user + system time from
os.wait4, so the machine's load counts less than in the wall time; both are printed as
the median over the runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time


def one(args: list[str]) -> tuple[float, float]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from mtasts.cli.main import main; main()", *args],
        stdout=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, args
    return usage.ru_utime + usage.ru_stime, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    for args in (["--version"], ["--help"]):
        cpu, wall = zip(*(one(args) for _ in range(runs)), strict=True)
        print(
            f"mtasts {' '.join(args)}: median CPU {statistics.median(cpu) * 1000:.0f} ms, "
            f"median wall {statistics.median(wall) * 1000:.0f} ms ({runs} runs)"
        )


if __name__ == "__main__":
    main()
