"""When to renew a certificate, how long to wait after a failure, and how worried to be.

Pure: times come in as arguments.

- Renewal at ``fraction`` (default 2/3) of the lifetime, as Let's Encrypt advises and
  Stalwart does; when the CA offers ACME Renewal Information (RFC 9773) the time it
  suggests wins, even when it is earlier (a CA that revokes early says so through ARI).
- After a failed attempt: ``retry_min`` doubling per failure up to ``retry_max``.
- A certificate whose renewal failed and whose expiry is within ``alert_days`` is
  ``expiring``: the server logs it at ERROR and sets a metric an alert rule can watch.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta


class CertState(enum.StrEnum):
    """What the server has for a name."""

    MISSING = "missing"  # no certificate yet (the first issuance is pending or failing)
    VALID = "valid"  # valid and not yet due for renewal
    RENEWAL_DUE = "renewal-due"  # past its renewal time; renewal is being attempted
    EXPIRING = "expiring"  # within alert_days of expiry and still not renewed: alert
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Lifetime:
    not_before: datetime
    not_after: datetime


def renew_at(life: Lifetime, fraction: float, ari: datetime | None = None) -> datetime:
    """The time to renew: ``fraction`` of the lifetime, or the CA's ARI suggestion."""
    if ari is not None:
        return ari
    return life.not_before + (life.not_after - life.not_before) * fraction


def backoff(failures: int, retry_min: float, retry_max: float) -> float:
    """Seconds to wait after the ``failures``-th failure in a row (1, 2, ...)."""
    if failures <= 0:
        return 0.0
    return float(min(retry_max, retry_min * 2 ** min(failures - 1, 32)))


def cert_state(
    now: datetime,
    life: Lifetime | None,
    due: datetime | None,
    alert_days: float,
) -> CertState:
    """The state of a name's certificate at ``now``."""
    if life is None:
        return CertState.MISSING
    if now >= life.not_after:
        return CertState.EXPIRED
    # A lifetime shorter than the alert window (a test CA's minutes) alerts only in its
    # last third, else it would alert from birth.
    window = min(timedelta(days=alert_days), (life.not_after - life.not_before) / 3)
    if now >= life.not_after - window:
        return CertState.EXPIRING
    if due is not None and now >= due:
        return CertState.RENEWAL_DUE
    return CertState.VALID


@dataclass(slots=True)
class IssuanceBudget:
    """At most ``per_hour`` issuances an hour (a token bucket holding an hour's worth), so
    a burst of new names or a renewal storm cannot exhaust the CA's rate limits."""

    per_hour: int
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens, self.updated = float(self.per_hour), now
        self.tokens = min(
            float(self.per_hour), self.tokens + (now - self.updated) * self.per_hour / 3600
        )
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait(self) -> float:
        """Seconds until the next token, after a refused ``take``."""
        return max(0.0, (1 - self.tokens) * 3600 / self.per_hour)
