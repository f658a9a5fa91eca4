"""The ``[web]`` table of mtasts.toml -> :class:`WebSettings`. Example::

    [web]
    store = "sqlite:////var/lib/mtasts/tlsrpt.db"   # default: [tlsrpt] store
    listen = "127.0.0.1:8461"        # anything but loopback requires users below
    tls_cert = "/etc/mtasts/web.pem" # optional: serve HTTPS
    tls_key = "/etc/mtasts/web.key"
    policy_timeout = 5               # seconds for the live policy fetch (DNS + HTTPS)
    policy_cache_seconds = 300       # how long a fetched live policy is reused
    stopped_after_days = 3           # a reporter silent this long "stopped reporting"

    [web.users.alice]                # HTTP Basic: `mtasts web --hash-password`
    password = "scrypt$16384$8$1$<salt>$<hash>"
    domains = ["example.com", "example.net"]

    [web.users.grafana]              # Authorization: Bearer <token>
    token_sha256 = "<hex SHA-256 of the token>"
    domains = ["*"]                  # every domain

Pure: a mapping in, settings out; an unknown key is a ConfigError naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mtasts.errors import ConfigError
from mtasts.web.auth import parse_password_hash

DEFAULT_LISTEN = "127.0.0.1:8461"
KEYS = frozenset(
    {
        "store",
        "listen",
        "tls_cert",
        "tls_key",
        "policy_timeout",
        "policy_cache_seconds",
        "stopped_after_days",
        "users",
    }
)
USER_KEYS = frozenset({"password", "token_sha256", "domains"})
ALL_DOMAINS = "*"


@dataclass(frozen=True, slots=True)
class User:
    """One person or program allowed in, and the policy domains it may see."""

    name: str
    password: str | None = None  # scrypt$N$r$p$salt$hash
    token_sha256: str | None = None  # hex
    domains: frozenset[str] = frozenset()

    def may_see(self, domain: str) -> bool:
        return ALL_DOMAINS in self.domains or domain in self.domains

    @property
    def sees_all(self) -> bool:
        return ALL_DOMAINS in self.domains


@dataclass(frozen=True, slots=True)
class WebSettings:
    store: str | None = None
    listen: str = DEFAULT_LISTEN
    tls_cert: str | None = None
    tls_key: str | None = None
    policy_timeout: float = 5.0
    policy_cache_seconds: float = 300.0
    stopped_after_days: int = 3
    users: tuple[User, ...] = field(default_factory=tuple)

    @property
    def auth_required(self) -> bool:
        return bool(self.users)


def _fail(key: str, value: Any, why: str) -> ConfigError:
    return ConfigError(f"[web] {key} = {value!r}: {why}", code="config.invalid")


def _user(name: str, table: Any) -> User:
    where = f"users.{name}"
    if not isinstance(table, dict):
        raise _fail(where, table, "write a table [web.users.NAME]")
    unknown = sorted(set(table) - USER_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]!r} in [web.users.{name}]; known: "
            + ", ".join(sorted(USER_KEYS)),
            code="config.invalid",
        )
    password = table.get("password")
    token = table.get("token_sha256")
    if password is None and token is None:
        raise _fail(where, table, "give a password (hashed) or a token_sha256")
    if password is not None:
        if not isinstance(password, str):
            raise _fail(f"{where}.password", password, "a string")
        try:
            parse_password_hash(password)
        except ValueError as exc:
            raise _fail(f"{where}.password", "...", str(exc)) from None
    if token is not None and (
        not isinstance(token, str)
        or len(token) != 64
        or any(c not in "0123456789abcdef" for c in token.lower())
    ):
        raise _fail(f"{where}.token_sha256", token, "64 hex digits (sha256sum of the token)")
    domains = table.get("domains")
    if (
        not isinstance(domains, list)
        or not domains
        or not all(isinstance(d, str) and d.strip() for d in domains)
    ):
        raise _fail(f"{where}.domains", domains, 'a non-empty list of domain names, or ["*"]')
    names = frozenset(d.strip().rstrip(".").lower() for d in domains)
    return User(
        name=name,
        password=password,
        token_sha256=token.lower() if isinstance(token, str) else None,
        domains=names,
    )


def web_settings(table: Mapping[str, Any]) -> WebSettings:
    """Settings from a ``[web]`` table (missing keys keep their defaults)."""
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]!r} in [web]; known: {', '.join(sorted(KEYS))}",
            code="config.invalid",
        )
    out: dict[str, Any] = {}
    for key in ("store", "listen", "tls_cert", "tls_key"):
        if key in table:
            value = table[key]
            if not isinstance(value, str) or not value:
                raise _fail(key, value, "a non-empty string")
            out[key] = value
    for key in ("policy_timeout", "policy_cache_seconds"):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise _fail(key, value, "a positive number of seconds")
            out[key] = float(value)
    if "stopped_after_days" in table:
        value = table["stopped_after_days"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail("stopped_after_days", value, "a whole number of at least 1")
        out["stopped_after_days"] = value
    if "users" in table:
        users = table["users"]
        if not isinstance(users, dict):
            raise _fail("users", users, "write one table [web.users.NAME] per user")
        out["users"] = tuple(_user(name, users[name]) for name in sorted(users))
    if bool(out.get("tls_cert")) != bool(out.get("tls_key")):
        raise ConfigError("[web] tls_cert and tls_key go together", code="config.invalid")
    return WebSettings(**out)
