"""A store seeded with known reports for the dashboard tests.

Two tenants' domains: ``good.test`` (published in the lab: enforce, mx1.good.test) and
``other.test`` (nothing published). Reporters over the 30 days to TODAY:

- "Google Inc.": every day for good.test, 1,000 + day successful sessions, and on even
  days 3 ``certificate-expired`` failures at mx1.good.test from 192.0.2.10;
- "Microsoft Corporation": an ``sts`` and a ``tlsa`` entry for the same sessions (the
  day counts them once), 200 successful, 5 ``starttls-not-supported`` at mx2.good.test
  from 192.0.2.20 (no sending IP on odd days, as Microsoft does), stops 10 days before
  TODAY (a reporter that stopped);
- "Yahoo": every third day, policy-string with ``mode: testing`` (differs from the
  published enforce), 50 successful, 1 ``validation-failure``;
- "Google Inc." for other.test: 500 successful a day, no failures;

and two `mtasts monitor` checks of good.test, the newest WARNING with one condition.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert

from mtasts.store.monitor_schema import monitor_checks
from mtasts.tlsrpt.receive.decide import Channel, ReceiveSettings
from mtasts.tlsrpt.receive.intake import Arrival, Receiver

TODAY = date(2026, 11, 20)
CHECKED_AT = int(datetime(2026, 11, 20, 6, 30, tzinfo=UTC).timestamp())
DAYS = 30


def _policy(
    domain: str, kind: str, mode: str, ok: int, failures: list[dict[str, object]]
) -> dict[str, object]:
    strings = {
        "sts": ["version: STSv1", f"mode: {mode}", f"mx: mx1.{domain}", "max_age: 86400"],
        "tlsa": ["3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"],
    }[kind]
    return {
        "policy": {
            "policy-type": kind,
            "policy-string": strings,
            "policy-domain": domain,
            "mx-host": [f"mx1.{domain}"] if kind == "sts" else [],
        },
        "summary": {
            "total-successful-session-count": ok,
            "total-failure-session-count": sum(int(f["failed-session-count"]) for f in failures),  # type: ignore[call-overload]
        },
        "failure-details": failures,
    }


def _failure(kind: str, n: int, mx: str, rip: str, ip: str | None) -> dict[str, object]:
    out: dict[str, object] = {
        "result-type": kind,
        "receiving-mx-hostname": mx,
        "receiving-ip": rip,
        "failed-session-count": n,
    }
    if ip is not None:
        out["sending-mta-ip"] = ip
    return out


def _report(org: str, day: date, rid: str, policies: list[dict[str, object]]) -> bytes:
    d = day.isoformat()
    return json.dumps(
        {
            "organization-name": org,
            "date-range": {"start-datetime": f"{d}T00:00:00Z", "end-datetime": f"{d}T23:59:59Z"},
            "contact-info": f"tlsrpt@{org.split()[0].lower()}.example",
            "report-id": rid,
            "policies": policies,
        }
    ).encode()


def reports(today: date = TODAY) -> list[bytes]:
    out = []
    for i in range(DAYS):
        day = today - timedelta(days=DAYS - 1 - i)
        fails = (
            [_failure("certificate-expired", 3, "mx1.good.test", "198.51.100.1", "192.0.2.10")]
            if i % 2 == 0
            else []
        )
        out.append(
            _report(
                "Google Inc.",
                day,
                f"g-{i}",
                [_policy("good.test", "sts", "enforce", 1000 + i, fails)],
            )
        )
        out.append(
            _report(
                "Google Inc.", day, f"go-{i}", [_policy("other.test", "sts", "enforce", 500, [])]
            )
        )
        if day <= today - timedelta(days=10):
            ms = [
                _failure(
                    "starttls-not-supported",
                    5,
                    "mx2.good.test",
                    "198.51.100.2",
                    "192.0.2.20" if i % 2 == 0 else None,
                )
            ]
            out.append(
                _report(
                    "Microsoft Corporation",
                    day,
                    f"m-{i}",
                    [
                        _policy("good.test", "sts", "enforce", 200, ms),
                        _policy("good.test", "tlsa", "enforce", 200, ms),
                    ],
                )
            )
        if i % 3 == 0:
            y = [_failure("validation-failure", 1, "mx1.good.test", "198.51.100.1", "192.0.2.30")]
            out.append(
                _report("Yahoo", day, f"y-{i}", [_policy("good.test", "sts", "testing", 50, y)])
            )
    return out


async def seed(url: str, schema: str | None = None) -> None:
    receiver = await Receiver.open(
        url,
        ReceiveSettings(verify_dkim=False),
        clock=lambda: datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp(),
        schema=schema,
    )
    try:
        at = datetime(2026, 11, 20, 12, tzinfo=UTC)
        await receiver.ingest_many(
            [
                (raw, Arrival(Channel.HTTPS, "192.0.2.99", at, "application/tlsrpt+json"))
                for raw in reports()
            ]
        )
        # `mtasts monitor`'s newest check of good.test (its history, migration 0004)
        for checked_at, status in ((CHECKED_AT - 86400, "OK"), (CHECKED_AT, "WARNING")):
            await receiver.store.db.execute(
                insert(monitor_checks).values(
                    domain="good.test",
                    checked_at=checked_at,
                    status=status,
                    snapshot="{}",
                    findings="[]",
                    conditions='[{"kind": "cert-expiring"}]',
                )
            )
    finally:
        await receiver.close()
