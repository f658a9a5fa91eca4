"""``mtasts daemon`` as a process, fail safe (issue 16): a policy with a harmless deviation
still applies, and the deviation is in the daemon's debug log.

Real DNS and HTTPS from the lab; the daemon runs as ``mtasts daemon --log-level debug``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

from mtasts.lab.scenario import PolicyHostSpec
from mtasts.lab.testing import healthy_domain, running_lab
from mtasts.postfix.netstring import NetstringDecoder, encode

SRC = Path(__file__).resolve().parents[2] / "src"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _ask(port: int, request: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode(request.encode()))
    await writer.drain()
    decoder = NetstringDecoder(100_000)
    while not (got := decoder.feed(data := await asyncio.wait_for(reader.read(4096), 30))):
        assert data, f"the daemon closed the connection before answering {request}"
    writer.close()
    return got[0].decode()


async def test_daemon_applies_a_tolerated_policy_and_logs_each_repair(tmp_path: Path) -> None:
    """Trailing blank lines and an IP-like mx value: the enforce policy still protects the
    domain (old behaviour: NOTFOUND, i.e. opportunistic TLS), the IP-like value is no
    match= name, and each repair is a debug line naming the domain and its code."""
    extra = "mx: 192.0.2.1\r\n\r\n"
    scenario = healthy_domain("sloppy.test", policy_host=PolicyHostSpec(body_extra=extra))
    port = _free_port()
    async with running_lab(scenario) as lab:
        env = {**os.environ, **lab.env, "PYTHONPATH": str(SRC)}
        env.pop("MTASTS_CONFIG", None)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from mtasts.cli.main import main; main()", "daemon",
            "--listen", f"127.0.0.1:{port}", "--log-level", "debug", "--no-uvloop",
            env=env, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            for _ in range(200):  # until it listens (at most ~20 s)
                try:
                    answer = await _ask(port, "postfix sloppy.test")
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the daemon never listened")
            assert answer.startswith("OK secure match=mx1.sloppy.test "), answer
            assert "192.0.2.1" not in answer
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            assert proc.stderr is not None
            log = (await proc.stderr.read()).decode()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    repairs = [line for line in log.splitlines() if "DEBUG" in line and "sloppy.test" in line]
    for code in ("policy.mx.numeric", "policy.blank-line"):
        assert any(code in line for line in repairs), log[-3000:]
