"""The ``[receive]`` table of mtasts.toml -> :class:`ReceiveSettings`. Example::

    [receive]
    owned_domains = ["example.com", "example.net"]   # empty: every policy domain
    other_domains = "refuse"          # refuse | quarantine | accept
    require_dkim = true               # mail without an aligned DKIM pass is quarantined
    verify_dkim = true
    require_https_secret = false      # https posts off the secret paths are quarantined
    max_bytes = 10485760              # input and every decompressed form
    keep_days = 400                   # retention; absent: keep everything
    archive_refused = true

Pure: a mapping in, settings out; an unknown key is a ConfigError naming it. The
intake listeners (``tlsrpt receive``, :mod:`~mtasts.tlsrpt.receive.netconfig`) read
their own keys of the same table; :class:`ReceiveSection` is both halves, the section
the settings tree registers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mtasts.errors import ConfigError
from mtasts.settings.build import build_section
from mtasts.settings.schema import keys_of, setting
from mtasts.tlsrpt.receive.decide import ReceiveSettings
from mtasts.tlsrpt.receive.netconfig import NetConfig

KEYS = frozenset(f.name for f in keys_of(ReceiveSettings))


@dataclass(frozen=True, slots=True)
class ReceiveSection:
    """The receiving side (`mtasts tlsrpt receive`, `import`, `received`): which reports
    are taken, and the intake's listeners and limits."""

    decide: ReceiveSettings = setting(default_factory=ReceiveSettings, flatten=True)
    net: NetConfig = setting(default_factory=NetConfig, flatten=True)


def receive_settings(
    table: Mapping[str, Any],
    *,
    base: ReceiveSettings | None = None,
    other_keys: frozenset[str] = frozenset(),
) -> ReceiveSettings:
    """Settings from a ``[receive]`` table over ``base`` (defaults)."""
    unknown = sorted(set(table) - KEYS - other_keys)
    if unknown:
        known = ", ".join(sorted(KEYS | other_keys))
        raise ConfigError(
            f"unknown setting {unknown[0]!r} in [receive]; known: {known}", code="config.invalid"
        )
    mine = {k: v for k, v in table.items() if k in KEYS}
    settings = build_section(ReceiveSettings, mine, ("receive",), base=base)
    assert isinstance(settings, ReceiveSettings)
    return settings
