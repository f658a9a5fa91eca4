"""One evaluation of the rules: read the observations, fetch the published policies,
run :mod:`mtasts.alerts.rules`, and :func:`~mtasts.alerts.api.sync` the result as
source ``rules``.

I/O. The domains evaluated are ``[alerts] domains``, else ``[receive] owned_domains``,
else every domain with a report in the baseline window, plus the domains of the rules'
open conditions (so a domain that fell silent is still looked at, and its conditions can
clear). The published policy of each domain with reported sts policies is fetched with
the project's resolver (a fresh in-memory cache: always the policy served now), each
lookup bounded by ``fetch_timeout``; a lookup that fails leaves that domain's
``policy-mismatch`` condition as it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, timedelta

from mtasts.alerts import queries
from mtasts.alerts.api import SyncResult, sync
from mtasts.alerts.channels import Notifier
from mtasts.alerts.model import is_domain
from mtasts.alerts.rules import Observations, Published, evaluate, latest_policies
from mtasts.alerts.settings import AlertSettings
from mtasts.alerts.store import AlertStore
from mtasts.config import CacheSettings, Settings
from mtasts.store.engine import Database
from mtasts.tlsrpt.receive.received_query import day_summaries

log = logging.getLogger(__name__)
SOURCE = "rules"


async def scope(
    db: Database, store: AlertStore, settings: AlertSettings, today: date, owned: Iterable[str]
) -> tuple[str, ...]:
    """The domains this evaluation covers (see the module docstring)."""
    chosen = set(settings.domains) or set(owned)
    if not chosen:
        chosen = await queries.domains_since(db, today - timedelta(days=settings.baseline_days))
    chosen |= {o.condition.domain for o in await store.open_conditions(source=SOURCE)}
    usable = {d for d in chosen if is_domain(d)}
    if usable != chosen:  # a sender's report can name anything; one bad name must not
        # stop the alerts of every other domain
        log.warning(
            "alerts: not a domain name, skipped: %s", ", ".join(sorted(chosen - usable))[:500]
        )
    return tuple(sorted(usable))


async def observe(
    db: Database, settings: AlertSettings, today: date, domains: tuple[str, ...]
) -> Observations:
    """Everything the rules read, for ``domains``."""
    s = settings
    recent = today - timedelta(days=s.failure_days - 1)
    types_since = today - timedelta(days=s.new_result_type_days + s.baseline_days - 1)
    summaries = [
        d for d in await day_summaries(db, since=recent, until=today) if d.domain in set(domains)
    ]
    return Observations(
        today=today,
        domains=domains,
        summaries=tuple(summaries),
        type_days=await queries.type_days(db, types_since, domains),
        reporter_days=await queries.reporter_days(
            db, today - timedelta(days=s.baseline_days), domains
        ),
        last_day=await queries.last_days(db, domains),
        reported_policies=latest_policies(await queries.sts_policies(db, recent, domains)),
    )


async def published_policies(
    domains: Iterable[str], base: Settings, *, per_lookup: float
) -> dict[str, Published]:
    """domain -> the policy it publishes now (``unknown`` when the lookup failed)."""
    from mtasts.sts.lookup import LookupStatus
    from mtasts.sts.resolver import Resolver

    names = sorted(set(domains))
    if not names:
        return {}
    resolver = await Resolver.open(replace(base, cache=CacheSettings("memory:")))

    async def one(name: str) -> Published:
        try:
            found = await asyncio.wait_for(resolver.lookup(name), per_lookup)
        except TimeoutError:
            return Published("unknown", detail=f"no answer within {per_lookup:g} s")
        except Exception as exc:  # the lookup's own failure: tell, keep the condition
            return Published("unknown", detail=f"{type(exc).__name__}: {exc}")
        if found.status is LookupStatus.STS and found.policy is not None:
            return Published("sts", found.policy)
        if found.status is LookupStatus.NO_POLICY:
            return Published("none", detail=found.detail)
        return Published("unknown", detail=found.detail or str(found.status))

    try:
        answers = await asyncio.gather(*(one(n) for n in names))
    finally:
        await resolver.aclose()
    return dict(zip(names, answers, strict=True))


async def run_rules(
    store: AlertStore,
    settings: AlertSettings,
    *,
    today: date,
    base: Settings,
    owned: Iterable[str] = (),
    channels: Mapping[str, Notifier] | None = None,
    ca_file: str | None = None,
    fetch_timeout: float = 30.0,
    budget: float = 30.0,
    now: float | None = None,
) -> SyncResult:
    """Evaluate every enabled rule and sync the conditions (source ``rules``)."""
    db = store.db
    domains = await scope(db, store, settings, today, owned)
    obs = await observe(db, settings, today, domains)
    if "policy-mismatch" in settings.rules and obs.reported_policies:
        published = await published_policies(obs.reported_policies, base, per_lookup=fetch_timeout)
        obs = replace(obs, published=published)
    conditions, keep = evaluate(obs, settings)
    return await sync(
        store,
        SOURCE,
        conditions,
        domains=domains,
        keep=keep,
        hold=settings.resolve_after_minutes * 60,
        settings=settings,
        channels=channels,
        ca_file=ca_file,
        budget=budget,
        now=now,
    )
