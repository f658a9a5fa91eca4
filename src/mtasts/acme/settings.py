"""The ``[acme]`` section of mtasts.toml: certificates for ``serve policy --acme``. Example::

    [acme]
    directory = "https://acme-v02.api.letsencrypt.org/directory"
    email = "postmaster@example.com"         # contact for the CA's expiry notices
    state_dir = "/var/lib/mtasts/acme"      # account key, certificates (0600), locks
    challenges = ["tls-alpn-01", "http-01"]  # http-01 needs http_listen
    http_listen = "[::]:80"                  # serve http-01 answers here (optional)
    addresses = ["192.0.2.10", "2001:db8::10"]   # names must resolve to these
    on_demand = false                        # issue at the first handshake for a new name
    cname_target = "mta-sts.provider.example"  # on demand: customers' CNAME must point here

Pure: registered in mtasts.settings.registry; docs/configuration.md lists every key and
docs/acme.md explains them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtasts.errors import ConfigError, DomainNameError
from mtasts.names import normalize_domain
from mtasts.settings.build import build_section
from mtasts.settings.schema import setting
from mtasts.settings.types import HostPort, parse_hostport

CHALLENGE_TYPES = ("tls-alpn-01", "http-01")
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


class HttpListen(HostPort):
    """The http-01 listener: ``HOST`` (port 80) or ``HOST:PORT``."""

    __slots__ = ()

    @classmethod
    def expected(cls) -> str:
        return "HOST or HOST:PORT such as [::]:80"

    @classmethod
    def parse(cls, text: str) -> HttpListen:
        return cls(*parse_hostport(text, default_port=80, what="http_listen"))


class MetricsListen(HostPort):
    """The metrics listener: ``HOST`` (port 9481) or ``HOST:PORT``."""

    __slots__ = ()

    @classmethod
    def expected(cls) -> str:
        return "HOST or HOST:PORT such as 127.0.0.1:9481"

    @classmethod
    def parse(cls, text: str) -> MetricsListen:
        return cls(*parse_hostport(text, default_port=9481, what="metrics"))


def _domain(key: str, value: str) -> str:
    try:
        return normalize_domain(value.strip().rstrip("."))
    except DomainNameError as exc:
        raise ConfigError(f"[acme] {key}: {value!r}: {exc.message}") from None


@dataclass(frozen=True, slots=True)
class AcmeSettings:
    """``mtasts serve policy --acme``: certificates for mta-sts.<domain> from an ACME CA."""

    directory: str = setting(LETS_ENCRYPT, doc="the CA's ACME directory URL (https://)")
    email: str = setting("", doc="contact address for the CA's notices (optional)")
    state_dir: Path = setting(
        Path("/var/lib/mtasts/acme"), doc="account key, certificates (0600), status, locks"
    )
    challenges: tuple[str, ...] = setting(
        ("tls-alpn-01",), doc="tls-alpn-01 (on the serving port) and/or http-01, preferred first"
    )
    http_listen: HttpListen | None = setting(
        None, doc="HOST:PORT answering http-01 (port 80); needed for http-01"
    )
    addresses: tuple[str, ...] = setting(
        (), doc="our public addresses: a name must resolve to these only (unset: not checked)"
    )
    caa_identities: tuple[str, ...] = setting(
        (), doc="the CA's CAA issuer domains (unset: from its directory)"
    )
    eab_kid: str = setting("", doc="External Account Binding key id, when the CA needs one")
    eab_hmac_key: str = setting("", secret=True, doc="External Account Binding key (base64url)")
    ca_file: Path | None = setting(None, doc="trust for the directory URL (a private CA)")
    renew_fraction: float = setting(
        2 / 3, minimum=0.1, maximum=0.95, doc="renew after this part of the lifetime (ARI wins)"
    )
    alert_days: float = setting(
        10.0, minimum=0, doc="alert when expiry is this near without renewal"
    )
    retry_min: float = setting(60.0, minimum=1, doc="seconds after a failure, doubling")
    retry_max: float = setting(21600.0, minimum=1, doc="longest wait between retries (s)")
    on_demand: bool = setting(False, doc="obtain a certificate at a name's first handshake")
    domains: tuple[str, ...] = setting(
        (), doc="policy domains allowed without the _mta-sts/CNAME rule"
    )
    cname_target: str = setting("", doc="on demand: customers' mta-sts CNAME must point here")
    max_issuance_per_hour: int = setting(20, minimum=1, doc="orders an hour, all names")
    metrics: MetricsListen | None = setting(None, doc="HOST:PORT of a Prometheus listener")
    alerts_store: str = setting(
        "",
        secret=True,  # a PostgreSQL URL may carry a password
        doc="store URL where a certificate near expiry raises an mtasts alert (source acme; "
        "the [tlsrpt] store); unset: logs and metrics only",
        example="sqlite:////var/lib/mtasts/tlsrpt.db",
    )
    issue_timeout: float = setting(120.0, minimum=5, doc="seconds one order may take")

    def __post_init__(self) -> None:
        if not self.directory.startswith("https://"):
            raise ConfigError(f"[acme] directory = {self.directory!r}: an https:// URL")
        email = self.email
        if email and ("@" not in email or email.startswith("mailto:") or " " in email):
            raise ConfigError(f"[acme] email = {email!r}: an e-mail address (user@example.com)")
        if bool(self.eab_kid) != bool(self.eab_hmac_key):
            raise ConfigError("[acme] eab_kid and eab_hmac_key go together")
        if self.eab_hmac_key:
            key = self.eab_hmac_key
            try:
                base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
            except (binascii.Error, ValueError):
                raise ConfigError("[acme] eab_hmac_key: the CA's base64url HMAC key") from None
        bad = [c for c in self.challenges if c not in CHALLENGE_TYPES]
        if bad or not self.challenges:
            raise ConfigError(
                f"[acme] challenges = {list(self.challenges)}: tls-alpn-01 and/or http-01"
            )
        if "http-01" in self.challenges and self.http_listen is None:
            raise ConfigError("[acme] challenges: http-01 needs http_listen (port 80)")
        if self.retry_max < self.retry_min:
            raise ConfigError("[acme] retry_max must be at least retry_min")
        # names as the DNS and SNI spell them: A-labels, lower case, no trailing dot
        object.__setattr__(self, "domains", tuple(_domain("domains", d) for d in self.domains))
        object.__setattr__(
            self, "caa_identities", tuple(_domain("caa_identities", d) for d in self.caa_identities)
        )
        if self.cname_target:
            object.__setattr__(self, "cname_target", _domain("cname_target", self.cname_target))


def acme_settings(table: Mapping[str, Any]) -> AcmeSettings:
    """Settings from one ``[acme]`` table (the tests' and tools' shortcut; commands read
    the section from the settings tree, with the environment on top)."""
    result = build_section(AcmeSettings, table, ("acme",))
    assert isinstance(result, AcmeSettings)
    return result
