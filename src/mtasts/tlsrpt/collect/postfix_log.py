"""TLS outcomes from Postfix < 3.10 smtp(8) log lines (pure: lines in, outcomes out).

Postfix before 3.10 has no libtlsrpt, but smtp(8) logs each new TLS connection and each
delivery. Per smtp process (``postfix/smtp[pid]``) the reader remembers the last TLS
event and attributes it to the next ``to=<...>`` line's recipient domain, once per
connection, like Postfix 3.10 reports one result per new TLS handshake:

* ``Verified|Trusted|Anonymous TLS connection established to H[IP]:25`` -> success;
* ``server certificate verification failed for H[IP]:25: num=62:hostname mismatch`` and
  ``certificate verification failed for H[IP]:25: <reason>`` -> the failure, mapped below
  (the ``Untrusted TLS connection established`` line that follows does not undo it);
* ``status=deferred (TLS is required, but was not offered by host H[IP])`` ->
  starttls-not-supported.

A delivery without any TLS line (plain text, or a reused connection) is not counted;
neither are connection failures (RFC 8460 §4.3.4: transient failures need not be).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

from mtasts.errors import DomainNameError
from mtasts.names import normalize_domain
from mtasts.results import PolicyType, ResultType, verify_text_result
from mtasts.tlsrpt.collect.datagram import FailureOutcome, PolicyOutcome, SessionOutcome

_PREFIX = re.compile(r"postfix(?:/[\w.-]+)*/smtp\[(?P<pid>\d+)\]: (?P<msg>.*)$")
_HOST = r"(?P<host>[^\s\[\]]+)\[(?P<ip>[^\]]+)\](?::\d+)?"
_ESTABLISHED = re.compile(
    rf"^(?P<trust>Verified|Trusted|Untrusted|Anonymous) TLS connection established to {_HOST}"
)
_VERIFY_FAILED = re.compile(
    rf"^(?:server )?certificate verification failed for {_HOST}: (?P<why>.*)$"
)
_DELIVERY = re.compile(
    rf"^[0-9A-Za-z]+: to=<(?P<rcpt>[^>]*)>, relay={_HOST}"
    r".*?, status=(?P<status>\w+) \((?P<text>.*)\)$"
)
_NOT_OFFERED = "TLS is required, but was not offered by host"


def classify_verify_failure(why: str) -> ResultType:
    """The result type of an OpenSSL verification failure text (else validation-failure):
    the OpenSSL rows of the one table, :data:`mtasts.results.FAILURES`."""
    return verify_text_result(why)


@dataclass(frozen=True, slots=True)
class LogOutcome:
    """One TLS outcome read from the log: recipient domain, MX, and the failure if any."""

    domain: str
    mx_host: str
    mx_ip: str
    result_type: ResultType | None  # None: policy-compliant TLS (success)
    reason: str = ""


@dataclass(slots=True)
class _Pending:
    host: str
    ip: str
    result: ResultType | None
    reason: str


class PostfixLogReader:
    """Feed it log lines in order; it returns an outcome when one is complete."""

    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}

    def feed(self, line: str) -> LogOutcome | None:
        m = _PREFIX.search(line.rstrip("\r\n"))
        if m is None:
            return None
        pid, msg = m["pid"], m["msg"]
        if (v := _VERIFY_FAILED.match(msg)) is not None:
            why = v["why"].strip()
            self._pending[pid] = _Pending(v["host"], v["ip"], classify_verify_failure(why), why)
            return None
        if (e := _ESTABLISHED.match(msg)) is not None:
            prev = self._pending.get(pid)
            if prev is not None and prev.host == e["host"] and prev.result is not None:
                return None  # "Untrusted ... established" after a verification failure
            self._pending[pid] = _Pending(e["host"], e["ip"], None, "")
            return None
        if (d := _DELIVERY.match(msg)) is None:
            return None
        domain = _domain_of(d["rcpt"])
        if domain is None:
            return None
        if d["text"].startswith(_NOT_OFFERED):
            self._pending.pop(pid, None)
            return LogOutcome(
                domain,
                d["host"],
                d["ip"],
                ResultType.STARTTLS_NOT_SUPPORTED,
                "starttls-not-offered",
            )
        pending = self._pending.get(pid)
        if pending is None or pending.host != d["host"]:
            return None  # no new TLS handshake for this delivery: not counted
        del self._pending[pid]
        return LogOutcome(domain, pending.host, pending.ip, pending.result, pending.reason)


def _domain_of(rcpt: str) -> str | None:
    _, at, domain = rcpt.rpartition("@")
    if not at:
        return None
    try:
        return normalize_domain(domain)
    except DomainNameError:
        return None


PolicyFor = Callable[[str], PolicyOutcome | None]
"""The policy that applied to a recipient domain (e.g. from the MTA-STS cache), or None."""


def to_session(outcome: LogOutcome, policy_for: PolicyFor, sending_ip: str = "") -> SessionOutcome:
    """The outcome as a session, under the policy ``policy_for`` names (or no-policy-found)."""
    base = policy_for(outcome.domain) or PolicyOutcome(PolicyType.NO_POLICY_FOUND, outcome.domain)
    failures: tuple[FailureOutcome, ...] = ()
    if outcome.result_type is not None:
        failures = (
            FailureOutcome(
                result_type=outcome.result_type.value,
                sending_mta_ip=sending_ip,
                receiving_mx_hostname=_domain_of("@" + outcome.mx_host) or "",
                receiving_ip=outcome.mx_ip,
                failure_reason_code=outcome.reason,
            ),
        )
    policy = PolicyOutcome(
        base.policy_type,
        base.policy_domain,
        base.policy_string,
        base.mx_host,
        outcome.result_type is not None,
        failures,
    )
    return SessionOutcome(outcome.domain, "", (policy,))


def read_log(lines: Iterable[str]) -> Iterator[LogOutcome]:
    """Every TLS outcome in ``lines`` (a maillog), in order."""
    reader = PostfixLogReader()
    for line in lines:
        out = reader.feed(line)
        if out is not None:
            yield out


# syslog's two time stamps: RFC 3339 (rsyslog's and journald's high-precision format) and
# the traditional "Mmm dd hh:mm:ss" (RFC 3164), which has no year and no zone.
_RFC3339_STAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})"
)
_BSD_STAMP = re.compile(r"^([A-Z][a-z]{2}) +(\d{1,2}) \d{2}:\d{2}:\d{2} ")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def line_day(line: str, today: date) -> date:
    """The UTC day a log line was written, for the report it counts in (RFC 8460 §4.1:
    one report per UTC day).

    An RFC 3339 stamp is converted to UTC. A traditional stamp has no zone and no year: it
    is read as written (run the MTA host's syslog in UTC, or use RFC 3339 stamps), in the
    latest year that does not put it after ``today``. A line without a stamp is today's.
    """
    if (m := _RFC3339_STAMP.match(line)) is not None:
        zone = "+00:00" if m[3] == "Z" else m[3]
        if len(zone) == 5:  # +hhmm
            zone = f"{zone[:3]}:{zone[3:]}"
        try:
            return datetime.fromisoformat(f"{m[1]}T{m[2]}{zone}").astimezone(UTC).date()
        except ValueError:
            return today
    if (b := _BSD_STAMP.match(line)) is not None and b[1] in _MONTHS:
        month, day = _MONTHS.index(b[1]) + 1, int(b[2])
        for year in (today.year, today.year - 1):
            try:
                when = date(year, month, day)
            except ValueError:  # Feb 29 of a year that has none
                continue
            if when <= today:
                return when
    return today
