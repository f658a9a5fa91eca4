"""/certificates and /api/certificates (issue 14) against a real uvicorn server: the rows
equal `mtasts acme status --json` for the same state directory (seeded with the ACME
store's own writers), expiring and failing names are flagged, a tenant sees only
mta-sts.<its domains>, and the page is GET-only with the dashboard's CSP."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trustme
from tests.commands import MTASTS

from mtasts.acme.store import NameStatus, StateDir
from mtasts.web.guard import CSP
from mtasts.web.settings import WebSettings

from .conftest import LOOPBACK, TENANTS, Served, start_server, stop_server
from .test_api import ADMIN, ALICE, BOB, get


def _stored(state: StateDir, name: str, *, days_left: float, age: float) -> None:
    now = dt.datetime.now(dt.UTC)
    cert = trustme.CA().issue_cert(
        name, not_before=now - dt.timedelta(days=age), not_after=now + dt.timedelta(days=days_left)
    )
    pem = cert.private_key_pem.bytes() + b"".join(b.bytes() for b in cert.cert_chain_pems)
    state.write_cert(name, pem)


@pytest.fixture(scope="module")
def acme_state(sqlite_dir: Path) -> Path:
    root = sqlite_dir / "acme"
    state = StateDir(root)
    _stored(state, "mta-sts.good.test", days_left=80, age=10)  # valid
    _stored(state, "mta-sts.other.test", days_left=2, age=88)  # expiring, renewals failing
    state.write_status(
        NameStatus("mta-sts.other.test", failures=3, last_error="CA said: rateLimited")
    )
    state.write_status(  # first issuance failing: no certificate yet
        NameStatus("mta-sts.third.test", failures=1, last_error="CAA forbids the CA")
    )
    return root


@pytest.fixture(scope="module")
def cert_server(sqlite_dir: Path, acme_state: Path) -> Iterator[Served]:
    settings = WebSettings(listen=LOOPBACK, users=TENANTS, acme_state_dir=acme_state)
    t = start_server(f"sqlite:///{sqlite_dir / f'{uuid.uuid4().hex}.db'}", None, settings)
    try:
        yield t.served
    finally:
        stop_server(t)


def _cli_status(acme_state: Path, tmp_path: Path) -> list[dict[str, object]]:
    config = tmp_path / "mtasts.toml"
    config.write_text(f'[acme]\nstate_dir = "{acme_state}"\n')
    env = {**os.environ, "MTASTS_CONFIG": str(config)}
    proc = subprocess.run(
        [*MTASTS, "acme", "status", "--json"], env=env, capture_output=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr  # one expiring: CRITICAL
    rows: list[dict[str, object]] = json.loads(proc.stdout)
    return rows


def test_rows_equal_acme_status(cert_server: Served, acme_state: Path, tmp_path: Path) -> None:
    expected = _cli_status(acme_state, tmp_path)
    response = get(cert_server, "/api/certificates", ADMIN)
    assert response.status_code == 200
    rows = response.json()
    days = {r["name"]: r.pop("days_left") for r in rows}
    assert rows == expected
    assert [r["state"] for r in rows] == ["valid", "expiring", "missing"]
    assert 79 < days["mta-sts.good.test"] <= 80
    assert 1 < days["mta-sts.other.test"] <= 2
    assert days["mta-sts.third.test"] is None

    page = get(cert_server, "/certificates", ADMIN)
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP
    html = page.text
    for r in expected:
        assert f'data-name="{r["name"]}" data-state="{r["state"]}"' in html
    assert 'data-name="mta-sts.good.test" data-state="valid" class=""' in html
    assert 'data-name="mta-sts.other.test" data-state="expiring" class="flagged"' in html
    assert 'data-name="mta-sts.third.test" data-state="missing" class="flagged"' in html
    assert "CA said: rateLimited" in html
    assert "CAA forbids the CA" in html
    assert 'href="/certificates"' in get(cert_server, "/", ADMIN).text


def test_tenants_see_only_their_policy_hosts(cert_server: Served) -> None:
    alice = get(cert_server, "/api/certificates", ALICE).json()
    assert [r["name"] for r in alice] == ["mta-sts.good.test"]
    bob = get(cert_server, "/api/certificates", BOB).json()
    assert [r["name"] for r in bob] == ["mta-sts.other.test"]
    page = get(cert_server, "/certificates", ALICE).text
    assert "mta-sts.good.test" in page
    assert "other.test" not in page
    assert "third.test" not in page
    assert get(cert_server, "/api/certificates").status_code == 401


def test_read_only(cert_server: Served) -> None:
    for path in ("/certificates", "/api/certificates"):
        response = httpx.post(cert_server.url + path, headers=ADMIN, timeout=30)
        assert response.status_code == 405


def test_not_configured(open_server: Served) -> None:
    response = get(open_server, "/api/certificates")
    assert response.status_code == 404
    assert "acme_state_dir" in response.json()["error"]
    assert 'href="/certificates"' not in get(open_server, "/").text
