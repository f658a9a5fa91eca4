"""A real dovecot IMAP server for one test: its own config, users, mail and port.

Everything lives under the test's directory (never /etc/dovecot): ``dovecot.conf``, a
passwd-file for passdb and userdb, the Maildir, the TLS certificate (from a test CA) and
the log. Only ``base_dir`` (sockets and the pid file) is a private directory of its own
in /tmp: dovecot's login processes never run as root, and pytest's temporary tree is
closed to other users.

Outside CI a missing dovecot skips with a reason; under CI=true it fails (.ci/run
installs dovecot-imapd).
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
USER = "tlsrpt@example.test"
PASSWORD = "imap-test-password"


def need_dovecot() -> None:
    if os.path.exists(DOVECOT):
        return
    if os.environ.get("CI") == "true":
        pytest.fail("dovecot is not installed (CI: .ci/run installs dovecot-imapd)")
    pytest.skip("no dovecot: apt-get install dovecot-imapd (or run under CI=true via .ci/run)")


@dataclass
class Dovecot:
    directory: Path
    port: int
    ca_file: Path
    process: subprocess.Popen[bytes]
    base_dir: str

    @property
    def url(self) -> str:
        return f"imaps://{USER.replace('@', '%40')}@127.0.0.1:{self.port}/INBOX"

    def log(self) -> str:
        path = self.directory / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_dovecot(directory: Path) -> Dovecot:
    need_dovecot()
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "imap.test")
    issued.private_key_pem.write_to_path(str(directory / "key.pem"))
    (directory / "cert.pem").write_bytes(b"".join(b.bytes() for b in issued.cert_chain_pems))
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    root = os.getuid() == 0
    me = pwd.getpwuid(os.getuid()).pw_name
    # Mail is read and written as the test's own user, except that dovecot refuses uid 0
    # for mail: as root, the package's `dovecot` user owns the Maildir.
    mail_user = pwd.getpwnam("dovecot") if root else pwd.getpwuid(os.getuid())
    mail = directory / "mail"
    mail.mkdir(exist_ok=True)
    if root:
        os.chown(mail, mail_user.pw_uid, mail_user.pw_gid)
        # The mail processes (as `dovecot`) must pass through the test directory.
        for parent in [directory, *directory.parents][:4]:
            os.chmod(parent, os.stat(parent).st_mode | 0o001)
    (directory / "passwd").write_text(
        f"{USER}:{{PLAIN}}{PASSWORD}:{mail_user.pw_uid}:{mail_user.pw_gid}::{mail}/home::\n"
    )
    base_dir = tempfile.mkdtemp(prefix="mtasts-dovecot-")
    os.chmod(base_dir, 0o755)
    login_user = "dovenull" if root else me
    internal_user = "dovecot" if root else me
    internal_group = "dovecot" if root else grp.getgrgid(os.getgid()).gr_name
    port = _free_port()
    (directory / "dovecot.conf").write_text(
        f"""
base_dir = {base_dir}
state_dir = {directory}/state
log_path = {directory}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{directory}/cert.pem
ssl_key = <{directory}/key.pem
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = {mail_user.pw_uid}
first_valid_gid = {mail_user.pw_gid}
mail_location = maildir:{mail}/%n
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = {directory}/passwd
}}
userdb {{
  driver = passwd-file
  args = {directory}/passwd
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service auth {{
  user = {me}
}}
service auth-worker {{
  user = {me}
}}
"""
    )
    with (directory / "dovecot.stderr").open("wb") as stderr:
        process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(directory / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    peer = Dovecot(directory, port, directory / "ca.pem", process, base_dir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            peer.stop()
            pytest.fail(f"dovecot exited: {(directory / 'dovecot.stderr').read_text()}{peer.log()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return peer
        time.sleep(0.05)
    peer.stop()
    pytest.fail(f"dovecot did not listen on {port} within 30 s: {peer.log()}")
