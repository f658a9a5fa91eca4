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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mtasts.errors import ConfigError
from mtasts.postfix.socketmap import DaneLevel, ReplyOptions
from mtasts.settings.build import build_section
from mtasts.settings.schema import setting
from mtasts.settings.types import OctalMode

DEFAULT_LISTEN = ("127.0.0.1:8461",)


@dataclass(frozen=True, slots=True)
class Listen:
    """One listener: TCP ``host:port`` or a unix socket path."""

    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def expected(cls) -> str:
        return "HOST:PORT or unix:/PATH such as 127.0.0.1:8461"

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
    """The socketmap daemon Postfix asks for TLS policies (``mtasts daemon``)."""

    listen: tuple[Listen, ...] = setting(
        tuple(Listen.parse(x) for x in DEFAULT_LISTEN),
        doc="HOST:PORT or unix:/PATH listeners (smtp_tls_policy_maps = socketmap:...)",
    )
    unix_mode: OctalMode = setting(
        OctalMode(0o666), doc="mode of unix sockets; smtp(8) connects as user postfix"
    )
    lookup_timeout: float = setting(
        75.0, above=0, doc="seconds before answering TIMEOUT; > the 60 s fetch, < Postfix's 100 s"
    )
    idle_timeout: float = setting(300.0, above=0, doc="seconds before an idle client is closed")
    answer_ttl: float = setting(1.0, minimum=0, doc="seconds a rendered answer is reused; 0 never")
    shutdown_grace: float = setting(
        10.0, minimum=0, doc="seconds to finish requests in flight on SIGTERM"
    )
    max_connections: int = setting(
        1000, minimum=1, doc="client connections at once; at the cap the oldest idle one closes"
    )
    #: RFC 8461 §2: a sender that does DANE must not let MTA-STS override it, so on by
    #: default (docs/postfix.md "DANE first")
    dane: bool = setting(
        True, doc="answer dane-only where an MX host has usable DNSSEC-validated TLSA"
    )
    dane_level: DaneLevel = setting(
        DaneLevel.DANE_ONLY, doc="the default zone's dane_level (only dane-only)"
    )
    uvloop: bool = setting(True, doc="use uvloop when installed")
    metrics: str = setting(
        "",
        doc="HOST:PORT (loopback!) for Prometheus /metrics and the /cache endpoint; '' = off",
        example="127.0.0.1:9461",
    )
    tlsrpt_spool: Path | None = setting(
        None,
        doc="where policy-failure counts go if the TLS-RPT store ([tlsrpt] store) is down "
        "at shutdown; replayed at the next start (not the collector's spool)",
    )
    default_zone: ReplyOptions = setting(default_factory=ReplyOptions)
    zones: Mapping[str, ReplyOptions] = setting(
        default_factory=dict,
        inherit="default_zone",
        doc="named zones (socketmap:inet:127.0.0.1:8461:NAME), each over default_zone",
    )

    def __post_init__(self) -> None:
        if not self.listen:
            raise ConfigError("listen must name at least one listener, e.g. ['127.0.0.1:8461']")
        if self.metrics:
            metrics_listen(self.metrics, "metrics")

    def zone_keys_everywhere(self, keys: Iterable[str]) -> DaemonConfig:
        """Every named zone with these keys of ``default_zone``: a zone's command-line
        option (``--tlsrpt``) sets it in every zone, even one whose table sets it."""
        chosen = {key: getattr(self.default_zone, key) for key in keys}
        if not chosen or not self.zones:
            return self
        return replace(self, zones={n: replace(z, **chosen) for n, z in self.zones.items()})


def metrics_listen(text: str, where: str) -> Listen:
    """The control endpoint's ``HOST:PORT``; it is HTTP over TCP only (no unix socket)."""
    listen = Listen.parse(text)
    if listen.path:
        raise ConfigError(
            f"{where} must be HOST:PORT on loopback (e.g. 127.0.0.1:9461), not a unix socket"
        )
    return listen


def daemon_config_from_table(table: Mapping[str, Any], source: str = "") -> DaemonConfig:
    """The ``[daemon]`` table as a :class:`DaemonConfig`; raises ConfigError naming the fix.

    The generic reader of every section (:mod:`mtasts.settings`); kept for callers that
    hold a table (the pmsr importer's tests, older code).
    """
    config = build_section(DaemonConfig, table, ("daemon",), source)
    assert isinstance(config, DaemonConfig)
    return config
