"""Benchmark: a sending MTA's traffic -- many recipient domains, Zipf popularity -- against
mtasts daemon, postfix-mta-sts-resolver 1.5.1 and a constant-reply server, same lab, same run.

    .venv/bin/python bench/socketmap_realistic.py --pmsr-venv /tmp/pmsr-venv \\
        [--domains 100000] [--seconds 10] [--conns 8,32] [--daemons ...] [--json rows.json]

(root and iproute2: everything runs in a network namespace, as bench/socketmap_bench.py.)
The lab serves the workload of bench/realistic.py: ``--domains`` domains, 90 % without
MTA-STS, 3 % testing, 6 % enforce, 1 % enforce with DANE, on 50 shared providers' MX
hosts. The load client sends 1,000,000 keys drawn with Zipf popularity (s = 1), one
request at a time per connection as Postfix's smtp(8) does.

Per daemon and connection count: **cold** -- a freshly started daemon, measured from
its first request (the lab answers its DNS and HTTPS misses); then a **warm-up** (every
distinct key of the sample once) and **warm** -- the same daemon afterwards. Reported
per run: lookups/s, p50/p99 (the client's), the daemon's CPU per lookup from the
kernel's accounting (/proc/PID/stat utime+stime over the run / requests answered) and
its RSS at the end of the run, and the ratios to pmsr and to the constant-reply server.
Not a test: prints markdown tables.
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

from realistic import generate, zipf_keys
from socketmap_bench import BARE, cpu_seconds, nsx, wait_port

NS = "mtastsbench"
HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
SAMPLE = 1_000_000
#: connections of the warm-up pass (Postfix's default_process_limit is 100)
WARMUP_CONNS = 128

PMSR_YAML = """\
host: 127.0.0.1
port: {port}
cache:
  type: internal
  options:
    cache_size: {size}
default_zone:
  strict_testing: false
  timeout: 4
