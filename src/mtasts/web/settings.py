"""The ``[web]`` section of mtasts.toml: ``mtasts web`` (pure: no I/O). Example::

    [web]
    store = "sqlite:////var/lib/mtasts/tlsrpt.db"   # default: [tlsrpt] store
    listen = "127.0.0.1:8461"        # anything but loopback requires users below
    tls_cert = "/etc/mtasts/web.pem" # optional: serve HTTPS
    tls_key = "/etc/mtasts/web.key"
    policy_timeout = 5               # seconds for the live policy fetch (DNS + HTTPS)
    policy_cache_seconds = 300       # how long a fetched live policy is reused
    stopped_after_days = 3           # a reporter silent this long "stopped reporting"
    acme_state_dir = "/var/lib/mtasts/acme"  # optional: certificates of serve policy --acme

    [web.users.alice]                # HTTP Basic: `mtasts web --hash-password`
    password = "scrypt$16384$8$1$<salt>$<hash>"
    domains = ["example.com", "example.net"]

    [web.users.grafana]              # Authorization: Bearer <token>
    token_sha256 = "<hex SHA-256 of the token>"
    domains = ["*"]                  # every domain

Registered in :mod:`mtasts.settings.registry`; every mistake is one ConfigError naming the
key (file and line from the tree).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mtasts.errors import ConfigError, DomainNameError
from mtasts.names import normalize_domain
from mtasts.settings.schema import setting
from mtasts.settings.types import HostPort
from mtasts.tlsrpt.receive.netconfig import Listen
from mtasts.web.auth import parse_password_hash

ALL_DOMAINS = "*"
_EXAMPLE_HASH = (
    "scrypt$16384$8$1$Q+6Mtzonf18RcZzODnkLbw$716FE7c7Xa2G5raS6u0WXTIftWy0fYevY0KhJNemnYI"
)
_HEX = frozenset("0123456789abcdef")


class ListenAddress(HostPort):
    """``HOST:PORT`` to listen on; port 0 takes any free port (tests, the demo)."""

    __slots__ = ()

    @classmethod
    def expected(cls) -> str:
        return "HOST:PORT such as 127.0.0.1:8461 (port 0: any free port)"

    @classmethod
    def parse(cls, text: str) -> ListenAddress:
        listen = Listen.parse(text, "listen")
        if listen.path:
            raise ConfigError(f"listen {text!r}: the dashboard listens on TCP only")
        return cls(listen.host, listen.port)


@dataclass(frozen=True, slots=True)
class User:
    """One person or program allowed in, and the policy domains it may see."""

    name: str
    password: str | None = None  # scrypt$N$r$p$salt$hash
    token_sha256: str | None = None  # hex, lower case
    domains: frozenset[str] = frozenset()

    def may_see(self, domain: str) -> bool:
        return ALL_DOMAINS in self.domains or domain in self.domains

    @property
    def sees_all(self) -> bool:
        return ALL_DOMAINS in self.domains


@dataclass(frozen=True, slots=True)
class WebUser:
    """One user of the dashboard (`[web.users.NAME]`): a password or a token, and the
    domains it may see."""

    password: str = setting(
        "",
        secret=True,
        doc="scrypt hash from `mtasts web --hash-password` (HTTP Basic)",
        # the hash of a random secret thrown away: valid, and nobody can log in with it
        example=_EXAMPLE_HASH,
    )
    token_sha256: str = setting(
        "", secret=True, doc="SHA-256 (hex) of a token sent as Authorization: Bearer"
    )
    domains: tuple[str, ...] = setting(
        (), doc='policy domains it may see; ["*"]: all', example="example.com"
    )

    def __post_init__(self) -> None:
        if not self.password and not self.token_sha256:
            raise ValueError("give a password (hashed) or a token_sha256")
        if self.password:
            try:
                parse_password_hash(self.password)
            except ValueError as exc:
                raise ValueError(f"password: {exc}") from None
        token = self.token_sha256.lower()
        if token and (len(token) != 64 or not set(token) <= _HEX):
            raise ValueError("token_sha256: 64 hex digits (sha256sum of the token)")
        if not self.domains:
            raise ValueError('domains: a non-empty list of domain names, or ["*"]')
        for domain in self.domains:
            if domain != ALL_DOMAINS:
                try:
                    normalize_domain(domain)
                except DomainNameError as exc:
                    raise ValueError(f"domains: {exc.message}") from None

    def user(self, name: str) -> User:
        return User(
            name=name,
            password=self.password or None,
            token_sha256=self.token_sha256.lower() or None,
            domains=frozenset(d if d == ALL_DOMAINS else normalize_domain(d) for d in self.domains),
        )


@dataclass(frozen=True, slots=True)
class WebSettings:
    """The dashboard and its JSON API (`mtasts web`, docs/web.md)."""

    store: str | None = setting(
        None, doc="the receiving store; unset: the TLS-RPT store ([tlsrpt] store)"
    )
    listen: ListenAddress = setting(
        ListenAddress("127.0.0.1", 8461), doc="HOST:PORT; not loopback: [web.users] required"
    )
    tls_cert: Path | None = setting(None, doc="TLS certificate (PEM) to serve HTTPS")
    tls_key: Path | None = setting(None, doc="its private key (PEM)")
    policy_timeout: float = setting(5.0, above=0, doc="seconds for the live policy fetch")
    policy_cache_seconds: float = setting(
        300.0, above=0, doc="seconds a fetched live policy is reused"
    )
    stopped_after_days: int = setting(
        3, minimum=1, doc='days of silence after which a reporter "stopped reporting"'
    )
    acme_state_dir: Path | None = setting(
        None,
        doc="the [acme] state_dir of `serve policy --acme`: show its certificates (/certificates)",
    )
    users: Mapping[str, WebUser] = setting(
        default_factory=dict, doc="who may log in ([web.users.NAME]) and what each sees"
    )

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.store is not None and not self.store.strip():
            raise ValueError("store: a store URL (sqlite:///path or postgresql://...)")

    @property
    def auth_required(self) -> bool:
        return bool(self.users)

    @property
    def user_list(self) -> tuple[User, ...]:
        return tuple(u.user(name) for name, u in sorted(self.users.items()))
