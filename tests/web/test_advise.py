"""The advise page and /api/domains/NAME/advise (issue 13) against a real uvicorn server
on SQLite and PostgreSQL: the verdict, reasons, failures and steps equal
mtasts.monitor.advise's for the same reports and the same published policy; tenants see
only their domains' advice; nothing published gives CANNOT TELL with the reason."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from html import unescape

from mtasts.check.finding import Status
from mtasts.monitor.advise import Verdict, advise, candidate_policy
from mtasts.monitor.evidence import Criteria, Evidence
from mtasts.monitor.judge import Impact
from mtasts.monitor.reported import read_evidence
from mtasts.monitor.snapshot import Snapshot
from mtasts.store.engine import open_database
from mtasts.web.advice import NOT_RUN, snapshot_from

from .conftest import Served
from .seed import TODAY
from .test_api import ADMIN, ALICE, BOB, get


def _expected(served: Served, published: dict[str, object]) -> dict[str, object]:
    """monitor.advise's own answer, the evidence read from the store directly."""
    criteria = Criteria()
    since = TODAY - timedelta(days=criteria.days - 1)

    async def read() -> Evidence:
        db = open_database(served.store_url, schema=served.schema)
        try:
            return await read_evidence(db, "good.test", since, TODAY)
        finally:
            await db.close()

    evidence = asyncio.run(read())
    live = Snapshot(
        domain="good.test",
        status=Status.UNKNOWN,
        checked=False,
        mx_known=False,
        sts_record=f"v=STSv1; id={published['record_id']}",
        policy_text=str(published["policy_text"]),
        problems=(NOT_RUN.format(domain="good.test"),),
    )
    candidate = candidate_policy(live.policy)
    out = advise(evidence, live, candidate, criteria=criteria, now=datetime.now(UTC))
    return out.to_json()


def test_advice_equals_monitor_advise(any_server: Served) -> None:
    published = get(any_server, "/api/domains/good.test", ADMIN).json()["published_policy"]
    assert published["status"] == "sts"  # the lab publishes good.test (enforce, mx1)
    want = _expected(any_server, published)
    got = get(any_server, "/api/domains/good.test/advise", ALICE).json()
    assert got["live_checks_run"] is False
    assert (got["since"], got["until"]) == ((TODAY - timedelta(days=13)).isoformat(), str(TODAY))
    for key in (
        "verdict",
        "exit_code",
        "reasons",
        "notes",
        "candidate",
        "data",
        "failures",
        "blocked_sessions",
        "live_checks",
        "steps",
        "exposure",
    ):
        assert got[key] == want[key], key
    # the seeded certificate-expired failures at mx1.good.test would block mail
    assert got["verdict"] == Verdict.NOT_READY.value
    blocking = [f for f in got["failures"] if f["impact"] == Impact.BLOCKING.value]
    assert blocking
    assert {f["mx_host"] for f in blocking} >= {"mx1.good.test"}
    assert [c["outcome"] for c in got["live_checks"]] == ["unknown"]

    page = get(any_server, "/domain/good.test/advise", ALICE)
    assert page.status_code == 200
    assert "content-security-policy" in page.headers
    html = page.text
    verdict = re.search(r'id="verdict">([^<]*)<', html)
    assert verdict is not None
    assert verdict.group(1) == want["verdict"]
    text = unescape(html)
    for reason in want["reasons"]:  # type: ignore[attr-defined]
        assert reason in text
    assert html.count('class="impact-blocking"') == len(blocking)
    assert "mtasts advise good.test" in text  # where the live checks run
    # the domain page links here
    assert 'href="/domain/good.test/advise"' in get(any_server, "/domain/good.test", ALICE).text


def test_nothing_published_cannot_tell(any_server: Served) -> None:
    got = get(any_server, "/api/domains/other.test/advise", BOB)
    assert got.status_code == 200
    body = got.json()
    assert body["verdict"] == "CANNOT TELL"
    assert "--mx" in body["error"]
    page = get(any_server, "/domain/other.test/advise", BOB).text
    assert 'id="verdict">CANNOT TELL<' in page
    assert "--mx" in page


def test_tenants_see_only_their_advice(any_server: Served) -> None:
    for path in ("/api/domains/{}/advise", "/domain/{}/advise"):
        assert get(any_server, path.format("other.test"), ALICE).status_code == 404
        assert get(any_server, path.format("good.test"), BOB).status_code == 404
        assert get(any_server, path.format("good.test")).status_code == 401
        assert get(any_server, path.format("nowhere.test"), ADMIN).status_code == 404
    # the same answer as for a domain without reports: no hint that it exists
    hidden = get(any_server, "/api/domains/other.test/advise", ALICE).json()
    absent = get(any_server, "/api/domains/nowhere.test/advise", ALICE).json()
    assert hidden["error"].replace("other", "X") == absent["error"].replace("nowhere", "X")


def test_snapshot_from_published() -> None:
    s = snapshot_from(
        "a.test",
        "sts",
        "20260101",
        "version: STSv1\nmode: testing\nmx: mx.a.test\nmax_age: 86400\n",
    )
    assert (s.checked, s.mx_known, s.sts_id) == (False, False, "20260101")
    assert s.policy is not None
    assert s.policy.mode.value == "testing"
    assert snapshot_from("a.test", "none", None, None).sts_absent
    e = snapshot_from("a.test", "error", "x1", "garbage")
    assert (e.sts_unknown, e.policy_text, e.policy) == (True, None, None)
