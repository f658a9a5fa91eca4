"""The Python API of ``tlsrpt received``: the same values the command prints.

days = await received("sqlite:///var/lib/mtasts/tlsrpt.db", domain="example.com",
                      since=date(2026, 11, 1), until=date(2026, 11, 30))
for d in days:
    print(d.day, d.sessions.failed, d.failures_by_result_type)
"""

from __future__ import annotations

from datetime import date

from mtasts.tlsrpt.receive.received import ReceivedStore
from mtasts.tlsrpt.receive.received_query import day_summaries, report_list
from mtasts.tlsrpt.receive.summary import DaySummary, ReceivedReport


async def received(
    store_url: str,
    *,
    domain: str | None = None,
    since: date | None = None,
    until: date | None = None,
    schema: str | None = None,
) -> list[DaySummary]:
    """Per policy domain and UTC day (see :func:`day_summaries`)."""
    store = ReceivedStore.open(store_url, schema=schema)
    try:
        await store.upgrade()
        return await day_summaries(store.db, domain=domain, since=since, until=until)
    finally:
        await store.close()


async def received_reports(
    store_url: str,
    *,
    domain: str | None = None,
    since: date | None = None,
    until: date | None = None,
    quarantined: bool = False,
    schema: str | None = None,
) -> list[ReceivedReport]:
    """The stored (or quarantined) reports, with policies, DKIM, repairs and arrivals."""
    store = ReceivedStore.open(store_url, schema=schema)
    try:
        await store.upgrade()
        return await report_list(
            store.db, domain=domain, since=since, until=until, quarantined=quarantined
        )
    finally:
        await store.close()
