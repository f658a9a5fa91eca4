"""The ``[acme]`` table of mtasts.toml -> :class:`AcmeSettings`. Example::

    [acme]
    directory = "https://acme-v02.api.letsencrypt.org/directory"
    email = "postmaster@example.com"         # contact for the CA's expiry notices
    state_dir = "/var/lib/mtasts/acme"      # account key, certificates (0600), locks
    challenges = ["tls-alpn-01", "http-01"]  # http-01 needs http_listen
    http_listen = "[::]:80"                  # serve http-01 answers here (optional)
    addresses = ["192.0.2.10", "2001:db8::10"]   # names must resolve to these
    caa_identities = ["letsencrypt.org"]     # the CA's CAA issuer domain(s)
    eab_kid = ""                             # External Account Binding, when the CA needs it
    eab_hmac_key = ""                        # base64url
    ca_file = ""                             # trust for the directory URL (a test CA)
    renew_fraction = 0.6667                  # renew after 2/3 of the lifetime (ARI wins)
    alert_days = 10                          # alert when expiry is this near without renewal
    retry_min = 60                           # back-off after a failure: 60 s, doubling...
    retry_max = 21600                        # ... up to 6 h
    on_demand = false                        # issue at the first handshake for a new name
    domains = []                             # policy domains allowed without DNS checks
    cname_target = "mta-sts.provider.example"  # on demand: customers' CNAME must point here
    max_issuance_per_hour = 20               # new names (on demand) and renewals together
    metrics = "127.0.0.1:9481"               # Prometheus metrics listener (optional)

Pure: a mapping in, settings out; one ConfigError per bad key, naming it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from mtasts.config import parse_hostport
from mtasts.errors import ConfigError, DomainNameError
from mtasts.names import normalize_domain

CHALLENGE_TYPES = ("tls-alpn-01", "http-01")
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


@dataclass(frozen=True, slots=True)
class AcmeSettings:
    """Where and how certificates are obtained; see the module docstring for each key."""

    directory: str = LETS_ENCRYPT
    email: str = ""
    state_dir: Path = Path("/var/lib/mtasts/acme")
    challenges: tuple[str, ...] = ("tls-alpn-01",)
    http_listen: str = ""
    addresses: tuple[str, ...] = ()
    caa_identities: tuple[str, ...] = ()
    eab_kid: str = ""
    eab_hmac_key: str = ""
    ca_file: Path | None = None
    renew_fraction: float = 2 / 3
    alert_days: float = 10.0
    retry_min: float = 60.0
    retry_max: float = 21600.0
    on_demand: bool = False
    domains: tuple[str, ...] = ()
    cname_target: str = ""
    max_issuance_per_hour: int = 20
    metrics: str = ""
    #: seconds one issuance may take (order, challenges, finalize) before it is abandoned
    issue_timeout: float = 120.0


KEYS = frozenset(f.name for f in fields(AcmeSettings))


def _fail(key: str, value: Any, why: str) -> ConfigError:
    return ConfigError(f"[acme] {key} = {value!r}: {why}", code="config.invalid")


def _strings(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _fail(key, value, "a list of non-empty strings")
    return tuple(value)


def _domain(key: str, value: str) -> str:
    try:
        return normalize_domain(value.strip().rstrip("."))
    except DomainNameError as exc:
        raise _fail(key, value, exc.message) from None


def _number(key: str, value: Any, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(key, value, "a number")
    if value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise _fail(key, value, f"must be {bound}")
    return float(value)


def acme_settings(table: Mapping[str, Any]) -> AcmeSettings:
    """Settings from an ``[acme]`` table; absent keys keep their defaults."""
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise ConfigError(
            f"unknown setting {unknown[0]!r} in [acme]; known: {', '.join(sorted(KEYS))}",
            code="config.invalid",
        )
    out: dict[str, Any] = {}
    for key in (
        "directory",
        "email",
        "http_listen",
        "eab_kid",
        "eab_hmac_key",
        "cname_target",
        "metrics",
    ):
        if key in table:
            if not isinstance(table[key], str):
                raise _fail(key, table[key], "a string")
            out[key] = table[key].strip()
    directory = out.get("directory", LETS_ENCRYPT)
    if not directory.startswith("https://"):
        raise _fail("directory", directory, "the ACME directory is an https:// URL")
    email = out.get("email", "")
    if email and ("@" not in email or email.startswith("mailto:") or " " in email):
        raise _fail("email", email, "an e-mail address (user@example.com)")
    if bool(out.get("eab_kid")) != bool(out.get("eab_hmac_key")):
        raise _fail("eab_kid", out.get("eab_kid", ""), "eab_kid and eab_hmac_key go together")
    if out.get("eab_hmac_key"):
        key_text = out["eab_hmac_key"]
        try:
            base64.urlsafe_b64decode(key_text + "=" * (-len(key_text) % 4))
        except (binascii.Error, ValueError):
            raise _fail("eab_hmac_key", key_text, "the CA's base64url HMAC key") from None
    for key in ("http_listen", "metrics"):
        if out.get(key):
            parse_hostport(out[key], default_port=80, what=f"[acme] {key}")
    if out.get("cname_target"):
        out["cname_target"] = _domain("cname_target", out["cname_target"])
    for key in ("state_dir", "ca_file"):
        if key in table:
            value = table[key]
            if not isinstance(value, str) or (key == "state_dir" and not value):
                raise _fail(key, value, "a file system path")
            out[key] = Path(value) if value else None
    if "challenges" in table:
        kinds = _strings("challenges", table["challenges"])
        bad = [k for k in kinds if k not in CHALLENGE_TYPES]
        if bad or not kinds:
            raise _fail("challenges", table["challenges"], "tls-alpn-01 and/or http-01")
        out["challenges"] = tuple(dict.fromkeys(kinds))
    if "http-01" in out.get("challenges", ()) and not out.get("http_listen"):
        raise _fail("challenges", table["challenges"], "http-01 needs http_listen (port 80)")
    for key in ("addresses", "caa_identities", "domains"):
        if key in table:
            values = _strings(key, table[key])
            if key == "domains" or key == "caa_identities":
                values = tuple(_domain(key, v) for v in values)
            out[key] = values
    if "renew_fraction" in table:
        out["renew_fraction"] = _number("renew_fraction", table["renew_fraction"], 0.1, 0.95)
    for key, low in (("alert_days", 0.0), ("retry_min", 1.0), ("issue_timeout", 5.0)):
        if key in table:
            out[key] = _number(key, table[key], low)
    if "retry_max" in table:
        out["retry_max"] = _number("retry_max", table["retry_max"], 1.0)
    defaults = AcmeSettings()
    if out.get("retry_max", defaults.retry_max) < out.get("retry_min", defaults.retry_min):
        raise _fail("retry_max", out.get("retry_max"), "must be at least retry_min")
    if "on_demand" in table:
        if not isinstance(table["on_demand"], bool):
            raise _fail("on_demand", table["on_demand"], "write true or false")
        out["on_demand"] = table["on_demand"]
    if "max_issuance_per_hour" in table:
        value = table["max_issuance_per_hour"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail("max_issuance_per_hour", value, "a whole number of at least 1")
        out["max_issuance_per_hour"] = value
    return AcmeSettings(**out)
