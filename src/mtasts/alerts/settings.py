"""The ``[alerts]`` table of mtasts.toml -> :class:`AlertSettings`. Example::

    [alerts]
    domains = ["example.com"]     # default: [receive] owned_domains, else every domain
                                  # the store has reports for
    poll = 60                     # `alerts run`: seconds between looks for new reports
    daily_at = "06:00"            # `alerts run`: the full evaluation, UTC
    failure_rate = 0.05           # a day with more failed sessions than this fraction...
    failure_min_sessions = 100    # ...over at least this many sessions
    failure_days = 2              # days looked at: today and yesterday (UTC)
    new_result_type_days = 7      # a result type first seen this recently is "new"...
    baseline_days = 30            # ...if it was absent for this many days before
    reporter_stopped_days = 3     # a regular reporter silent for this many days
    reporter_min_days = 5         # regular: reported on at least this many baseline days
    no_reports_days = 3           # no report at all for a domain for this many days
    rules = ["failure-rate", "new-result-type", "reporter-stopped", "policy-mismatch",
             "no-reports"]        # the rules to run (default: all)
    give_up_hours = 72            # a notification not delivered by then is marked failed

    [alerts.email]
    relay = "smtp.example.com:587"
    security = "starttls"         # starttls | tls | none
    username = "mtasts"           # optional; password or password_file with it
    password_file = "/etc/mtasts/smtp-password"
    from = "mtasts@example.com"
    to = ["postmaster@example.com"]
    timeout = 30

    [alerts.webhook]
    url = "https://hooks.example.com/mtasts"
    headers = { Authorization = "Bearer s3cret" }
    timeout = 10
    retries = 3                   # attempts within one delivery, with back-off

    [alerts.apprise]              # needs mtasts[apprise]
    urls = ["slack://T000/B000/XXXX", "mailto://user:pass@example.com"]
    timeout = 30

Pure: a mapping in, settings out; every bad key is one ConfigError naming it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mtasts.errors import ConfigError

RULES = ("failure-rate", "new-result-type", "reporter-stopped", "policy-mismatch", "no-reports")
_ADDRESS = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+")


@dataclass(frozen=True, slots=True)
class EmailChannel:
    relay: tuple[str, int]
    sender: str
    to: tuple[str, ...]
    security: str = "starttls"  # starttls | tls | none
    username: str | None = None
    password: str | None = None
    password_file: str | None = None
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class WebhookChannel:
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    timeout: float = 10.0
    retries: int = 3


@dataclass(frozen=True, slots=True)
class AppriseChannel:
    urls: tuple[str, ...]
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class AlertSettings:
    domains: frozenset[str] = frozenset()
    poll: float = 60.0
    daily_at: tuple[int, int] = (6, 0)
    failure_rate: float = 0.05
    failure_min_sessions: int = 100
    failure_days: int = 2
    new_result_type_days: int = 7
    baseline_days: int = 30
    reporter_stopped_days: int = 3
    reporter_min_days: int = 5
    no_reports_days: int = 3
    rules: frozenset[str] = frozenset(RULES)
    give_up_hours: float = 72.0
    email: EmailChannel | None = None
    webhook: WebhookChannel | None = None
    apprise: AppriseChannel | None = None

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
            if value is not None
        )


_KEYS = frozenset(
    {
        "domains",
        "poll",
        "daily_at",
        "failure_rate",
        "failure_min_sessions",
        "failure_days",
        "new_result_type_days",
        "baseline_days",
        "reporter_stopped_days",
        "reporter_min_days",
        "no_reports_days",
        "rules",
        "give_up_hours",
        "email",
        "webhook",
        "apprise",
    }
)
_DAYS = (
    "failure_min_sessions",
    "failure_days",
    "new_result_type_days",
    "baseline_days",
    "reporter_stopped_days",
    "reporter_min_days",
    "no_reports_days",
)


def _fail(where: str, key: str, value: Any, why: str) -> ConfigError:
    return ConfigError(f"[{where}] {key} = {value!r}: {why}", code="config.invalid")


def _unknown(where: str, table: Mapping[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]!r} in [{where}]; known: {', '.join(sorted(known))}",
            code="config.invalid",
        )


def _int(where: str, key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _fail(where, key, value, f"a whole number of at least {low}")
    return value


def _positive(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _fail(where, key, value, "a positive number")
    return float(value)


def _strings(where: str, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(where, key, value, "a list of strings")
    return tuple(value)


def _hostport(where: str, key: str, value: Any) -> tuple[str, int]:
    if isinstance(value, str):
        host, sep, port = value.strip().rpartition(":")
        if not sep:
            host, port = value.strip(), "25"
        host = host.strip("[]")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return host, int(port)
    raise _fail(where, key, value, "host:port of the SMTP relay, e.g. smtp.example.com:587")


def email_channel(t: Mapping[str, Any]) -> EmailChannel:
    w = "alerts.email"
    known = frozenset(
        {"relay", "security", "username", "password", "password_file", "from", "to", "timeout"}
    )
    _unknown(w, t, known)
    for key in ("relay", "from", "to"):
        if key not in t:
            raise ConfigError(f"[{w}] needs {key}", code="config.invalid")
    sender = t["from"]
    if not isinstance(sender, str) or not _ADDRESS.fullmatch(sender):
        raise _fail(w, "from", sender, "one e-mail address, e.g. mtasts@example.com")
    to = _strings(w, "to", t["to"])
    bad = [a for a in to if not _ADDRESS.fullmatch(a)]
    if bad or not to:
        raise _fail(w, "to", t["to"], "a non-empty list of e-mail addresses")
    security = t.get("security", "starttls")
    if security not in ("starttls", "tls", "none"):
        raise _fail(w, "security", security, "one of starttls, tls, none")
    for key in ("username", "password", "password_file"):
        if key in t and not (isinstance(t[key], str) and t[key]):
            raise _fail(w, key, t[key], "a non-empty string")
    if "password" in t and "password_file" in t:
        raise ConfigError(f"[{w}] give password or password_file, not both", code="config.invalid")
    if ("password" in t or "password_file" in t) != ("username" in t):
        raise ConfigError(f"[{w}] username and a password go together", code="config.invalid")
    return EmailChannel(
        relay=_hostport(w, "relay", t["relay"]),
        sender=sender,
        to=to,
        security=security,
        username=t.get("username"),
        password=t.get("password"),
        password_file=t.get("password_file"),
        timeout=_positive(w, "timeout", t["timeout"]) if "timeout" in t else 30.0,
    )


def webhook_channel(t: Mapping[str, Any]) -> WebhookChannel:
    w = "alerts.webhook"
    _unknown(w, t, frozenset({"url", "headers", "timeout", "retries"}))
    url = t.get("url")
    if not isinstance(url, str) or not re.match(r"https?://[^/\s]+", url):
        raise _fail(w, "url", url, "an http:// or https:// URL")
    headers = t.get("headers", {})
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and "\n" not in k + v for k, v in headers.items()
    ):
        raise _fail(w, "headers", headers, "a table of header names to string values")
    return WebhookChannel(
        url=url,
        headers=tuple(sorted(headers.items())),
        timeout=_positive(w, "timeout", t["timeout"]) if "timeout" in t else 10.0,
        retries=_int(w, "retries", t["retries"], 1) if "retries" in t else 3,
    )


def apprise_channel(t: Mapping[str, Any]) -> AppriseChannel:
    w = "alerts.apprise"
    _unknown(w, t, frozenset({"urls", "timeout"}))
    urls = _strings(w, "urls", t.get("urls"))
    if not urls or not all("://" in u for u in urls):
        raise _fail(w, "urls", "(hidden)", "a non-empty list of Apprise URLs (scheme://...)")
    return AppriseChannel(
        urls=urls, timeout=_positive(w, "timeout", t["timeout"]) if "timeout" in t else 30.0
    )


def alert_settings(table: Mapping[str, Any]) -> AlertSettings:
    """Settings from an ``[alerts]`` table (with its sub-tables)."""
    w = "alerts"
    _unknown(w, table, _KEYS)
    out: dict[str, Any] = {}
    if "domains" in table:
        out["domains"] = frozenset(
            d.strip().rstrip(".").lower() for d in _strings(w, "domains", table["domains"])
        )
    if "poll" in table:
        out["poll"] = _positive(w, "poll", table["poll"])
    if "give_up_hours" in table:
        out["give_up_hours"] = _positive(w, "give_up_hours", table["give_up_hours"])
    if "daily_at" in table:
        value = table["daily_at"]
        m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value) if isinstance(value, str) else None
        if m is None:
            raise _fail(w, "daily_at", value, 'a UTC time of day, "HH:MM"')
        out["daily_at"] = (int(m[1]), int(m[2]))
    if "failure_rate" in table:
        value = table["failure_rate"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
            raise _fail(w, "failure_rate", value, "a fraction from 0 to below 1, e.g. 0.05")
        out["failure_rate"] = float(value)
    for key in _DAYS:
        if key in table:
            out[key] = _int(w, key, table[key], 1)
    if "rules" in table:
        rules = _strings(w, "rules", table["rules"]) if table["rules"] != [] else ()
        bad = [r for r in rules if r not in RULES]
        if bad:
            raise _fail(w, "rules", bad[0], f"not a rule; rules: {', '.join(RULES)}")
        out["rules"] = frozenset(rules)
    for key, parse in (
        ("email", email_channel),
        ("webhook", webhook_channel),
        ("apprise", apprise_channel),
    ):
        if key in table:
            if not isinstance(table[key], dict):
                raise ConfigError(f"[alerts] {key} must be a table", code="config.invalid")
            out[key] = parse(table[key])
    return AlertSettings(**out)
