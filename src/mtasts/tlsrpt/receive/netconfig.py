"""The network side of ``[receive]`` in mtasts.toml (pure: dict in, frozen value out).

Example::

    [receive]
    store = "sqlite:////var/lib/mtasts/tlsrpt.db"
    http = "0.0.0.0:8443"         # https POST intake (RFC 8460 §5.4); "" = off
    lmtp = "unix:/run/mtasts/tlsrpt-lmtp.sock"   # or HOST:PORT; "" = off
    smtp = ""                     # HOST:PORT; "" = off
    cert = "/etc/mtasts/tlsrpt.crt"   # TLS for https and STARTTLS; none: plain (proxy)
    key = "/etc/mtasts/tlsrpt.key"
    path = "/tlsrpt"              # where reports are POSTed
    metrics_path = "/metrics"     # Prometheus text format on the http listener; "" = off
    metrics = ""                  # HOST:PORT: serve metrics_path there instead (private)
    max_body = 5242880            # bytes of one POST body as sent (gzip or JSON)
    max_message = 10485760        # bytes of one mail message (SMTP SIZE)
    max_inflight = 32             # ingests in progress at once; past it 503 / 451
    max_connections = 1000        # open connections per listener
    rate = 1.0                    # requests a second per client address; 0 = no limit
    burst = 30
    client_concurrency = 4        # requests in progress per client address; 0 = no limit
    header_timeout = 10           # seconds to send the request head
    body_timeout = 60             # seconds to send the body
    session_timeout = 600         # seconds an SMTP/LMTP session may last
    trusted_proxies = []          # addresses whose X-Forwarded-For names the client
    hostname = ""                 # SMTP/LMTP greeting name (default: the host name)

    [receive.secrets]             # per-domain secret path: rua=https://host/tlsrpt/<secret>
                                  # (require_https_secret = true: quarantine POSTs without)
    "example.com" = "c2VjcmV0LXBhdGgtZm9yLWV4YW1wbGU"

    [receive.imap]                # `mtasts tlsrpt import imaps://...`
    password = ""                 # or MTASTS_RECEIVE_IMAP_PASSWORD
    done_folder = ""              # move processed messages there; "" = flag them

Keys this module does not know are returned to the caller untouched (the store side of
``[receive]`` reads them), so one table configures the whole service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from mtasts.errors import ConfigError

WHERE = "receive"


@dataclass(frozen=True, slots=True)
class Listen:
    """One listener: TCP ``host``/``port`` or a unix socket ``path``."""

    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def parse(cls, text: str, what: str) -> Listen:
        """``HOST:PORT``, ``[V6]:PORT``, ``:PORT`` (all addresses) or ``unix:/PATH``."""
        if text.startswith("unix:"):
            path = text[5:]
            if not path.startswith("/"):
                raise ConfigError(f"{what} {text!r}: a unix socket needs an absolute path")
            return cls(path=path)
        host, sep, port = text.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ConfigError(f"{what} {text!r} is not HOST:PORT or unix:/PATH")
        return cls(host=host or "0.0.0.0", port=int(port))  # noqa: S104 (asked for)

    def __str__(self) -> str:
        if self.path:
            return f"unix:{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ImapSettings:
    password: str = ""
    done_folder: str = ""


@dataclass(frozen=True, slots=True)
class NetConfig:
    """Every network setting of the intake; defaults suit a single domain's receiver."""

    store: str = ""
    http: Listen | None = None
    lmtp: Listen | None = None
    smtp: Listen | None = None
    metrics: Listen | None = None
    cert: str = ""
    key: str = ""
    path: str = "/tlsrpt"
    metrics_path: str = "/metrics"
    max_body: int = 5 * 2**20
    max_message: int = 10 * 2**20
    max_inflight: int = 32
    max_connections: int = 1000
    rate: float = 1.0
    burst: float = 30.0
    client_concurrency: int = 4
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    session_timeout: float = 600.0
    trusted_proxies: tuple[str, ...] = ()
    hostname: str = ""
    secrets: Mapping[str, str] = field(default_factory=dict)
    imap: ImapSettings = field(default_factory=ImapSettings)

    @property
    def tls(self) -> bool:
        return bool(self.cert)


