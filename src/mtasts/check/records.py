"""Checks of the two DNS records: ``_mta-sts`` (RFC 8461 §3.1) and ``_smtp._tls`` (RFC 8460 §3).

Each function takes the DNS evidence and returns findings; the grammar itself is the model's
(``mtasts.sts.record``, ``mtasts.tlsrpt.record``), so the checker and the sender can never
disagree about what a valid record is.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mtasts.check.evidence import Lookup, TxtAnswer
from mtasts.check.finding import EvidenceValue, Finding, Severity
from mtasts.errors import Linted, Notice
from mtasts.sts.record import is_sts_record, lint_sts_record
from mtasts.tlsrpt.record import is_tlsrpt_record, lint_tlsrpt_records

STS_RFC = "RFC 8461 §3.1"
TLSRPT_RFC = "RFC 8460 §3"
STS_PREFIX = "v=STSv1"
_UNDETERMINED = (Lookup.TIMEOUT, Lookup.SERVFAIL)


def _from_notices(linted: Linted[Any], **ev: EvidenceValue) -> list[Finding]:
    out = [Finding.of(n.code, Severity.CRITICAL, n.message, n.rfc, **ev) for n in linted.errors]
    out += [Finding.of(n.code, Severity.WARNING, n.message, n.rfc, **ev) for n in linted.warnings]
    return out


def _dns_unknown(fid: str, answer: TxtAnswer, what: str) -> Finding:
    return Finding.of(
        fid,
        Severity.UNKNOWN,
        f"the DNS lookup of {answer.name} ({what}) failed: {answer.outcome.value}"
        f"{': ' + answer.detail if answer.detail else ''}. Check the domain's name servers.",
        name=answer.name,
        outcome=answer.outcome.value,
    )


def _misplaced(prefix_test: str, elsewhere: Sequence[TxtAnswer]) -> TxtAnswer | None:
    for other in elsewhere:
        if any(r.startswith(prefix_test) for r in other.records):
            return other
    return None


def check_sts_record(answer: TxtAnswer, elsewhere: Sequence[TxtAnswer] = ()) -> list[Finding]:
    """The ``_mta-sts.<domain>`` TXT record: present, exactly one, well-formed (§3.1).

    ``elsewhere`` are TXT answers at names where administrators misplace the record (the
    apex, ``_mta_sts.<domain>``, ``mta-sts.<domain>``); they are only consulted when no
    record is found at the right name.
    """
    if answer.outcome in _UNDETERMINED:
        return [_dns_unknown("sts-record.dns-error", answer, "MTA-STS record")]
    out: list[Finding] = []
    if answer.cnames:
        out.append(
            Finding.of(
                "sts-record.cname",
                Severity.OK,
                f"{answer.name} is delegated by CNAME to {answer.cnames[-1]} (RFC 8461 §8.2); "
                "the policy is still fetched from mta-sts.<your domain>, which needs its own "
                "certificate",
                "RFC 8461 §8.2",
                cnames=answer.cnames,
            )
        )
        if answer.outcome is Lookup.NXDOMAIN:
            out.append(
                Finding.of(
                    "sts-record.dangling-cname",
                    Severity.CRITICAL,
                    f"{answer.name} is a CNAME to {answer.cnames[-1]}, which does not exist. "
                    "Fix or remove the delegation.",
                    STS_RFC,
                    cnames=answer.cnames,
                )
            )
            return out
    candidates = [r for r in answer.records if is_sts_record(r)]
    if not candidates:
        misplaced = _misplaced(STS_PREFIX, elsewhere)
        if misplaced is not None:
            out.append(
                Finding.of(
                    "sts-record.wrong-name",
                    Severity.CRITICAL,
                    f"an MTA-STS record is published at {misplaced.name}, but senders only "
                    f"look at {answer.name}. Move it there.",
                    STS_RFC,
                    found_at=misplaced.name,
                    records=misplaced.records,
                )
            )
            return out
        # A near miss ("v=stsv1;", " v=STSv1;", "id=1; v=STSv1"): say what is wrong with it.
        for near in (r for r in answer.records if "sts" in r.lower()):
            out += _from_notices(lint_sts_record(near), record=near)
        other = f" (found only other TXT records: {'; '.join(answer.records)})"
        out.append(
            Finding.of(
                "sts-record.missing",
                Severity.CRITICAL,
                f"no MTA-STS record at {answer.name}{other if answer.records else ''}: senders "
                f'do not use MTA-STS for this domain. Publish TXT "v=STSv1; id=...".',
                STS_RFC,
                name=answer.name,
                records=answer.records,
            )
        )
        return out
    if len(candidates) > 1:
        out.append(
            Finding.of(
                "sts-record.multiple",
                Severity.CRITICAL,
                f"{len(candidates)} TXT records at {answer.name} start with v=STSv1; senders "
                "then ignore MTA-STS entirely. Keep exactly one.",
                STS_RFC,
                records=tuple(candidates),
            )
        )
        return out
    record = candidates[0]
    linted = lint_sts_record(record)
    out += _from_notices(linted, record=record)
    if linted.valid:
        out.append(
            Finding.of(
                "sts-record.valid",
                Severity.OK,
                f"{answer.name} holds one valid MTA-STS record",
                STS_RFC,
                record=record,
            )
        )
    return out


def check_tlsrpt_record(answer: TxtAnswer, elsewhere: Sequence[TxtAnswer] = ()) -> list[Finding]:
    """The ``_smtp._tls.<domain>`` record: exactly one, well-formed, usable ``rua`` (§3).

    A missing record is a warning (reports are optional, but without them the domain learns
    of failures only from bounces); a broken or duplicated one is critical, because the
    administrator meant to receive reports and gets none.
    """
    if answer.outcome in _UNDETERMINED:
        return [_dns_unknown("tlsrpt-record.dns-error", answer, "TLS-RPT record")]
    present = [r for r in answer.records if is_tlsrpt_record(r)]
    if not present:
        misplaced = _misplaced("v=TLSRPTv1", elsewhere)
        if misplaced is not None:
            return [
                Finding.of(
                    "tlsrpt-record.wrong-name",
                    Severity.CRITICAL,
                    f"a TLS-RPT record is published at {misplaced.name}, but senders only "
                    f"look at {answer.name}. Move it there.",
                    TLSRPT_RFC,
                    found_at=misplaced.name,
                    records=misplaced.records,
                )
            ]
        linted = lint_tlsrpt_records(answer.records)
        missing = Finding.of(
            "tlsrpt-record.missing",
            Severity.WARNING,
            f"no TLS-RPT record at {answer.name}: senders will not tell you when TLS to your "
            'MXs fails. Publish TXT "v=TLSRPTv1; rua=mailto:tls-reports@<your domain>".',
            TLSRPT_RFC,
            name=answer.name,
            records=answer.records,
        )
        hints = [n for n in linted.errors if n.code != "tlsrpt-record.missing"]
        return [
            *[
                Finding.of(n.code, Severity.CRITICAL, n.message, n.rfc, records=answer.records)
                for n in hints
            ],
            missing,
        ]
    linted = lint_tlsrpt_records(answer.records)
    out = _from_notices(linted, records=tuple(present))
    if linted.valid and linted.value is not None:
        out.append(
            Finding.of(
                "tlsrpt-record.valid",
                Severity.OK,
                f"{answer.name} holds one valid TLS-RPT record; reports go to "
                + ", ".join(linted.value.rua),
                TLSRPT_RFC,
                record=present[0],
                rua=linted.value.rua,
            )
        )
    return out


def notice_finding(notice: Notice, severity: Severity) -> Finding:
    return Finding.of(notice.code, severity, notice.message, notice.rfc)
