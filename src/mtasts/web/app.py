"""The Starlette application: pages (HTML), the JSON API under ``/api/``, static files.

Every route is GET (HEAD); nothing changes state. What each route shows is read by
:class:`mtasts.web.data.Reader`; :class:`mtasts.web.guard.Guard` adds the security
headers, authentication and the loopback Host check to every response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
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

from mtasts.monitor.judge import Impact
from mtasts.web import views
from mtasts.web.access import Authenticator
from mtasts.web.data import BadRequest, NotFound, Reader, WebState, allowed_domains
from mtasts.web.guard import Guard
from mtasts.web.settings import User

HERE = Path(__file__).parent


class Pages:
    """The HTML pages."""

    def __init__(self, state: WebState) -> None:
        self.state = state
        self.data = Reader(state)
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["pct"] = _pct
        self.env.filters["num"] = _num
        self.env.filters["ts"] = _ts

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

    async def overview_page(self, request: Request) -> Response:
        rows = await self.data.overview_data(allowed_domains(request))
        return self.render(
            request,
            "overview.html",
            domains=rows,
            windows=views.WINDOWS,
            today=self.state.today(),
            certificates=self.state.settings.acme_state_dir is not None,
        )

    async def domain_page(self, request: Request) -> Response:
        data = await self.data.domain_data(request)
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
        data = await self.data.advise_data(request)
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
        return self.render(request, "reports.html", **await self.data.report_list_data(request))

    async def report_page(self, request: Request) -> Response:
        return self.render(request, "report.html", **await self.data.report_data(request))

    async def certificates_page(self, request: Request) -> Response:
        rows = await self.data.certificates_data(request)
        return self.render(request, "certificates.html", certificates=rows)


class Api:
    """The JSON API under ``/api/`` (docs/web.md), and ``/healthz``."""

    def __init__(self, state: WebState) -> None:
        self.state = state
        self.data = Reader(state)

    async def api_domains(self, request: Request) -> Response:
        rows = await self.data.overview_data(allowed_domains(request))
        return _json(
            {"today": self.state.today().isoformat(), "domains": [r.to_json() for r in rows]}
        )

    async def api_domain(self, request: Request) -> Response:
        data = await self.data.domain_data(request)
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
        v: views.DomainView = (await self.data.domain_data(request))["view"]
        return _json(v.to_json()["days"])

    async def api_domain_advise(self, request: Request) -> Response:
        data = await self.data.advise_data(request)
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
        data = await self.data.report_list_data(request)
        return _json(
            {
                "total": data["total"],
                "page": data["page"],
                "pages": data["pages"],
                "reports": data["reports"],
            }
        )

    async def api_report(self, request: Request) -> Response:
        data = await self.data.report_data(request)
        data["json"] = orjson.loads(data["json"]) if data["json"] is not None else None
        return _json(data)

    async def api_certificates(self, request: Request) -> Response:
        return _json(await self.data.certificates_data(request))

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
    api = Api(state)
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
        Route("/api/domains", wrap(api.api_domains, True)),
        Route("/api/domains/{domain}", wrap(api.api_domain, True)),
        Route("/api/domains/{domain}/days", wrap(api.api_domain_days, True)),
        Route("/api/domains/{domain}/advise", wrap(api.api_domain_advise, True)),
        Route("/certificates", wrap(pages.certificates_page, False), name="certificates"),
        Route("/api/certificates", wrap(api.api_certificates, True)),
        Route("/api/reports", wrap(api.api_reports, True)),
        Route("/api/reports/{pk}", wrap(api.api_report, True)),
        Route("/api/{rest:path}", wrap(api.api_unknown, True)),
        Route("/healthz", api.healthz),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(Guard, state=state)
    return app
