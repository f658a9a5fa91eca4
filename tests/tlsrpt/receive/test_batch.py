"""A batch receiver (``tlsrpt import``, ``reprocess``, ``release``, ``prune``: SQLite on
the event loop's thread) stores exactly what a service's receiver stores (aiosqlite's
thread): the same reports, arrivals, duplicates, refusals and answers."""

from __future__ import annotations

import asyncio
import gzip
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mtasts.store.sqliteopen import InlineConnection
from mtasts.tlsrpt.receive.decide import OtherDomains, ReceiveSettings
from mtasts.tlsrpt.receive.importer import import_sources
from mtasts.tlsrpt.receive.intake import Receiver
from mtasts.tlsrpt.receive.query import received, received_reports

from .conftest import NOW

SINCE, UNTIL = date(2016, 1, 1), date(2027, 1, 1)


def _inputs(samples: Path, into: Path) -> Path:
    """Every sample, then the same reports again in other wrappings (duplicates by
    content), one of them unreadable (refused)."""
    shutil.copytree(samples, into / "a")
    again = into / "b"
    again.mkdir()
    for i, path in enumerate(sorted((into / "a").rglob("*.json"))):
        (again / f"{i}.json.gz").write_bytes(gzip.compress(path.read_bytes(), mtime=0))
    (again / "broken.json").write_bytes(b'{"organization-name": ')
    return into


# reports for other domains are quarantined, so that one can be released by hand
SETTINGS = ReceiveSettings(
    verify_dkim=False,
    keep_days=3650,
    owned_domains=frozenset({"example.com"}),
    other_domains=OtherDomains.QUARANTINE,
)


async def _open(url: str, *, batch: bool) -> Receiver:
    r = await Receiver.open(url, SETTINGS, clock=lambda: NOW.timestamp(), batch=batch)
    await r.store.db.fetch_sql("SELECT 1")  # connected
    assert isinstance(r.store.db._conn, InlineConnection) is batch  # type: ignore[attr-defined]
    return r


async def _run(url: str, source: Path, *, batch: bool) -> list[Any]:
    r = await _open(url, batch=batch)
    try:
        out: list[Any] = [
            (await import_sources(r, [str(source)], chunk=7)).to_json(),
            (await import_sources(r, [str(source)], chunk=7)).to_json(),  # all skipped
        ]
        held = [
            x.pk for x in await received_reports(url, since=SINCE, until=UNTIL, quarantined=True)
        ]
        out += [
            held,
            await r.release([held[0], 999_999], note="a test"),
            await r.reprocess(),  # keeps the release
            await r.prune(date(2026, 11, 23)),
        ]
    finally:
        await r.close()
    out.append([d.to_json() for d in await received(url, since=SINCE, until=UNTIL)])
    out.append([x.to_json() for x in await received_reports(url, since=SINCE, until=UNTIL)])
    return out


async def test_a_batch_receiver_stores_what_a_service_receiver_stores(
    tmp_path: Path, samples_dir: Path
) -> None:
    source = _inputs(samples_dir, tmp_path / "in")
    threaded = await _run(f"sqlite:///{tmp_path / 't.db'}", source, batch=False)
    inline = await _run(f"sqlite:///{tmp_path / 'i.db'}", source, batch=True)
    assert inline == threaded
    first, second, held, released, reprocessed, pruned, days, reports = inline
    assert first["counts"]["stored"] + first["counts"]["quarantined"] == 20
    assert first["counts"]["duplicate"] > 0
    assert first["counts"]["refused"] == 2  # broken.json, and the samples' SOURCES.md
    assert set(second["counts"]) == {"skipped"}
    assert len(held) == first["counts"]["quarantined"] > 1
    assert released == {held[0]: "released", 999_999: "no-such-report"}
    assert reprocessed["released"] == 1
    assert pruned["reports"] > 0  # reports from years ago
    assert len(reports) == first["counts"]["stored"] + 1 - pruned["reports"]
    assert days


async def test_a_cancelled_batch_command_stops_and_rolls_back(
    tmp_path: Path, samples_dir: Path
) -> None:
    """Ctrl-C (asyncio.run cancels the task): a reprocess stops at its next statement
    and its transaction rolls back; nothing it had deleted or rebuilt is kept."""
    url = f"sqlite:///{tmp_path / 'i.db'}"
    r = await _open(url, batch=True)
    try:
        await import_sources(r, [str(samples_dir)])
        query = "SELECT pk, dedup_key, status FROM tlsrpt_rcv_reports ORDER BY pk"
        before = await r.store.db.fetch_sql(query)
        task = asyncio.create_task(r.reprocess())
        for _ in range(12):  # into its transaction: the reports deleted, being rebuilt
            await asyncio.sleep(0)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await r.store.db.fetch_sql(query) == before
        assert len(before) == 20
    finally:
        await r.close()
