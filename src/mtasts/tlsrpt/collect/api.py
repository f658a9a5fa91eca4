"""Python API for Python MTAs: record one session's TLS outcome for the daily report.

It speaks libtlsrpt's protocol: one datagram per session to the socket of
``mtasts tlsrpt collect``, sent non-blocking (like libtlsrpt's MSG_DONTWAIT), so the MTA
never waits on reporting; if the collector is down the outcome is lost and ``False``
is returned.

    from mtasts.tlsrpt.collect.api import TlsRptRecorder
    rec = TlsRptRecorder("/var/spool/postfix/run/tlsrpt/tlsrpt.sock")
    rec.record_session(domain="example.com", policy_type=PolicyType.STS,
                       policy_string=policy_lines, mx_host=("mx.example.com",))
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtasts.results import PolicyType, ResultType
from mtasts.tlsrpt.collect.datagram import (
    FailureOutcome,
    PolicyOutcome,
    SessionOutcome,
    encode_datagram,
)


class TlsRptRecorder:
    """Sends session outcomes to a collector socket (thread-safe: one send per call)."""

    def __init__(self, socket_path: str | Path) -> None:
        self.socket_path = str(socket_path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> TlsRptRecorder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def record(self, session: SessionOutcome) -> bool:
        """Send one session; False if the collector did not take it."""
        try:
            self._sock.sendto(encode_datagram(session), self.socket_path)
        except OSError:
            return False
        return True

    def record_session(
        self,
        *,
        domain: str,
        policy_type: PolicyType = PolicyType.NO_POLICY_FOUND,
        policy_domain: str | None = None,
        policy_string: Sequence[str] = (),
        mx_host: Sequence[str] = (),
        failure: ResultType | None = None,
        failure_reason_code: str = "",
        sending_mta_ip: str = "",
        receiving_mx_hostname: str = "",
        receiving_mx_helo: str = "",
        receiving_ip: str = "",
        tlsrpt_record: str = "",
        carries_report: bool = False,
    ) -> bool:
        """Record one SMTP session to ``domain`` (the recipient / policy domain).

        ``failure`` None means policy-compliant TLS. ``carries_report=True`` marks the
        session that delivers a TLS-RPT report: it is not recorded (RFC 8460 §3 SHOULD
        NOT count it; it would make a report about a report, every day).
        """
        if carries_report:
            return True
        failures: tuple[FailureOutcome, ...] = ()
        if failure is not None:
            failures = (
                FailureOutcome(
                    failure.value,
                    sending_mta_ip,
                    receiving_mx_hostname,
                    receiving_mx_helo,
                    receiving_ip,
                    "",
                    failure_reason_code,
                ),
            )
        policy = PolicyOutcome(
            policy_type,
            policy_domain or domain,
            tuple(policy_string),
            tuple(mx_host),
            failure is not None,
            failures,
        )
        return self.record(SessionOutcome(domain, tlsrpt_record, (policy,)))


def record_session(socket_path: str | Path, **session: Any) -> bool:
    """One-shot form of :meth:`TlsRptRecorder.record_session` (same keyword arguments)."""
    with TlsRptRecorder(socket_path) as rec:
        return rec.record_session(**session)
