"""``[daemon]`` settings of mtasts.toml: listeners, zones, timeouts (pure: dict in, value out).

Example::

    [daemon]
    listen = ["127.0.0.1:8461", "unix:/var/spool/postfix/private/mtasts"]
    unix_mode = "0666"          # smtp(8) connects as user postfix
    lookup_timeout = 75         # seconds; > the 60 s fetch limit, < Postfix's 100 s
    idle_timeout = 300
    answer_ttl = 1              # reuse a rendered answer this long; 0 = never
    shutdown_grace = 10
    max_connections = 1000      # at the cap the oldest idle connection is closed
    dane = true                 # answer dane-only where an MX host has usable validated TLSA
    uvloop = true               # when installed
    metrics = "127.0.0.1:9461"  # Prometheus text format at /metrics; "" = off

    [daemon.default_zone]       # the socketmap name is the last field of the map spec
    servername = true           # false for Postfix < 3.4
    tlsrpt = false              # true for Postfix >= 3.10 (needed by 3.10.5's MX check)
    strict_testing = false
    legacy_protocols = false    # true for Postfix < 3.6 (no ">=TLSv1.2" syntax)
    match_patterns = false      # true: render "*.d" as ".d" (any depth; see docs/postfix.md)

    [daemon.zones.strict]       # socketmap:inet:127.0.0.1:8461:strict
    strict_testing = true
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mtasts.errors import ConfigError
from mtasts.postfix.socketmap import DaneLevel, ReplyOptions

DEFAULT_LISTEN = ("127.0.0.1:8461",)


@dataclass(frozen=True, slots=True)
class Listen:
    """One listener: TCP ``host:port`` or a unix socket path."""

    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> Listen:
        """``HOST:PORT``, ``[V6]:PORT``, ``inet:HOST:PORT`` or ``unix:PATH``."""
        if text.startswith("unix:"):
            path = text[5:]
            if not path.startswith("/"):
                raise ConfigError(f"listen {text!r}: a unix socket needs an absolute path")
            return cls(path=path)
        spec = text.removeprefix("inet:")
        host, sep, port = spec.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f"listen {text!r} is not HOST:PORT or unix:/PATH (e.g. 127.0.0.1:8461)"
            )
        return cls(host=host, port=int(port))

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    listen: tuple[Listen, ...] = tuple(Listen.parse(x) for x in DEFAULT_LISTEN)
    unix_mode: int = 0o666
    lookup_timeout: float = 75.0
    idle_timeout: float = 300.0
    answer_ttl: float = 1.0
    shutdown_grace: float = 10.0
    max_connections: int = 1000
    #: RFC 8461 §2: a sender that does DANE must not let MTA-STS override it, so on by
    #: default (docs/postfix.md "DANE first")
    dane: bool = True
    uvloop: bool = True
    metrics: str = ""
    default_zone: ReplyOptions = field(default_factory=ReplyOptions)
    zones: Mapping[str, ReplyOptions] = field(default_factory=dict)


_TOP = {
    "listen",
    "unix_mode",
    "lookup_timeout",
    "idle_timeout",
    "answer_ttl",
    "shutdown_grace",
    "max_connections",
    "dane",
    "dane_level",
    "uvloop",
    "metrics",
    "default_zone",
    "zones",
}
_ZONE = {
    "servername",
    "tlsrpt",
    "strict_testing",
    "dane_level",
    "legacy_protocols",
    "match_patterns",
}


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]!r} in [{where}]; known: {', '.join(sorted(allowed))}"
        )


def _bool(table: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"[{where}] {key} must be true or false, not {value!r}") from None
    return value


def check_seconds(value: object, name: str, *, positive: bool = False) -> float:
    """``value`` as seconds (>= 0, or > 0 with ``positive``); ``name`` says where it was set."""
    bound = "> 0" if positive else ">= 0"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value < 0
        or (positive and value == 0)
    ):
        raise ConfigError(f"{name} must be a number of seconds {bound}, not {value!r}")
    return float(value)


def check_count(value: object, name: str) -> int:
    """``value`` as a whole number >= 1; ``name`` says where it was set."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number >= 1, not {value!r}")
    return value


def _seconds(
    table: Mapping[str, Any], key: str, default: float, where: str, *, positive: bool = False
) -> float:
    return check_seconds(table.get(key, default), f"[{where}] {key}", positive=positive)


