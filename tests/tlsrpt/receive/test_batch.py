"""A batch receiver (``tlsrpt import``, ``reprocess``, ``release``, ``prune``: SQLite on
the event loop's thread) stores exactly what a service's receiver stores (aiosqlite's
thread): the same reports, arrivals, duplicates, refusals and answers."""

from __future__ import annotations

import gzip
import shutil
from datetime import date
from pathlib import Path
from typing import Any

from mtasts.tlsrpt.receive.decide import ReceiveSettings
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


async def _run(url: str, source: Path, *, batch: bool) -> list[Any]:
    settings = ReceiveSettings(verify_dkim=False, keep_days=3650)
    r = await Receiver.open(url, settings, clock=lambda: NOW.timestamp(), batch=batch)
    try:
        out: list[Any] = [
            (await import_sources(r, [str(source)], chunk=7)).to_json(),
            (await import_sources(r, [str(source)], chunk=7)).to_json(),  # all skipped
            await r.reprocess(),
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
    first, second, reprocessed, pruned, days, reports = inline
    assert first["counts"]["stored"] == 20
    assert first["counts"]["duplicate"] > 0
    assert first["counts"]["refused"] == 2  # broken.json, and the samples' SOURCES.md
    assert set(second["counts"]) == {"skipped"}
    assert reprocessed["stored"] == 20
    assert pruned["reports"] > 0  # reports from years ago
    assert len(reports) == 20 - pruned["reports"]
    assert days
