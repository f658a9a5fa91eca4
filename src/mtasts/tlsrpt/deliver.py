"""Report delivery (RFC 8460 §5): https POST and DKIM-signed mail, journaled and retried.

The journal (:mod:`mtasts.tlsrpt.store`) makes delivery crash- and restart-safe:

1. :meth:`Sender.prepare` builds a day's reports once, resolves each domain's ``rua``
   and writes report bytes + one ``pending`` row per destination in one transaction;
   a restart finds them and never rebuilds (same bytes, same report-id).
2. :meth:`Sender.run_due` tries each due destination. Before trying it commits the next
   retry time, so a crash mid-attempt means one retry later, never a lost report; after
   a 2xx / 250 it commits ``sent`` at once, so a restart does not send it again. (The
   only duplicate left is a crash between the receiver's answer and that commit; the
   report-id and Message-ID are the same, so the receiver can tell.)
3. A failed attempt is retried with exponential back-off (5 min, doubling, capped at
   4 h, with jitter) until 24 h after the first attempt (RFC 8460 §5.5), then ``expired``.

Every ``rua`` destination is sent to (RFC 8460 §3 MAY deliver to each; a receiver that
published two wants both). The SMTP session that carries a report must not be counted
(RFC 8460 §3): this module never records sessions; for Postfix as relay see
docs/tlsrpt-sending.md (a transport with TLSRPT off for the report sender).
"""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import ipaddress
import logging
import random
import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote, unquote

import dkim
import httpx

from mtasts import __version__
from mtasts.clock import wall
from mtasts.errors import (
    ConfigError,
    DnsError,
    DomainNameError,
    FetchError,
    TlsRptError,
    TlsRptRecordError,
)
from mtasts.names import normalize_domain
from mtasts.net.dns import DnsClient
from mtasts.net.https import HttpsClient, Timeouts
from mtasts.rfcnames import tlsrpt_record_name
from mtasts.tlsrpt.aggregate import BuiltReport, ReportSettings, build_reports, report_domain
from mtasts.tlsrpt.record import parse_tlsrpt_record, select_tlsrpt_record
from mtasts.tlsrpt.report import read_report, write_report_gzip
from mtasts.tlsrpt.retention import Retention
from mtasts.tlsrpt.store import Delivery, OutboxReport, TlsRptStore

log = logging.getLogger(__name__)

RETRY_FOR = 24 * 3600  # RFC 8460 §5.5: SHOULD retry for up to 24 hours
FIRST_RETRY = 300
MAX_RETRY = 4 * 3600
SETTLE = 300
HTTPS_TOTAL_FACTOR = 4  # one https upload: at most 4 x https_timeout in all
SIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "tls-report-domain",
    "tls-report-submitter",
    "tls-required",
)


@dataclass(frozen=True, slots=True)
class DkimKey:
    """The DKIM key that signs report mail (RFC 8460 §3 MUST; its DNS record SHOULD say
    ``s=tlsrpt``)."""

    domain: str
    selector: str
    private_key_pem: bytes

    @classmethod
    def load(cls, domain: str, selector: str, path: Path) -> DkimKey:
        """The key in ``path``, checked now: a key that cannot sign would otherwise leave
        every report mail pending, each attempt failing the same way."""
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            pem = path.read_bytes()
            load_pem_private_key(pem, password=None)
        except OSError as exc:
            raise ConfigError(f"DKIM key {path}: {exc.strerror or exc}") from exc
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"DKIM key {path}: not a PEM private key without a password ({exc}): "
                "give the RSA or Ed25519 key whose public half is in "
                f"{selector}._domainkey.{domain}",
                code="config.dkim-key",
            ) from exc
        return cls(domain, selector, pem)


@dataclass(frozen=True, slots=True)
class SendSettings:
    report: ReportSettings
    relay: tuple[str, int] = ("127.0.0.1", 25)
    relay_starttls: bool = False
    sender_address: str = ""  # From / envelope sender; default contact-info
    dkim: DkimKey | None = None
    ca_file: str | None = None
    nameserver: tuple[str, int] | None = None
    https_timeout: float = 30.0
    smtp_timeout: float = 60.0
    spread: float = 0.0  # seconds over which first attempts are spread (daemon: 4 h)
    first_retry: int = FIRST_RETRY
    max_retry: int = MAX_RETRY
    retry_for: int = RETRY_FOR
    # A day is built this long after its UTC midnight: collectors flush every few
    # seconds (longer while the store is down) and hosts' clocks differ; counters
    # flushed after the build are never reported. (mox waits 240-360 s.)
    settle: int = SETTLE
    # [tlsrpt] keep_days: days of counters and journal kept (None: for ever); pruned by
    # run_forever once a day and by prune()
    keep_days: int | None = None

    @property
    def from_address(self) -> str:
        return self.sender_address or self.report.contact_info


