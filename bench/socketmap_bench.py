"""Benchmark: mtasts daemon vs postfix-mta-sts-resolver 1.5.1, same lab, same run.

    sudo .venv/bin/python bench/socketmap_bench.py --pmsr-venv /tmp/pmsr-venv [--seconds 5]
        [--daemons "mtasts uvloop,pmsr uvloop"]

(pmsr: python3 -m venv /tmp/pmsr-venv && /tmp/pmsr-venv/bin/pip install
postfix-mta-sts-resolver==1.5.1 uvloop.) Everything runs in a network namespace so that
both daemons resolve through the lab's DNS on :53 (pmsr reads /etc/resolv.conf only)
and fetch from its policy hosts on :443. For each daemon and loop, workload (a cached
enforce policy; a domain without MTA-STS) and 1/8/32 connections it reports the load
client's requests/s and p50/p99 latency, and the daemon's own CPU time per lookup from
the kernel's accounting (/proc/PID/stat utime+stime), so a saturated client cannot hide
the daemon's cost. Needs root and iproute2. Not a test: prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NS = "mtastsbench"
HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
TICK = os.sysconf("SC_CLK_TCK")

SCENARIO = """
[[domain]]
name = "good.test"
mx = ["mx1.good.test"]
sts = "v=STSv1; id=1"
policy = "version: STSv1\\nmode: enforce\\nmx: mx1.good.test\\nmax_age: 86400\\n"

[[domain]]
name = "plain.test"
mx = ["mx.plain.test"]
"""

PMSR_YAML = """\
host: 127.0.0.1
port: {port}
cache:
  type: internal
  options:
    cache_size: 10000
default_zone:
  strict_testing: false
  timeout: 4
