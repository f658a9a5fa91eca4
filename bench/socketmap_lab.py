"""The lab on standard ports inside a network namespace (for bench/socketmap_bench.py).

    python bench/socketmap_lab.py STATE_DIR [DOMAINS]

Reads STATE_DIR/scenario.toml (or, with DOMAINS, builds the realistic workload's lab of
that many domains: bench/realistic.py), serves DNS on :53, HTTPS on :443, SMTP on :25
(the netns is the benchmark's own), writes STATE_DIR/state.json, runs until SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from mtasts.lab import Lab, Scenario


async def main(state_dir: Path, domains: int) -> None:
    if domains:
        from realistic import generate
        from realistic import scenario as realistic_scenario

        scenario = realistic_scenario(generate(domains))
    else:
        scenario = Scenario.from_toml((state_dir / "scenario.toml").read_text())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with Lab(scenario, https_port=443, smtp_port=25, dns_port=53) as lab:
        if domains:
            # an hour, common for MX and TXT records; the negative answers carry an SOA
            # with that minimum (RFC 2308), so "no MTA-STS" is cached as long
            lab.zone.default_ttl = 3600
            lab.zone.negative_ttl = 3600
        state = {"nameserver": lab.nameserver[0], "ca_file": str(lab.ca_file)}
        (state_dir / "state.json").write_text(json.dumps(state))
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0))
