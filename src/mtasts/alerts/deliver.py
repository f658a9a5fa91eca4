"""Drain the outbox: send each due notification through its channel, mark it sent or
schedule its retry (:func:`~mtasts.alerts.model.retry_at`).

I/O. Bounded: at most ``budget`` seconds per call (what is left stays pending for the
next call); a channel that failed once is not tried again in the same call, so a relay
that is down costs one timeout, not one per notification. Delivery is at least once: a
notification sent just before the store failed to record it is sent again later. Each
notification is claimed (a lease in the store) before it is sent, so two processes
draining the outbox at once do not send it twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from mtasts.alerts.channels import ChannelError, Notifier
from mtasts.alerts.model import retry_at
from mtasts.alerts.store import AlertStore
from mtasts.clock import Clock, monotonic, wall

log = logging.getLogger(__name__)
LEASE = 60  # seconds a claimed notification stays with its sender beyond the budget


@dataclass(slots=True)
class Delivered:
    sent: int = 0
    failed: int = 0  # attempts that failed (retried later, or given up)
    given_up: int = 0
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "given_up": self.given_up,
            "errors": self.errors,
        }


async def deliver_due(
    store: AlertStore,
    channels: Mapping[str, Notifier],
    *,
    give_up_after: int,
    budget: float = 30.0,
    clock: Clock = wall,
    monotonic: Clock = monotonic,
) -> Delivered:
    """Send what is due now; see the module docstring.

    ``clock``: the epoch seconds of the outbox's times; ``monotonic``: the budget's.
    """
    out = Delivered()
    deadline = monotonic() + budget
    broken: set[str] = set()
    out.given_up += await store.expire_others(channels, int(clock()) - give_up_after)
    while monotonic() < deadline:
        due = await store.due(int(clock()), set(channels) - broken)
        if not due:
            break
        progress = False
        for item in due:
            if item.channel in broken:
                continue
            left = deadline - monotonic()
            if left <= 0:
                break
            channel = channels[item.channel]
            now = int(clock())
            if not await store.claim(item.pk, now, now + int(budget) + LEASE):
                continue  # another process is sending it
            try:
                await asyncio.wait_for(channel.send(item.message), left)
            except Exception as exc:  # a channel's failure, whatever it is, is retried
                if isinstance(exc, ChannelError):
                    why = str(exc)
                elif isinstance(exc, TimeoutError):
                    why = f"no answer within the {budget:g} s budget"
                else:
                    why = f"{type(exc).__name__}: {exc}"
                now = int(clock())
                again = retry_at(
                    item.attempts + 1, item.created_at, now, give_up_after=give_up_after
                )
                await store.mark_failed(item.pk, why, retry_at=again)
                out.failed += 1
                out.given_up += again is None
                out.errors.append(f"{item.channel}: {why}")
                broken.add(item.channel)
                log.warning(
                    "alert %s %s via %s failed: %s",
                    item.message.event,
                    item.message.key,
                    item.channel,
                    why,
                )
                continue
            await store.mark_sent(item.pk, int(clock()))
            out.sent += 1
            progress = True
        if not progress:
            break
    return out
