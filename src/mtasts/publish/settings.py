"""The ``[serve]`` section of mtasts.toml: the policy host ``mtasts serve policy`` (pure).

Example::

    [serve]
    listen = "127.0.0.1:8080"            # behind a TLS proxy; or cert and key for HTTPS
    dir = "/var/lib/mtasts/policies"     # <domain>.txt files (mtasts policy generate -o)

    [serve.policies]                     # or name each file (relative: to this file)
    "example.com" = "/etc/mtasts/policies/example.com.txt"
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mtasts.errors import ConfigError
from mtasts.settings.schema import setting
from mtasts.settings.types import HostPort, parse_hostport

READ_TIMEOUT = 10.0  # for the TLS handshake and the request head together; and the answer
DEFAULT_MAX_CONNECTIONS = 1000


class ServeListen(HostPort):
    """Where the policy host listens: ``HOST`` (port 8080) or ``HOST:PORT``."""

    __slots__ = ()

    @classmethod
    def expected(cls) -> str:
        return "HOST or HOST:PORT such as 127.0.0.1:8080"

    @classmethod
    def parse(cls, text: str) -> ServeListen:
        return cls(*parse_hostport(text, default_port=8080, what="listen address"))


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """``mtasts serve policy``: the HTTPS host of /.well-known/mta-sts.txt (RFC 8461 §3.3)."""

    listen: ServeListen = setting(ServeListen("127.0.0.1", 8080), doc="HOST:PORT to listen on")
    dir: Path | None = setting(
        None,
        doc="directory of <domain>.txt policy files (as `mtasts policy generate -o` writes)",
        example="/var/lib/mtasts/policies",
    )
    policies: Mapping[str, Path] = setting(
        default_factory=dict,
        doc='the policy file of each domain, "example.com" = "policy.txt" (instead of '
        "dir; relative paths: to the config file)",
    )
    cert: Path | None = setting(None, doc="TLS certificate chain (PEM); unset: plain HTTP")
    key: Path | None = setting(None, doc="TLS private key (PEM)")
    acme: bool = setting(
        False, doc="certificates from an ACME CA instead of cert/key ([acme]; docs/acme.md)"
    )
    max_connections: int = setting(
        DEFAULT_MAX_CONNECTIONS, minimum=1, doc="connections at once (fitted to the fd limit)"
    )
    max_per_client: int | None = setting(
        None, minimum=0, doc="connections at once per client; 0 = no limit; unset: 16 with cert"
    )
    client_rate: float | None = setting(
        None, minimum=0, doc="new connections a second per client; 0 = none; unset: 10 with cert"
    )
    read_timeout: float = setting(
        READ_TIMEOUT, minimum=0.1, doc="seconds for the TLS handshake and request head, each"
    )

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ConfigError("cert and key go together: give both or neither")
        if self.acme and self.cert is not None:
            raise ConfigError("acme obtains the certificates: leave out cert and key")
        if self.dir is not None and self.policies:
            raise ConfigError("give dir or policies, not both")