def next_retry(attempts: int, first: int, cap: int, rng: random.Random) -> int:
    """Seconds before attempt ``attempts + 1``: first * 2^(attempts-1), capped, ±10 %."""
    base = min(cap, first * 2 ** max(0, attempts - 1))
    return max(1, int(base * rng.uniform(0.9, 1.1)))


class DeliveryError(TlsRptError):
    """One delivery attempt failed; ``permanent`` ones are not retried."""

    default_code = "deliver.failed"
    default_rfc = "RFC 8460 §5"

    def __init__(self, message: str, *, permanent: bool = False, code: str | None = None):
        super().__init__(message, code=code)
        self.permanent = permanent


# --- the mail message (RFC 8460 §5.3) ----------------------------------------------------


def message_id(report: OutboxReport, destination: str, submitter: str) -> str:
    """Stable per (report, destination): a resent copy is recognisably the same."""
    tag = hashlib.sha256(destination.encode()).hexdigest()[:12]
    return f"<{report.day:%Y%m%d}.{report.domain}.{tag}@{submitter}>"


def build_message(
    report: OutboxReport, to: str, settings: SendSettings, now: datetime
) -> EmailMessage:
    """The multipart/report message: text part, then the gzip report attachment."""
    submitter = settings.report.submitter
    policy_domain = _policy_domain(report)
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = settings.from_address
    msg["To"] = to
    msg["Subject"] = (
        f"Report Domain: {policy_domain} Submitter: {submitter} Report-ID: <{report.report_id}>"
    )
    msg["Date"] = format_datetime(now.astimezone(UTC))
    msg["Message-ID"] = message_id(report, to, submitter)
    msg["TLS-Report-Domain"] = policy_domain
    msg["TLS-Report-Submitter"] = submitter
    # RFC 8689: deliver even if the recipient's MTA-STS/DANE fails (RFC 8460 §3 MUST).
    msg["TLS-Required"] = "No"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        f"This is an aggregate TLS report from {settings.report.organization_name} "
        f"for {report.domain} on {report.day.isoformat()} (RFC 8460).\n"
    )
    msg.add_attachment(
        report.body,
        maintype="application",
        subtype="tlsrpt+gzip",
        filename=report.filename,
    )
    msg.set_type("multipart/report")
    msg.set_param("report-type", "tlsrpt")
    return msg


def _policy_domain(report: OutboxReport) -> str:
    """RFC 8460 §5.3: TLS-Report-Domain (and the Subject's Report Domain) is the report's
    Policy Domain, which for a DANE report is the TLSA base domain, not the domain whose
    rua receives it (:func:`mtasts.tlsrpt.aggregate.report_domain`). Read from the report
    itself, so reports journaled before this rule get it too."""
    linted = read_report(report.body)
    if linted.value is None:  # our own bytes; cannot happen, but never fail a delivery
        return report.domain
    return report_domain(linted.value, report.domain)


def sign_message(raw: bytes, key: DkimKey) -> bytes:
    """Prepend a DKIM-Signature: relaxed/relaxed, no ``l=``, over the RFC headers."""
    sig = dkim.sign(
        raw,
        key.selector.encode(),
        key.domain.encode(),
        key.private_key_pem,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=[h.encode() for h in SIGNED_HEADERS],
        length=False,
        tlsrpt=True,
    )
    return bytes(sig) + raw


def mailto_address(uri: str) -> str:
    """The address of a ``mailto:`` rua (RFC 6068: percent-decoded, no query)."""
    return unquote(uri[len("mailto:") :].split("?", 1)[0])


_ADDRESS_SAFE = "@!#$&'*+-/=^_`{|}~."  # RFC 5322 atext and '@', '.': kept as written


