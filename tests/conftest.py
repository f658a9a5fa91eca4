"""Shared test configuration."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from tests.pg import PG_URL, fresh_schema

# Real-world TLS-RPT reports, copied with their sources (tests/data/tlsrpt-samples/SOURCES.md)
# so that a plain clone runs every test.
SAMPLES = Path(__file__).resolve().parent / "data" / "tlsrpt-samples"

settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# too_slow: generating the examples, not the code under test, is slow on a loaded machine
# (seen failing a round-trip property while eight other test runs shared two cores)
settings.register_profile(
    "dev", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real-world TLS-RPT samples kept in tests/data/tlsrpt-samples (never skipped:
    they are part of the checkout)."""
    assert (SAMPLES / "SOURCES.md").is_file(), f"{SAMPLES} is missing from the checkout"
    return SAMPLES


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_url(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, str | None]]:
    """(url, schema) of an empty store on SQLite, then on the real PostgreSQL server (a
    schema of its own, dropped afterwards: tests/pg.py)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}", None
        return
    async with fresh_schema() as schema:
        yield PG_URL, schema


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


def pytest_unconfigure(config: pytest.Config) -> None:
    """Never hang at exit: a test that fails before closing a store leaves aiosqlite's
    non-daemon worker thread behind, and the interpreter would wait for it forever.
    Name the threads and exit with pytest's own status (reports are written by now)."""
    stray = [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    if stray and _EXIT_STATUS:
        names = ", ".join(t.name for t in stray)
        sys.stderr.write(f"\nnot waiting for threads left running by the tests: {names}\n")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(_EXIT_STATUS[-1])
