"""Import throughput of TLS-RPT receiving against parsedmarc 11.1.0, in one run.

    python3 -m venv /tmp/parsedmarc-venv
    /tmp/parsedmarc-venv/bin/pip install parsedmarc==11.1.0
    .venv/bin/python bench/receive_import.py [--reports 2000] [--parsedmarc PYTHON] [--rounds 3]

A mix of N distinct reports is built from the real samples (tests/data/tlsrpt-samples):
every other input a whole report e-mail (the 11 .eml samples), the others the JSON and
gzip samples; each copy gets its own report-id inside the report (the e-mail's
attachment is rebuilt), so nothing is a duplicate. Then, on the same files:

- mtasts: `tlsrpt import` of the directory into a fresh SQLite store (read, bounds,
  parse, deduplicate, store; DKIM off: no DNS here), in-process, wall time;
- parsedmarc: `parse_report_file(path, offline=True)` on each file, in its own venv
  (a subprocess timing only its loop);
- for scale, a stdlib-only extraction (the issue's "practical floor"): read each file,
  find an e-mail's report part with the email package, gunzip, json.loads, take the
  fields; no bounds, no repairs, no deduplication, nothing stored.

Each side runs ``--rounds`` times, alternating (a fresh store each time); the best wall
and the best CPU time of each side are compared. Prints reports/s of each, the ratio,
and what each stored or dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import email
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "data" / "tlsrpt-samples"
_REPORT_TYPES = ("application/tlsrpt+gzip", "application/tlsrpt+json", "application/gzip")


def _mutate(data: bytes, tag: str) -> bytes:
    """The report with a report-id of its own (gzip kept gzip)."""
    gz = data[:2] == b"\x1f\x8b"
    obj = json.loads(gzip.decompress(data) if gz else data)
    obj["report-id"] = f"{obj.get('report-id') or 'r'}-{tag}"
    out = json.dumps(obj).encode()
    return gzip.compress(out, mtime=0) if gz else out


def _mail(raw: bytes, tag: str) -> bytes:
    msg = email.message_from_bytes(raw)
    for part in msg.walk():
        name = (part.get_filename() or "").lower()
        if part.get_content_type() in _REPORT_TYPES or name.endswith((".gz", ".json")):
            data = part.get_payload(decode=True)
            if isinstance(data, bytes) and data:
                new = _mutate(data, tag)
                if (part.get("Content-Transfer-Encoding") or "").lower() == "base64":
                    part.set_payload(base64.encodebytes(new).decode())
                else:
                    part.set_payload(new.decode())
                return msg.as_bytes()
    raise ValueError("no report part")


def build(n: int, out: Path) -> tuple[int, int]:
    files = sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.name != "SOURCES.md")
    mails = [p for p in files if p.suffix == ".eml"]
    reports = [p for p in files if p.suffix != ".eml"]
    n_mail = 0
    for i in range(n):
        if i % 2 == 0:
            src = mails[(i // 2) % len(mails)]
            data = _mail(src.read_bytes(), str(i))
            (out / f"{i:05d}.eml").write_bytes(data)
            n_mail += 1
        else:
            src = reports[(i // 2) % len(reports)]
            suffix = ".json.gz" if src.name.endswith(".gz") else ".json"
            (out / f"{i:05d}{suffix}").write_bytes(_mutate(src.read_bytes(), str(i)))
    return n, n_mail


async def ours(directory: Path, store: Path) -> tuple[float, float, dict[str, int]]:
    from mtasts.tlsrpt.receive.decide import ReceiveSettings
    from mtasts.tlsrpt.receive.importer import import_sources
    from mtasts.tlsrpt.receive.intake import Receiver

    # opened as `tlsrpt import` opens it (batch: SQLite on this thread)
    receiver = await Receiver.open(
        f"sqlite:///{store}", ReceiveSettings(verify_dkim=False), batch=True
    )
    try:
        started, cpu = time.perf_counter(), time.process_time()
        result = await import_sources(receiver, [str(directory)])
        await receiver.close()  # everything committed
        return time.perf_counter() - started, time.process_time() - cpu, result.counts
    finally:
        await receiver.close()


def _extract(data: bytes) -> int:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    obj = json.loads(data)
    fields = [obj["organization-name"], obj["report-id"], obj["date-range"]["start-datetime"]]
    for p in obj["policies"]:
        fields += [p["policy"].get("policy-domain"), p["policy"].get("mx-host"), p["summary"]]
    return len(fields)


def floor(directory: Path) -> tuple[float, float, int]:
    """The stdlib-only extraction of every input: (wall, CPU, reports read)."""
    files = sorted(directory.iterdir())
    started, cpu, n = time.perf_counter(), time.process_time(), 0
    for f in files:
        raw = f.read_bytes()
        if f.suffix != ".eml":
            n += _extract(raw) > 0
            continue
        for part in email.message_from_bytes(raw).walk():
            name = (part.get_filename() or "").lower()
            if part.get_content_type() in _REPORT_TYPES or name.endswith((".gz", ".json")):
                data = part.get_payload(decode=True)
                if isinstance(data, bytes):
                    n += _extract(data) > 0
                    break
    return time.perf_counter() - started, time.process_time() - cpu, n


PARSEDMARC = r"""
import sys, time, json, logging
from pathlib import Path
logging.disable(logging.CRITICAL)
import parsedmarc
files = sorted(Path(sys.argv[1]).iterdir())
ok = failed = mx_hosts = 0
started, cpu = time.perf_counter(), time.process_time()
for f in files:
    try:
        r = parsedmarc.parse_report_file(str(f), offline=True)
    except Exception:
        failed += 1
        continue
    ok += 1
    report = r.get("report") or {}
    for p in report.get("policies") or []:
        mx_hosts += len(p.get("mx_host_patterns") or [])
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
print(json.dumps({"elapsed": elapsed, "cpu": cpu, "ok": ok, "failed": failed,
                  "mx_hosts": mx_hosts}))
