"""The ``[alerts]`` section of mtasts.toml (pure: no I/O). Example::

    [alerts]
    domains = ["example.com"]     # default: [receive] owned_domains, else every domain
                                  # the store has reports for
    failure_rate = 0.05           # a day with more failed sessions than this share...
    failure_min_sessions = 100    # ...over at least this many sessions

    [alerts.email]                # on when `to` is set
    relay = "smtp.example.com:587"
    security = "starttls"         # starttls | tls | none
    sender = "mtasts@example.com"
    to = ["postmaster@example.com"]

    [alerts.webhook]              # on when `url` is set
    url = "https://hooks.example.com/mtasts"
    headers = { Authorization = "Bearer s3cret" }

    [alerts.apprise]              # on when `urls` is set; needs mtasts[apprise]
    urls = ["slack://T000/B000/XXXX"]

Registered in :mod:`mtasts.settings.registry`; every key is in docs/configuration.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from mtasts.errors import ConfigError
from mtasts.settings.build import build_section
from mtasts.settings.schema import setting
from mtasts.settings.types import SmtpRelay

RULES = ("failure-rate", "new-result-type", "reporter-stopped", "policy-mismatch", "no-reports")
_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


class Security(StrEnum):
    STARTTLS = "starttls"  # STARTTLS required (port 587 or 25)
    TLS = "tls"  # implicit TLS (port 465)
    NONE = "none"  # plain text: a relay on loopback only


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """Alert e-mail through an SMTP relay (aiosmtplib); on when ``to`` is set."""

    to: tuple[str, ...] = setting(
        (), doc="recipients; none: no e-mail", example="postmaster@example.com"
    )
    sender: str = setting("", doc="From address (needed with to)", example="mtasts@example.com")
    relay: SmtpRelay = setting(SmtpRelay("127.0.0.1", 25), doc="HOST:PORT of the SMTP relay")
    security: Security = setting(
        Security.STARTTLS,
        doc="starttls (required), tls (implicit, port 465) or none (loopback relays)",
    )
    username: str = setting("", doc="AUTH user; '' = no AUTH")
    password: str = setting("", secret=True, doc="AUTH password (or password_file)")
    password_file: Path | None = setting(None, doc="file holding the AUTH password")
    timeout: float = setting(30.0, above=0, doc="seconds for one message, connect to QUIT")

    def __post_init__(self) -> None:
        bad = [a for a in self.to if not _ADDRESS.fullmatch(a)]
        if bad:
            raise ConfigError(f"to: {bad[0]!r} is not an e-mail address")
        if self.to and not _ADDRESS.fullmatch(self.sender):
            raise ConfigError("sender: one e-mail address, e.g. mtasts@example.com, with to")
        if self.password and self.password_file is not None:
            raise ConfigError("give password or password_file, not both")
        if bool(self.password or self.password_file) != bool(self.username):
            raise ConfigError("username and a password go together")

    @property
    def enabled(self) -> bool:
        return bool(self.to)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """Alerts as a JSON POST; on when ``url`` is set."""

    url: str = setting(
        "",
        secret=True,
        doc="http:// or https:// URL; '' = no webhook",
        example="https://hooks.example.com/mtasts",
    )
    headers: Mapping[str, str] = setting(
        default_factory=dict, secret=True, doc="extra headers, e.g. Authorization"
    )
    timeout: float = setting(10.0, above=0, doc="seconds for one POST")
    retries: int = setting(3, minimum=1, maximum=10, doc="attempts within one delivery")

    def __post_init__(self) -> None:
        if self.url and not re.match(r"https?://[^/\s]+", self.url):
            raise ConfigError("url: an http:// or https:// URL")
        if any("\n" in k + v or "\r" in k + v for k, v in self.headers.items()):
            raise ConfigError("headers: no line breaks in names or values")

    @property
    def enabled(self) -> bool:
        return bool(self.url)


@dataclass(frozen=True, slots=True)
class AppriseSettings:
    """Alerts through Apprise URLs (Slack, Matrix, Telegram, ...; mtasts[apprise])."""

    urls: tuple[str, ...] = setting((), secret=True, doc="Apprise URLs; none: off")
    timeout: float = setting(30.0, above=0, doc="seconds for one notification to every URL")

    def __post_init__(self) -> None:
        if not all("://" in u for u in self.urls):
            raise ConfigError("urls: Apprise URLs look like scheme://...")

    @property
    def enabled(self) -> bool:
        return bool(self.urls)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    """Alerts on the received TLS-RPT reports (`mtasts alerts`; docs/alerts.md)."""

    domains: frozenset[str] = setting(
        default_factory=frozenset,
        doc="domains to watch; none: [receive] owned_domains, else every domain reported",
    )
    poll: float = setting(60.0, above=0, doc="`alerts run`: seconds between looks for reports")
    daily_at: str = setting("06:00", doc="`alerts run`: UTC time of the daily evaluation")
    failure_rate: float = setting(
        0.05, minimum=0, maximum=0.99, doc="alert when a day's failed share is above this"
    )
    failure_min_sessions: int = setting(100, minimum=1, doc="...over at least this many")
    failure_days: int = setting(2, minimum=1, doc="days looked at: today, yesterday, ...")
    new_result_type_days: int = setting(
        7, minimum=1, doc="a failure type first seen this recently is new..."
    )
    baseline_days: int = setting(30, minimum=1, doc="...if absent for this many days before")
    reporter_stopped_days: int = setting(3, minimum=1, doc="a regular reporter silent so long")
    reporter_min_days: int = setting(
        5, minimum=1, doc="regular: reported on this many of the baseline days"
    )
    no_reports_days: int = setting(3, minimum=1, doc="alert after this many days without reports")
    rules: frozenset[str] = setting(frozenset(RULES), doc="the rules to run: " + ", ".join(RULES))
    resolve_after_minutes: int = setting(
        60, minimum=0, doc="a rule's condition is resolved once absent this long (no flapping)"
    )
    metrics: str = setting(
        "", doc="`alerts run`: HOST:PORT of the Prometheus /metrics listener; '' = off"
    )
    give_up_hours: float = setting(
        72.0, above=0, doc="hours after which an undelivered notification is marked failed"
    )
    email: EmailSettings = setting(default_factory=EmailSettings)
    webhook: WebhookSettings = setting(default_factory=WebhookSettings)
    apprise: AppriseSettings = setting(default_factory=AppriseSettings)

    def __post_init__(self) -> None:
        if not _TIME.fullmatch(self.daily_at):
            raise ConfigError(f'daily_at = {self.daily_at!r}: a UTC time of day, "HH:MM"')
        bad = sorted(self.rules - set(RULES))
        if bad:
            raise ConfigError(f"rules: {bad[0]!r} is not a rule; rules: {', '.join(RULES)}")
        object.__setattr__(
            self, "domains", frozenset(d.strip().rstrip(".").lower() for d in self.domains)
        )

    @property
    def daily_time(self) -> tuple[int, int]:
        m = _TIME.fullmatch(self.daily_at)
        assert m is not None
        return int(m[1]), int(m[2])

    @property
    def channels(self) -> tuple[str, ...]:
        """The names of the configured channels, in a fixed order."""
        return tuple(
            name
            for name, value in (
                ("email", self.email),
                ("webhook", self.webhook),
                ("apprise", self.apprise),
            )
            if value.enabled
        )


def alert_settings(table: Mapping[str, Any]) -> AlertSettings:
    """Settings from one ``[alerts]`` table, as the file would give them (no
    environment): for tests and tools."""
    built = build_section(AlertSettings, table, ("alerts",))
    assert isinstance(built, AlertSettings)
    return built
