"""The check history on SQLite and PostgreSQL: newest first, windows, the first policy
seen with an id, pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mtasts.check.finding import DomainReport, Finding, Severity
from mtasts.monitor import history
from mtasts.monitor.detect import Condition
from mtasts.monitor.snapshot import snapshot_of
from mtasts.store.engine import open_database
from mtasts.store.migrate import upgrade

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def report(policy: str, record_id: str) -> DomainReport:
    return DomainReport(
        "d.test",
        (
            Finding.of("sts-record.valid", Severity.OK, "ok", record=f"v=STSv1; id={record_id}"),
            Finding.of("policy.valid", Severity.OK, "ok", policy=policy),
        ),
    )


async def test_history(store_url: tuple[str, str | None]) -> None:
    url, schema = store_url
    db = open_database(url, schema=schema)
    await upgrade(db)
    try:
        a = "version: STSv1\r\nmode: testing\r\nmx: mx1.d.test\r\nmax_age: 86400\r\n"
        b = a.replace("testing", "enforce")
        cond = (Condition("policy.id-unchanged", "d.test", "critical", "x"),)
        for i, (text, rid, conds) in enumerate([(a, "1", ()), (b, "1", cond), (b, "2", ())]):
            r = report(text, rid)
            await history.record_check(db, r, snapshot_of(r), conds, T0 + timedelta(days=i))
        rows = await history.check_history(db, "D.TEST.")
        assert [r.snapshot.sts_id for r in rows] == ["2", "1", "1"]
        assert rows[1].conditions == cond
        assert rows[0].checked_at == T0 + timedelta(days=2)
        assert await history.first_policy_with_id(db, "d.test", "1") == a
        assert await history.first_policy_with_id(db, "d.test", "9") is None
        window = await history.check_history(db, "d.test", since=T0 + timedelta(hours=1), limit=1)
        assert [r.snapshot.sts_id for r in window] == ["2"]
        assert (await history.latest(db, "d.test")) == rows[0]
        assert await history.monitored_domains(db) == [("d.test", T0 + timedelta(days=2))]
        assert await history.prune_history(db, T0 + timedelta(days=1)) == 1
        assert len(await history.check_history(db, "d.test")) == 2
        assert rows[0].to_json()["snapshot"]["sts_id"] == "2"
        # the dashboard's view: each domain's last check
        other = DomainReport("e.test", report(a, "7").findings)
        await history.record_check(db, other, snapshot_of(other), cond, T0)
        last = await history.last_checks(db)
        assert set(last) == {"d.test", "e.test"}
        assert last["d.test"]["summary"] == "no condition"
        assert last["d.test"]["at"] == T0 + timedelta(days=2)
        assert last["e.test"]["conditions"] == ["policy.id-unchanged"]
        assert set(await history.last_checks(db, ["E.test."])) == {"e.test"}
        assert await history.last_checks(db, []) == {}
    finally:
        await db.close()