"""


def theirs(python: str, directory: Path) -> dict[str, float]:
    proc = subprocess.run(
        [python, "-c", PARSEDMARC, str(directory)], capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--parsedmarc", default="/tmp/parsedmarc-venv/bin/python")
    parser.add_argument("--no-parsedmarc", action="store_true")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="runs of each side, alternating; the best wall and CPU time of each is kept "
        "(on a shared machine the best run is the one least slowed by other jobs)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        n, n_mail = build(args.reports, inputs)
        print(f"inputs: {n} distinct reports, {n_mail} of them whole e-mails")
        runs, pm_runs, floors = [], [], []
        for i in range(args.rounds):
            runs.append(asyncio.run(ours(inputs, Path(tmp) / f"store{i}.db")))
            floors.append(floor(inputs))
            if not args.no_parsedmarc:
                pm_runs.append(theirs(args.parsedmarc, inputs))
        elapsed, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
        counts = runs[-1][2]
        rate, cpu_rate = n / elapsed, n / cpu
        print(
            f"mtasts tlsrpt import: {elapsed:.2f} s wall ({rate:.0f} reports/s), "
            f"{cpu:.2f} s CPU ({cpu_rate:.0f} reports/CPU-s), {counts}; best of "
            f"{len(runs)}: walls {', '.join(f'{r[0]:.2f}' for r in runs)}"
        )
        f_wall, f_cpu = min(f[0] for f in floors), min(f[1] for f in floors)
        print(
            f"stdlib-only extraction (nothing checked or stored), for scale: "
            f"{n / f_wall:.0f} reports/s, {n / f_cpu:.0f}/CPU-s ({floors[-1][2]} read); "
            f"mtasts at {f_wall / elapsed:.0%} of it (wall), {f_cpu / cpu:.0%} (CPU)"
        )
        if args.no_parsedmarc:
            return
        pm = dict(pm_runs[-1])
        pm["elapsed"] = min(r["elapsed"] for r in pm_runs)
        pm["cpu"] = min(r["cpu"] for r in pm_runs)
        walls = ", ".join(f"{r['elapsed']:.2f}" for r in pm_runs)
        print(f"parsedmarc walls: {walls}")
        pm_rate, pm_cpu_rate = n / pm["elapsed"], n / pm["cpu"]
        print(
            f"parsedmarc 11.1.0: {pm['elapsed']:.2f} s wall ({pm_rate:.0f} reports/s), "
            f"{pm['cpu']:.2f} s CPU ({pm_cpu_rate:.0f} reports/CPU-s), "
            f"parsed {pm['ok']}, failed {pm['failed']}, mx-host patterns kept {pm['mx_hosts']}"
        )
        print(
            f"ratio: {rate / pm_rate:.1f}x parsedmarc's reports/s (wall), "
            f"{cpu_rate / pm_cpu_rate:.1f}x per CPU second"
        )
        if counts.get("stored") != n:
            sys.exit("mtasts did not store every report")


if __name__ == "__main__":
    main()