def mailboxes(uri: str) -> tuple[str, ...]:
    """A ``mailto:`` URI naming several mailboxes as one URI per mailbox (RFC 6068 §2:
    ``to`` is a comma-separated list; inside a TLS-RPT rua the comma is written ``%2C``,
    since a bare comma separates rua URIs, RFC 8460 §3). Anything else is returned as is."""
    scheme, colon, rest = uri.partition(":")
    if scheme.lower() != "mailto" or not colon:
        return (uri,)
    to = rest.partition("?")[0]
    parts = [part for part in re.split(r"%2[cC]|,", to) if part]
    if len(parts) < 2:
        return (uri,)
    return tuple(f"mailto:{part}" for part in parts)


def destination(uri: str) -> str | None:
    """One ``rua`` URI as the destination the journal keys on, or None if it cannot be
    sent to. Schemes and domains are case-insensitive (RFC 3986 §3.1, §3.2.2), so
    ``MAILTO:r@A.example`` and ``mailto:r@a.example?subject=x`` are one mailbox and
    ``HTTPS://R.example/x`` is ``https://r.example/x``: each is sent to once. RFC 8460
    §3: only ``mailto:`` and ``https:`` are defined; others are left out. A mailto
    address with control characters or spaces (SMTP command injection) and an https
    URL without a valid host are left out too."""
    scheme, _, rest = uri.partition(":")
    scheme = scheme.lower()
    if scheme == "mailto":
        address = mailto_address("mailto:" + rest)
        local, at, domain = address.rpartition("@")
        if (
            not at
            or not local
            or not domain
            or not address.isprintable()
            or any(c.isspace() or c in "<>" for c in address)
        ):
            return None
        try:
            domain = normalize_domain(domain)
        except DomainNameError:
            return None
        return "mailto:" + quote(f"{local}@{domain}", safe=_ADDRESS_SAFE)
    if scheme == "https":
        try:
            url = httpx.URL(uri)  # lower-cases the scheme and host, drops :443
        except httpx.InvalidURL:
            return None
        try:
            ipaddress.ip_address(url.host)
        except ValueError:
            try:
                normalize_domain(url.host)
            except DomainNameError:
                return None
        return str(url)
    return None


# --- transports --------------------------------------------------------------------------


@dataclass(slots=True)
class Transports:
    """The network side of delivery, shared across attempts: the https upload goes
    through the one HTTPS client (:class:`mtasts.net.https.HttpsClient`: our DNS, SNI
    and Host = the URL's host, no redirects, no keep-alive, the answer's body capped,
    connect / read / total deadlines)."""

    settings: SendSettings
    dns: DnsClient
    context: ssl.SSLContext
    https: HttpsClient = field(init=False)

    def __post_init__(self) -> None:
        t = self.settings.https_timeout
        # A 3xx is not success (RFC 8460 §5.4; E-78): the client never follows one. The
        # total deadline stops a receiver that trickles its answer a byte at a time.
        self.https = HttpsClient(
            self.dns,
            self.context,
            timeouts=Timeouts(connect=t, read=t, total=HTTPS_TOTAL_FACTOR * t),
            user_agent=f"mtasts/{__version__} (+RFC 8460)",
        )

    async def aclose(self) -> None:
        await self.https.aclose()

    async def _resolve(self, host: str) -> list[str]:
        try:
            ipaddress.ip_address(host)
            return [host]
        except ValueError:
            pass
        try:
            found = list(await self.dns.addresses(host))
        except DnsError as exc:
            raise DeliveryError(f"cannot resolve {host}: {exc.message}") from exc
        if not found:
            raise DeliveryError(f"{host} has no A or AAAA record")
        return found

    async def post(self, url: str, body: bytes) -> None:
        """POST the gzip report; only a 2xx answer is success (RFC 8460 §5.4)."""
        parsed = httpx.URL(url)  # parsing only: the request is HttpsClient's
        host, port = parsed.host, parsed.port or 443
        path = parsed.raw_path.decode("ascii")
        last: DeliveryError | None = None
        for address in await self._resolve(host):
            try:
                resp = await self.https.post(
                    address, host, port, path, body, "application/tlsrpt+gzip"
                )
            except FetchError as exc:
                last = DeliveryError(f"POST {url} via {address}: {exc.message}")
                continue
            if 200 <= resp.status < 300:
                return
            raise DeliveryError(f"POST {url} answered {resp.status}, not 2xx")
        assert last is not None
        raise last

    async def mail(self, to: str, raw: bytes) -> None:
        """Hand the message to the configured relay (smtplib, in a thread)."""
        host, port = self.settings.relay
        address = (await self._resolve(host))[0]
        await asyncio.to_thread(self._smtp, address, port, to, raw)

    def _smtp(self, address: str, port: int, to: str, raw: bytes) -> None:
        s = self.settings
        try:
            with smtplib.SMTP(address, port, timeout=s.smtp_timeout) as smtp:
                smtp.ehlo(s.report.submitter)
                if s.relay_starttls:
                    smtp.starttls(context=self.context)
                    smtp.ehlo(s.report.submitter)
                smtp.sendmail(s.from_address, [to], raw)
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()))[0]
            raise DeliveryError(
                f"the relay refused {to}: {exc.recipients}", permanent=500 <= code < 600
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"mail to {to} via {address}:{port}: {exc}") from exc


