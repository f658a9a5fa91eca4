"""What ``tlsrpt send`` has pending, retrying, sent and given up, per day and destination.

Pure: the delivery journal's rows in, the ``mtasts tlsrpt status`` view out (docs/json.md
names, RFC 3339 instants). A journal row is ``pending`` until its first attempt, then
``retrying`` while attempts fail within the retry window (RFC 8460 §5.3 leaves the
schedule to the sender: ours doubles from 5 minutes up to 24 hours), ``sent`` once a
destination took it, ``given_up`` when the window closed (stored as ``expired``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from mtasts.rfc3339 import utc_text

STATES = ("pending", "retrying", "sent", "given_up")


class JournalRow(Protocol):
    """One (day, policy domain, destination) row of the journal (tlsrpt.store.Delivery)."""

    @property
    def day(self) -> date: ...
    @property
    def domain(self) -> str: ...
    @property
    def destination(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def not_before(self) -> int: ...
    @property
    def first_attempt_at(self) -> int | None: ...
    @property
    def delivered_at(self) -> int | None: ...
    @property
    def last_error(self) -> str: ...


def state_of(status: str, attempts: int) -> str:
    """The state shown for a journal ``status`` (pending | sent | expired)."""
    if status == "sent":
        return "sent"
    if status == "expired":
        return "given_up"
    return "retrying" if attempts else "pending"


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """One report to one destination."""

    policy_domain: str
    destination: str
    state: str
    attempts: int
    next_attempt_at: int | None  # only while pending or retrying
    first_attempt_at: int | None
    delivered_at: int | None
    last_error: str

    def to_json(self) -> dict[str, Any]:
        return {
            "policy_domain": self.policy_domain,
            "destination": self.destination,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": utc_text(self.next_attempt_at),
            "first_attempt_at": utc_text(self.first_attempt_at),
            "delivered_at": utc_text(self.delivered_at),
            "last_error": self.last_error or None,
        }


@dataclass(frozen=True, slots=True)
class DayStatus:
    """The journal of one UTC day: its reports' deliveries and how many are in each state."""

    day: date
    deliveries: tuple[DeliveryState, ...]

    @property
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for d in self.deliveries:
            out[d.state] += 1
        return out

    @property
    def reports(self) -> int:
        return len({d.policy_domain for d in self.deliveries})

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "reports": self.reports,
            **self.counts,
            "deliveries": [d.to_json() for d in self.deliveries],
        }


def journal_status(rows: Iterable[JournalRow]) -> list[DayStatus]:
    """The journal per day, newest day first; in a day by policy domain, destination."""
    days: dict[date, list[DeliveryState]] = {}
    for r in rows:
        state = state_of(r.status, r.attempts)
        waiting = state in ("pending", "retrying")
        days.setdefault(r.day, []).append(
            DeliveryState(
                policy_domain=r.domain,
                destination=r.destination,
                state=state,
                attempts=r.attempts,
                next_attempt_at=r.not_before if waiting else None,
                first_attempt_at=r.first_attempt_at,
                delivered_at=r.delivered_at,
                last_error=r.last_error,
            )
        )
    return [
        DayStatus(day, tuple(sorted(ds, key=lambda d: (d.policy_domain, d.destination))))
        for day, ds in sorted(days.items(), reverse=True)
    ]


def status_json(days: list[DayStatus]) -> dict[str, Any]:
    """The ``tlsrpt status --json`` object: the days and the totals over them."""
    totals = dict.fromkeys(STATES, 0)
    for day in days:
        for state, n in day.counts.items():
            totals[state] += n
    return {"days": [d.to_json() for d in days], "totals": totals}
