"""The rate-limited log of answers that defer mail (issue 10), with a clock of our own."""

from __future__ import annotations

import logging

import pytest

from mtasts.postfix.deferrals import DeferralLog


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_domain_per_interval_with_the_count_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    deferrals = DeferralLog(60, clock=clock)
    with caplog.at_level(logging.INFO, logger="mtasts.daemon"):
        assert deferrals.note("a.test", "why") is True
        assert deferrals.note("b.test", "why") is True  # per domain
        assert [deferrals.note("a.test", "why") for _ in range(3)] == [False] * 3
        clock.now = 59.9
        assert deferrals.note("a.test", "why") is False
        clock.now = 60.0
        assert deferrals.note("a.test", "why now") is True
        clock.now = 200.0
        assert deferrals.note("a.test", "why now") is True  # nothing left out since
    assert [r.getMessage() for r in caplog.records] == [
        "deferring mail to domain=a.test: why",
        "deferring mail to domain=b.test: why",
        "deferring mail to domain=a.test: why now (4 more such answers in the last 60 s "
        "not logged)",
        "deferring mail to domain=a.test: why now",
    ]
    assert {r.levelno for r in caplog.records} == {logging.INFO}


def test_memory_is_bounded_by_forgetting_domains_whose_interval_ended() -> None:
    clock = Clock()
    deferrals = DeferralLog(60, clock=clock, max_domains=3)
    for name in ("a", "b", "c"):
        deferrals.note(name, "why")
    clock.now = 30.0
    deferrals.note("d", "why")  # full, nothing ended: start over
    assert len(deferrals) == 1
    clock.now = 100.0
    for name in ("e", "f"):
        deferrals.note(name, "why")
    deferrals.note("g", "why")  # full: "d" ended and goes, "e" and "f" stay
    assert len(deferrals) == 3
    assert deferrals.note("e", "why") is False
