"""``mtasts advise`` as a Python API: check the domain live and read its reports at once,
then decide (:func:`mtasts.monitor.advise.advise`)::

    advice = await advise_domain("sqlite:////var/lib/mtasts/tlsrpt.db", "example.com")
    print(advice.verdict, advice.reasons)

I/O module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from mtasts.check.runner import Target, check_domain
from mtasts.clock import utc_now
from mtasts.monitor.advise import Advice, advise, candidate_policy
from mtasts.monitor.evidence import Criteria
from mtasts.monitor.reported import read_evidence
from mtasts.monitor.snapshot import snapshot_of
from mtasts.names import normalize_domain
from mtasts.store.engine import open_database
from mtasts.store.migrate import upgrade
from mtasts.sts.policy import Mode


async def advise_domain(
    store_url: str,
    domain: str,
    *,
    mode: Mode | None = None,
    mx: Sequence[str] = (),
    max_age: int | None = None,
    criteria: Criteria | None = None,
    target: Target | None = None,
    now: datetime | None = None,
    schema: str | None = None,
) -> Advice:
    """The advice for ``domain``: reports of the last ``criteria.days`` UTC days (today
    included) and one live check. Raises PolicyError for an impossible candidate (no
    policy published and no ``mx``), DomainNameError for a bad name, and the store's
    errors."""
    criteria = criteria or Criteria()
    target = target or Target()
    name = normalize_domain(domain)
    when = now or utc_now()
    until: date = when.astimezone(UTC).date()
    since = until - timedelta(days=criteria.days - 1)
    db = open_database(store_url, schema=schema)
    try:
        await upgrade(db)
        evidence, report = await asyncio.gather(
            read_evidence(db, name, since, until), check_domain(name, target, now=when)
        )
    finally:
        await db.close()
    live = snapshot_of(report)
    candidate = candidate_policy(live.policy, mode=mode, mx=mx, max_age=max_age)
    return advise(evidence, live, candidate, criteria=criteria, now=when)
