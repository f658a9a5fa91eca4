"""``tlsrpt status``: the delivery journal per day and destination (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest

from mtasts.tlsrpt.status import journal_status, state_of, status_json

T = int(datetime(2026, 12, 2, 0, 10, tzinfo=UTC).timestamp())


@dataclass(frozen=True)
class Row:
    day: date
    domain: str
    destination: str
    status: str
    attempts: int = 0
    not_before: int = T
    first_attempt_at: int | None = None
    delivered_at: int | None = None
    last_error: str = ""


@pytest.mark.parametrize(
    ("status", "attempts", "state"),
    [
        ("pending", 0, "pending"),  # journaled, not tried yet
        ("pending", 3, "retrying"),  # tried and failed, retried later
        ("sent", 1, "sent"),
        ("expired", 9, "given_up"),  # the 24 h window closed
    ],
)
def test_states(status: str, attempts: int, state: str) -> None:
    assert state_of(status, attempts) == state


def test_per_day_newest_first_with_counts_and_rfc3339_instants() -> None:
    d1, d2 = date(2026, 11, 30), date(2026, 12, 1)
    rows = [
        Row(d1, "b.example", "mailto:r@b.example", "sent", 1, T, T, T + 5),
        Row(d2, "b.example", "https://r.b.example/v1", "pending", 2, T + 600, T, None, "503"),
        Row(d2, "a.example", "mailto:r@a.example", "expired", 9, T, T - 86400, None, "550 no"),
        Row(d2, "a.example", "https://r.a.example/", "pending"),
    ]
    days = journal_status(rows)
    assert [d.day for d in days] == [d2, d1]
    assert [(x.policy_domain, x.state) for x in days[0].deliveries] == [
        ("a.example", "pending"),  # https:// sorts before mailto:
        ("a.example", "given_up"),
        ("b.example", "retrying"),
    ]
    assert days[0].reports == 2
    out = status_json(days)
    assert out["totals"] == {"pending": 1, "retrying": 1, "sent": 1, "given_up": 1}
    first = out["days"][0]
    assert (first["day"], first["reports"], first["retrying"]) == ("2026-12-01", 2, 1)
    retrying = first["deliveries"][2]
    assert retrying == {
        "policy_domain": "b.example",
        "destination": "https://r.b.example/v1",
        "state": "retrying",
        "attempts": 2,
        "next_attempt_at": "2026-12-02T00:20:00Z",
        "first_attempt_at": "2026-12-02T00:10:00Z",
        "delivered_at": None,
        "last_error": "503",
    }
    given_up = first["deliveries"][1]
    assert given_up["next_attempt_at"] is None  # nothing more will be tried
    assert out["days"][1]["deliveries"][0]["delivered_at"] == "2026-12-02T00:10:05Z"


def test_an_empty_journal() -> None:
    assert status_json(journal_status([])) == {
        "days": [],
        "totals": {"pending": 0, "retrying": 0, "sent": 0, "given_up": 0},
    }
