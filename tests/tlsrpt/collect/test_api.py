"""The Python API sends libtlsrpt datagrams the collector counts like Postfix's."""

from __future__ import annotations

import socket
from pathlib import Path

from mtasts.results import PolicyType, ResultType
from mtasts.tlsrpt.collect.api import TlsRptRecorder, record_session
from mtasts.tlsrpt.collect.datagram import decode_datagram


def test_recorded_sessions_arrive_as_datagrams(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        with TlsRptRecorder(path) as rec:
            assert rec.record_session(
                domain="a.example",
                policy_type=PolicyType.STS,
                policy_string=("version: STSv1",),
                mx_host=("mx.a.example",),
            )
            assert rec.record_session(
                domain="a.example",
                failure=ResultType.CERTIFICATE_EXPIRED,
                receiving_mx_hostname="mx.a.example",
                receiving_ip="192.0.2.7",
            )
        ok = decode_datagram(server.recv(65536))
        bad = decode_datagram(server.recv(65536))
    assert ok.policies[0].policy_type is PolicyType.STS
    assert not ok.policies[0].failed
    assert bad.policies[0].failed
    assert bad.policies[0].failures[0].result_type == "certificate-expired"
    assert bad.policies[0].policy_domain == "a.example"


def test_report_delivery_sessions_are_not_recorded(tmp_path: Path) -> None:
    """RFC 8460 §3: the session carrying a report is not counted (no report loops)."""
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.setblocking(False)
        assert record_session(path, domain="a.example", carries_report=True)
        try:
            server.recv(65536)
            received = True
        except BlockingIOError:
            received = False
    assert not received


def test_collector_down_returns_false(tmp_path: Path) -> None:
    assert not record_session(tmp_path / "nobody.sock", domain="a.example")
