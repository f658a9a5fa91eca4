"""Lab side of the real-Postfix test: run inside the test's network namespace.

Usage: python postfix_rig.py STATE_DIR
Reads STATE_DIR/scenario.toml, starts the lab on the standard ports (DNS 53, SMTP 25,
HTTPS 443: the netns is ours, so root may bind them), writes STATE_DIR/state.json
(nameserver, CA file, host addresses) and keeps STATE_DIR/received.json up to date with
what each lab MX accepted, until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from mtasts.lab import Lab, Scenario


def write_atomic(path: Path, data: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


async def main(state_dir: Path) -> None:
    scenario = Scenario.from_toml((state_dir / "scenario.toml").read_text())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with Lab(scenario, https_port=443, smtp_port=25, dns_port=53) as lab:
        write_atomic(
            state_dir / "state.json",
            {
                "nameserver": lab.nameserver[0],
                "ca_file": str(lab.ca_file),
                "addresses": lab.addresses,
            },
        )
        seen = -1
        while not stop.is_set():
            received = {
                name: [
                    {"rcpt": list(r.rcpt_tos), "tls": r.tls, "sni": r.sni, "data": r.data.decode()}
                    for r in lab.mx(name).received
                ]
                for name in sorted(lab.mx_hosts)
            }
            count = sum(len(v) for v in received.values())
            if count != seen:
                write_atomic(state_dir / "received.json", received)
                seen = count
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
