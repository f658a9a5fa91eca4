"""`mtasts acme status` and `mtasts acme renew --revoke` as their own processes, beside a
running `serve policy --acme` that answers the CA's challenge from the shared state."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from acme_helpers import wait_for
from tests.commands import MTASTS

pytestmark = [pytest.mark.lab, pytest.mark.peer]


async def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *MTASTS, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_status_and_renew_with_revocation(acme_host, tmp_path) -> None:
    host = await acme_host(("ops.test",), pebble={"always_valid": True})
    name = "mta-sts.ops.test"
    await host.wait_issued(name)
    settings = host.manager.settings
    config = tmp_path / "mtasts.toml"
    config.write_text(
        f'[acme]\ndirectory = "{settings.directory}"\nca_file = "{settings.ca_file}"\n'
        f'state_dir = "{settings.state_dir}"\n'
    )
    env = {**os.environ, "MTASTS_CONFIG": str(config)}

    code, out, err = await _run(env, "acme", "status", "--json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert (row["name"], row["state"], row["failures"]) == (name, "valid", 0)

    old, _ = await host.fetch(name)
    before = host.manager.certs[name]
    code, out, err = await _run(env, "acme", "renew", name, "--revoke")
    assert code == 0, err + host.pebble.log()
    assert f"{name}: revoked" in err
    status = await asyncio.to_thread(host.pebble.cert_status, old.serial_number)
    assert status["Status"] == "Revoked"
    # the running server serves the new file from its next look, without a restart
    await wait_for(lambda: host.manager.certs[name] is not before, 10)
    new, _ = await host.fetch(name)
    assert new.serial_number != old.serial_number

    code, _, err = await _run(env, "acme", "renew", "mta-sts.unknown.test", "--revoke")
    assert code == 1
    assert "no certificate for mta-sts.unknown.test to revoke" in err
    empty = tmp_path / "nothing"
    config.write_text(f'[acme]\nstate_dir = "{empty}"\n')
    code, _, err = await _run(env, "acme", "status")
    assert code == 3
    assert "no ACME state directory" in err
