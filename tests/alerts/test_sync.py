"""alerts.sync() against real stores (SQLite and PostgreSQL): one notification per
transition and channel, nothing lost when a channel or the store fails, concurrent
evaluations raising a condition once."""

from __future__ import annotations

import asyncio

import pytest

from mtasts import alerts
from mtasts.alerts.api import AlertStoreUnavailable
from mtasts.alerts.model import AlertError, Condition, Severity
from mtasts.alerts.settings import AlertSettings
from mtasts.alerts.store import AlertStore

from .conftest import Recorder, StoreAt

T0 = 1_800_000_000
SETTINGS = AlertSettings()


def cond(subject: str, domain: str = "a.example", **kw: object) -> Condition:
    return Condition("failure-rate", domain, subject, **kw)  # type: ignore[arg-type]


async def run(at: StoreAt, source: str, conds: list[Condition], rec: Recorder, t: int, **kw):
    return await alerts.sync(
        at.store, source, conds, settings=SETTINGS, channels={"rec": rec}, now=t, **kw
    )


async def test_raise_once_repeat_silently_resolve_once(at: StoreAt) -> None:
    rec = Recorder()
    x = cond("x", severity=Severity.WARNING, summary="5% failed")
    r = await run(at, "rules", [x], rec, T0)
    assert r.raised == (x.key,)
    assert r.delivered is not None
    assert r.delivered.sent == 1
    for i in range(1, 4):  # seen again and again: nobody is told twice
        worse = cond("x", severity=Severity.CRITICAL, summary=f"{5 + i}% failed")
        r = await run(at, "rules", [worse], rec, T0 + i)
        assert r.repeated == (x.key,)
    assert rec.events() == [("raised", x.key)]
    (still,) = await at.store.open_conditions()
    assert (still.first_seen, still.last_seen) == (T0, T0 + 3)
    assert still.condition.summary == "8% failed"  # the latest observation is kept
    assert still.condition.severity is Severity.CRITICAL

    r = await run(at, "rules", [], rec, T0 + 10)
    assert r.resolved == (x.key,)
    assert rec.events() == [("raised", x.key), ("resolved", x.key)]
    assert rec.sent[-1].first_seen == T0
    assert rec.sent[-1].resolved_at == T0 + 10
    assert await at.store.open_conditions() == []
    # it comes back: a new occurrence, notified again
    await run(at, "rules", [x], rec, T0 + 20)
    assert rec.events()[-1] == ("raised", x.key)
    history = await at.store.history()
    assert [h["resolved_at"] for h in history] == [None, T0 + 10]


async def test_sources_and_scopes_do_not_clear_each_other(at: StoreAt) -> None:
    rec = Recorder()
    mine = cond("rules-one")
    theirs = Condition("check.mx-certificate", "b.example", summary="expires in 3 days")
    await run(at, "rules", [mine], rec, T0)
    await run(at, "monitor", [theirs], rec, T0, domains=["b.example"])
    # the rules see nothing wrong any more; monitor's condition stays open
    r = await run(at, "rules", [], rec, T0 + 1)
    assert r.resolved == (mine.key,)
    assert [o.key for o in await at.store.open_conditions()] == [theirs.key]
    # monitor checks another domain: b.example's condition is outside that scope
    r = await run(at, "monitor", [], rec, T0 + 2, domains=["c.example"])
    assert r.resolved == ()
    # monitor could not tell this time (keep): still open
    r = await run(at, "monitor", [], rec, T0 + 3, domains=["b.example"], keep=[theirs.key])
    assert r.resolved == ()
    r = await run(at, "monitor", [], rec, T0 + 4, domains=["b.example"])
    assert r.resolved == (theirs.key,)


async def test_a_failed_channel_keeps_the_notification_and_retries_later(at: StoreAt) -> None:
    rec, down = Recorder(), Recorder(name="down", fail=True)
    x = cond("x")
    chans = {"rec": rec, "down": down}
    r = await alerts.sync(at.store, "rules", [x], settings=SETTINGS, channels=chans, now=T0)
    assert r.delivered is not None
    assert (r.delivered.sent, r.delivered.failed) == (1, 1)
    assert "recorder told to fail" in r.delivered.errors[0]
    assert await at.store.outbox_counts() == {"sent": 1, "pending": 1}
    # before the back-off has passed nothing is tried again
    down.fail = False
    r = await alerts.sync(at.store, "rules", [x], settings=SETTINGS, channels=chans, now=T0 + 30)
    assert r.delivered is not None
    assert r.delivered.sent == 0
    r = await alerts.sync(at.store, "rules", [x], settings=SETTINGS, channels=chans, now=T0 + 61)
    assert r.delivered is not None
    assert r.delivered.sent == 1
    assert down.events() == [("raised", x.key)]  # the raise, once, late but not lost
    assert await at.store.outbox_counts() == {"sent": 2}


