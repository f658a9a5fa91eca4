"""The JSON API and the HTTP surface against a real uvicorn server, on SQLite and on the
real PostgreSQL: numbers equal the store's own summaries (mtasts.tlsrpt.receive.received_query),
tenants see only their domains, authentication, security headers, read-only methods."""

from __future__ import annotations

import base64
from datetime import timedelta

import httpx
import pytest

from mtasts.tlsrpt.receive.summary import Counted

from .conftest import PASSWORD, TOKEN, Served
from .seed import CHECKED_AT, TODAY


def _basic(user: str, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


ADMIN = _basic("admin")
ALICE = _basic("alice")
BOB = _basic("bob")


def get(served: Served, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(served.url + path, headers=headers, timeout=30)


def _sum(days: list[object]) -> Counted:
    total = Counted()
    for d in days:
        total += d.sessions  # type: ignore[attr-defined]
    return total


def test_overview_numbers_equal_the_store(any_server: Served) -> None:
    body = get(any_server, "/api/domains", ADMIN).json()
    assert body["today"] == TODAY.isoformat()
    by_name = {d["domain"]: d for d in body["domains"]}
    assert set(by_name) == {"good.test", "other.test"}
    for name, row in by_name.items():
        for w in (7, 30, 90):
            c = _sum(any_server.store_days(name, TODAY - timedelta(days=w - 1), TODAY))
            got = row["windows"][str(w)]
            assert (got["successful"], got["failed"]) == (c.successful, c.failed), (name, w)
            assert got["success_rate"] == pytest.approx(
                100 * c.successful / (c.successful + c.failed)
            )
        assert len(row["spark_failure_rate"]) == 30
        assert row["last_report_day"] == TODAY.isoformat()
    # Microsoft's starttls-not-supported (5 per sts and per tlsa entry, 20 days) is the worst
    assert by_name["good.test"]["worst_result_type"] == "starttls-not-supported"
    assert by_name["other.test"]["worst_result_type"] is None
    # the newest `mtasts monitor` check, where there is one
    check = by_name["good.test"]["last_check"]
    assert (check["status"], check["checked_at"], check["conditions"]) == ("WARNING", CHECKED_AT, 1)
    assert by_name["other.test"]["last_check"] is None


def test_domain_numbers_equal_the_store(any_server: Served) -> None:
    since, until = TODAY - timedelta(days=29), TODAY
    body = get(any_server, f"/api/domains/good.test?since={since}&until={until}", ADMIN).json()
    store = any_server.store_days("good.test", since, until)
    total = _sum(store)
    assert (body["successful"], body["failed"]) == (total.successful, total.failed)
    by_day = {d.day: d for d in store}
    assert len(body["days"]) == 30
    for d in body["days"]:
        s = by_day[d["day"]].sessions
        assert (d["successful"], d["failed"]) == (s.successful, s.failed)
    expected: dict[str, int] = {}
    for d in store:
        for k, n in d.failures_by_result_type.items():
            expected[k] = expected.get(k, 0) + n
    assert body["failures"]["result"] == expected
    orgs: dict[str, int] = {}
    for d in store:
        for k, n in d.failures_by_organization.items():
            orgs[k] = orgs.get(k, 0) + n
    assert body["failures"]["org"] == orgs
    assert body["failures"]["mx"] == {
        "mx2.good.test (198.51.100.2)": 200,
        "mx1.good.test (198.51.100.1)": 55,
    }
    assert body["failures"]["sender"]["-"] == 100  # Microsoft leaves it out on odd days


def test_filters_and_ranges_change_the_numbers(any_server: Served) -> None:
    week = get(any_server, "/api/domains/good.test?days=7", ADMIN).json()
    assert len(week["days"]) == 7
    assert week["since"] == str(TODAY - timedelta(days=6))
    c = _sum(any_server.store_days("good.test", TODAY - timedelta(days=6), TODAY))
    assert week["successful"] == c.successful
    yahoo = get(any_server, "/api/domains/good.test?org=Yahoo", ADMIN).json()
    assert yahoo["successful"] == 10 * 50
    assert yahoo["failed"] == 10
    assert yahoo["failures"]["org"] == {"Yahoo": 10}
    expired = get(any_server, "/api/domains/good.test?result=certificate-expired", ADMIN).json()
    assert expired["failures"]["result"] == {"certificate-expired": 45}
    assert sum(d["failed"] for d in expired["days"]) == 45  # the failed series follows
    nosender = get(any_server, "/api/domains/good.test?sender=-", ADMIN).json()
    assert nosender["failures"]["sender"] == {"-": 100}
    days = get(any_server, "/api/domains/good.test/days?days=3", ADMIN).json()
    assert [d["day"] for d in days] == [str(TODAY - timedelta(days=i)) for i in (2, 1, 0)]


def test_reported_policy_beside_the_published_one(any_server: Served) -> None:
    body = get(any_server, "/api/domains/good.test", ADMIN).json()
    pub = body["published_policy"]
    assert pub["status"] == "sts"
    assert pub["mode"] == "enforce"
    assert pub["record_id"] == "1"
    assert pub["mx"] == ["mx1.good.test"]
    sts = {p["mode"]: p for p in body["reported_policies"] if p["policy_type"] == "sts"}
    assert sts["enforce"]["differs_from_published"] == []
    assert sts["testing"]["differs_from_published"] == ["mode"]
    assert sts["testing"]["organizations"] == ["Yahoo"]
    other = get(any_server, "/api/domains/other.test", ADMIN).json()
    assert other["published_policy"]["status"] == "none"  # the lab publishes nothing


def test_reporters_that_stopped(any_server: Served) -> None:
    body = get(any_server, "/api/domains/good.test", ADMIN).json()
    state = {r["organization"]: r for r in body["reporters"]}
    assert state["Microsoft Corporation"]["stopped"] is True
    assert state["Microsoft Corporation"]["silent_days"] == 10
    assert state["Google Inc."]["stopped"] is False
    assert state["Yahoo"]["stopped"] is False  # every third day, last 2 days ago


def test_reports_list_and_detail(any_server: Served) -> None:
    body = get(any_server, "/api/reports", ADMIN).json()
    assert body["total"] == 90
    assert len(body["reports"]) == 50
    assert body["pages"] == 2
    newest = body["reports"][0]
    assert newest["day"] == TODAY.isoformat()
    assert newest["dkim_result"] == "none"
    page2 = get(any_server, "/api/reports?page=2", ADMIN).json()
    assert len(page2["reports"]) == 40
    ms = get(any_server, "/api/reports?org=Microsoft+Corporation", ADMIN).json()
    assert ms["total"] == 20
    detail = get(any_server, f"/api/reports/{ms['reports'][0]['pk']}", ADMIN).json()
    assert detail["json"]["organization-name"] == "Microsoft Corporation"
    assert [p["policy_type"] for p in detail["policies"]] == ["sts", "tlsa"]
    assert detail["arrivals"][0]["channel"] == "https"
    assert detail["arrivals"][0]["source"] == "192.0.2.99"


def test_tenants_see_only_their_domains(any_server: Served) -> None:
    alice = get(any_server, "/api/domains", ALICE).json()
    assert [d["domain"] for d in alice["domains"]] == ["good.test"]
    bob = get(any_server, "/api/domains", BOB).json()
    assert [d["domain"] for d in bob["domains"]] == ["other.test"]
    assert get(any_server, "/api/domains/other.test", ALICE).status_code == 404
    assert get(any_server, "/domain/other.test", ALICE).status_code == 404
    assert get(any_server, "/api/domains/good.test", BOB).status_code == 404
    # the same 404 as for a domain nobody has: no hint that it exists
    assert get(any_server, "/api/domains/nowhere.test", ALICE).status_code == 404
    reports = get(any_server, "/api/reports", BOB).json()
    assert reports["total"] == 30
    assert {tuple(r["domains"]) for r in reports["reports"]} == {("other.test",)}
    pk = get(any_server, "/api/reports?domain=good.test", ALICE).json()["reports"][0]["pk"]
    assert get(any_server, f"/api/reports/{pk}", ALICE).status_code == 200
    assert get(any_server, f"/api/reports/{pk}", BOB).status_code == 404
    assert get(any_server, f"/reports/{pk}", BOB).status_code == 404
    assert get(any_server, "/api/reports?domain=good.test", BOB).status_code == 404
    assert get(any_server, "/api/reports?status=quarantined", BOB).status_code == 404
    assert "other.test" not in get(any_server, "/reports", ALICE).text
    # a token for good.test only (Grafana)
    token = {"Authorization": f"Bearer {TOKEN}"}
    assert [d["domain"] for d in get(any_server, "/api/domains", token).json()["domains"]] == [
        "good.test"
    ]


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {"Authorization": "Basic " + base64.b64encode(b"alice:wrong").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"nobody:" + PASSWORD.encode()).decode()},
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Digest username=alice"},
    ],
)
def test_authentication_is_required(any_server: Served, headers: dict[str, str] | None) -> None:
    for path in ("/", "/api/domains", "/domain/good.test", "/reports", "/static/app.js"):
        r = get(any_server, path, headers)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"].startswith("Basic realm=")
        assert "good.test" not in r.text
    assert get(any_server, "/healthz", headers).status_code == 200


