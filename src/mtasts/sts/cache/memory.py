"""``memory:`` -- a bounded LRU in this process (the default cache)."""

from __future__ import annotations

from collections import OrderedDict

from mtasts.sts.cache.base import CacheEntry

DEFAULT_SIZE = 100_000


class MemoryCache:
    """A least-recently-used map of at most ``max_entries`` domains; nothing persists."""

    def __init__(self, max_entries: int = DEFAULT_SIZE) -> None:
        if max_entries < 1:
            raise ValueError("a memory cache needs room for at least one entry")
        self.url = f"memory:?max_entries={max_entries}"
        self.max_entries = max_entries
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()

    def peek(self, domain: str) -> CacheEntry | None:
        """The entry, without I/O or suspension (the daemon's synchronous path)."""
        entry = self._entries.get(domain)
        if entry is not None:
            self._entries.move_to_end(domain)
        return entry

    async def get(self, domain: str) -> CacheEntry | None:
        return self.peek(domain)

    async def set(self, entry: CacheEntry) -> None:
        self._entries[entry.domain] = entry
        self._entries.move_to_end(entry.domain)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def delete(self, domain: str) -> None:
        self._entries.pop(domain, None)

    async def domains(self) -> list[str]:
        return sorted(self._entries)

    async def aclose(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