def metrics_listen(text: str, where: str) -> Listen:
    """The control endpoint's ``HOST:PORT``; it is HTTP over TCP only (no unix socket)."""
    listen = Listen.parse(text)
    if listen.path:
        raise ConfigError(
            f"{where} must be HOST:PORT on loopback (e.g. 127.0.0.1:9461), not a unix socket"
        )
    return listen


def dane_level(value: Any, where: str) -> DaneLevel:
    """Only ``dane-only``: ``dane`` would be weaker than the MTA-STS answer it replaces."""
    if value == "dane":
        raise ConfigError(
            f"{where} dane_level 'dane' lets Postfix fall back to unauthenticated or "
            "clear-text TLS for MX hosts without usable TLSA, weaker than the MTA-STS "
            "policy it replaces (RFC 8461 §2); the daemon answers 'dane-only': remove "
            "the setting"
        )
    try:
        return DaneLevel(value)
    except ValueError:
        raise ConfigError(f"{where} dane_level must be 'dane-only', not {value!r}") from None


def zone_from_table(
    table: Mapping[str, Any], where: str, base: ReplyOptions | None = None
) -> ReplyOptions:
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{where}] must be a table like {{ strict_testing = true }}")
    _check_keys(table, _ZONE, where)
    base = base or ReplyOptions()
    level = table.get("dane_level")
    return ReplyOptions(
        servername=_bool(table, "servername", base.servername, where),
        tlsrpt=_bool(table, "tlsrpt", base.tlsrpt, where),
        strict_testing=_bool(table, "strict_testing", base.strict_testing, where),
        dane_level=base.dane_level if level is None else dane_level(level, f"[{where}]"),
        legacy_protocols=_bool(table, "legacy_protocols", base.legacy_protocols, where),
        match_patterns=_bool(table, "match_patterns", base.match_patterns, where),
    )


def daemon_config_from_table(table: Mapping[str, Any]) -> DaemonConfig:
    """The ``[daemon]`` table as a :class:`DaemonConfig`; raises ConfigError naming the fix."""
    where = "daemon"
    _check_keys(table, _TOP, where)
    listen = table.get("listen", list(DEFAULT_LISTEN))
    if isinstance(listen, str):
        listen = [listen]
    if not isinstance(listen, list) or not listen or not all(isinstance(x, str) for x in listen):
        raise ConfigError("[daemon] listen must be a list like ['127.0.0.1:8461']")
    mode_text = table.get("unix_mode", "0666")
    try:
        unix_mode = int(str(mode_text), 8)
    except ValueError:
        raise ConfigError(
            f"[daemon] unix_mode must be octal like '0666', not {mode_text!r}"
        ) from None
    metrics = table.get("metrics", "")
    if not isinstance(metrics, str):
        raise ConfigError("[daemon] metrics must be 'HOST:PORT' or ''")
    if metrics:
        metrics_listen(metrics, "[daemon] metrics")
    base = ReplyOptions()
    if "dane_level" in table:
        base = ReplyOptions(dane_level=dane_level(table["dane_level"], f"[{where}]"))
    default_zone = zone_from_table(table.get("default_zone", {}), "daemon.default_zone", base)
    zones_table = table.get("zones", {})
    if not isinstance(zones_table, Mapping):
        raise ConfigError("[daemon.zones] must be a table of tables")
    zones = {
        name: zone_from_table(z, f"daemon.zones.{name}", default_zone)
        for name, z in zones_table.items()
    }
    return DaemonConfig(
        listen=tuple(Listen.parse(x) for x in listen),
        unix_mode=unix_mode,
        lookup_timeout=_seconds(table, "lookup_timeout", 75.0, where, positive=True),
        idle_timeout=_seconds(table, "idle_timeout", 300.0, where, positive=True),
        answer_ttl=_seconds(table, "answer_ttl", 1.0, where),
        shutdown_grace=_seconds(table, "shutdown_grace", 10.0, where),
        max_connections=check_count(table.get("max_connections", 1000), "[daemon] max_connections"),
        dane=_bool(table, "dane", True, where),
        uvloop=_bool(table, "uvloop", True, where),
        metrics=metrics,
        default_zone=default_zone,
        zones=zones,
    )
