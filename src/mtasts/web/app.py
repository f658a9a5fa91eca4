"""The Starlette application: pages, the JSON API under ``/api/``, static files.

Every route is GET (HEAD); nothing changes state. Responses carry a strict CSP (no inline
script or style, ``frame-ancestors 'none'``) and the usual hardening headers. With users
configured every request but ``/healthz`` needs their credentials; without users (only
allowed on loopback) the Host header must name a loopback address, so a web page cannot
reach the dashboard through DNS rebinding.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mtasts.acme.settings import AcmeSettings
from mtasts.acme.status import status_rows
from mtasts.acme.store import StateDir
from mtasts.errors import MtastsError
from mtasts.monitor.advise import Criteria, Impact, advise, candidate_policy
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

HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
]
MAX_RANGE_DAYS = 400
DEFAULT_RANGE_DAYS = 30
PAGE_SIZE = 50
REPORTERS_LOOKBACK = 90
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})

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
    today: Callable[[], date] = field(default=lambda: datetime.now(UTC).date())
    checks: CheckHistory | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    auth: Authenticator | None = None


def _is_loopback_host(host: str) -> bool:
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Guard:
    """Security headers on every response; authentication; the loopback Host check."""

    def __init__(self, app: ASGIApp, state: WebState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    h for h in message.get("headers", []) if h[0].lower() != b"server"
                ] + SECURITY_HEADERS
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                if scope.get("scheme") == "https":
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        request = Request(scope)
        if scope["method"] not in ("GET", "HEAD"):
            response: Response = PlainTextResponse(
                "this dashboard is read-only: GET and HEAD only\n",
                status_code=405,
                headers={"Allow": "GET, HEAD"},
            )
            await response(scope, receive, send_with_headers)
            return
        scope["user"] = None
        if scope["path"] != "/healthz":
            auth = self.state.auth
            if auth is None:
                if not _is_loopback_host(request.headers.get("host", "")):
                    response = PlainTextResponse(
                        "without users configured ([web.users]) only a loopback Host is served\n",
                        status_code=421,
                    )
                    await response(scope, receive, send_with_headers)
                    return
            else:
                user = await auth.user(request.headers.get("authorization"))
                if user is None:
                    response = PlainTextResponse(
                        "authentication required\n",
                        status_code=401,
                        headers={"WWW-Authenticate": 'Basic realm="mtasts", charset="UTF-8"'},
                    )
                    await response(scope, receive, send_with_headers)
                    return
                scope["user"] = user
        await self.app(scope, receive, send_with_headers)


def _allowed(request: Request) -> frozenset[str] | None:
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


class Pages:
    def __init__(self, state: WebState) -> None:
        self.state = state
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["pct"] = _pct
        self.env.filters["num"] = _num
        self.env.filters["ts"] = _ts

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[Database]:
        async with self.state.lock, self.state.db.snapshot():
            yield self.state.db

    def render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> Response:
        params = dict(request.query_params)

        def url_with(**changes: Any) -> str:
            merged = {**params, **{k: v for k, v in changes.items()}}
            clean = {k: str(v) for k, v in merged.items() if v not in (None, "")}
            return f"{request.url.path}?{urlencode(clean)}" if clean else request.url.path

        user: User | None = request.scope.get("user")
        html = self.env.get_template(name).render(
            request=request, params=params, url_with=url_with, user=user, **context
        )
        return HTMLResponse(html, status_code=status_code)

    # --- data ---------------------------------------------------------------------------

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
        allowed = _allowed(request)
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
        allowed = _allowed(request)
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
        advice = advise(evidence, live, candidate, criteria=criteria, now=datetime.now(UTC))
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
        allowed = _allowed(request)
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
            detail = await q.report_detail(db, int(pk_text), _allowed(request))
        if detail is None:
            raise NotFound("no such report")
        if detail["report"]["status"] != "stored" and _allowed(request) is not None:
            raise NotFound("no such report")
        raw = detail.pop("raw")
        text, why = report_json(raw) if raw is not None else (None, "the raw input was not kept")
        detail["json"] = text
        detail["json_error"] = why
        return detail

    # --- pages --------------------------------------------------------------------------

    async def overview_page(self, request: Request) -> Response:
        rows = await self.overview_data(_allowed(request))
        return self.render(
            request,
            "overview.html",
            domains=rows,
            windows=views.WINDOWS,
            today=self.state.today(),
            certificates=self.state.settings.acme_state_dir is not None,
        )

    async def domain_page(self, request: Request) -> Response:
        data = await self.domain_data(request)
        v: views.DomainView = data["view"]
        chart = {
            "labels": v.days,
            "series": [
                {"label": "successful", "data": v.successful},
                {
                    "label": "failed (matching filters)"
                    if data["filters"].on_failures
                    else "failed",
                    "data": v.failed,
                },
            ],
        }
        failures = {
            "labels": v.days,
            "series": [{"label": k, "data": n} for k, n in v.failures_per_day.items()],
        }
        return self.render(request, "domain.html", chart=chart, failure_chart=failures, **data)

    async def advise_page(self, request: Request) -> Response:
        data = await self.advise_data(request)
        judged = data["advice"].judged if data["advice"] is not None else ()
        by_size = sorted(judged, key=lambda j: -j.failure.sessions)
        return self.render(
            request,
            "advise.html",
            blocking=[j for j in by_size if j.impact is Impact.BLOCKING],
            others=[j for j in by_size if j.impact is not Impact.BLOCKING],
            **data,
        )

    async def reports_page(self, request: Request) -> Response:
        return self.render(request, "reports.html", **await self.report_list_data(request))

    async def report_page(self, request: Request) -> Response:
        return self.render(request, "report.html", **await self.report_data(request))

    # --- API ----------------------------------------------------------------------------

    async def api_domains(self, request: Request) -> Response:
        rows = await self.overview_data(_allowed(request))
        return _json(
            {"today": self.state.today().isoformat(), "domains": [r.to_json() for r in rows]}
        )

    async def api_domain(self, request: Request) -> Response:
        data = await self.domain_data(request)
        return _json(
            {
                **data["view"].to_json(),
                "filters": dict(data["filters"].items()),
                "last_report_day": data["last_report_day"],
                "published_policy": data["published"].to_json(),
                "reported_policies": [p.to_json() for p in data["reported"]],
                "reporters": [r.to_json() for r in data["reporters"]],
            }
        )

    async def api_domain_days(self, request: Request) -> Response:
        """The per-day series alone: a flat array (Grafana tables and time series)."""
        v: views.DomainView = (await self.domain_data(request))["view"]
        return _json(v.to_json()["days"])

    async def api_domain_advise(self, request: Request) -> Response:
        data = await self.advise_data(request)
        window = {"since": data["since"].isoformat(), "until": data["until"].isoformat()}
        if data["advice"] is None:
            return _json(
                {
                    "domain": data["domain"],
                    "verdict": "CANNOT TELL",
                    "error": data["error"],
                    "live_checks_run": False,
                    **window,
                }
            )
        return _json({**data["advice"].to_json(), "live_checks_run": False, **window})

    async def api_reports(self, request: Request) -> Response:
        data = await self.report_list_data(request)
        return _json(
            {
                "total": data["total"],
                "page": data["page"],
                "pages": data["pages"],
                "reports": data["reports"],
            }
        )

    async def api_report(self, request: Request) -> Response:
        data = await self.report_data(request)
        data["json"] = orjson.loads(data["json"]) if data["json"] is not None else None
        return _json(data)

    async def certificates_data(self, request: Request) -> list[dict[str, Any]]:
        """``mtasts acme status --json``'s rows plus ``days_left``; a tenant sees only
        ``mta-sts.<its domains>``."""
        root = self.state.settings.acme_state_dir
        if root is None:
            raise NotFound("no certificates configured: set [web] acme_state_dir")
        allowed = _allowed(request)
        acme = current().section(AcmeSettings)
        now = datetime.now(UTC)

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

    async def certificates_page(self, request: Request) -> Response:
        rows = await self.certificates_data(request)
        return self.render(request, "certificates.html", certificates=rows)

    async def api_certificates(self, request: Request) -> Response:
        return _json(await self.certificates_data(request))

    async def api_unknown(self, request: Request) -> Response:
        raise NotFound(f"no such API path: {request.url.path} (docs/web.md lists them)")

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok\n")


def _json(value: Any) -> Response:
    return Response(
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS),
        media_type="application/json",
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def _num(value: int) -> str:
    return f"{value:,}"


def _ts(value: int | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(int(value), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def build_app(state: WebState) -> Starlette:
    pages = Pages(state)
    if state.settings.users:
        state.auth = Authenticator(state.settings.user_list)

    def wrap(handler: Callable[[Request], Awaitable[Response]], api: bool) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except (BadRequest, NotFound) as exc:
                status = 400 if isinstance(exc, BadRequest) else 404
                if api:
                    return JSONResponse({"error": str(exc)}, status_code=status)
                return pages.render(request, "error.html", status_code=status, message=str(exc))

        return endpoint

    routes = [
        Route("/", wrap(pages.overview_page, False), name="overview"),
        Route("/domain/{domain}", wrap(pages.domain_page, False), name="domain"),
        Route("/domain/{domain}/advise", wrap(pages.advise_page, False), name="advise"),
        Route("/reports", wrap(pages.reports_page, False), name="reports"),
        Route("/reports/{pk}", wrap(pages.report_page, False), name="report"),
        Route("/api/domains", wrap(pages.api_domains, True)),
        Route("/api/domains/{domain}", wrap(pages.api_domain, True)),
        Route("/api/domains/{domain}/days", wrap(pages.api_domain_days, True)),
        Route("/api/domains/{domain}/advise", wrap(pages.api_domain_advise, True)),
        Route("/certificates", wrap(pages.certificates_page, False), name="certificates"),
        Route("/api/certificates", wrap(pages.api_certificates, True)),
        Route("/api/reports", wrap(pages.api_reports, True)),
        Route("/api/reports/{pk}", wrap(pages.api_report, True)),
        Route("/api/{rest:path}", wrap(pages.api_unknown, True)),
        Route("/healthz", pages.healthz),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(Guard, state=state)
    return app
