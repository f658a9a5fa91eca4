"""Dashboard fixtures: the app served by uvicorn on an ephemeral loopback port, in a
thread of its own (so that Selenium and httpx tests stay synchronous), over a store
seeded with known reports (tests/web/seed.py) and a lab that publishes good.test's
policy; the real Chromium from Debian through Selenium."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from tests.pg import PG_URL, require_pg

from mtasts.config import Settings
from mtasts.lab.testing import healthy_domain, running_lab
from mtasts.store.engine import open_database
from mtasts.tlsrpt.receive.received_query import day_summaries
from mtasts.tlsrpt.receive.summary import DaySummary
from mtasts.web.auth import hash_password, token_digest
from mtasts.web.server import serving
from mtasts.web.settings import ListenAddress, WebSettings, WebUser

from .seed import TODAY, seed

CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"

# One password hash for every test user (scrypt is slow on purpose: hash once)
PASSWORD = "correct horse battery staple"
_HASH = hash_password(PASSWORD, salt=b"fixed-test-salt!")
TOKEN = "grafana-token-0123456789"

TENANTS = {
    "alice": WebUser(password=_HASH, domains=("good.test",)),
    "bob": WebUser(password=_HASH, domains=("other.test",)),
    "admin": WebUser(password=_HASH, domains=("*",)),
    "grafana": WebUser(token_sha256=token_digest(TOKEN), domains=("good.test",)),
}
LOOPBACK = ListenAddress("127.0.0.1", 0)


@dataclass
class Served:
    url: str
    store_url: str
    schema: str | None
    summaries: list[DaySummary] = field(default_factory=list)

    def store_days(self, domain: str, since: date, until: date) -> list[DaySummary]:
        return [
            s
            for s in self.summaries
            if s.domain == domain and since.isoformat() <= s.day <= until.isoformat()
        ]


def _serve(
    store_url: str,
    schema: str | None,
    settings: WebSettings,
    ready: Callable[[Served | BaseException], None],
    stop: threading.Event,
) -> None:
    async def main() -> None:
        scenario = healthy_domain("good.test")
        async with running_lab(scenario) as lab:
            await seed(store_url, schema)
            db = open_database(store_url, schema=schema)
            try:
                summaries = await day_summaries(db)
            finally:
                await db.close()
            base = Settings(
                nameserver=lab.nameserver, ca_file=lab.ca_file, https_port=lab.https_port
            )
            async with serving(
                settings, store_url, base=base, schema=schema, today=lambda: TODAY
            ) as (server, _):
                ready(Served(f"http://127.0.0.1:{server.port}", store_url, schema, summaries))
                await asyncio.to_thread(stop.wait)

    try:
        asyncio.run(main())
    except BaseException as exc:
        ready(exc)


@dataclass
class _Thread:
    thread: threading.Thread
    stop: threading.Event
    served: Served


def start_server(store_url: str, schema: str | None, settings: WebSettings) -> _Thread:
    box: list[Served | BaseException] = []
    got = threading.Event()
    stop = threading.Event()

    def ready(value: Served | BaseException) -> None:
        box.append(value)
        got.set()

    t = threading.Thread(
        target=_serve, args=(store_url, schema, settings, ready, stop), name="web-server"
    )
    t.start()
    if not got.wait(60):
        stop.set()
        raise RuntimeError("the dashboard did not start within 60 s")
    if isinstance(box[0], BaseException):
        t.join(10)
        raise box[0]
    return _Thread(t, stop, box[0])


def stop_server(t: _Thread) -> None:
    t.stop.set()
    t.thread.join(30)


@pytest.fixture(scope="module")
def sqlite_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="mtasts-web-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _server_fixture(settings: WebSettings) -> Any:
    @pytest.fixture(scope="module")
    def fixture(sqlite_dir: Path) -> Iterator[Served]:
        url = f"sqlite:///{sqlite_dir / f'{uuid.uuid4().hex}.db'}"
        t = start_server(url, None, settings)
        try:
            yield t.served
        finally:
            stop_server(t)

    return fixture


#: Open on loopback, nobody configured (everything visible).
open_server = _server_fixture(WebSettings(listen=LOOPBACK))
#: Several tenants: every request must authenticate.
tenant_server = _server_fixture(WebSettings(listen=LOOPBACK, users=TENANTS))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def any_server(request: pytest.FixtureRequest, sqlite_dir: Path) -> Iterator[Served]:
    """The tenants' server on each database."""
    settings = WebSettings(listen=LOOPBACK, users=TENANTS)
    if request.param == "sqlite":
        t = start_server(f"sqlite:///{sqlite_dir / 'any.db'}", None, settings)
        try:
            yield t.served
        finally:
            stop_server(t)
        return
    require_pg()
    import asyncpg

    schema = f"w_{uuid.uuid4().hex[:16]}"

    async def sql(text: str) -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute(text)
        finally:
            await conn.close()

    asyncio.run(sql(f"CREATE SCHEMA {schema}"))
    try:
        t = start_server(PG_URL, schema, settings)
        try:
            yield t.served
        finally:
            stop_server(t)
    finally:
        asyncio.run(sql(f"DROP SCHEMA {schema} CASCADE"))


def require_chromium() -> None:
    if CHROMEDRIVER.exists() and shutil.which("chromium"):
        return
    if os.environ.get("CI") == "true":
        pytest.fail("chromium / chromium-driver are missing (.ci/run installs them)")
    pytest.skip("no /usr/bin/chromedriver: apt-get install chromium chromium-driver")


def make_driver(*, javascript: bool = True) -> Any:
    """Debian's Chromium, headless, in a fresh profile, its console log kept."""
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="mtasts-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--window-size=1280,800",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    driver.set_window_size(1280, 800)
    driver._mtasts_profile = profile
    return driver


def quit_driver(driver: Any) -> None:
    profile = getattr(driver, "_mtasts_profile", None)
    try:
        driver.quit()
    finally:
        if profile:
            shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: Any, name: str) -> Path:
    """A 1280x800 screenshot under build/screenshots (a test artifact, gitignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
