"""THE place a component registers its section of mtasts.toml.

One line per section: its name (the ``[table]``; ``""`` is the top level) and the frozen
dataclass that describes it, as ``"module:Class"`` so that nothing is imported until a
command reads its settings (``mtasts --version`` stays fast). The module must be pure
(no I/O at import: put it in the import-linter "Pure RFC modules" list). How to write
the dataclass: docs/configuration.md, "Adding a section".
"""

from __future__ import annotations

import importlib

SECTIONS: dict[str, str] = {
    "": "mtasts.config:Settings",  # top-level keys (resolver) with [cache] and [timeouts]
    "daemon": "mtasts.postfix.config:DaemonConfig",
    "tlsrpt": "mtasts.tlsrpt.settings:TlsRptSettings",
    "serve": "mtasts.publish.settings:ServeSettings",
    "monitor": "mtasts.monitor.settings:MonitorSettings",
    "acme": "mtasts.acme.settings:AcmeSettings",
    "alerts": "mtasts.alerts.settings:AlertSettings",
    "web": "mtasts.web.settings:WebSettings",
    "receive": "mtasts.tlsrpt.receive.settings:ReceiveSection",
}


def section_classes() -> dict[str, type]:
    """Every registered section name -> its dataclass (imported now; a module already
    imported is only looked up, and one imported again, as tests do, is seen anew)."""
    out: dict[str, type] = {}
    for name, target in SECTIONS.items():
        module, _, attribute = target.partition(":")
        cls = getattr(importlib.import_module(module), attribute)
        if not isinstance(cls, type):
            raise TypeError(f"{target} is not a class")
        out[name] = cls
    return out


def section_name(cls: type) -> str:
    """The registered name of section ``cls``; a TypeError when it is not registered."""
    for name, registered in section_classes().items():
        if registered is cls:
            return name
    raise TypeError(f"{cls.__qualname__} is not registered in mtasts.settings.registry")
