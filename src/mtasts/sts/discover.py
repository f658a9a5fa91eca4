"""Discovery of one domain's MTA-STS policy: the TXT record and the HTTPS fetch.

I/O around pure rules: :func:`txt_outcome` turns a TXT answer into the refresh model's
:class:`~mtasts.sts.refresh.TxtOutcome`; :func:`check_response` applies RFC 8461 §3.3 to
an HTTP response. Every failure is an :class:`~mtasts.errors.MtastsError` whose
``result_type`` is what TLS-RPT reports.
"""

from __future__ import annotations

from dataclasses import dataclass

from mtasts.errors import DnsError, FetchError, Notice, PolicyError, StsRecordError
from mtasts.net.dns import DnsClient, TxtAnswer
from mtasts.net.https import HttpResponse, HttpsClient
from mtasts.rfcnames import WELL_KNOWN_PATH, policy_host, sts_record_name
from mtasts.sts.policy import Policy, read_policy
from mtasts.sts.record import select_sts_record
from mtasts.sts.refresh import TxtKind, TxtOutcome


def txt_outcome(answer: TxtAnswer) -> TxtOutcome:
    """Classify one ``_mta-sts`` TXT answer (RFC 8461 §3.1).

    Records that are not STSv1 are discarded; none left, several left, or one malformed
    record all mean "no available policy" (``TxtKind.NONE``), with the reason kept.
    """
    if not answer.exists:
        what = "does not exist (NXDOMAIN)" if answer.nxdomain else "has no TXT record"
        return TxtOutcome(
            TxtKind.NONE,
            ttl=answer.ttl,
            notice=Notice("sts-record.absent", f"{answer.name} {what}", "RFC 8461 §3.1"),
        )
    try:
        record = select_sts_record(answer.records)
    except StsRecordError as exc:
        return TxtOutcome(TxtKind.NONE, ttl=answer.ttl, notice=exc.notice())
    if record is None:
        return TxtOutcome(
            TxtKind.NONE,
            ttl=answer.ttl,
            notice=Notice(
                "sts-record.absent",
                f"{answer.name} has TXT records but none starts with v=STSv1;",
                "RFC 8461 §3.1",
            ),
        )
    return TxtOutcome(TxtKind.RECORD, record_id=record.id, ttl=answer.ttl)


async def discover(dns: DnsClient, domain: str) -> TxtOutcome:
    """Look up and classify ``_mta-sts.<domain>``; a DNS failure is ``TxtKind.ERROR``."""
    try:
        answer = await dns.txt(sts_record_name(domain))
    except DnsError as exc:
        return TxtOutcome(TxtKind.ERROR, notice=exc.notice())
    return txt_outcome(answer)


@dataclass(frozen=True, slots=True)
class FetchedPolicy:
    """A policy fetched and validated, with its text exactly as served."""

    policy: Policy
    raw_text: str


def media_type(content_type: str | None) -> str | None:
    """The media type of a Content-Type value, lower case, parameters dropped (RFC 9110)."""
    if content_type is None:
        return None
    return content_type.split(";", 1)[0].strip().lower()


def check_response(response: HttpResponse) -> FetchedPolicy:
    """Apply RFC 8461 §3.3 to an HTTP response and parse the policy (§3.2).

    Raises FetchError for a redirect or any status but 200, PolicyError for a wrong media
    type, undecodable text or an invalid policy.
    """
    url = response.url
    if 300 <= response.status < 400:
        where = f" to {response.location}" if response.location else ""
        raise FetchError(
            f"GET {url} answered HTTP {response.status}, a redirect{where}; senders must not "
            "follow redirects (RFC 8461 §3.3): serve the policy at this URL with status 200",
            code="fetch.redirect",
        )
    if response.status != 200:
        raise FetchError(
            f"GET {url} answered HTTP {response.status}; only 200 OK counts (RFC 8461 §3.3)",
            code="fetch.status",
        )
    kind = media_type(response.content_type)
    if kind != "text/plain":
        # RFC 8461 §3.2 "SHOULD validate that the media type is text/plain". We reject,
        # as sts-policy-invalid: the host answered, but not with a policy file.
        shown = response.content_type or "no Content-Type"
        raise PolicyError(
            f"{url} was served as {shown!r}; the policy must be served as text/plain",
            code="policy.media-type",
            rfc="RFC 8461 §3.2",
        )
    # RFC 8461 §3.2: charset parameters other than utf-8 / us-ascii are ignored; we decode
    # as UTF-8 whatever the header says (US-ASCII is a subset; checklist E-17).
    try:
        text = response.body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(
            f"{url} is not valid UTF-8 text (byte {exc.start}); save the policy as UTF-8",
            code="policy.encoding",
        ) from exc
    try:
        # The sender's tolerant reading (issue 16): a harmless deviation is a warning in
        # ``policy.repairs``, not a downgrade to opportunistic TLS.
        return FetchedPolicy(read_policy(text), text)
    except PolicyError as exc:
        raise PolicyError(
            f"the policy at {url} is invalid: {exc.message}", code=exc.code, rfc=exc.rfc
        ) from exc


async def fetch_policy(https: HttpsClient, domain: str) -> FetchedPolicy:
    """Fetch and validate ``https://mta-sts.<domain>/.well-known/mta-sts.txt``.

    Raises FetchError, WebPkiError or PolicyError.
    """
    response = await https.get(policy_host(domain), WELL_KNOWN_PATH)
    return check_response(response)