_LISTENERS = ("http", "lmtp", "smtp", "metrics")
#: Every key of ``[receive]`` this module reads (the store side's parser skips them).
NET_KEYS = frozenset(f.name for f in fields(NetConfig))
_STRINGS = ("store", "cert", "key", "hostname")
_SIZES = ("max_body", "max_message", "max_inflight", "max_connections", "client_concurrency")
_SECONDS = ("header_timeout", "body_timeout", "session_timeout")
_RATES = ("rate", "burst")


def _fail(key: str, value: object, what: str) -> ConfigError:
    return ConfigError(f"[{WHERE}] {key} = {value!r}: {what}", code="config.invalid")


def _int(key: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(key, value, f"an integer >= {minimum}")
    return value


def _float(key: str, value: object, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(key, value, "a number")
    if value < 0 or (positive and value == 0):
        raise _fail(key, value, "a positive number" if positive else "a number >= 0")
    return float(value)


def _str(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise _fail(key, value, "a string")
    return value


def _path(key: str, value: object, *, optional: bool) -> str:
    text = _str(key, value)
    if optional and text == "":
        return ""
    if not text.startswith("/") or any(c in text for c in "?#") or not text.isprintable():
        raise _fail(key, value, "an absolute URL path such as /tlsrpt")
    return text.rstrip("/") or "/"


def _secrets(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _fail("secrets", value, "a table of domain = secret")
    out: dict[str, str] = {}
    for domain, secret in value.items():
        if not isinstance(secret, str) or len(secret) < 16:
            raise _fail(f"secrets.{domain}", "...", "a secret of at least 16 characters")
        if not all(c.isalnum() or c in "-_.~" for c in secret):
            raise _fail(f"secrets.{domain}", "...", "URL-safe characters only (A-Z a-z 0-9 -_.~)")
        out[str(domain).lower().rstrip(".")] = secret
    return out


def _imap(value: object) -> ImapSettings:
    if not isinstance(value, Mapping):
        raise _fail("imap", value, "a table")
    known = {f.name for f in fields(ImapSettings)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r} in [{WHERE}.imap]; known: {known}")
    return ImapSettings(**{k: _str(f"imap.{k}", v) for k, v in value.items()})


def parse_netconfig(
    table: Mapping[str, Any], base: NetConfig | None = None
) -> tuple[NetConfig, dict[str, Any]]:
    """``[receive]`` -> (the network settings, the keys left for the store side).

    ``None`` values are skipped, so CLI options that were not given change nothing;
    ``""`` turns a listener off.
    """
    changes: dict[str, Any] = {}
    rest: dict[str, Any] = {}
    for key, value in table.items():
        if value is None:
            continue
        if key in _LISTENERS:
            text = _str(key, value)
            changes[key] = Listen.parse(text, f"[{WHERE}] {key}") if text else None
        elif key in _STRINGS:
            changes[key] = _str(key, value)
        elif key == "path":
            changes[key] = _path(key, value, optional=False)
        elif key == "metrics_path":
            changes[key] = _path(key, value, optional=True)
        elif key in _SIZES:
            changes[key] = _int(key, value, minimum=0 if key == "client_concurrency" else 1)
        elif key in _SECONDS:
            changes[key] = _float(key, value, positive=True)
        elif key in _RATES:
            changes[key] = _float(key, value, positive=key == "burst")
        elif key == "trusted_proxies":
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise _fail(key, value, "a list of addresses")
            changes[key] = tuple(value)
        elif key == "secrets":
            changes[key] = _secrets(value)
        elif key == "imap":
            changes[key] = _imap(value)
        else:
            rest[key] = value
    config = replace(base or NetConfig(), **changes)
    if bool(config.cert) != bool(config.key):
        raise ConfigError(f"[{WHERE}] cert and key go together: give both or neither")
    if config.metrics is not None and config.metrics.path:
        raise ConfigError(f"[{WHERE}] metrics listens on HOST:PORT, not a unix socket")
    if config.metrics_path and config.metrics_path == config.path:
        raise ConfigError(f"[{WHERE}] metrics_path and path must differ")
    return config, rest
