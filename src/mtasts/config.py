"""Typed settings, read once: mtasts.toml, then ``MTASTS_*`` environment, then CLI options.

The whole file is one tree of sections (:mod:`mtasts.settings`; every key, its type,
default and environment variable: docs/configuration.md). This module keeps the
top-level section (the resolver's keys with ``[cache]`` and ``[timeouts]``) and the
functions older code calls. Example::

    nameserver = "127.0.0.1:5353"     # host:port; default: the system's resolv.conf
    ca_file = "/etc/ssl/lab-ca.pem"   # default: the system trust store
    https_port = 443
    smtp_port = 25

    [cache]
    url = "memory:"                   # memory: | sqlite:///path | redis://host:port/db | postgresql://...

    [timeouts]                        # seconds
    dns = 5
    connect = 10
    read = 20
    total = 60                        # the whole policy GET (RFC 8461 §3.3 suggests 60)

An unknown key anywhere is a :class:`~mtasts.errors.ConfigError` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtasts.settings.schema import setting
from mtasts.settings.tree import DEFAULT_PATH, config_path, load, read_text
from mtasts.settings.types import Nameserver, parse_hostport

__all__ = [
    "DEFAULT_PATH",
    "CacheSettings",
    "Settings",
    "Timeouts",
    "config_path",
    "load_settings",
    "parse_hostport",
    "read_file",
]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Network timeouts of the policy resolver and the checker, in seconds."""

    dns: float = setting(5.0, above=0, env=("MTASTS_TIMEOUT_DNS",), doc="one DNS query")
    connect: float = setting(
        10.0, above=0, env=("MTASTS_TIMEOUT_CONNECT",), doc="a TCP connection and TLS handshake"
    )
    read: float = setting(20.0, above=0, env=("MTASTS_TIMEOUT_READ",), doc="one read")
    total: float = setting(
        60.0,
        above=0,
        env=("MTASTS_TIMEOUT_TOTAL",),
        doc="the whole policy GET (RFC 8461 §3.3 suggests 60)",
    )


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """Where fetched MTA-STS policies are kept (RFC 8461 §5.1)."""

    url: str = setting(
        "memory:",
        env=("MTASTS_CACHE",),
        doc="memory: | sqlite:///PATH | redis://HOST:PORT/DB | postgresql://USER@HOST/DB",
        example="sqlite:////var/lib/mtasts/cache.db",
    )

    def __post_init__(self) -> None:
        if not self.url:
            raise ValueError("cache url must not be empty (memory: keeps nothing on disk)")


@dataclass(frozen=True, slots=True)
class Settings:
    """The policy resolver, the checker and every command that looks up MTA-STS."""

    nameserver: Nameserver | None = setting(
        None,
        doc="DNS server HOST or HOST:PORT; unset: the system's resolv.conf",
        example="127.0.0.1:53",
    )
    ca_file: Path | None = setting(
        None, doc="CA bundle (PEM) for policy hosts; unset: the system trust store"
    )
    https_port: int = setting(443, minimum=1, maximum=65535, doc="port of policy hosts (tests)")
    smtp_port: int = setting(25, minimum=1, maximum=65535, doc="port of MX hosts (tests)")
    cache: CacheSettings = setting(default_factory=CacheSettings)
    timeouts: Timeouts = setting(default_factory=Timeouts)


def load_settings(
    path: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read the settings once: file, then environment, then ``overrides`` (CLI options).

    ``overrides`` uses dotted keys (``"cache.url"``); ``None`` values are skipped, so
    click options that were not given do not override anything.
    """
    return load(path, environ=environ, overrides=overrides).section(Settings)


def read_file(file: Path) -> dict[str, Any]:
    """The TOML document in ``file``; unreadable or malformed files are a ConfigError."""
    return read_text(file)[1]