"""

_LOOKUPS = "mtasts_socketmap_policy_lookups_total{"
DAEMONS = ("bare uvloop constant", "mtasts uvloop", "mtasts uvloop answer-ttl 0", "pmsr uvloop")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def load(port: int, keys: Path, conns: int, seconds: float, once: bool = False) -> dict[str, float]:
    argv = [sys.executable, str(HERE / "socketmap_load.py"), f"127.0.0.1:{port}", f"@{keys}",
            str(conns), str(seconds), str(min(conns, 4))]  # fmt: skip
    if once:
        argv.append("once")
    out = subprocess.run(nsx(*argv), check=True, capture_output=True, text=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


class Daemon:
    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str], run: Path):
        self.name, self.argv, self.port, self.env, self.run = name, argv, port, env, run
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        mount = f"mount --bind {self.run}/resolv.conf /etc/resolv.conf && exec "
        log = (self.run / f"{self.name.replace(' ', '_')}.log").open("ab")
        self.proc = subprocess.Popen(
            nsx("sh", "-c", mount + " ".join(self.argv)),
            stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )  # fmt: skip
        wait_port(self.port, self.proc, self.name)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None

    def counts(self) -> dict[str, float]:
        """mtasts only: answers by kind, lookups by source (its /metrics)."""
        if "--metrics" not in self.argv:
            return {}
        code = (
            "import urllib.request;"
            "print(urllib.request.urlopen('http://127.0.0.1:9461/metrics').read().decode())"
        )
        text = subprocess.run(nsx(sys.executable, "-c", code), capture_output=True, text=True)
        out: dict[str, float] = {}
        for line in text.stdout.splitlines():
            if line.startswith(("mtasts_socketmap_answers_total{", _LOOKUPS)):
                name, value = line.rsplit(" ", 1)
                out[name.split("{", 1)[1].rstrip("}")] = float(value)
        return out

    def measure(self, phase: str, keys: Path, conns: int, seconds: float) -> dict[str, object]:
        assert self.proc is not None
        counted = self.counts()
        before = cpu_seconds(self.proc.pid)
        result = load(self.port, keys, conns, seconds)
        used = cpu_seconds(self.proc.pid) - before
        after = self.counts()
        delta = {k: v - counted.get(k, 0.0) for k, v in after.items() if v - counted.get(k, 0.0)}
        row: dict[str, object] = {
            "daemon": self.name,
            "phase": phase,
            "conns": conns,
            **result,
            "cpu_us": round(used / max(result["requests"], 1) * 1e6, 1),
            "rss_mib": rss_mib(self.proc.pid),
            "counts": delta,
        }
        print(json.dumps(row), file=sys.stderr, flush=True)
        return row


def bench(
    daemon: Daemon, keys: Path, distinct: Path, conns: list[int], seconds: float
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    constant = daemon.name.startswith("bare")
    try:
        if not constant:
            for n in conns:  # cold: a fresh daemon per connection count
                daemon.start()
                rows.append(daemon.measure("cold", keys, n, seconds))
                daemon.stop()
        daemon.start()
        if not constant:
            started = time.perf_counter()
            warm = load(daemon.port, distinct, WARMUP_CONNS, 3600, once=True)
            took = time.perf_counter() - started
            print(f"{daemon.name}: warm-up of {warm['requests']} domains in {took:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
        for n in conns:
            rows.append(daemon.measure("warm", keys, n, seconds))
    finally:
        daemon.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pmsr-venv", type=Path, default=Path("/tmp/pmsr-venv"))
    parser.add_argument("--domains", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--conns", default="8,32")
    parser.add_argument("--daemons", default=",".join(DAEMONS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespace)")
    wanted = args.daemons.split(",")
    unknown = set(wanted) - set(DAEMONS)
    if unknown:
        raise SystemExit(f"unknown daemon(s) {sorted(unknown)}; known: {', '.join(DAEMONS)}")
    conns = [int(c) for c in args.conns.split(",")]
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    run = Path(tempfile.mkdtemp(prefix="mtasts-realistic-"))
    env = {**os.environ, "PYTHONPATH": f"{SRC}:{HERE}"}
    lab = None
    rows: list[dict[str, object]] = []
    try:
        subprocess.run(nsx("ip", "link", "set", "lo", "up"), check=True)
        workload = generate(args.domains)
        sample = zipf_keys(workload, SAMPLE)
        keys, distinct = run / "keys.txt", run / "distinct.txt"
        keys.write_text("\n".join(sample) + "\n")
        distinct.write_text("\n".join(dict.fromkeys(sample)) + "\n")
        print(f"{args.domains} domains, {SAMPLE} keys, {len(set(sample))} distinct",
              file=sys.stderr, flush=True)  # fmt: skip
        started = time.perf_counter()
        with (run / "lab.log").open("wb") as log:
            lab = subprocess.Popen(
                nsx(sys.executable, str(HERE / "socketmap_lab.py"), str(run), str(args.domains)),
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        while not (run / "state.json").exists():
            if lab.poll() is not None:
                raise SystemExit(f"the lab exited; see {run}/lab.log")
            time.sleep(0.2)
        print(f"lab up in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        state = json.loads((run / "state.json").read_text())
        (run / "resolv.conf").write_text(f"nameserver {state['nameserver']}\n")
        (run / "pmsr.yml").write_text(PMSR_YAML.format(port=8462, size=2 * args.domains))
        (run / "bare.py").write_text(BARE)
        ours = [sys.executable, "-c", "'from mtasts.cli.main import main; main()'", "daemon",
                "--listen", "127.0.0.1:8461", "--nameserver", f"{state['nameserver']}:53",
                "--ca-file", state["ca_file"], "--log-level", "warning",
                "--metrics", "127.0.0.1:9461"]  # fmt: skip
        pmsr = [str(args.pmsr_venv / "bin" / "mta-sts-daemon"), "-c", str(run / "pmsr.yml")]
        specs = {
            "bare uvloop constant": ([sys.executable, str(run / "bare.py")], 8463, env),
            "mtasts uvloop": (ours, 8461, env),
            "mtasts uvloop answer-ttl 0": ([*ours, "--answer-ttl", "0"], 8461, env),
            "pmsr uvloop": (pmsr, 8462, {**env, "SSL_CERT_FILE": state["ca_file"]}),
        }
        for name in wanted:
            argv, port, daemon_env = specs[name]
            rows += bench(Daemon(name, argv, port, daemon_env, run), keys, distinct, conns,
                          args.seconds)  # fmt: skip
    finally:
        if lab is not None:
            lab.terminate()
            lab.wait(60)
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)
        shutil.rmtree(run, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    report(rows)


def report(rows: list[dict[str, object]]) -> None:
    print("| daemon | cache | conns | lookups/s | p50 ms | p99 ms | CPU µs/lookup | RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['daemon']} | {r['phase']} | {r['conns']} | {r['rps']:,} | {r['p50_ms']} | "
            f"{r['p99_ms']} | {r['cpu_us']} | {r['rss_mib']} |"
        )
    index = {(r["daemon"], r["phase"], r["conns"]): r for r in rows}
    print("\n| mtasts | cache | conns | CPU: pmsr / mtasts | CPU: mtasts / constant | "
          "lookups/s: mtasts / pmsr | RSS: mtasts / pmsr |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for (name, phase, conns), r in index.items():
        if not str(name).startswith("mtasts"):
            continue
        peer = index.get(("pmsr uvloop", phase, conns))
        floor = index.get(("bare uvloop constant", "warm", conns))
        cpu = float(r["cpu_us"])  # type: ignore[arg-type]
        vs_peer = f"{float(peer['cpu_us']) / cpu:.2f}x" if peer else "-"  # type: ignore[arg-type]
        vs_floor = f"{cpu / float(floor['cpu_us']):.2f}x" if floor else "-"  # type: ignore[arg-type]
        rps = f"{float(r['rps']) / max(float(peer['rps']), 1):.2f}x" if peer else "-"  # type: ignore[arg-type]
        rss = f"{float(r['rss_mib']) / float(peer['rss_mib']):.2f}x" if peer else "-"  # type: ignore[arg-type]
        print(f"| {name} | {phase} | {conns} | {vs_peer} | {vs_floor} | {rps} | {rss} |")


if __name__ == "__main__":
    main()
