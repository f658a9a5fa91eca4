"""``mtasts tlsrpt import``: every input of the given sources through the receiver.

Idempotent: an input already imported from the same source (same bytes, same place) is
skipped without a new arrival; the same report from elsewhere is a logged duplicate.
Up to ``concurrency`` inputs are in flight, so the receiver commits them in batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from mtasts.tlsrpt.receive.decide import raw_hash
from mtasts.tlsrpt.receive.intake import IngestOutcome, Receiver
from mtasts.tlsrpt.receive.sources import Item, iter_source

MAX_LISTED = 100  # refused inputs named in the result


@dataclass(slots=True)
class ImportResult:
    counts: dict[str, int] = field(default_factory=dict)  # disposition (or "skipped") -> n
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # source, code, reason

    def add(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def to_json(self) -> dict[str, object]:
        return {
            "counts": dict(sorted(self.counts.items())),
            "refused": [{"source": s, "code": c, "reason": r} for s, c, r in self.refused],
        }


async def import_sources(
    receiver: Receiver,
    sources: Sequence[str],
    *,
    concurrency: int = 64,
    progress: Callable[[Item, IngestOutcome | None], None] | None = None,
) -> ImportResult:
    """Import every input of ``sources`` (see :mod:`.sources`)."""
    result = ImportResult()
    slots = asyncio.Semaphore(concurrency)
    tasks: set[asyncio.Task[None]] = set()

    async def one(item: Item) -> None:
        try:
            async with receiver.lock:
                seen = await receiver.store.arrival_seen(raw_hash(item.raw), item.arrival.source)
            if seen:
                result.add("skipped")
                if progress:
                    progress(item, None)
                return
            out = await receiver.ingest(item.raw, item.arrival)
            result.add(out.disposition.value)
            refused = out.disposition.value == "refused"
            if refused and out.reason_code and len(result.refused) < MAX_LISTED:
                result.refused.append((item.arrival.source, out.reason_code, out.reason or ""))
            if progress:
                progress(item, out)
        finally:
            slots.release()

    try:
        for source in sources:
            async for item in iter_source(source, receiver.settings.max_bytes):
                await slots.acquire()
                task = asyncio.create_task(one(item))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    finally:
        if tasks:
            await asyncio.gather(*tasks)
    return result
