"""The ``--json`` convention (docs/json.md): RFC 3339 UTC instants, snake_case keys of
our own objects, one document on standard output."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from mtasts.cli.main import cli
from mtasts.rfc3339 import utc_text
from mtasts.sts.cache.sqlite import SqliteCache
from mtasts.sts.policy import parse_policy
from mtasts.sts.refresh import CacheEntry

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
PLUS_ONE = timezone(timedelta(hours=1))
T0 = datetime(2026, 12, 2, 21, 45, 7, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        (0, "1970-01-01T00:00:00Z"),
        (T0, "2026-12-02T21:45:07Z"),
        (T0 + 0.999, "2026-12-02T21:45:07Z"),  # whole seconds, never rounded up
        (datetime(2026, 12, 2, 22, 45, 7, tzinfo=PLUS_ONE), "2026-12-02T21:45:07Z"),
        (datetime(2026, 12, 2, 21, 45, 7), "2026-12-02T21:45:07Z"),  # naive: the store's UTC
    ],
)  # fmt: skip
def test_instants_are_rfc3339_utc(value: float | datetime | None, text: str | None) -> None:
    assert utc_text(value) == text


def test_cache_show_prints_the_entry_in_the_query_names(tmp_path: Path) -> None:
    """It printed the stored record (epoch floats, ``v``, ``raw_text``); now the names of
    ``mtasts query --json`` and RFC 3339 instants."""
    url = f"sqlite:///{tmp_path / 'cache.db'}"
    text = "version: STSv1\nmode: enforce\nmx: mx.a.test\nmax_age: 86400\n"
    entry = CacheEntry(
        domain="a.test",
        checked_at=T0,
        recheck_at=T0 + 3600,
        txt_id="20261202",
        record_id="20261202",
        policy=parse_policy(text),
        raw_text=text,
        fetched_at=T0,
    )

    async def put() -> None:
        cache = await SqliteCache.open(url)
        try:
            await cache.set(entry)
        finally:
            await cache.aclose()

    asyncio.run(put())
    result = CliRunner().invoke(cli, ["cache", "show", "a.test"], env={"MTASTS_CACHE": url})
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["domain"] == "a.test"
    assert (shown["id"], shown["mode"], shown["mx"], shown["max_age"]) == (
        "20261202", "enforce", ["mx.a.test"], 86400,
    )  # fmt: skip
    assert shown["policy_text"] == text
    assert shown["fetched_at"] == "2026-12-02T21:45:07Z"
    assert shown["expires_at"] == "2026-12-03T21:45:07Z"
    assert shown["recheck_at"] == "2026-12-02T22:45:07Z"
    assert shown["failed_at"] is None
    for key, value in shown.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", key), key  # our object: snake_case
        if key.endswith("_at") and value is not None:
            assert INSTANT.match(value), (key, value)
