"""What the dashboard shows, read for one request: the request's parameters checked
(domain, day range, filters, page; :class:`BadRequest` and :class:`NotFound` carry what
is wrong) and the store, the live policies, ``mtasts advise`` and the ACME state read
under the user's domains. The pages (HTML) and the API (JSON) of :mod:`mtasts.web.app`
render the same data.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson
from starlette.requests import Request

from mtasts.acme.settings import AcmeSettings
from mtasts.acme.status import status_rows
from mtasts.acme.store import StateDir
from mtasts.clock import UtcClock, utc_now, utc_today
from mtasts.errors import MtastsError
from mtasts.monitor.advise import advise, candidate_policy
from mtasts.monitor.evidence import Criteria
from mtasts.monitor.reported import read_evidence
from mtasts.names import normalize_domain
from mtasts.rfcnames import policy_host
from mtasts.settings.tree import current
from mtasts.store.engine import Database
from mtasts.web import queries as q
from mtasts.web import views
from mtasts.web.access import Authenticator
from mtasts.web.advice import snapshot_from
from mtasts.web.livepolicy import LivePolicies, Published
from mtasts.web.rawreport import report_json
from mtasts.web.settings import User, WebSettings

MAX_RANGE_DAYS = 400
DEFAULT_RANGE_DAYS = 30
PAGE_SIZE = 50
REPORTERS_LOOKBACK = 90

# The check history of `mtasts monitor` (issue "monitoring"): an awaitable giving, per
# domain, the status of its last check ({"status": ..., "at": ..., "summary": ...}).
# None until that history exists; the overview then shows "-".
CheckHistory = Callable[[Database, Collection[str] | None], Awaitable[dict[str, dict[str, Any]]]]


class BadRequest(Exception):
    pass


class NotFound(Exception):
    pass


@dataclass
class WebState:
    db: Database
    settings: WebSettings
    live: LivePolicies | None
    today: Callable[[], date] = utc_today
    checks: CheckHistory | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    auth: Authenticator | None = None
    clock: UtcClock = utc_now  # the instant advice and certificate ages are judged at


def allowed_domains(request: Request) -> frozenset[str] | None:
    """The domains this request may see; None: every domain."""
    user: User | None = request.scope.get("user")
    if user is None or user.sees_all:
        return None
    return user.domains


def _domain_param(request: Request, allowed: frozenset[str] | None) -> str:
    try:
        name = normalize_domain(request.path_params["domain"])
    except Exception:
        raise NotFound("no such domain") from None
    if allowed is not None and name not in allowed:
        # the same answer as for a domain without reports: no hint that it exists
        raise NotFound(f"no reports for {name}")
    return name


def _day(value: str | None, what: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{what}={value!r} is not a day: write YYYY-MM-DD") from None


def _range(request: Request, today: date, default_days: int) -> tuple[date, date]:
    until = _day(request.query_params.get("until"), "until") or today
    since = _day(request.query_params.get("since"), "since")
    if since is None:
        days = request.query_params.get("days")
        n = default_days
        if days:
            if not days.isdigit() or not 1 <= int(days) <= MAX_RANGE_DAYS:
                raise BadRequest(f"days={days!r}: a whole number from 1 to {MAX_RANGE_DAYS}")
            n = int(days)
        since = until - timedelta(days=n - 1)
    if since > until:
        raise BadRequest(f"since {since} is after until {until}")
    if (until - since).days >= MAX_RANGE_DAYS:
        raise BadRequest(f"a range covers at most {MAX_RANGE_DAYS} days")
    return since, until


def _filters(request: Request) -> q.Filters:
    values: dict[str, str] = {}
    for key in q.FAILURE_FILTERS:
        value = request.query_params.get(key)
        if value:
            if len(value) > 253:
                raise BadRequest(f"{key}: too long")
            values[key] = value
    return q.Filters(**values)


class Reader:
    """The data of every page and API answer (one request's reads share a snapshot)."""

    def __init__(self, state: WebState) -> None:
        self.state = state

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[Database]:
        async with self.state.lock, self.state.db.snapshot():
            yield self.state.db

    async def overview_data(self, allowed: frozenset[str] | None) -> list[views.DomainHealth]:
        today = self.state.today()
        since = today - timedelta(days=max(views.WINDOWS) - 1)
        async with self.reading() as db:
            last = await q.domain_last_days(db, allowed)
            rows = await q.sessions_by_day(db, allowed, since, today)
            worst = await q.result_type_totals(db, allowed, today - timedelta(days=29), today)
            checks = await self.state.checks(db, allowed) if self.state.checks else None
        return views.overview(today, last, rows, worst, checks)

    async def domain_data(self, request: Request) -> dict[str, Any]:
        allowed = allowed_domains(request)
        domain = _domain_param(request, allowed)
        since, until = _range(request, self.state.today(), DEFAULT_RANGE_DAYS)
        filters = _filters(request)
        async with self.reading() as db:
            last = await q.last_day(db, domain)
            if last is None:
                raise NotFound(f"no reports for {domain}")
            days, orgs = await q.domain_sessions(db, domain, since, until, filters.org)
            failures = await q.failure_breakdowns(db, domain, since, until, filters)
            policies = await q.reported_policies(db, domain, since, until)
            reporters = await q.reporters(
                db, domain, until - timedelta(days=REPORTERS_LOOKBACK - 1), until
            )
        view = views.domain_view(
            domain, since, until, days, orgs, failures, failure_filtered=filters.on_failures
        )
        published = await self.published(domain)
        return {
            "domain": domain,
            "view": view,
            "filters": filters,
            "last_report_day": last,
            "published": published,
            "reported": views.reported_policy_list(policies, published.fields, orjson.loads),
            "reporters": views.reporter_list(
                reporters, until, self.state.settings.stopped_after_days
            ),
        }

    async def advise_data(self, request: Request) -> dict[str, Any]:
        """``mtasts advise``'s decision over the received reports of the last
        ``Criteria().days`` days, the candidate being the published policy with mode
        enforce; the live checks are not run here (reported as unknown)."""
        allowed = allowed_domains(request)
        domain = _domain_param(request, allowed)
        criteria = Criteria()
        until = self.state.today()
        since = until - timedelta(days=criteria.days - 1)
        async with self.reading() as db:
            if await q.last_day(db, domain) is None:
                raise NotFound(f"no reports for {domain}")
            evidence = await read_evidence(db, domain, since, until)
        published = await self.published(domain)
        live = snapshot_from(domain, published.status, published.record_id, published.text)
        try:
            candidate = candidate_policy(live.policy)
        except MtastsError as exc:  # nothing valid published: no candidate to judge
            return {
                "domain": domain,
                "since": since,
                "until": until,
                "advice": None,
                "error": exc.message,
                "published": published,
            }
        advice = advise(evidence, live, candidate, criteria=criteria, now=self.state.clock())
        return {
            "domain": domain,
            "since": since,
            "until": until,
            "advice": advice,
            "error": None,
            "published": published,
        }

    async def published(self, domain: str) -> Published:
        if self.state.live is None:
            return Published(domain, "error", error="live policy fetching is off")
        return await self.state.live.get(domain)

    async def report_list_data(self, request: Request) -> dict[str, Any]:
        allowed = allowed_domains(request)
        domain = None
        if request.query_params.get("domain"):
            try:
                domain = normalize_domain(request.query_params["domain"])
            except Exception:
                raise BadRequest("domain: not a domain name") from None
        if domain is not None and allowed is not None and domain not in allowed:
            raise NotFound(f"no reports for {domain}")
        status = request.query_params.get("status") or "stored"
        if status not in ("stored", "quarantined"):
            raise BadRequest("status: stored or quarantined")
        if status == "quarantined" and allowed is not None:
            raise NotFound("quarantined reports are shown to users who see every domain")
        since = _day(request.query_params.get("since"), "since")
        until = _day(request.query_params.get("until"), "until")
        page_text = request.query_params.get("page") or "1"
        if not page_text.isdigit() or not 1 <= int(page_text) <= 100_000:
            raise BadRequest("page: a whole number from 1")
        page = int(page_text)
        org = request.query_params.get("org") or None
        async with self.reading() as db:
            total, rows = await q.report_page(
                db,
                allowed,
                domain=domain,
                org=org,
                since=since,
                until=until,
                status=status,
                offset=(page - 1) * PAGE_SIZE,
                limit=PAGE_SIZE,
            )
            domains = sorted(await q.domain_last_days(db, allowed))
        return {
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PAGE_SIZE)),
            "reports": rows,
            "domains": domains,
            "domain": domain,
            "status": status,
        }

    async def report_data(self, request: Request) -> dict[str, Any]:
        pk_text = request.path_params["pk"]
        if not pk_text.isdigit() or len(pk_text) > 18:
            raise NotFound("no such report")
        async with self.reading() as db:
            detail = await q.report_detail(db, int(pk_text), allowed_domains(request))
        if detail is None:
            raise NotFound("no such report")
        if detail["report"]["status"] != "stored" and allowed_domains(request) is not None:
            raise NotFound("no such report")
        raw = detail.pop("raw")
        text, why = report_json(raw) if raw is not None else (None, "the raw input was not kept")
        detail["json"] = text
        detail["json_error"] = why
        return detail

    async def certificates_data(self, request: Request) -> list[dict[str, Any]]:
        """``mtasts acme status --json``'s rows plus ``days_left``; a tenant sees only
        ``mta-sts.<its domains>``."""
        root = self.state.settings.acme_state_dir
        if root is None:
            raise NotFound("no certificates configured: set [web] acme_state_dir")
        allowed = allowed_domains(request)
        acme = current().section(AcmeSettings)
        now = self.state.clock()

        def read() -> list[dict[str, Any]]:
            return status_rows(
                StateDir(root, create=False),
                now,
                renew_fraction=acme.renew_fraction,
                alert_days=acme.alert_days,
            )

        try:
            rows = await asyncio.to_thread(read)
        except (MtastsError, OSError, ValueError) as exc:
            raise NotFound(f"cannot read the ACME state directory: {exc}") from None
        if allowed is not None:
            names = {policy_host(d) for d in allowed}
            rows = [r for r in rows if r["name"] in names]
        for r in rows:
            after = r["not_after"]
            r["days_left"] = (
                None
                if after is None
                else round((datetime.fromisoformat(str(after)) - now).total_seconds() / 86400, 1)
            )
        return rows
