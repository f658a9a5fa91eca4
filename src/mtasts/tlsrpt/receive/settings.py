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
intake listeners (``tlsrpt receive``) add their own keys through ``other_keys``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from mtasts.errors import ConfigError
from mtasts.tlsrpt.receive.decide import OtherDomains, ReceiveSettings

KEYS = frozenset(
    {
        "owned_domains",
        "other_domains",
        "require_dkim",
        "verify_dkim",
        "require_https_secret",
        "max_bytes",
        "keep_days",
        "archive_refused",
        "batch_size",
    }
)
_BOOLS = ("require_dkim", "verify_dkim", "require_https_secret", "archive_refused")


def _fail(key: str, value: Any, why: str) -> ConfigError:
    return ConfigError(f"[receive] {key} = {value!r}: {why}", code="config.invalid")


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
    out: dict[str, Any] = {}
    for key in _BOOLS:
        if key in table:
            if not isinstance(table[key], bool):
                raise _fail(key, table[key], "write true or false")
            out[key] = table[key]
    if "owned_domains" in table:
        value = table["owned_domains"]
        if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
            raise _fail("owned_domains", value, "a list of domain names")
        out["owned_domains"] = frozenset(value)
    if "other_domains" in table:
        try:
            out["other_domains"] = OtherDomains(table["other_domains"])
        except ValueError:
            raise _fail(
                "other_domains", table["other_domains"], "one of refuse, quarantine, accept"
            ) from None
    for key, low in (("max_bytes", 1024), ("keep_days", 1), ("batch_size", 1)):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise _fail(key, value, f"a whole number of at least {low}")
            out[key] = value
    return replace(base or ReceiveSettings(), **out)
