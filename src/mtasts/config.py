"""Typed settings, read once: TOML file, then ``MTASTS_*`` environment, then CLI options.

The file is ``$MTASTS_CONFIG`` if set, else ``/etc/mtasts/mtasts.toml`` if it exists.
Example::

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

An unknown key anywhere is a :class:`~mtasts.errors.ConfigError` naming it. Tables that
belong to one component (``[daemon]``: the Postfix daemon) are skipped here and read by
their owner with :func:`component_table`, which validates them the same way.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from mtasts.errors import ConfigError

DEFAULT_PATH = Path("/etc/mtasts/mtasts.toml")

#: Tables of the file that one component owns and validates (mtasts.postfix.config,
#: mtasts.tlsrpt.storeconf).
COMPONENT_TABLES = frozenset({"daemon", "tlsrpt", "receive", "alerts", "web", "monitor"})


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds."""

    dns: float = 5.0
    connect: float = 10.0
    read: float = 20.0
    total: float = 60.0


@dataclass(frozen=True, slots=True)
class CacheSettings:
    url: str = "memory:"


@dataclass(frozen=True, slots=True)
class Settings:
    nameserver: tuple[str, int] | None = None
    ca_file: Path | None = None
    https_port: int = 443
    smtp_port: int = 25
    cache: CacheSettings = field(default_factory=CacheSettings)
    timeouts: Timeouts = field(default_factory=Timeouts)


#: Environment variable -> dotted settings key.
ENVIRONMENT = {
    "MTASTS_NAMESERVER": "nameserver",
    "MTASTS_CA_FILE": "ca_file",
    "MTASTS_HTTPS_PORT": "https_port",
    "MTASTS_SMTP_PORT": "smtp_port",
    "MTASTS_CACHE": "cache.url",
    "MTASTS_TIMEOUT_DNS": "timeouts.dns",
    "MTASTS_TIMEOUT_CONNECT": "timeouts.connect",
    "MTASTS_TIMEOUT_READ": "timeouts.read",
    "MTASTS_TIMEOUT_TOTAL": "timeouts.total",
}


def parse_hostport(
    text: str, *, default_port: int = 53, what: str = "nameserver"
) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address -> (host, port)."""
    value = text.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"{what} {text!r}: write [address]:port")
        port_text = rest[1:] if rest else str(default_port)
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    else:
        host, port_text = value, str(default_port)
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{what} {text!r} is not host:port (e.g. 127.0.0.1:53)")
    return host, int(port_text)


def _coerce(key: str, value: Any) -> Any:
    """Check and convert one value for ``key`` (dotted)."""
    leaf = key.rsplit(".", 1)[-1]
    if key == "nameserver":
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return parse_hostport(value)
        if isinstance(value, tuple):
            return value
    elif key == "ca_file":
        if value is None or value == "":
            return None
        if isinstance(value, str | Path):
            return Path(value)
    elif key in ("https_port", "smtp_port"):
        number = _number(key, value, int)
        if not 0 < number < 65536:
            raise ConfigError(f"{key} = {value!r}: a port is 1-65535")
        return number
    elif key == "cache.url":
        if isinstance(value, str) and value:
            return value
    elif key.startswith("timeouts."):
        number = _number(key, value, float)
        if number <= 0:
            raise ConfigError(f"{key} = {value!r}: a timeout is a positive number of seconds")
        return number
    raise ConfigError(f"{key} = {value!r} has the wrong type (setting {leaf!r})")


def _number(key: str, value: Any, kind: type[int] | type[float]) -> Any:
    if isinstance(value, bool):
        raise ConfigError(f"{key} = {value!r} is not a number")
    try:
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key} = {value!r} is not a number") from exc


_SECTIONS = {"cache": CacheSettings, "timeouts": Timeouts}


def _apply(settings: Settings, values: Mapping[str, Any], origin: str) -> Settings:
    """``settings`` with dotted ``values`` applied; unknown keys are a ConfigError."""
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    scalar = {f.name for f in fields(Settings)} - set(_SECTIONS)
    for key, value in values.items():
        section, dot, leaf = key.partition(".")
        if dot and section in _SECTIONS:
            known = {f.name for f in fields(_SECTIONS[section])}
            if leaf not in known:
                raise ConfigError(f"{origin}: unknown setting {key!r}", code="config.unknown-key")
            nested.setdefault(section, {})[leaf] = _coerce(key, value)
        elif not dot and key in scalar:
            top[key] = _coerce(key, value)
        else:
            raise ConfigError(f"{origin}: unknown setting {key!r}", code="config.unknown-key")
    for section, changes in nested.items():
        top[section] = replace(getattr(settings, section), **changes)
    return replace(settings, **top)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if not prefix and key in COMPONENT_TABLES:
            continue
        if isinstance(value, dict):
            if prefix or key not in _SECTIONS:
                raise ConfigError(f"unknown section [{dotted}]", code="config.unknown-key")
            flat.update(_flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


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
    env = os.environ if environ is None else environ
    settings = Settings()
    file = config_path(path, env)
    if file is not None:
        settings = _apply(settings, _flatten(read_file(file)), str(file))
    from_env = {key: env[var] for var, key in ENVIRONMENT.items() if env.get(var)}
    settings = _apply(settings, from_env, "environment")
    if overrides:
        given = {key: value for key, value in overrides.items() if value is not None}
        settings = _apply(settings, given, "command line")
    return settings


def config_path(path: Path | str | None, environ: Mapping[str, str]) -> Path | None:
    """The file to read: ``path``, else ``$MTASTS_CONFIG``, else the default if it exists."""
    if path is not None:
        return Path(path)
    if environ.get("MTASTS_CONFIG"):
        return Path(environ["MTASTS_CONFIG"])
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


def read_file(file: Path) -> dict[str, Any]:
    """The TOML document in ``file``; unreadable or malformed files are a ConfigError."""
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the configuration file {file}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}") from exc


def component_table(
    name: str, path: Path | str | None = None, *, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The raw ``[name]`` table of the configuration file ({} when absent), for its owner."""
    if name not in COMPONENT_TABLES:
        raise ValueError(f"[{name}] is not a component table")
    file = config_path(path, os.environ if environ is None else environ)
    if file is None:
        return {}
    table = read_file(file).get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: [{name}] must be a table", code="config.invalid")
    return table
