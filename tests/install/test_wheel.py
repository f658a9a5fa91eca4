"""The documented system-wide install (docs/install.md §2): the wheel built by ``uv build``,
installed by ``uv tool install`` with an extra into its own directory, runs from its bin
directory and carries the systemd units. Needs uv (skipped without it, failed under
CI=true); the dependencies come from uv's cache or the package index."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mtasts import __version__

ROOT = Path(__file__).resolve().parents[2]


def _uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    if Path(found).is_file():
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("uv is not installed: CI installs it (.ci/run)")
    pytest.skip("uv not installed")


def test_wheel_installs_as_a_tool_with_extras_and_units(tmp_path: Path) -> None:
    uv = _uv()
    env = {
        **os.environ,
        "UV_TOOL_DIR": str(tmp_path / "opt"),
        "UV_TOOL_BIN_DIR": str(tmp_path / "bin"),
    }
    env.pop("VIRTUAL_ENV", None)
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(ROOT)],
        check=True, capture_output=True, timeout=300, env=env,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("mtasts-*-py3-none-any.whl")
    python = shutil.which("python3") or sys.executable
    subprocess.run(
        [uv, "tool", "install", "--python", python, f"mtasts[uvloop] @ {wheel}"],
        check=True, capture_output=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    mtasts = tmp_path / "bin" / "mtasts"
    done = subprocess.run(
        [str(mtasts), "--version"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.stdout.strip() == f"mtasts, version {__version__}", done.stderr
    tool = tmp_path / "opt" / "mtasts"
    subprocess.run([str(tool / "bin" / "python"), "-c", "import uvloop"], check=True, timeout=60)
    installed = tool / "share" / "mtasts" / "contrib"
    shipped = sorted(
        p.relative_to(ROOT / "contrib") for p in (ROOT / "contrib").rglob("*") if p.is_file()
    )
    assert sorted(p.relative_to(installed) for p in installed.rglob("*") if p.is_file()) == shipped
