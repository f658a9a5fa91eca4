"""The ACME state directory: account key, one key+chain file per name, status, challenges.

Layout (every file 0600, every directory 0700)::

    STATE/account.json            the account key (JWK) and its URL at the CA
    STATE/certs/NAME.pem          private key + certificate chain, one file, replaced atomically
    STATE/certs/NAME.json         status: last attempt, failures, next try, last error
    STATE/challenges/http-01/TOKEN        key authorization (read by every instance)
    STATE/challenges/tls-alpn-01/NAME.pem validation key + certificate
    STATE/locks/NAME.lock         flock'ed while one instance issues for NAME

Two instances may share the directory: issuance for a name runs under its lock, files are
written to a temporary name and renamed (a reader sees the old or the new file, never half
of one), and each instance re-reads a name's file when it changes.

I/O module.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mtasts.errors import ConfigError


@dataclass(frozen=True, slots=True)
class NameStatus:
    """What the server last did for a name (shown by ``mtasts check`` and the logs)."""

    name: str
    failures: int = 0
    last_error: str = ""
    last_attempt: float = 0.0  # Unix time
    next_try: float = 0.0
    not_after: float = 0.0  # of the certificate on disk, 0 when none
    renew_at: float = 0.0
    state: str = "missing"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 through a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def safe_name(name: str) -> str:
    """A host name as a file name (names are validated A-labels: no '/' and no '..')."""
    if not name or "/" in name or name.startswith(".") or "\0" in name:
        raise ValueError(f"not a host name: {name!r}")
    return name


class StateDir:
    """The state directory of one CA account (see the module docstring)."""

    def __init__(self, root: Path, *, create: bool = True) -> None:
        self.root = root
        if not create:
            if not (root / "certs").is_dir():
                raise ConfigError(f"{root} is no ACME state directory (no certs/ in it)")
            return
        try:
            for sub in ("", "certs", "challenges/http-01", "challenges/tls-alpn-01", "locks"):
                path = root / sub
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(path, 0o700)
        except OSError as exc:
            raise ConfigError(
                f"cannot use the ACME state directory {root}: {exc.strerror} "
                "(it must be writable by the service user)"
            ) from exc

    # --- account ---------------------------------------------------------------------

    @property
    def account_path(self) -> Path:
        return self.root / "account.json"

    def read_account(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.account_path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the ACME account {self.account_path}: {exc}") from exc
        return data if isinstance(data, dict) else None

    def write_account(self, data: dict[str, Any]) -> None:
        atomic_write(self.account_path, json.dumps(data, indent=1).encode())

    # --- certificates ----------------------------------------------------------------

    def cert_path(self, name: str) -> Path:
        return self.root / "certs" / f"{safe_name(name)}.pem"

    def read_cert(self, name: str) -> bytes | None:
        try:
            return self.cert_path(name).read_bytes()
        except FileNotFoundError:
            return None

    def cert_mtime(self, name: str) -> float:
        try:
            return self.cert_path(name).stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def write_cert(self, name: str, key_and_chain: bytes) -> None:
        atomic_write(self.cert_path(name), key_and_chain)

    def names(self) -> list[str]:
        return sorted(p.name[: -len(".pem")] for p in (self.root / "certs").glob("*.pem"))

    def status_path(self, name: str) -> Path:
        return self.root / "certs" / f"{safe_name(name)}.json"

    def read_status(self, name: str) -> NameStatus:
        try:
            data = json.loads(self.status_path(name).read_bytes())
            return NameStatus(**{**data, "name": name})
        except (OSError, ValueError, TypeError):
            return NameStatus(name)

    def write_status(self, status: NameStatus) -> None:
        atomic_write(self.status_path(status.name), json.dumps(asdict(status)).encode())

    # --- challenges ------------------------------------------------------------------

    def http01_path(self, token: str) -> Path:
        return self.root / "challenges" / "http-01" / safe_name(token)

    def alpn_path(self, name: str) -> Path:
        return self.root / "challenges" / "tls-alpn-01" / f"{safe_name(name)}.pem"

    # --- locks -----------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, what: str) -> Iterator[None]:
        """An exclusive flock on ``locks/WHAT.lock`` (blocking: call from a thread)."""
        fd = os.open(self.root / "locks" / f"{safe_name(what)}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock
