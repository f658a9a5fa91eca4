"""``mtasts lab run`` / ``lab up`` as a user runs them (subprocesses), and LabThread."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dns.message
import dns.query
import pytest
from click.testing import CliRunner

from mtasts.cli.main import cli
from mtasts.lab import LabThread
from mtasts.lab.testing import healthy_domain

MTASTS = str(Path(sys.executable).with_name("mtasts"))
DEMO = str(Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "demo.toml")

# Run inside the lab: resolve the policy host through the lab DNS, print the settings.
PROBE = """
import os, dns.message, dns.query
host, port = os.environ["MTASTS_NAMESERVER"].split(":")
r = dns.query.udp(dns.message.make_query("mta-sts.good.test", "A"), host, port=int(port), timeout=2)
print(os.environ["MTASTS_NAMESERVER"], r.answer[0][0].address, os.environ["MTASTS_HTTPS_PORT"],
      os.environ["MTASTS_SMTP_PORT"], os.environ["MTASTS_CA_FILE"])
raise SystemExit(7)
"""


def lab_run(*command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MTASTS, "lab", "run", "--scenario", DEMO, "--", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def is_free(address: str, port: int, kind: int = socket.SOCK_STREAM) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((address, port))
        except OSError:
            return False
        return True


def is_zombie(pid: int) -> bool:
    """Dead but not yet reaped by init (the reaper is outside our control)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_run_passes_settings_and_exit_code_and_cleans_up() -> None:
    """The command sees the lab through MTASTS_*; its exit code is ours; afterwards the
    ports are free and the lab's files are gone."""
    done = lab_run(sys.executable, "-c", PROBE)
    assert done.returncode == 7, done.stderr
    nameserver, policy_address, https_port, smtp_port, ca_file = done.stdout.split()
    ns_host, ns_port = nameserver.split(":")
    assert ns_host.startswith("127.")
    assert policy_address.startswith("127.")
    assert is_free(ns_host, int(ns_port))
    assert is_free(ns_host, int(ns_port), socket.SOCK_DGRAM)
    assert is_free(policy_address, int(https_port))
    assert int(smtp_port) > 1024
    assert not Path(ca_file).exists()


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (("true",), 0),
        (("sh", "-c", "exit 3"), 3),
        (("sh", "-c", "kill -TERM $$"), 128 + signal.SIGTERM),  # ended by a signal
        (("no-such-command-mtasts",), 127),
    ],
)
def test_run_exit_codes(command: tuple[str, ...], code: int) -> None:
    """Exit status passes through, shell style for signals and missing commands
    (in process, through click's runner)."""
    result = CliRunner().invoke(cli, ["lab", "run", "--scenario", DEMO, "--", *command])
    assert result.exit_code == code, result.output


def test_run_ctrl_c_stops_command_and_everything_it_started(tmp_path: Path) -> None:
    """SIGINT to `lab run` reaches the command's process group, leaves no process
    behind (even a background job that ignores SIGINT) and exits 130."""
    pidfile = tmp_path / "pid"
    # The background sleep ignores SIGINT (as jobs of non-interactive shells do); only
    # the final clean-up of the process group ends it.
    script = f"sleep 61 & echo $! > {pidfile}; exec sleep 60"
    proc = subprocess.Popen([MTASTS, "lab", "run", "-s", DEMO, "--", "sh", "-c", script])
    deadline = time.monotonic() + 15
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.05)
    sleeper = int(pidfile.read_text())
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=15) == 130
    deadline = time.monotonic() + 5
    while Path(f"/proc/{sleeper}").exists() and not is_zombie(sleeper):
        assert time.monotonic() < deadline, "the background job outlived `lab run`"
        time.sleep(0.05)


def test_scenario_error_names_key_and_line(tmp_path: Path) -> None:
    """A wrong scenario stops `lab run` before anything starts: exit 78 (configuration),
    key and line."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[[domain]]\nname = "a.test"\npolicy_hots = { status = 404 }\n')
    result = CliRunner().invoke(cli, ["lab", "run", "-s", str(bad), "--", "true"])
    assert result.exit_code == 78
    assert "policy_hots" in result.output
    assert "line 3" in result.output


def test_up_prints_settings_and_stops_on_sigterm() -> None:
    """`lab up` prints export lines and a host table, serves until SIGTERM, exits 0."""
    proc = subprocess.Popen(
        [MTASTS, "lab", "up", "-s", DEMO],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.stdout is not None
    exports = {}
    while len(exports) < 4:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        key, _, value = line.removeprefix("export ").strip().partition("=")
        exports[key] = value
    host, port = exports["MTASTS_NAMESERVER"].split(":")
    query = dns.message.make_query("_mta-sts.good.test", "TXT")
    answer = dns.query.udp(query, host, port=int(port), timeout=5)
    assert b"v=STSv1" in answer.answer[0][0].strings[0]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0
    assert "mta-sts.good.test" in out
    assert "Lab stopped" in err


def test_lab_thread_serves_blocking_clients() -> None:
    """LabThread runs the lab for synchronous code and frees everything on exit."""
    with LabThread(healthy_domain("good.test")) as lab:
        host, port = lab.nameserver
        answer = dns.query.tcp(
            dns.message.make_query("good.test", "MX"), host, port=port, timeout=5
        )
        assert answer.answer[0][0].exchange.to_text() == "mx1.good.test."
        with socket.create_connection((lab.address("mx1.good.test"), lab.smtp_port), 5) as s:
            assert s.recv(100).startswith(b"220 mx1.good.test")
    assert is_free(host, port)
