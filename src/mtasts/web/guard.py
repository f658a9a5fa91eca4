"""Every response's security headers, authentication, and the loopback Host check.

Responses carry a strict CSP (no inline script or style, ``frame-ancestors 'none'``) and
the usual hardening headers; only GET and HEAD are served. With users configured every
request but ``/healthz`` needs their credentials; without users (only allowed on
loopback) the Host header must name a loopback address, so a web page cannot reach the
dashboard through DNS rebinding.
"""

from __future__ import annotations

import ipaddress

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mtasts.web.data import WebState

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
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


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

        refused = await self._refusal(scope)
        if refused is not None:
            await refused(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    async def _refusal(self, scope: Scope) -> Response | None:
        """The answer to a request that may not go on (``None``: it may); the user it
        authenticated as goes into ``scope["user"]``."""
        scope["user"] = None
        if scope["method"] not in ("GET", "HEAD"):
            return PlainTextResponse(
                "this dashboard is read-only: GET and HEAD only\n",
                status_code=405,
                headers={"Allow": "GET, HEAD"},
            )
        if scope["path"] == "/healthz":
            return None
        request = Request(scope)
        auth = self.state.auth
        if auth is None:
            if _is_loopback_host(request.headers.get("host", "")):
                return None
            return PlainTextResponse(
                "without users configured ([web.users]) only a loopback Host is served\n",
                status_code=421,
            )
        user = await auth.user(request.headers.get("authorization"))
        if user is None:
            return PlainTextResponse(
                "authentication required\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="mtasts", charset="UTF-8"'},
            )
        scope["user"] = user
        return None
