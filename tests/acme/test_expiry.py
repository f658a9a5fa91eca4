"""Certificates near or past expiry: the alert (log + metric), and replacement at start."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import trustme
from acme_helpers import wait_for

from mtasts.acme.store import StateDir
from mtasts.alerts.store import AlertStore

pytestmark = [pytest.mark.lab, pytest.mark.peer]


async def _open(url: str) -> list:
    store = AlertStore.open(url)
    try:
        return await store.open_conditions(source="acme")
    finally:
        await store.close()


async def _history(url: str) -> list:
    store = AlertStore.open(url)
    try:
        return await store.history()
    finally:
        await store.close()


def _stored(tmp_path, name: str, *, days_left: float) -> None:
    """A certificate for ``name`` in the state directory, expiring in ``days_left``."""
    now = dt.datetime.now(dt.UTC)
    cert = trustme.CA().issue_cert(
        name, not_before=now - dt.timedelta(days=80), not_after=now + dt.timedelta(days=days_left)
    )
    pem = cert.private_key_pem.bytes() + b"".join(b.bytes() for b in cert.cert_chain_pems)
    StateDir(tmp_path / "state").write_cert(name, pem)


async def test_expiry_near_without_renewal_raises_the_alert(acme_host, tmp_path, caplog) -> None:
    """The CA is down and the certificate expires in 2 days (alert_days = 10): the stored
    certificate is still served, an ERROR says so once, the state metric says expiring."""
    name = "mta-sts.near.test"
    _stored(tmp_path, name, days_left=2)
    store = f"sqlite:///{tmp_path}/tlsrpt.db"
    with caplog.at_level(logging.INFO, "mtasts.acme"):
        host = await acme_host(("near.test",), start_pebble=False, alerts_store=store)
        await wait_for(lambda: host.manager.status[name].failures >= 2, 10)
        # ... and the condition is raised through mtasts.alerts (source acme)
        await wait_for(lambda: host.manager._synced, 10)
    (condition,) = await _open(store)
    assert condition.condition.key == "acme.certificate:near.test:mta-sts.near.test"
    assert condition.condition.severity.value == "critical"
    assert "expires on" in condition.condition.summary
    alerts = [r for r in caplog.records if r.levelno == logging.ERROR and "ALERT" in r.message]
    assert len(alerts) == 1, [r.message for r in alerts]
    assert "mta-sts.near.test expires on" in alerts[0].message
    assert "cannot reach the CA" in host.manager.status[name].last_error
    assert host.sample("mtasts_acme_certificate_state", name=name, state="expiring") == 1
    assert host.sample("mtasts_acme_alerts_total", name=name, state="expiring") == 1
    # the old certificate is still what senders get while renewal keeps failing
    assert name in host.manager.certs


async def test_expired_certificate_is_replaced_at_start(acme_host, tmp_path, caplog) -> None:
    """An expired certificate in the state directory (the service was off for months)
    raises the alert and is replaced at once."""
    name = "mta-sts.old.test"
    _stored(tmp_path, name, days_left=-1)
    with caplog.at_level(logging.INFO, "mtasts.acme"):
        host = await acme_host(("old.test",))
        stale = host.manager.certs[name]
        await wait_for(
            lambda: host.manager.certs[name] is not stale, 20, lambda: host.diagnose(name)
        )
    assert any("mta-sts.old.test expired on" in r.message for r in caplog.records)
    cert, _ = await host.fetch(name)
    assert cert.not_valid_after_utc > dt.datetime.now(dt.UTC)
    assert host.sample("mtasts_acme_certificate_state", name=name, state="valid") == 1
