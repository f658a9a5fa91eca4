"""``mtasts web`` as a service: the store opened read-only in spirit (no migration), the
live-policy fetcher, the app on uvicorn (the intake's runner: bounded heads, a deadline
for them and for TLS handshakes), stopped by SIGTERM or SIGINT."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date

from mtasts.config import Settings
from mtasts.errors import ConfigError
from mtasts.runtime import stop_event
from mtasts.store.engine import Database, open_database
from mtasts.store.migrate import current_revision
from mtasts.tlsrpt.receive.httpserve import HttpServer, bind
from mtasts.tlsrpt.receive.netconfig import Listen, NetConfig
from mtasts.web.app import build_app
from mtasts.web.data import CheckHistory, WebState
from mtasts.web.livepolicy import LivePolicies
from mtasts.web.queries import last_checks
from mtasts.web.settings import WebSettings


def is_loopback(listen: Listen) -> bool:
    if listen.host == "localhost":
        return True
    try:
        return ipaddress.ip_address(listen.host).is_loopback
    except ValueError:
        return False


def check_exposure(settings: WebSettings) -> Listen:
    """The listen address; ConfigError when it is not loopback and nobody is configured
    to log in (the data would be open to the network)."""
    listen = Listen(host=settings.listen.host, port=settings.listen.port)
    if not is_loopback(listen) and not settings.users:
        raise ConfigError(
            f"[web] listen = {str(settings.listen)!r} is not a loopback address: configure "
            "[web.users.NAME] (a password hash from `mtasts web --hash-password`, or a "
            "token_sha256) so that the dashboard requires authentication",
            code="config.invalid",
        )
    return listen


#: The store revision that holds `mtasts monitor`'s check history (monitor_checks).
CHECK_HISTORY_REVISION = "0004"


async def open_store(url: str, schema: str | None = None) -> tuple[Database, str]:
    """The store, after checking that it holds the receiving tables; never migrated from
    here (the dashboard only reads: `tlsrpt receive` / `tlsrpt import` create them)."""
    db = open_database(url, schema=schema)
    try:
        revision = await current_revision(db)
    except Exception:
        await db.close()
        raise
    if revision is None or revision < "0002":
        await db.close()
        raise ConfigError(
            f"the store {url} holds no received reports yet (schema {revision or 'empty'}): "
            "run `mtasts tlsrpt import` or `mtasts tlsrpt receive` with it first"
        )
    return db, revision


@asynccontextmanager
async def serving(
    settings: WebSettings,
    store_url: str,
    *,
    base: Settings | None = None,
    schema: str | None = None,
    today: Callable[[], date] | None = None,
    checks: CheckHistory | None = None,
) -> AsyncIterator[tuple[HttpServer, WebState]]:
    """The dashboard, listening, until the block ends."""
    listen = check_exposure(settings)
    db, revision = await open_store(store_url, schema)
    if checks is None and revision >= CHECK_HISTORY_REVISION:
        checks = last_checks  # the Overview's "last check" column
    live = LivePolicies(
        base or Settings(), timeout=settings.policy_timeout, ttl=settings.policy_cache_seconds
    )
    state = WebState(db=db, settings=settings, live=live, checks=checks)
    if today is not None:
        state.today = today
    config = NetConfig(
        cert=str(settings.tls_cert or ""), key=str(settings.tls_key or ""), max_connections=200
    )
    server = HttpServer(build_app(state), config, bind(listen))
    try:
        await server.start()
        yield server, state
    finally:
        await server.stop()
        await live.aclose()
        await db.close()


async def run_until_signalled(
    settings: WebSettings,
    store_url: str,
    *,
    base: Settings | None = None,
    ready: Callable[[str], object] | None = None,
    checks: CheckHistory | None = None,
) -> None:
    with stop_event() as stop:
        async with serving(settings, store_url, base=base, checks=checks) as (server, _):
            host, port = server.sock.getsockname()[:2]
            scheme = "https" if settings.tls_cert else "http"
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            if ready is not None:
                ready(f"{scheme}://{where}/")
            await stop.wait()