"""

# the floor: a uvloop server that answers every read with one constant reply
BARE = (
    "import asyncio, uvloop\n"
    "R = b'9:NOTFOUND ,'\n"
    "class P(asyncio.Protocol):\n"
    "    def connection_made(self, t): self.t = t\n"
    "    def data_received(self, d): self.t.write(R)\n"
    "async def main():\n"
    "    s = await asyncio.get_running_loop().create_server(P, '127.0.0.1', 8463)\n"
    "    await s.serve_forever()\n"
    "uvloop.run(main())\n"
)

WORKLOADS = [("cached enforce policy", "good.test"), ("no MTA-STS", "plain.test")]


def nsx(*args: str) -> list[str]:
    return ["ip", "netns", "exec", NS, *args]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        probe = subprocess.run(
            nsx("bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"), capture_output=True
        )
        if probe.returncode == 0:
            return
        time.sleep(0.05)
    raise SystemExit(f"{what} does not listen on {port}")


def load(port: int, key: str, conns: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(
        nsx(sys.executable, str(HERE / "socketmap_load.py"), f"127.0.0.1:{port}", key,
            str(conns), str(seconds)),
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def measure(
    name: str, argv: list[str], port: int, run: Path, env: dict[str, str], seconds: float
) -> list[dict[str, object]]:
    mount = f"mount --bind {run}/resolv.conf /etc/resolv.conf && exec "
    with (run / f"{name.replace(' ', '_')}.log").open("wb") as log:
        proc = subprocess.Popen(
            nsx("sh", "-c", mount + " ".join(argv)), stdout=log, stderr=subprocess.STDOUT, env=env
        )
    rows: list[dict[str, object]] = []
    try:
        wait_port(port, proc, name)
        for _, key in WORKLOADS:  # warm up: first lookups fetch / cache
            load(port, key, 1, 0.5)
        for workload, key in WORKLOADS:
            for conns in (1, 8, 32):
                before = cpu_seconds(proc.pid)
                result = load(port, key, conns, seconds)
                used = cpu_seconds(proc.pid) - before
                rows.append(
                    {
                        "daemon": name,
                        "workload": workload,
                        "conns": conns,
                        **result,
                        "cpu_us": round(used / result["requests"] * 1e6, 1),
                    }
                )
                print(json.dumps(rows[-1]), file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait(20)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pmsr-venv", type=Path, default=Path("/tmp/pmsr-venv"))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--json", type=Path, help="also write all rows here")
    parser.add_argument(
        "--daemons",
        help="comma-separated subset of the daemons to run, e.g. "
        "'mtasts uvloop,pmsr uvloop' (default: all)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespace)")
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    run = Path(tempfile.mkdtemp(prefix="mtasts-bench-"))
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    lab = None
    rows: list[dict[str, object]] = []
    try:
        subprocess.run(nsx("ip", "link", "set", "lo", "up"), check=True)
        (run / "scenario.toml").write_text(SCENARIO)
        with (run / "lab.log").open("wb") as log:
            lab = subprocess.Popen(
                nsx(sys.executable, str(HERE / "socketmap_lab.py"), str(run)),
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        for _ in range(200):
            if (run / "state.json").exists():
                break
            time.sleep(0.05)
        state = json.loads((run / "state.json").read_text())
        (run / "resolv.conf").write_text(f"nameserver {state['nameserver']}\n")
        (run / "pmsr.yml").write_text(PMSR_YAML.format(port=8462))
        ours = [sys.executable, "-c", "'from mtasts.cli.main import main; main()'", "daemon",
                "--listen", "127.0.0.1:8461", "--nameserver", f"{state['nameserver']}:53",
                "--ca-file", state["ca_file"], "--log-level", "warning"]  # fmt: skip
        pmsr = [str(args.pmsr_venv / "bin" / "mta-sts-daemon"), "-c", str(run / "pmsr.yml")]
        pmsr_env = {**env, "SSL_CERT_FILE": state["ca_file"]}
        (run / "bare.py").write_text(BARE)
        daemons = [
            ("bare uvloop constant", [sys.executable, str(run / "bare.py")], 8463, env),
            ("mtasts uvloop", ours, 8461, env),
            ("mtasts asyncio", [*ours, "--no-uvloop"], 8461, env),
            # every request through the resolver: no rendered-answer reuse
            ("mtasts uvloop answer-ttl 0", [*ours, "--answer-ttl", "0"], 8461, env),
            ("pmsr uvloop", pmsr, 8462, pmsr_env),
            ("pmsr asyncio", [*pmsr, "--disable-uvloop"], 8462, pmsr_env),
        ]
        wanted = set(args.daemons.split(",")) if args.daemons else {d[0] for d in daemons}
        unknown = wanted - {d[0] for d in daemons}
        if unknown:
            raise SystemExit(f"unknown daemon(s) {sorted(unknown)}; see the list in main()")
        for name, argv, port, daemon_env in daemons:
            if name in wanted:
                rows += measure(name, argv, port, run, daemon_env, args.seconds)
    finally:
        if lab is not None:
            lab.terminate()
            lab.wait(20)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        shutil.rmtree(run, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    report(rows)


def report(rows: list[dict[str, object]]) -> None:
    print("| daemon | workload | conns | req/s | p50 ms | p99 ms | daemon CPU µs/lookup |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['daemon']} | {r['workload']} | {r['conns']} | {r['rps']:,} | "
            f"{r['p50_ms']} | {r['p99_ms']} | {r['cpu_us']} |"
        )
    index = {(r["daemon"], r["workload"], r["conns"]): r for r in rows}
    print(
        "\n| workload | conns | CPU ratio pmsr-uvloop / mtasts | rps ratio mtasts / pmsr-uvloop |"
    )
    print("|---|---|---|---|")
    for workload, _ in WORKLOADS:
        for conns in (1, 8, 32):
            ours = index.get(("mtasts uvloop", workload, conns))
            theirs = index.get(("pmsr uvloop", workload, conns))
            if ours and theirs:
                cpu = float(theirs["cpu_us"]) / max(float(ours["cpu_us"]), 0.01)  # type: ignore[arg-type]
                rps = float(ours["rps"]) / max(float(theirs["rps"]), 1)  # type: ignore[arg-type]
                print(f"| {workload} | {conns} | {cpu:.2f} | {rps:.2f} |")


if __name__ == "__main__":
    main()
