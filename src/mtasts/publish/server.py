"""``mtasts serve policy``: a small asyncio HTTP/1.1 server for ``/.well-known/mta-sts.txt``.

It serves many Policy Domains by Host header, over HTTPS (``--cert/--key``) or plain HTTP
behind a TLS-terminating proxy (nginx, Caddy). What it answers is decided by the pure
``mtasts.publish.site.respond``; this module only reads requests, bounded in size and time.

I/O module.
"""

from __future__ import annotations

import asyncio
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mtasts.errors import ConfigError, DomainNameError
from mtasts.names import normalize_domain
from mtasts.publish.site import Response, Site, render, respond

MAX_HEAD_BYTES = 8192  # request line + headers
MAX_POLICY_BYTES = 65536  # RFC 8461 §3.3 suggests senders cap bodies at 64 KB
READ_TIMEOUT = 10.0


def _read_policy(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the policy file {path}: {exc.strerror}") from exc
    if len(data) > MAX_POLICY_BYTES:
        raise ConfigError(f"{path} is {len(data)} bytes; senders stop reading at 64 KB")
    return data


def _domain_key(name: str, source: object) -> str:
    """The Policy Domain as senders' Host headers spell it: A-labels, lower case."""
    domain = name.strip().lower().rstrip(".")
    if domain.startswith("mta-sts."):
        raise ConfigError(
            f"{source}: name the policy domain ({domain[8:]}), not the policy host ({domain})"
        )
    try:
        return normalize_domain(domain)
    except DomainNameError as exc:
        raise ConfigError(f"{source}: {exc.message}") from exc


def _add(policies: dict[str, bytes], domain: str, policy: bytes, source: object) -> None:
    if domain in policies:
        raise ConfigError(f"{source}: two policies for {domain}; keep one")
    policies[domain] = policy


def load_directory(directory: Path) -> Site:
    """Policies from ``DIR/<domain>.txt`` (e.g. ``DIR/example.com.txt``)."""
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a directory")
    policies: dict[str, bytes] = {}
    for path in sorted(directory.glob("*.txt")):
        if path.is_file():
            key = _domain_key(path.name[: -len(".txt")], path)
            _add(policies, key, _read_policy(path), directory)
    if not policies:
        raise ConfigError(f"{directory} holds no <domain>.txt policy file")
    return Site(policies)


def load_config(path: Path) -> Site:
    """Policies from a TOML file: ``[policies]`` mapping domain -> policy file path.

    Relative paths are read relative to the config file.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    unknown = set(data) - {"policies"}
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; only [policies]")
    table = data.get("policies")
    if not isinstance(table, Mapping) or not table:
        raise ConfigError(f'{path}: needs a [policies] table: "example.com" = "policy.txt"')
    policies: dict[str, bytes] = {}
    for name, file in table.items():
        if not isinstance(file, str):
            raise ConfigError(f"{path}: the policy of {name} must be a file path")
        _add(policies, _domain_key(name, path), _read_policy(path.parent / file), path)
    return Site(policies)


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context: TLS 1.2+ (RFC 8461 §7.2), the given certificate chain and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the certificate {cert} / key {key}: {exc}") from exc
    return context


async def _read_head(reader: asyncio.StreamReader) -> list[str] | None:
    """Request line and header lines, or None when the request is malformed or too big."""
    try:
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
        return None
    try:
        return raw.decode("latin-1").split("\r\n")[:-2]
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return None


_BAD_REQUEST = Response(400, "Bad Request", (("Content-Length", "0"),), b"")


@dataclass
class PolicyServer:
    """Serves ``site``; ``reload()`` swaps in new policies without a restart."""

    site: Site
    tls: ssl.SSLContext | None = None
    _server: asyncio.Server | None = None
    # The connections being served: close() ends them (asyncio.Server.close() in Python
    # 3.11 only stops listening, leaving handlers and their transports running on).
    _open: dict[asyncio.Task[None], asyncio.StreamWriter] = field(default_factory=dict)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._open[task] = writer
        try:
            lines = await _read_head(reader)
            response = _BAD_REQUEST
            if lines:
                parts = lines[0].split(" ")
                if len(parts) == 3 and parts[2].startswith("HTTP/1."):
                    host = None
                    for line in lines[1:]:
                        name, sep, value = line.partition(":")
                        if sep and name.strip().lower() == "host":
                            host = value.strip()
                            break
                    response = respond(self.site, parts[0], parts[1], host)
            writer.write(render(response))
            await asyncio.wait_for(writer.drain(), READ_TIMEOUT)
        except (OSError, TimeoutError, ssl.SSLError):
            pass
        finally:
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), 1.0)
            except (OSError, TimeoutError, ssl.SSLError):
                # A TLS peer that does not answer close_notify: drop the socket now rather
                # than keep it for the 30 s SSL shutdown timeout.
                writer.transport.abort()
            finally:
                if task is not None:
                    self._open.pop(task, None)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; returns the bound address (port 0 picks a free port)."""
        self._server = await asyncio.start_server(
            self._handle,
            host,
            port,
            ssl=self.tls,
            limit=MAX_HEAD_BYTES,
            # a client that opens TLS and stays silent is bounded like a slow request
            ssl_handshake_timeout=READ_TIMEOUT if self.tls else None,
        )
        bound = self._server.sockets[0].getsockname()
        return str(bound[0]), int(bound[1])

    def reload(self, site: Site) -> None:
        self.site = site

    async def close(self) -> None:
        """Stop listening and end every open connection (a slow client included)."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._open.values()):
                writer.transport.abort()
            if self._open:
                await asyncio.wait(list(self._open), timeout=READ_TIMEOUT)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> PolicyServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
