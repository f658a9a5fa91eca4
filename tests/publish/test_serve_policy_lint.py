"""``mtasts serve policy`` refuses a policy file that does not lint, naming the file and the
error: at start (exit 78, one line) and on reload (SIGHUP keeps the old policies) (issue 10).
The real command as a process, on a free loopback port."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

from tests.commands import MTASTS

GOOD = b"version: STSv1\r\nmode: testing\r\nmx: mx1.example.com\r\nmax_age: 604800\r\n"
GOOD_2 = b"version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmax_age: 1209600\r\n"
BAD = b"version: STSv1\r\nmode: enforce\r\nmax_age: 1209600\r\n"  # no mx line


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.com\r\n"
        b"Connection: close\r\n\r\n"
    )
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    return data.partition(b"\r\n\r\n")[2]


async def _line_with(stream: asyncio.StreamReader, text: str) -> str:
    while True:
        line = (await asyncio.wait_for(stream.readline(), 60)).decode()
        assert line, f"the server's stderr ended before {text!r}"
        if text in line:
            return line


async def test_refused_at_start_naming_file_and_error(tmp_path: Path) -> None:
    (tmp_path / "example.com.txt").write_bytes(BAD)
    proc = await asyncio.create_subprocess_exec(
        *MTASTS, "serve", "policy", "--dir", str(tmp_path), "--listen", f"127.0.0.1:{_free_port()}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:  # it served the broken file instead of refusing it
            proc.kill()
            await proc.wait()
    assert out == b""
    assert proc.returncode == 78  # a configuration error (docs/exit-codes.md)
    lines = err.decode().splitlines()
    assert len(lines) == 1, lines
    assert f"{tmp_path / 'example.com.txt'} is not a valid MTA-STS policy" in lines[0]
    assert "policy.mx.missing" in lines[0]


async def test_reload_keeps_the_old_policies_when_a_file_does_not_lint(tmp_path: Path) -> None:
    policy = tmp_path / "example.com.txt"
    policy.write_bytes(GOOD)
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        *MTASTS, "serve", "policy", "--dir", str(tmp_path), "--listen", f"127.0.0.1:{port}",
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        await _line_with(proc.stderr, "serving MTA-STS policies for example.com")
        assert await _get(port) == GOOD

        policy.write_bytes(BAD)
        proc.send_signal(signal.SIGHUP)
        line = await _line_with(proc.stderr, "reload")
        assert "keeping the old policies" in line
        assert f"{policy} is not a valid MTA-STS policy" in line
        assert "policy.mx.missing" in line
        assert await _get(port) == GOOD

        policy.write_bytes(GOOD_2)
        proc.send_signal(signal.SIGHUP)
        await _line_with(proc.stderr, "policies reloaded")
        assert await _get(port) == GOOD_2
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
