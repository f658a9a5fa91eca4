"""What to do with a received TLS-RPT report (RFC 8460 §5): the receiver's pure decisions.

Pure: values in, values out. Which copies are the same report (dedup keys), whether a
report is ours, whether it is quarantined (DKIM, the https secret path), and the
retention cut-off. The I/O around it is :mod:`mtasts.tlsrpt.receive.intake`.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

import orjson

from mtasts.errors import DomainNameError
from mtasts.names import normalize_domain
from mtasts.settings.schema import setting
from mtasts.tlsrpt.model import Report
from mtasts.tlsrpt.reader import MAX_REPORT_BYTES


class Channel(StrEnum):
    """How one copy of a report arrived."""

    HTTPS = "https"
    LMTP = "lmtp"
    SMTP = "smtp"
    IMAP = "imap"
    FILE = "file"
    MAILDIR = "maildir"
    MBOX = "mbox"


class Disposition(StrEnum):
    """What became of one arrival."""

    STORED = "stored"  # a new report, counted in `tlsrpt received`
    DUPLICATE = "duplicate"  # a report already stored (or quarantined); the arrival is logged
    QUARANTINED = "quarantined"  # kept, with its raw bytes, but not counted
    REFUSED = "refused"  # not a report we take; the reason says why


class OtherDomains(StrEnum):
    """What to do with a report none of whose policy domains is ours."""

    REFUSE = "refuse"
    QUARANTINE = "quarantine"
    ACCEPT = "accept"


class DkimResult(StrEnum):
    PASS = "pass"  # noqa: S105 (a verdict, not a password)
    FAIL = "fail"
    NONE = "none"  # no DKIM-Signature, or not a mail arrival
    TEMPERROR = "temperror"  # the key could not be looked up (DNS failed)


@dataclass(frozen=True, slots=True)
class DkimVerdict:
    """The DKIM verdict of one mail arrival (RFC 8460 §3: report mail MUST be signed).

    ``aligned``: d= is the From domain or a parent of it (same organisation, as mox
    requires), so a pass by an unrelated domain's key does not authenticate the report.
    """

    result: DkimResult
    domain: str | None = None
    selector: str | None = None
    reason: str | None = None
    aligned: bool = False

    @property
    def authenticated(self) -> bool:
        return self.result is DkimResult.PASS and self.aligned


NO_DKIM = DkimVerdict(DkimResult.NONE)


@dataclass(frozen=True, slots=True)
class ReceiveSettings:
    """How the receiver decides (the ``[receive]`` table of mtasts.toml).

    ``owned_domains`` empty means every policy domain is taken. A policy domain is ours
    when it is an owned domain or below one (DANE reports name the MX host).
    """

    owned_domains: frozenset[str] = setting(
        frozenset(), doc="policy domains taken in (and below them); empty: every domain"
    )
    other_domains: OtherDomains = setting(
        OtherDomains.REFUSE, doc="a report for none of owned_domains"
    )
    require_dkim: bool = setting(
        False, doc="mail arrivals without an aligned DKIM pass are quarantined"
    )
    verify_dkim: bool = setting(
        True, doc='false: no DNS lookups, verdict "none" (bulk imports, benchmarks)'
    )
    require_https_secret: bool = setting(
        False, doc="https posts not on a secret path are quarantined"
    )
    max_bytes: int = setting(
        MAX_REPORT_BYTES, minimum=1024, doc="bounds the input and every decompressed form"
    )
    keep_days: int | None = setting(None, minimum=1, doc="retention in days; unset: keep all")
    archive_refused: bool = setting(True, doc="keep refused inputs (not https without secret)")
    nameserver: tuple[str, int] | None = setting(None, internal=True)  # the resolver's
    dns_timeout: float = setting(5.0, internal=True)  # [timeouts] dns
    batch_size: int = setting(256, minimum=1, doc="arrivals written per transaction at most")

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "owned_domains",
            frozenset(d.strip().rstrip(".").lower() for d in self.owned_domains if d.strip()),
        )
        if self.max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        if self.keep_days is not None and self.keep_days < 1:
            raise ValueError("keep_days must be at least 1")


@dataclass(frozen=True, slots=True)
class Verdict:
    """A decision: the disposition and, unless stored, a stable code and one line."""

    disposition: Disposition
    reason_code: str | None = None
    reason: str | None = None


STORE = Verdict(Disposition.STORED)

# --- identity ------------------------------------------------------------------------------


def raw_hash(raw: bytes) -> str:
    """The archive key of one input, byte for byte."""
    return hashlib.sha256(raw).hexdigest()


def canonical(report: Report) -> bytes:
    """The report as read, as canonical JSON: the same report gzip'd differently, sent as
    plain JSON or wrapped in an e-mail gives the same bytes."""
    return orjson.dumps(report, option=orjson.OPT_SORT_KEYS)


def content_hash(report: Report) -> str:
    return hashlib.sha256(canonical(report)).hexdigest()


def policy_domains(report: Report) -> tuple[str, ...]:
    return tuple(sorted({p.policy_domain.lower().rstrip(".") for p in report.policies}))


def dedup_key(report: Report, domains: tuple[str, ...] | None = None) -> str:
    """Which copies are one report: organisation + report-id (RFC 8460 §4.4), with the
    date range and the policy domains.

    RFC 8460 makes report-id unique per sender, but Halon's generator reuses one id for
    every domain of a run, so the policy domains are part of the key: two domains' reports
    are never merged into one. ``domains``: :func:`policy_domains` of ``report``, if the
    caller has them already.
    """
    parts = (
        " ".join(report.organization_name.split()).casefold(),
        report.report_id.strip(),
        report.date_range_start.isoformat(),
        report.date_range_end.isoformat(),
        ",".join(policy_domains(report) if domains is None else domains),
    )
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "replace")).hexdigest()


def report_day(report: Report) -> date:
    """The UTC day a report is counted on: the day its range starts.

    RFC 8460 §4.1 reports cover 00:00-24:00 UTC; Mail.ru and Stalwart end at the next
    midnight, Stalwart can report hourly or weekly: the start day is the one that holds.
    """
    return report.date_range_start.date()


# --- decisions -----------------------------------------------------------------------------


def is_ours(domain: str, owned: frozenset[str]) -> bool:
    name = domain.lower().rstrip(".")
    return any(name == d or name.endswith("." + d) for d in owned)


def ownership(
    report: Report, settings: ReceiveSettings, domains: tuple[str, ...] | None = None
) -> Verdict:
    """Refuse (or quarantine) a report none of whose policy domains is ours.

    A report with some domains of ours and some not is stored whole (its raw bytes are
    one object); the questions are asked per domain, so the others are never shown.
    """
    owned = settings.owned_domains
    if not owned or settings.other_domains is OtherDomains.ACCEPT or not report.policies:
        return STORE
    if domains is None:
        domains = policy_domains(report)
    if any(is_ours(d, owned) for d in domains):
        return STORE
    shown = ", ".join(d or "(none)" for d in domains)[:200]
    reason = f"the report is about {shown}, none of them a domain of this receiver"
    if settings.other_domains is OtherDomains.QUARANTINE:
        return Verdict(Disposition.QUARANTINED, "not-our-domain", reason)
    return Verdict(Disposition.REFUSED, "not-our-domain", reason)


@functools.lru_cache(maxsize=4096)
def _not_a_domain(name: str) -> str | None:
    """Why ``name`` (a policy-domain as read) is no domain name, or None when it is one."""
    try:
        normalize_domain(name)
    except DomainNameError as exc:
        return str(exc)  # "'x y' is not a valid domain name: label 'x y' may only ..."
    return None


def validity(report: Report, domains: tuple[str, ...] | None = None) -> Verdict:
    """Quarantine a report whose policy-domain is no domain name (RFC 8460 §4.4: the
    domain the policy is defined for): it cannot be counted for any domain, and a sender
    writing "" or free text there is broken; kept with its raw bytes, never lost."""
    for domain in policy_domains(report) if domains is None else domains:
        why = _not_a_domain(domain) if domain else "the report names no policy-domain"
        if why is not None:
            return Verdict(Disposition.QUARANTINED, "policy-domain-invalid", why[:300])
    return STORE


def authentication(
    report: Report,
    settings: ReceiveSettings,
    *,
    is_mail: bool,
    https: bool,
    dkim: DkimVerdict,
    secret_domain: str | None,
) -> Verdict:
    """Quarantine what the configuration wants authenticated and is not (never lost).

    RFC 8460 §3: report mail MUST be DKIM-signed, and receivers MAY ignore reports that
    are not; §5.4 gives https no authentication, so we offer a secret path per domain.
    Files imported by the operator are taken as the operator vouches for them.
    """
    if is_mail and settings.require_dkim and not dkim.authenticated:
        if dkim.result is DkimResult.PASS:
            why = f"DKIM passed for d={dkim.domain}, which is not the From domain's organisation"
        elif dkim.result is DkimResult.NONE:
            why = "the report e-mail has no DKIM signature"
        else:
            why = f"DKIM {dkim.result.value}: {dkim.reason or 'no reason given'}"
        return Verdict(Disposition.QUARANTINED, "dkim-required", why[:300])
    if https and secret_domain is not None:
        domains = policy_domains(report)
        if domains and not all(is_ours(d, frozenset({secret_domain.lower()})) for d in domains):
            return Verdict(
                Disposition.QUARANTINED,
                "secret-domain-mismatch",
                f"posted on the secret path of {secret_domain} but about "
                f"{', '.join(domains)[:200]}",
            )
    elif https and settings.require_https_secret:
        return Verdict(
            Disposition.QUARANTINED,
            "https-secret-required",
            "posted on the public path; this receiver takes https reports on secret paths",
        )
    return STORE


def decide(
    report: Report,
    settings: ReceiveSettings,
    *,
    is_mail: bool,
    https: bool,
    dkim: DkimVerdict,
    secret_domain: str | None,
    domains: tuple[str, ...] | None = None,
) -> Verdict:
    """Ownership first (refusal beats quarantine), then the domains' validity, then
    authentication. ``domains``: :func:`policy_domains` of ``report``, if the caller has
    them already (an import computes them once a report)."""
    verdict = ownership(report, settings, domains)
    if verdict.disposition is not Disposition.STORED:
        return verdict
    verdict = validity(report, domains)
    if verdict.disposition is not Disposition.STORED:
        return verdict
    return authentication(
        report, settings, is_mail=is_mail, https=https, dkim=dkim, secret_domain=secret_domain
    )


def promotes(existing_status: str, new: Disposition) -> bool:
    """A quarantined report is stored when a copy that passes arrives (an unsigned https
    copy first, then the DKIM-signed mail)."""
    return existing_status == Disposition.QUARANTINED.value and new is Disposition.STORED


def archive_refused(settings: ReceiveSettings, *, https: bool, secret_domain: str | None) -> bool:
    """Keep the bytes of a refused input so ``tlsrpt reprocess`` can read it again after a
    reader fix, except from anonymous https posters (anyone could fill the archive)."""
    return settings.archive_refused and (not https or secret_domain is not None)


def retention_cutoff(today: date, keep_days: int | None) -> date | None:
    """Reports of days before this one are deleted; None keeps everything."""
    if keep_days is None:
        return None
    return today - timedelta(days=keep_days)


def reader_reason(code: str) -> str:
    """The stable reason code of an input the reader could not take."""
    return "too-large" if code == "report.too-large" else "not-a-report"
