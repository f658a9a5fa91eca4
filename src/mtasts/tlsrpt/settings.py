"""The ``[tlsrpt]`` section of mtasts.toml: TLS-RPT for a sending MTA (pure: no I/O).

``collect`` counts, ``reports`` shows and ``send`` delivers the RFC 8460 reports; the
daemon counts its policy failures into the same ``store``. Example::

    [tlsrpt]
    store = "sqlite:////var/lib/mtasts/tlsrpt.db"   # or postgresql://mtasts@db/tlsrpt
    organization = "Example Mail"        # organization-name (RFC 8460 §4.4)
    contact = "tlsrpt@example.com"       # contact-info; its domain submits the reports

    [tlsrpt.collect]
    socket = "/run/mtasts/tlsrpt.sock"   # Postfix smtp_tlsrpt_socket_name

    [tlsrpt.send]
    relay = "127.0.0.1:25"

    [tlsrpt.dkim]                        # report mail must be DKIM-signed (RFC 8460 §3)
    key = "/etc/mtasts/dkim.pem"
    selector = "tlsrpt"
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mtasts.settings.schema import setting
from mtasts.settings.types import OctalMode, SmtpRelay

#: where the tlsrpt commands keep counters and the journal when no store is set
DEFAULT_STORE = "sqlite:////var/lib/mtasts/tlsrpt.db"
DEFAULT_SPOOL = "/var/lib/mtasts/tlsrpt-collect.spool"


@dataclass(frozen=True, slots=True)
class CollectSettings:
    """``mtasts tlsrpt collect``: the datagram socket libtlsrpt (Postfix >= 3.10) writes."""

    socket: Path | None = setting(
        None,
        env=("MTASTS_TLSRPT_SOCKET",),
        doc="unix datagram socket to create (Postfix smtp_tlsrpt_socket_name)",
        example="/run/mtasts/tlsrpt.sock",
    )
    socket_mode: OctalMode = setting(
        OctalMode(0o666), doc="mode of the socket; Postfix's smtp(8) must be able to write"
    )
    flush_interval: float = setting(
        5.0,
        minimum=0.05,
        maximum=3600,
        env=("MTASTS_TLSRPT_FLUSH_INTERVAL",),
        doc="seconds between two flushes of the counters to the store",
    )
    spool: Path | None = setting(
        None,
        env=("MTASTS_TLSRPT_SPOOL",),
        doc="file for the counters when the store is down at shutdown (replayed at start); "
        f"unset: the SQLite store's file + .spool, else {DEFAULT_SPOOL}",
    )
    max_memory: int = setting(
        256,
        minimum=64,
        maximum=1 << 20,
        env=("MTASTS_TLSRPT_MAX_MEMORY",),
        doc="MiB the collector may use; past it new counters are dropped until a flush",
    )


@dataclass(frozen=True, slots=True)
class SendSettings:
    """``mtasts tlsrpt send``: how report mail leaves and when attempts are made."""

    relay: SmtpRelay = setting(
        SmtpRelay("127.0.0.1", 25),
        env=("MTASTS_TLSRPT_RELAY",),
        doc="HOST:PORT of the SMTP relay that takes report mail (your MTA)",
    )
    relay_starttls: bool = setting(False, doc="use STARTTLS to the relay")
    sender: str = setting(
        "", env=("MTASTS_TLSRPT_FROM",), doc="From address of report mail; '' = contact"
    )
    spread: float | None = setting(
        None,
        minimum=0,
        maximum=86400,
        doc="seconds over which first attempts are spread; unset: 0, with --daemon 14400",
    )
    settle: int = setting(
        300, minimum=0, maximum=86400, doc="seconds after UTC midnight before a day is built"
    )
    retry_base: int = setting(
        300, minimum=1, maximum=86400, doc="seconds before the first retry; then doubling"
    )


@dataclass(frozen=True, slots=True)
class DkimSettings:
    """The DKIM key that signs report mail (RFC 8460 §3: it MUST be signed)."""

    key: Path | None = setting(
        None, doc="PEM private key file", example="/etc/mtasts/dkim-tlsrpt.pem"
    )
    selector: str = setting("tlsrpt", doc="s= of the signature")
    domain: str = setting("", doc="d= of the signature; '' = the domain of contact")


@dataclass(frozen=True, slots=True)
class TlsRptSettings:
    """SMTP TLS Reporting (RFC 8460) for a sending MTA: collect, reports, send."""

    store: str = setting(
        "",
        doc="counters and journal: sqlite:////PATH or postgresql://USER@HOST/DB; '' = "
        f"{DEFAULT_STORE} for the tlsrpt commands, and no counting in the daemon",
        example=DEFAULT_STORE,
    )
    organization: str = setting(
        "", doc="organization-name of the reports (RFC 8460 §4.4)", example="Example Mail"
    )
    contact: str = setting(
        "",
        doc="contact-info; its domain is the TLS-Report-Submitter (RFC 8460 §5.3)",
        example="tlsrpt@example.com",
    )
    keep_days: int | None = setting(
        None,
        minimum=3,
        doc="days of counters and delivery journal kept; older days are deleted by "
        "`tlsrpt send` (each run, daily with --daemon) and `tlsrpt collect` (at start, "
        "then daily), never one with a delivery still pending; unset: kept for ever",
    )
    collect: CollectSettings = setting(default_factory=CollectSettings)
    send: SendSettings = setting(default_factory=SendSettings)
    dkim: DkimSettings = setting(default_factory=DkimSettings)
