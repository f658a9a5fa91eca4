"""``mtasts tlsrpt import``: every input of the given sources through the receiver.

Idempotent: an input already imported from the same source (same bytes, same place) is
skipped without a new arrival; the same report from elsewhere is a logged duplicate.
Inputs go ``chunk`` at a time: one look-up of what was seen, one commit.
"""

from __future__ import annotations

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
    chunk: int = 256,
    progress: Callable[[Item, IngestOutcome | None], None] | None = None,
) -> ImportResult:
    """Import every input of ``sources`` (see :mod:`.sources`), ``chunk`` at a time."""
    result = ImportResult()
    items: list[Item] = []

    async def flush() -> None:
        shas = [raw_hash(i.raw) for i in items]
        async with receiver.lock:
            seen, known = await receiver.store.arrivals_of(shas)
        fresh: list[Item] = []
        fresh_shas: list[str] = []
        for item, sha in zip(items, shas, strict=True):
            if (sha, item.arrival.source) in seen:
                result.add("skipped")
                if item.done is not None:
                    item.done(True)
                if progress:
                    progress(item, None)
            else:
                fresh.append(item)
                fresh_shas.append(sha)
        outcomes = await receiver.ingest_many(
            [(i.raw, i.arrival) for i in fresh], shas=fresh_shas, known=known
        )
        for item, out in zip(fresh, outcomes, strict=True):
            result.add(out.disposition.value)
            if item.done is not None:
                item.done(True)
            refused = out.disposition.value == "refused"
            if refused and out.reason_code and len(result.refused) < MAX_LISTED:
                result.refused.append((item.arrival.source, out.reason_code, out.reason or ""))
            if progress:
                progress(item, out)
        items.clear()

    for source in sources:
        async for item in iter_source(source, receiver.settings.max_bytes):
            items.append(item)
            if len(items) >= chunk or item.flush:
                await flush()
    if items:
        await flush()
    return result
