"""The ``[monitor]`` section of mtasts.toml: ``mtasts monitor`` (pure: no I/O). Example::

    [monitor]
    domains = ["example.com", "example.org"]
    interval = 3600          # seconds between checks of each domain
    intervals = { "example.org" = 600 }   # per-domain intervals
    jitter = 300             # up to this many seconds added at random to each wait
    concurrency = 4          # domains checked at the same time
    cert_days = [30, 14, 7]  # warn below the first numbers, critical below the last
    keep_days = 400          # check history kept (absent: everything)
    store = "sqlite:////var/lib/mtasts/tlsrpt.db"   # default: [tlsrpt] store
    metrics = "127.0.0.1:9469"                       # Prometheus listener (optional)

Registered in :mod:`mtasts.settings.registry`; every mistake is one ConfigError naming the
key (file and line from the tree).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mtasts.errors import DomainNameError
from mtasts.names import normalize_domain
from mtasts.settings.schema import setting
from mtasts.settings.types import HostPort

MIN_INTERVAL = 60  # seconds: a check costs the domain's servers a handful of connections
MAX_DOMAINS = 10_000


@dataclass(frozen=True, slots=True)
class Watched:
    """One domain and how often it is checked (seconds)."""

    name: str
    interval: int


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    """Scheduled checks of receiving domains (`mtasts monitor`, docs/monitor.md)."""

    domains: tuple[str, ...] = setting((), doc="domains to check on a schedule")
    interval: int = setting(
        3600, minimum=MIN_INTERVAL, doc="seconds between two checks of a domain"
    )
    intervals: Mapping[str, int] = setting(
        default_factory=dict,
        doc='per-domain intervals in seconds, e.g. { "example.org" = 600 }',
    )
    jitter: int = setting(300, minimum=0, doc="up to this many seconds added to each wait")
    concurrency: int = setting(4, minimum=1, maximum=256, doc="domains checked at once")
    cert_days: tuple[int, ...] = setting(
        (30, 14, 7),
        doc="certificate days left: warning below the first, critical below the last",
    )
    keep_days: int | None = setting(None, minimum=1, doc="days of check history kept")
    store: str | None = setting(
        None,
        doc="store of the check history; unset: the TLS-RPT store ([tlsrpt] store)",
    )
    metrics: HostPort | None = setting(
        None, doc="HOST:PORT of a Prometheus listener of its own", example="127.0.0.1:9469"
    )

    def __post_init__(self) -> None:
        if len(self.domains) > MAX_DOMAINS:
            raise ValueError(f"domains: {len(self.domains)} entries, at most {MAX_DOMAINS}")
        names: list[str] = []
        for domain in self.domains:
            try:
                name = normalize_domain(domain)
            except DomainNameError as exc:
                raise ValueError(f"domains: {exc.message}") from None
            if name in names:
                raise ValueError(f"domains: {name} is listed twice")
            names.append(name)
        for domain, seconds in self.intervals.items():
            if not _valid(domain) or normalize_domain(domain) not in names:
                raise ValueError(f"intervals: {domain!r} is not one of the domains")
            if seconds < MIN_INTERVAL:
                raise ValueError(f"intervals: {domain} = {seconds}: at least {MIN_INTERVAL}")
        days = list(self.cert_days)
        if not days or any(d < 0 for d in days) or sorted(set(days), reverse=True) != days:
            raise ValueError("cert_days: whole days, largest first, e.g. [30, 14, 7]")
        if self.store is not None and not self.store.strip():
            raise ValueError("store: a store URL (sqlite:///path or postgresql://...)")

    @property
    def watched(self) -> tuple[Watched, ...]:
        """The domains with their intervals, normalised, in the order given."""
        per = {normalize_domain(d): s for d, s in self.intervals.items()}
        names = (normalize_domain(d) for d in self.domains)
        return tuple(Watched(n, per.get(n, self.interval)) for n in names)

    @property
    def critical_days(self) -> int:
        return self.cert_days[-1]

    @property
    def warning_days(self) -> int:
        return self.cert_days[0]


def _valid(domain: str) -> bool:
    try:
        normalize_domain(domain)
    except DomainNameError:
        return False
    return True
