"""The ``[monitor]`` table of mtasts.toml -> :class:`MonitorSettings`. Example::

    [monitor]
    domains = ["example.com", { name = "example.org", interval = 600 }]
    interval = 3600          # seconds between checks of a domain (default for each)
    jitter = 300             # up to this many seconds added at random to each wait
    concurrency = 4          # domains checked at the same time
    cert_days = [30, 14, 7]  # warn below the first numbers, critical below the last
    keep_days = 400          # check history kept (absent: everything)
    store = "sqlite:////var/lib/mtasts/tlsrpt.db"   # default: [tlsrpt] store
    metrics = "127.0.0.1:9469"                       # Prometheus listener (optional)

Pure: a mapping in, settings out; an unknown key or a bad value is one ConfigError
naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mtasts.config import parse_hostport
from mtasts.errors import ConfigError, DomainNameError
from mtasts.names import normalize_domain

KEYS = frozenset(
    {"domains", "interval", "jitter", "concurrency", "cert_days", "keep_days", "store", "metrics"}
)
MIN_INTERVAL = 60  # seconds: a check costs the domain's servers a handful of connections
MAX_DOMAINS = 10_000


@dataclass(frozen=True, slots=True)
class Watched:
    """One domain and how often it is checked (seconds)."""

    name: str
    interval: int


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    domains: tuple[Watched, ...] = ()
    interval: int = 3600
    jitter: int = 300
    concurrency: int = 4
    cert_days: tuple[int, ...] = (30, 14, 7)
    keep_days: int | None = None
    store: str | None = None
    metrics: tuple[str, int] | None = None

    @property
    def critical_days(self) -> int:
        return self.cert_days[-1]

    @property
    def warning_days(self) -> int:
        return self.cert_days[0]


def _fail(key: str, value: Any, why: str) -> ConfigError:
    return ConfigError(f"[monitor] {key} = {value!r}: {why}", code="config.invalid")


def _int(key: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _fail(key, value, f"a whole number of at least {low}")
    if high is not None and value > high:
        raise _fail(key, value, f"at most {high}")
    return value


def _domain(entry: Any, interval: int) -> Watched:
    if isinstance(entry, str):
        name, every = entry, interval
    elif isinstance(entry, dict):
        extra = sorted(set(entry) - {"name", "interval"})
        if extra or not isinstance(entry.get("name"), str):
            raise _fail("domains", entry, 'write "example.com" or { name = "...", interval = N }')
        name = entry["name"]
        every = _int("interval", entry.get("interval", interval), MIN_INTERVAL)
    else:
        raise _fail("domains", entry, "each entry is a domain name or an inline table")
    try:
        return Watched(normalize_domain(name), every)
    except DomainNameError as exc:
        raise _fail("domains", name, exc.message) from None


def monitor_settings(table: Mapping[str, Any]) -> MonitorSettings:
    """Settings from a ``[monitor]`` table (defaults for what is absent)."""
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]!r} in [monitor]; known: {', '.join(sorted(KEYS))}",
            code="config.invalid",
        )
    interval = _int("interval", table.get("interval", 3600), MIN_INTERVAL)
    jitter = _int("jitter", table.get("jitter", 300), 0)
    concurrency = _int("concurrency", table.get("concurrency", 4), 1, 256)
    raw = table.get("domains", [])
    if not isinstance(raw, list):
        raise _fail("domains", raw, "a list")
    if len(raw) > MAX_DOMAINS:
        raise _fail("domains", f"{len(raw)} entries", f"at most {MAX_DOMAINS}")
    domains: dict[str, Watched] = {}
    for entry in raw:
        watched = _domain(entry, interval)
        if watched.name in domains:
            raise _fail("domains", watched.name, "listed twice")
        domains[watched.name] = watched
    days = table.get("cert_days", [30, 14, 7])
    if (
        not isinstance(days, list)
        or not days
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in days)
        or sorted(days, reverse=True) != days
        or len(set(days)) != len(days)
    ):
        raise _fail("cert_days", days, "a list of whole days, largest first, e.g. [30, 14, 7]")
    keep = table.get("keep_days")
    store = table.get("store")
    if store is not None and (not isinstance(store, str) or not store):
        raise _fail("store", store, "a store URL (sqlite:///path or postgresql://...)")
    metrics = table.get("metrics")
    if metrics is not None and (not isinstance(metrics, str) or ":" not in metrics):
        raise _fail("metrics", metrics, "host:port")
    return MonitorSettings(
        domains=tuple(domains.values()),
        interval=interval,
        jitter=jitter,
        concurrency=concurrency,
        cert_days=tuple(days),
        keep_days=None if keep is None else _int("keep_days", keep, 1),
        store=store,
        metrics=parse_hostport(metrics, what="[monitor] metrics") if metrics else None,
    )
