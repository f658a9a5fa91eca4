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
``[receive]`` reads them), so one table configures the whole service; the settings tree
reads both halves as one section (:class:`mtasts.tlsrpt.receive.settings.ReceiveSection`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mtasts.errors import ConfigError
from mtasts.settings.build import build_section
from mtasts.settings.schema import fields_of, setting

WHERE = "receive"


@dataclass(frozen=True, slots=True)
class Listen:
    """One listener: TCP ``host``/``port`` or a unix socket ``path``."""

    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def parse(cls, text: str, what: str = "listener") -> Listen:
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

    @classmethod
    def expected(cls) -> str:
        return "HOST:PORT, :PORT (every address) or unix:/PATH"

    def __str__(self) -> str:
        if self.path:
            return f"unix:{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ImapSettings:
    """`mtasts tlsrpt import imaps://...`: the mailbox of the rua address on an IMAP server."""

    password: str = setting("", secret=True, doc="the IMAP password")
    done_folder: str = setting("", doc='move processed messages there; "" = flag them')


def _url_path(value: str, key: str, *, optional: bool) -> str:
    if optional and value == "":
        return ""
    if not value.startswith("/") or any(c in value for c in "?#") or not value.isprintable():
        raise ConfigError(f"{key} {value!r}: expected an absolute URL path such as /tlsrpt")
    return value.rstrip("/") or "/"


def _secrets(value: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for domain, secret in value.items():
        if len(secret) < 16:
            raise ConfigError(f"secrets.{domain}: a secret of at least 16 characters")
        if not all(c.isalnum() or c in "-_.~" for c in secret):
            raise ConfigError(f"secrets.{domain}: URL-safe characters only (A-Z a-z 0-9 -_.~)")
        out[str(domain).lower().rstrip(".")] = secret
    return out


@dataclass(frozen=True, slots=True)
class NetConfig:
    """Every network setting of the intake; defaults suit a single domain's receiver."""

    store: str = setting("", doc='the store; "" = [tlsrpt] store (one database for both sides)')
    http: Listen | None = setting(None, doc="https POST intake (RFC 8460 §5.4)")
    lmtp: Listen | None = setting(None, doc="LMTP listener for the rua mailbox")
    smtp: Listen | None = setting(None, doc="SMTP listener for the rua mailbox")
    metrics: Listen | None = setting(
        None, doc="HOST:PORT serving metrics_path instead of the http listener (private)"
    )
    cert: str = setting("", doc="PEM certificate chain for https and STARTTLS; '' = plain")
    key: str = setting("", doc="PEM private key of cert")
    path: str = setting("/tlsrpt", doc="URL path reports are POSTed to")
    metrics_path: str = setting("/metrics", doc="Prometheus text format there; '' = off")
    max_body: int = setting(5 * 2**20, minimum=1, doc="bytes of one POST body as sent")
    max_message: int = setting(10 * 2**20, minimum=1, doc="bytes of one mail (SMTP SIZE)")
    max_inflight: int = setting(32, minimum=1, doc="ingests at once; past it 503 / 451")
    max_connections: int = setting(1000, minimum=1, doc="open connections per listener")
    rate: float = setting(1.0, minimum=0, doc="requests a second per client; 0 = no limit")
    burst: float = setting(30.0, above=0, doc="requests a client may send at once")
    client_concurrency: int = setting(
        4, minimum=0, doc="requests in progress per client; 0 = no limit"
    )
    header_timeout: float = setting(10.0, above=0, doc="seconds to send the request head")
    body_timeout: float = setting(60.0, above=0, doc="seconds to send the body")
    session_timeout: float = setting(600.0, above=0, doc="seconds an SMTP/LMTP session lasts")
    trusted_proxies: tuple[str, ...] = setting(
        (), doc="addresses whose X-Forwarded-For names the client"
    )
    hostname: str = setting("", doc="SMTP/LMTP greeting name; '' = the host name")
    secrets: Mapping[str, str] = setting(
        default_factory=dict,
        secret=True,
        doc="per-domain secret path: rua=https://host/tlsrpt/<secret> (16+ URL-safe chars)",
    )
    imap: ImapSettings = setting(default_factory=ImapSettings)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", _url_path(self.path, "path", optional=False))
        object.__setattr__(
            self, "metrics_path", _url_path(self.metrics_path, "metrics_path", optional=True)
        )
        object.__setattr__(self, "secrets", _secrets(self.secrets))
        if bool(self.cert) != bool(self.key):
            raise ConfigError("cert and key go together: give both or neither")
        if self.metrics is not None and self.metrics.path:
            raise ConfigError("metrics listens on HOST:PORT, not a unix socket")
        if self.metrics_path and self.metrics_path == self.path:
            raise ConfigError("metrics_path and path must differ")

    @property
    def tls(self) -> bool:
        return bool(self.cert)


#: Every key of ``[receive]`` this module reads (the store side's parser skips them).
NET_KEYS = frozenset(f.name for f in fields_of(NetConfig))


def parse_netconfig(
    table: Mapping[str, Any], base: NetConfig | None = None
) -> tuple[NetConfig, dict[str, Any]]:
    """``[receive]`` -> (the network settings, the keys left for the store side).

    ``None`` values are skipped, so CLI options that were not given change nothing;
    ``""`` turns a listener off.
    """
    mine = {k: v for k, v in table.items() if k in NET_KEYS and v is not None}
    rest = {k: v for k, v in table.items() if k not in NET_KEYS}
    config = build_section(NetConfig, mine, (WHERE,), base=base)
    assert isinstance(config, NetConfig)
    return config, rest