async def test_a_channel_down_for_too_long_is_given_up_and_shown(at: StoreAt) -> None:
    down = Recorder(name="down", fail=True)
    settings = AlertSettings(give_up_hours=1)
    x = cond("x")
    await alerts.sync(at.store, "rules", [x], settings=settings, channels={"down": down}, now=T0)
    r = await alerts.sync(
        at.store, "rules", [x], settings=settings, channels={"down": down}, now=T0 + 3600
    )
    assert r.delivered is not None
    assert r.delivered.given_up == 1
    assert await at.store.outbox_counts() == {"failed": 1}
    (row,) = await at.store.notifications_of([(await at.store.open_conditions())[0].pk])
    assert row["status"] == "failed"
    assert row["attempts"] == 2
    assert "told to fail" in row["last_error"]


async def test_concurrent_evaluations_raise_a_condition_once(at: StoreAt) -> None:
    rec = Recorder()
    others = [AlertStore.open(at.url, schema=at.schema) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(
                alerts.sync(o, "rules", [cond("x")], settings=SETTINGS, channels={"rec": rec})
                for o in others
            )
        )
    finally:
        for o in others:
            await o.close()
    assert sorted(len(r.raised) for r in results) == [0, 0, 0, 1]
    assert len(await at.store.open_conditions()) == 1
    assert rec.events() == [("raised", "failure-rate:a.example:x")]


async def test_sync_by_url_opens_upgrades_and_closes(at: StoreAt) -> None:
    rec = Recorder()
    r = await alerts.sync(
        at.url, "monitor", [cond("x")], settings=SETTINGS, channels={"rec": rec}, schema=at.schema
    )
    assert r.raised == ("failure-rate:a.example:x",)
    assert len(await at.store.open_conditions(source="monitor")) == 1


async def test_an_unreachable_store_raises_and_changes_nothing() -> None:
    rec = Recorder()
    with pytest.raises(AlertStoreUnavailable, match="could not be opened"):
        await alerts.sync(
            "postgresql://nobody@127.0.0.1:1/none",
            "rules",
            [cond("x")],
            settings=SETTINGS,
            channels={"rec": rec},
        )
    assert rec.sent == []


async def test_a_condition_outside_the_scope_is_a_caller_error(at: StoreAt) -> None:
    with pytest.raises(AlertError, match="outside the domains"):
        await run(at, "monitor", [cond("x", "z.example")], Recorder(), T0, domains=["a.example"])
    assert await at.store.open_conditions() == []


async def test_no_channels_still_records_the_conditions(at: StoreAt) -> None:
    r = await alerts.sync(at.store, "rules", [cond("x")], settings=SETTINGS, now=T0)
    assert r.raised
    assert r.delivered is None
    assert await at.store.outbox_counts() == {}


async def test_notifications_of_a_channel_this_process_lacks_wait_then_expire(
    at: StoreAt,
) -> None:
    """Another process (another configuration) queued a notification for a channel this
    one does not have: it is left for that process, and marked failed only once older
    than give_up_hours (the channel is gone)."""
    other, mine = Recorder(name="other", fail=True), Recorder()
    settings = AlertSettings(give_up_hours=1)
    await alerts.sync(
        at.store, "monitor", [cond("x")], settings=settings, channels={"other": other}, now=T0
    )
    r = await alerts.sync(
        at.store, "rules", [], settings=settings, channels={"rec": mine}, now=T0 + 600
    )
    assert r.delivered is not None
    assert (r.delivered.sent, r.delivered.failed, r.delivered.given_up) == (0, 0, 0)
    assert await at.store.outbox_counts() == {"pending": 1}
    r = await alerts.sync(
        at.store, "rules", [], settings=settings, channels={"rec": mine}, now=T0 + 3601
    )
    assert r.delivered is not None
    assert r.delivered.given_up == 1
    assert await at.store.outbox_counts() == {"failed": 1}
    assert mine.sent == []


class Crashing(Recorder):
    async def send(self, message: object) -> None:  # type: ignore[override]
        raise RuntimeError("a bug in a channel")


async def test_a_channel_that_crashes_is_retried_like_one_that_fails(at: StoreAt) -> None:
    r = await alerts.sync(
        at.store, "rules", [cond("x")], settings=SETTINGS, channels={"c": Crashing()}, now=T0
    )
    assert r.delivered is not None
    assert r.delivered.errors == ["c: RuntimeError: a bug in a channel"]
    assert await at.store.outbox_counts() == {"pending": 1}