# --- the journaled sender ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt did (for the CLI and the tests)."""

    domain: str
    destination: str
    ok: bool
    status: str
    error: str = ""


def day_finished(day: date, now: float, settle: float) -> bool:
    """Whether the UTC ``day`` is over at ``now``, plus ``settle`` seconds for the
    collectors' last flush: only then is its report built (once)."""
    end = datetime.combine(day + timedelta(days=1), dtime(0), UTC).timestamp()
    return now >= end + settle


class Sender:
    """Builds, journals and delivers the reports of a store."""

    def __init__(
        self,
        store: TlsRptStore,
        settings: SendSettings,
        *,
        rng: random.Random | None = None,
    ) -> None:
        from mtasts.net.tls import client_context

        self.store = store
        self.settings = settings
        self.rng = rng or random.Random()
        # (day, domain) whose rua lookup failed at the last prepare: not journaled yet.
        self.unresolved: set[tuple[date, str]] = set()
        self.retention = Retention(store, settings.keep_days)
        self.net = Transports(
            settings, DnsClient(settings.nameserver), client_context(settings.ca_file)
        )

    async def aclose(self) -> None:
        await self.net.aclose()

    async def destinations(self, built: BuiltReport) -> tuple[str, ...] | None:
        """The rua URIs: from the record the MTA saw, else ``_smtp._tls.<domain>`` now.
        None when that lookup failed (SERVFAIL, timeout): try again later."""
        try:
            record = parse_tlsrpt_record(built.tlsrpt_record) if built.tlsrpt_record else None
            if record is None:
                answer = await self.net.dns.txt(tlsrpt_record_name(built.domain))
                record = select_tlsrpt_record(answer.records)
        except TlsRptRecordError as exc:
            log.warning("no TLS-RPT destination for %s: %s", built.domain, exc)
            return ()
        except DnsError as exc:
            log.warning("TLS-RPT record of %s not known yet: %s", built.domain, exc)
            return None
        if record is None:
            return ()
        out: dict[str, None] = {}
        for uri in (one for rua in record.rua for one in mailboxes(rua)):
            dest = destination(uri)
            if dest is None:
                log.warning("report for %s: rua %r cannot be sent to; left out", built.domain, uri)
            else:
                out[dest] = None  # a destination written twice is sent to once
        return tuple(out)

    async def prepare(self, day: date, now: int) -> int:
        """Build and journal the reports of ``day`` not journaled yet; return how many."""
        done = await self.store.has_outbox(day)
        counters = await self.store.load_day(day)
        built = [
            b for b in build_reports(counters, day, self.settings.report) if b.domain not in done
        ]
        rows = []
        for b in built:
            dests = await self.destinations(b)
            if dests is None:
                # A temporary DNS failure: journaled without a destination, the report
                # would never be sent; it is built again at the next round instead.
                self.unresolved.add((day, b.domain))
                continue
            self.unresolved.discard((day, b.domain))
            rows.append(
                OutboxReport(
                    day=day,
                    domain=b.domain,
                    report_id=b.report.report_id,
                    filename=b.filename,
                    body=write_report_gzip(b.report),
                    tlsrpt_record=b.tlsrpt_record,
                    destinations=dests,
                )
            )
        return await self.store.enqueue(
            rows, now + round(self.rng.uniform(0, self.settings.spread))
        )

    async def run_due(self, now: int) -> list[Attempt]:
        """Try every destination whose time has come, once."""
        out = []
        for d in await self.store.deliveries(due_at=now):
            out.append(await self._attempt(d, now))
        return out

    async def _attempt(self, d: Delivery, now: int) -> Attempt:
        s = self.settings
        first = d.first_attempt_at if d.first_attempt_at is not None else now
        attempts = d.attempts + 1
        retry_at = now + next_retry(attempts, s.first_retry, s.max_retry, self.rng)
        # Commit the retry time first: a crash during the attempt is retried, not lost.
        await self.store.update_delivery(
            d, attempts=attempts, first_attempt_at=first, not_before=retry_at
        )
        report = await self.store.report(d.day, d.domain)
        try:
            try:
                await self._send(report, d.destination, now)
            except (ValueError, httpx.InvalidURL) as exc:
                # A destination that cannot be addressed (journaled by an older version)
                # fails alone, permanently; it must not stop every other delivery.
                raise DeliveryError(f"{d.destination!r}: {exc}", permanent=True) from exc
        except DeliveryError as exc:
            expired = exc.permanent or retry_at - first > s.retry_for
            status = "expired" if expired else "pending"
            await self.store.update_delivery(d, status=status, last_error=exc.message[:2000])
            log.warning("report %s to %s: %s (%s)", report.report_id, d.destination, exc, status)
            return Attempt(d.domain, d.destination, False, status, exc.message)
        await self.store.update_delivery(d, status="sent", delivered_at=now, last_error="")
        return Attempt(d.domain, d.destination, True, "sent")

    async def _send(self, report: OutboxReport, destination: str, now: int) -> None:
        if destination.lower().startswith("https:"):
            await self.net.post(destination, report.body)
            return
        key = self.settings.dkim
        if key is None:
            # RFC 8460 §3: mail reports MUST be DKIM-signed; receivers MUST ignore others.
            raise DeliveryError(
                "mail reports must be DKIM-signed (RFC 8460 §3): configure --dkim-key, "
                "--dkim-selector and --dkim-domain",
                permanent=True,
                code="deliver.no-dkim",
            )
        to = mailto_address(destination)
        msg = build_message(report, to, self.settings, datetime.fromtimestamp(now, UTC))
        raw = sign_message(msg.as_bytes(), key)
        await self.net.mail(to, raw)

    async def prune(self, now: int) -> dict[str, int]:
        """``[tlsrpt] keep_days``: delete the counters and journal of older days (never a
        day with a delivery pending). A failure is logged and tried again the next day:
        sending goes on."""
        return await self.retention.prune(datetime.fromtimestamp(now, UTC).date())

    def finished(self, day: date, now: float) -> bool:
        """Whether ``day`` is over (UTC), with ``settings.settle`` seconds for late flushes."""
        return day_finished(day, now, self.settings.settle)

    async def send_days(self, days: Sequence[date], now: int) -> list[Attempt]:
        """One-shot: journal these days, then try what is due now."""
        for day in days:
            await self.prepare(day, now)
        return await self.run_due(now)

    async def run_forever(self, *, poll: float = 60.0, keep_days: int = 2) -> None:
        """Daemon: after each UTC midnight journal the finished days (first attempts
        spread over ``settings.spread``), and keep delivering what is due."""
        while True:
            wait = await self.tick(int(wall()), poll=poll, keep_days=keep_days)
            await asyncio.sleep(wait)

    async def tick(self, now: int, *, poll: float = 60.0, keep_days: int = 2) -> float:
        """One round of the daemon: journal the finished days (``settle`` seconds after
        their midnight), try what is due; return the seconds until the next round."""
        today = datetime.fromtimestamp(now, UTC).date()
        if self.retention.due(today):
            await self.prune(now)
        for day in await self.store.days():
            if self.finished(day, now) and (today - day).days <= keep_days:
                await self.prepare(day, now)
        await self.run_due(now)
        pending = [d.not_before for d in await self.store.deliveries() if d.status == "pending"]
        build = datetime.combine(today, dtime(0), UTC).timestamp() + self.settings.settle
        if build <= now:  # yesterday is built: the next build is after the coming midnight
            build += 86400
        waits = [poll, build - now, *(p - now for p in pending)]
        return max(0.2, min(waits))
