"""Reports are written by strangers (RFC 8460 §7): whatever markup they carry is shown
as text on every page, never run or parsed as HTML."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import httpx

from mtasts.tlsrpt.receive.decide import Channel, ReceiveSettings
from mtasts.tlsrpt.receive.intake import Arrival, Receiver
from mtasts.web.server import serving
from mtasts.web.settings import ListenAddress, WebSettings

SCRIPT = '<script>alert("x")</script>'


async def test_markup_in_a_report_is_text(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    report = {
        "organization-name": f"Evil {SCRIPT}",
        "date-range": {
            "start-datetime": "2026-11-19T00:00:00Z",
            "end-datetime": "2026-11-19T23:59:59Z",
        },
        "contact-info": f"x@evil.test {SCRIPT}",
        "report-id": f"id-{SCRIPT}",
        "policies": [
            {
                "policy": {
                    "policy-type": "sts",
                    "policy-string": ["version: STSv1", f"mode: {SCRIPT}", "mx: mx.evil.test"],
                    "policy-domain": "evil.test",
                    "mx-host": [f"'><img src=x onerror=alert(1)>{SCRIPT}"],
                },
                "summary": {
                    "total-successful-session-count": 5,
                    "total-failure-session-count": 1,
                },
                "failure-details": [
                    {
                        "result-type": "validation-failure",
                        "receiving-mx-hostname": "mx.evil.test",
                        "failed-session-count": 1,
                        "additional-information": f"</pre>{SCRIPT}",
                        "failure-reason-code": SCRIPT,
                    }
                ],
            }
        ],
    }
    receiver = await Receiver.open(url, ReceiveSettings(verify_dkim=False))
    try:
        at = datetime(2026, 11, 20, tzinfo=UTC)
        outcome = await receiver.ingest_report(
            json.dumps(report).encode(), Arrival(Channel.HTTPS, SCRIPT, at, SCRIPT)
        )
        assert outcome.report_pk is not None
    finally:
        await receiver.close()
    settings = WebSettings(listen=ListenAddress("127.0.0.1", 0), policy_timeout=0.2)
    async with serving(settings, url, today=lambda: date(2026, 11, 20)) as (server, state):
        state.live = None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            assert "<script>alert" not in (await client.get("/")).text  # no names there
            for path in (
                "/domain/evil.test",
                "/domain/evil.test?org=" + f"Evil {SCRIPT}",
                "/reports",
                f"/reports/{outcome.report_pk}",
            ):
                r = await client.get(path)
                assert r.status_code == 200, path
                assert "<script>alert" not in r.text, path
                assert "onerror=alert(1)>" not in r.text, path
                assert "&lt;script&gt;" in r.text, path
            api = (await client.get(f"/api/reports/{outcome.report_pk}")).json()
            assert api["report"]["organization"] == f"Evil {SCRIPT}"  # data kept as sent
