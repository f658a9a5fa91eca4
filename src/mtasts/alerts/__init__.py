"""Alerts on the receiving side (issue 12): conditions raised and cleared by rules over
the received TLS-RPT reports and by ``mtasts monitor``, notified once per transition.

The API other components use::

    from mtasts import alerts
    from mtasts.alerts.model import Condition, Severity

    result = await alerts.sync(store_url, "monitor", [Condition("check.mx-cert", "example.com",
                               severity=Severity.CRITICAL, summary="...")],
                               domains={"example.com"})

See docs/alerts.md. :func:`sync` is imported lazily so that ``mtasts.alerts.model``
(pure) can be imported without SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mtasts.alerts.api import SyncResult, sync

__all__ = ["SyncResult", "sync"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mtasts.alerts import api as module

        return getattr(module, name)
    raise AttributeError(name)
