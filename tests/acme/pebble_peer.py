"""A real ACME CA for the tests: Debian's pebble, started per test with its own config.

Pebble listens on free loopback ports, serves its directory with a certificate from the
lab CA, validates against the ports our server listens on, and resolves names through
the lab's DNS server (``-dnsserver``). Outside CI a missing pebble skips with a reason;
under CI=true it fails (.ci/run installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"


def require_pebble() -> None:
    if Path(PEBBLE).is_file():
        return
    if os.environ.get("CI"):
        pytest.fail("pebble is not installed (CI: .ci/run installs it)")
    pytest.skip("no pebble: apt-get install pebble (or run under CI=true via .ci/run)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Pebble:
    """One pebble process; ``stop()``/``start()`` simulate a CA outage (state is lost)."""

    directory: Path
    ca: trustme.CA
    dns: tuple[str, int]
    tls_port: int
    http_port: int = 0
    validity: int | None = None  # certificate lifetime in seconds
    always_valid: bool = False
    eab: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    management_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    started: bool = False  # once started, a restart keeps the ports (clients keep the URL)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/dir"

    @property
    def ca_file(self) -> Path:
        """Trust for pebble's own https listener (the directory, the management API)."""
        return self.directory / "pebble-listener-ca.pem"

    def __post_init__(self) -> None:
        self.directory.mkdir(exist_ok=True)
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(self.directory / "pebble-key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.directory / "pebble-cert.pem"))
        self.ca.cert_pem.write_to_path(str(self.ca_file))

    def _config(self) -> Path:
        settings: dict[str, object] = {
            "listenAddress": f"127.0.0.1:{self.port}",
            "managementListenAddress": f"127.0.0.1:{self.management_port}",
            "certificate": str(self.directory / "pebble-cert.pem"),
            "privateKey": str(self.directory / "pebble-key.pem"),
            "httpPort": self.http_port or free_port(),
            "tlsPort": self.tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": bool(self.eab),
        }
        if self.eab:
            settings["externalAccountMACKeys"] = self.eab
        if self.validity is not None:
            settings["certificateValidityPeriod"] = self.validity
        path = self.directory / "pebble-config.json"
        path.write_text(json.dumps({"pebble": settings}))
        return path

    def start(self) -> None:
        """Start pebble. Its two listening ports were found free, then closed, before it
        binds them: another process on a shared machine can take one in between (seen
        once: "bind: address already in use"). The first start then picks new ports;
        a restart (an outage simulation: clients keep the URL) tries the same ones again."""
        for attempt in range(4):
            if self._start_once():
                self.started = True
                return
            if "address already in use" not in self.log() or attempt == 3:
                pytest.fail(f"pebble exited: {self.log()}")
            if not self.started:
                self.port, self.management_port = free_port(), free_port()
            time.sleep(0.2)

    def _start_once(self) -> bool:
        """True once pebble answers; False when it exited (the log says why)."""
        config = self._config()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
            "PEBBLE_AUTHZREUSE": "0",  # every order validates again
        }
        if self.always_valid:
            env["PEBBLE_VA_ALWAYS_VALID"] = "1"
        log = (self.directory / "pebble.log").open("ab")
        self.process = subprocess.Popen(
            [PEBBLE, "-config", str(config), "-dnsserver", f"{self.dns[0]}:{self.dns[1]}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.directory,
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                return False
            try:
                self.get("/roots/0", management=True)
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return True
            except OSError:
                time.sleep(0.05)
        pytest.fail(f"pebble did not start: {self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        path = self.directory / "pebble.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def get(self, path: str, *, management: bool = False) -> bytes:
        port = self.management_port if management else self.port
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(
            f"https://127.0.0.1:{port}{path}", context=context, timeout=5
        ) as answer:
            return bytes(answer.read())

    def root_pem(self) -> bytes:
        """The root pebble issues under (it changes at every start)."""
        return self.get("/roots/0", management=True)

    def cert_status(self, serial: int) -> dict[str, object]:
        data = json.loads(self.get(f"/cert-status-by-serial/{serial:x}", management=True))
        assert isinstance(data, dict)
        return data