def test_read_only_and_security_headers(any_server: Served) -> None:
    r = get(any_server, "/", ADMIN)
    h = r.headers
    assert h["content-security-policy"].startswith("default-src 'self'")
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert "unsafe-inline" not in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY"
    assert h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert h["cache-control"] == "no-store"
    assert "server" not in h
    assert "<script>" not in r.text
    assert " style=" not in r.text
    assert "onclick" not in r.text
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        resp = httpx.request(method, any_server.url + "/api/domains", headers=ADMIN)
        assert resp.status_code == 405
        assert resp.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/domains/good.test?since=2026-13-01", 400),
        ("/api/domains/good.test?since=2026-11-20&until=2026-11-01", 400),
        ("/api/domains/good.test?days=0", 400),
        ("/api/domains/good.test?days=100000", 400),
        ("/api/domains/good.test?since=2020-01-01&until=2026-11-20", 400),
        ("/api/domains/good.test?org=" + "x" * 300, 400),
        ("/api/domains/..%2F..%2Fetc", 404),
        ("/api/domains/xn--", 404),
        ("/api/reports/abc", 404),
        ("/api/reports/99999999999999999999999", 404),
        ("/api/reports?page=0", 400),
        ("/api/reports?status=deleted", 400),
        ("/api/reports?domain=-bad-", 400),
    ],
)
def test_bad_input_is_answered_clearly(any_server: Served, path: str, status: int) -> None:
    r = get(any_server, path, ADMIN)
    assert r.status_code == status
    assert r.json()["error"]
