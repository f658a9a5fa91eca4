"""``await alerts.sync(store, source, conditions)``: the one call that raises, repeats
and resolves one source's conditions and notifies each transition once.

I/O. Used by the rules (``mtasts alerts run``, source ``rules``) and by ``mtasts
monitor`` (source ``monitor``); docs/alerts.md is the contract. In one call:

1. the transitions (:func:`mtasts.alerts.model.plan`) and one outbox row per transition
   and configured channel are committed in one transaction, or nothing is (the store
   was unreachable: :class:`AlertStoreUnavailable`, call again later; nothing is lost);
2. the outbox is drained for at most ``budget`` seconds (also older notifications that
   failed before); what could not be sent stays pending and is retried with back-off
   by the next ``sync`` or ``mtasts alerts run``. A failed
   channel never makes ``sync`` raise.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtasts.alerts.channels import Notifier, close_all, notifiers
from mtasts.alerts.deliver import Delivered, deliver_due
from mtasts.alerts.model import Condition, check_source
from mtasts.alerts.settings import AlertSettings
from mtasts.alerts.store import AlertStore
from mtasts.clock import wall
from mtasts.errors import MtastsError

__all__ = ["AlertStoreUnavailable", "SyncResult", "configured_settings", "sync"]


class AlertStoreUnavailable(MtastsError):
    """The alert tables could not be read or written; nothing changed (call again)."""

    default_code = "alerts.store-unavailable"


@dataclass(frozen=True, slots=True)
class SyncResult:
    raised: tuple[str, ...]  # condition keys
    repeated: tuple[str, ...]
    resolved: tuple[str, ...]
    delivered: Delivered | None  # None when delivery was not attempted

    def to_json(self) -> dict[str, Any]:
        return {
            "raised": list(self.raised),
            "repeated": list(self.repeated),
            "resolved": list(self.resolved),
            "delivered": self.delivered.to_json() if self.delivered is not None else None,
        }


def configured_settings(path: Path | str | None = None) -> tuple[AlertSettings, str | None]:
    """The ``[alerts]`` settings of mtasts.toml and the CA file (``ca_file`` /
    MTASTS_CA_FILE) the channels verify TLS with. ConfigError when invalid."""
    from mtasts.config import Settings
    from mtasts.settings.tree import current, load

    tree = current() if path is None else load(path)
    base = tree.section(Settings)
    return tree.section(AlertSettings), str(base.ca_file) if base.ca_file is not None else None


async def _open(store: str | AlertStore, schema: str | None) -> tuple[AlertStore, bool]:
    if isinstance(store, AlertStore):
        return store, False
    opened = AlertStore.open(store, schema=schema)
    try:
        await opened.upgrade()
    except Exception as exc:
        await opened.db.reset()
        raise AlertStoreUnavailable(
            f"the alert store could not be opened: {type(exc).__name__}: {exc}"
        ) from exc
    return opened, True


async def sync(
    store: str | AlertStore,
    source: str,
    conditions: Iterable[Condition],
    *,
    domains: Iterable[str] | None = None,
    keep: Iterable[str] = (),
    hold: float = 0,
    settings: AlertSettings | None = None,
    channels: Mapping[str, Notifier] | None = None,
    ca_file: str | None = None,
    deliver: bool = True,
    budget: float = 30.0,
    now: float | None = None,
    schema: str | None = None,
) -> SyncResult:
    """Make the open conditions of ``source`` equal ``conditions`` over ``domains``
    (None: all), leaving the keys in ``keep`` as they are; notify each transition.
    ``hold``: seconds a condition must have been absent before it is resolved.

    ``store`` is a store URL (opened, upgraded and closed here) or an open AlertStore.
    ``settings`` defaults to mtasts.toml's ``[alerts]``; ``channels`` (name ->
    notifier) to the ones those settings configure. ``now``: Unix seconds (tests).
    """
    check_source(source)
    current = list(conditions)  # validated already: Condition checks itself when built
    own_channels = channels is None
    if settings is None:
        settings, configured_ca = configured_settings()
        ca_file = ca_file or configured_ca
    stamp = int(wall() if now is None else now)
    opened, close = await _open(store, schema)
    chans: Mapping[str, Notifier] = {}
    try:
        names = tuple(channels) if channels is not None else settings.channels
        try:
            done = await opened.apply(
                source,
                current,
                now=stamp,
                channels=names,
                domains=domains,
                keep=keep,
                hold=int(hold),
            )
        except MtastsError:
            raise
        except Exception as exc:
            await opened.db.reset()
            raise AlertStoreUnavailable(
                f"the alert store could not be written: {type(exc).__name__}: {exc}"
            ) from exc
        delivered = None
        if deliver and names:
            chans = channels if channels is not None else notifiers(settings, ca_file=ca_file)
            try:
                delivered = await deliver_due(
                    opened,
                    chans,
                    give_up_after=int(settings.give_up_hours * 3600),
                    budget=budget,
                    clock=(lambda: float(stamp)) if now is not None else wall,
                )
            except Exception as exc:  # the store failed while marking: retried next time
                await opened.db.reset()
                delivered = Delivered(errors=[f"store: {type(exc).__name__}: {exc}"])
        return SyncResult(
            tuple(c.key for c in done.raised),
            tuple(c.key for _, c in done.repeated),
            tuple(o.key for o in done.resolved),
            delivered,
        )
    finally:
        if own_channels:
            await close_all(chans)
        if close:
            with contextlib.suppress(Exception):  # a broken connection: already reset
                await asyncio.wait_for(opened.close(), 5)
