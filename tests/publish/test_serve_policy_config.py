"""``mtasts serve policy`` takes everything from ``[serve]`` of mtasts.toml (issue 10: one
configuration), the environment and options on top. The real command as a process."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.publish.test_serve_policy_lint import GOOD, MTASTS, _free_port, _get, _line_with


async def test_serves_the_policies_named_in_mtasts_toml(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "example.com.txt").write_bytes(GOOD)
    config = tmp_path / "mtasts.toml"
    config.write_text(
        '[serve]\nlisten = "127.0.0.1:1"\nread_timeout = 5\n\n'
        '[serve.policies]\n"example.com" = "policies/example.com.txt"\n'
    )
    port = _free_port()
    env = {**os.environ, "MTASTS_SERVE_LISTEN": f"127.0.0.1:{port}", "MTASTS_CONFIG": ""}
    proc = await asyncio.create_subprocess_exec(
        *MTASTS, "--config", str(config), "serve", "policy",
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        line = await _line_with(proc.stderr, "serving MTA-STS policies for example.com")
        assert f"127.0.0.1:{port}" in line  # the environment over the file
        assert await _get(port) == GOOD
    finally:
        proc.terminate()
        await proc.wait()


async def test_a_bad_serve_section_is_one_line_with_its_line_number(tmp_path: Path) -> None:
    config = tmp_path / "mtasts.toml"
    config.write_text('[serve]\ndir = "/srv"\ncert = "/etc/c.pem"\n')
    proc = await asyncio.create_subprocess_exec(
        *MTASTS, "serve", "policy", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert (proc.returncode, out) == (78, b"")  # a bad setting (docs/exit-codes.md)
    lines = err.decode().splitlines()
    assert lines == [
        f"mtasts: error: {config}:1: [serve]: cert and key go together: give both or neither"
    ]
