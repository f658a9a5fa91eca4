"""``[tlsrpt] keep_days``: how long the counters and the delivery journal are kept.

Both ``tlsrpt send`` (each run; daily with ``--daemon``) and ``tlsrpt collect`` (at
start, then once a UTC day) delete the days before ``today - keep_days`` through
:class:`Retention`, so a store that only a collector writes (reports sent from another
host, or not at all) does not grow for ever. A day whose journal still has a delivery
pending is kept whole (:meth:`~mtasts.tlsrpt.store.TlsRptStore.prune_before`).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

from mtasts.tlsrpt.store import TlsRptStore

log = logging.getLogger("mtasts.tlsrpt.retention")


class Retention:
    """Prunes ``store`` to the last ``keep_days`` days (None: keeps everything), at most
    once per UTC day."""

    def __init__(self, store: TlsRptStore, keep_days: int | None) -> None:
        self.store = store
        self.keep_days = keep_days
        self.pruned_on: date | None = None  # the UTC day of the last prune

    def due(self, today: date) -> bool:
        """Whether a prune is set and has not run on ``today`` yet."""
        return self.keep_days is not None and today != self.pruned_on

    async def prune(self, today: date) -> dict[str, int]:
        """Delete the days before ``today - keep_days``: rows removed per table. A failure
        is logged and tried again the next day (what the caller does goes on)."""
        keep = self.keep_days
        if keep is None:
            return {}
        self.pruned_on = today
        try:
            removed = await self.store.prune_before(today - timedelta(days=keep))
        except Exception as exc:  # a store error must not stop counting or sending
            await self.store.reset()
            log.warning("retention: pruning days before the last %d failed: %s", keep, exc)
            return {}
        if any(removed.values()):
            log.info("retention: kept the last %d days; removed %s", keep, removed)
        return removed
