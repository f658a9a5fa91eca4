"""contrib/ has a systemd unit for every long-running mtasts service, and each one passes
``systemd-analyze verify`` with no message at all (an unknown or misspelt directive is only
a warning there, so any output fails the test).

The units are verified in a scratch root (``--root``) that holds systemd's own units and an
executable at the documented install path, /usr/local/bin/mtasts (docs/install.md), so the
ExecStart paths are checked as an installed system would see them. Needs systemd-analyze:
skipped without it, failed under CI=true (.ci/run installs it).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from mtasts.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
CONTRIB = ROOT / "contrib"
MTASTS = "/usr/local/bin/mtasts"

# unit -> the command it runs and its Type= (notify only where the code sends READY=1)
SERVICES = {
    "mtasts-daemon.service": (["daemon"], "notify"),
    "mtasts-tlsrpt-collect.service": (["tlsrpt", "collect"], "exec"),
    "mtasts-tlsrpt-send.service": (["tlsrpt", "send", "--daemon"], "exec"),
    "mtasts-serve-policy.service": (["serve", "policy"], "exec"),
    "mtasts-tlsrpt-receive.service": (["tlsrpt", "receive"], "exec"),
    "mtasts-web.service": (["web"], "exec"),
    "mtasts-monitor.service": (["monitor"], "exec"),
    "mtasts-alerts.service": (["alerts", "run"], "exec"),
}
SANDBOX = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
}


def _units() -> list[Path]:
    return sorted(CONTRIB.glob("*.service"))


def _directives(unit: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key.strip(), []).append(value.strip())
    return out


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("systemd-analyze is not installed: CI must install systemd (.ci/run does)")
    pytest.skip("systemd-analyze not installed (apt-get install systemd)")


@pytest.fixture(scope="module")
def system_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with systemd's units, /usr/local/bin/mtasts and /bin/kill in place."""
    _systemd_analyze()
    root = tmp_path_factory.mktemp("root")
    for where in ("/usr/lib/systemd/system", "/lib/systemd/system"):
        if Path(where).is_dir():
            shutil.copytree(where, root / "usr/lib/systemd/system", symlinks=True)
            break
    for exe in (MTASTS, "/bin/kill"):
        path = root / exe.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    return root


def _verify(root: Path, unit: Path) -> subprocess.CompletedProcess[str]:
    shutil.copy(unit, root / "etc/systemd/system" / unit.name)
    return subprocess.run(
        [_systemd_analyze(), "verify", f"--root={root}", unit.name],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_long_running_service_has_a_unit() -> None:
    assert {u.name for u in _units()} == set(SERVICES)


@pytest.mark.parametrize("unit", _units(), ids=lambda u: u.name)
def test_unit_passes_systemd_analyze_verify(system_root: Path, unit: Path) -> None:
    done = _verify(system_root, unit)
    message = (done.stdout + done.stderr).replace(str(system_root), "ROOT")
    assert (done.returncode, message) == (0, "")


def test_verify_reports_a_broken_unit(system_root: Path, tmp_path: Path) -> None:
    """The check itself: a misspelt directive and a missing binary are both reported."""
    text = (CONTRIB / "mtasts-daemon.service").read_text()
    broken = tmp_path / "mtasts-broken.service"
    broken.write_text(
        text.replace("ProtectSystem=", "ProtectSytem=").replace(MTASTS, "/usr/bin/mtastz")
    )
    done = _verify(system_root, broken)
    message = done.stdout + done.stderr
    assert "ProtectSytem" in message
    assert "/usr/bin/mtastz" in message


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_unit_runs_the_documented_command_as_a_sandboxed_user(name: str) -> None:
    directives = _directives(CONTRIB / name)
    argv, kind = SERVICES[name]
    exec_start = shlex.split(directives["ExecStart"][-1])
    assert exec_start[0] == MTASTS
    assert exec_start[1 : 1 + len(argv)] == argv
    assert directives["Type"] == [kind]
    assert directives["User"] == ["mtasts"]
    assert directives["StateDirectory"] == ["mtasts"]
    assert int(directives["LimitNOFILE"][0]) >= 4096
    for key, value in SANDBOX.items():
        assert directives.get(key) == [value], key
    assert "Restart" in directives
    assert directives["WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_unit_command_line_is_accepted_by_mtasts(name: str) -> None:
    """Every option in ExecStart exists: the same arguments plus --help parse."""
    args = shlex.split(_directives(CONTRIB / name)["ExecStart"][-1])[1:]
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="mtasts")
    assert result.exit_code == 0, result.output


def test_the_daemon_unit_waits_for_readiness() -> None:
    """Type=notify where the code sends READY=1, and only there."""
    notifying = {
        path.relative_to(ROOT / "src").as_posix()
        for path in (ROOT / "src/mtasts").rglob("*.py")
        if re.search(r"sd_notify\(\s*\"READY=1\"", path.read_text())
    }
    assert notifying == {"mtasts/postfix/service.py"}  # the daemon's run loop
    assert [n for n, (_, kind) in SERVICES.items() if kind == "notify"] == ["mtasts-daemon.service"]


def test_sysusers_creates_the_service_user_and_tmpfiles_the_collector_socket_directory() -> None:
    sysusers = (CONTRIB / "sysusers.d/mtasts.conf").read_text()
    assert re.search(r"^u mtasts - ", sysusers, re.M)
    tmpfiles = (CONTRIB / "tmpfiles.d/mtasts.conf").read_text()
    collect = _directives(CONTRIB / "mtasts-tlsrpt-collect.service")
    socket = Path(shlex.split(collect["ExecStart"][-1])[-1])
    assert f"d {socket.parent} 0755 mtasts mtasts -" in tmpfiles
    assert collect["ReadWritePaths"] == [str(socket.parent)]
