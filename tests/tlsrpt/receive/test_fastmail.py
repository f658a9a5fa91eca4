"""The fast path for clean report mail gives exactly the full reader's result, and
takes only what the full reader would take."""

from __future__ import annotations

import email.policy
import re
from email.message import EmailMessage, Message
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtasts.tlsrpt.reader import read_report
from mtasts.tlsrpt.receive.fastmail import (
    MAX_PARTS,
    _fields,
    _split,
    _split_mixed,
    clean_report_part,
    media_type,
    read_any,
)


def _mails(samples: Path) -> list[Path]:
    return sorted(samples.rglob("*.eml"))


def test_every_sample_mail_reads_the_same_both_ways(samples_dir: Path) -> None:
    mails = _mails(samples_dir)
    assert len(mails) == 11
    fast = 0
    for path in mails:
        raw = path.read_bytes()
        assert read_any(raw, max_bytes=10 * 2**20, is_mail=True) == read_report(raw), path
        fast += clean_report_part(raw) is not None
    assert fast == 11  # every sample, Mail.ru (Submitter mismatch, no close delimiter) too


def test_sample_mails_written_again_by_the_email_package_read_the_same_both_ways(
    samples_dir: Path,
) -> None:
    """The same messages as another MTA might re-encode them (compat32 round trip:
    close delimiters added, empty parts written out)."""
    for path in _mails(samples_dir):
        raw = email.message_from_bytes(path.read_bytes()).as_bytes()
        assert read_any(raw, max_bytes=10 * 2**20, is_mail=True) == read_report(raw), path
        assert clean_report_part(raw) is not None, path


def _mail(**headers: str) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    for k, v in headers.items():
        msg[k.replace("_", "-")] = v
    msg.set_content("report")
    msg.add_attachment(
        b'{"organization-name":"o","date-range":{"start-datetime":"2026-11-20T00:00:00Z",'
        b'"end-datetime":"2026-11-20T23:59:59Z"},"contact-info":"r@sender.test",'
        b'"report-id":"x","policies":[{"policy":{"policy-type":"no-policy-found",'
        b'"policy-domain":"a.test"},"summary":{"total-successful-session-count":1,'
        b'"total-failure-session-count":0}}]}',
        maintype="application",
        subtype="tlsrpt+json",
    )
    msg.set_type("multipart/report")
    msg.set_param("report-type", "tlsrpt")
    return msg.as_bytes()


@pytest.mark.parametrize(
    ("headers", "fast"),
    [
        ({"TLS_Report_Domain": "a.test", "TLS_Report_Submitter": "sender.test"}, True),
        ({"TLS_Report_Domain": "a.test"}, False),  # Submitter missing: the reader warns
        ({"TLS_Report_Submitter": "sender.test"}, False),
        # envelope disagrees with the body: the reader warns, so the long way
        ({"TLS_Report_Domain": "b.test", "TLS_Report_Submitter": "sender.test"}, None),
        ({"TLS_Report_Domain": "a.test", "TLS_Report_Submitter": "other.test"}, None),
    ],
)
def test_what_is_clean(headers: dict[str, str], fast: bool | None) -> None:
    raw = _mail(**headers)
    if fast is not None:
        assert (clean_report_part(raw) is not None) is fast
    assert read_any(raw, max_bytes=2**20, is_mail=True) == read_report(raw)


def test_an_encoded_word_goes_the_long_way() -> None:
    raw = _mail(TLS_Report_Domain="a.test", TLS_Report_Submitter="sender.test").replace(
        b"TLS-Report-Domain: a.test", b"TLS-Report-Domain: =?utf-8?q?a.test?="
    )
    assert clean_report_part(raw) is None
    assert read_any(raw, max_bytes=2**20, is_mail=True) == read_report(raw)


def test_a_huge_content_type_goes_the_long_way() -> None:
    raw = _mail(TLS_Report_Domain="a.test", TLS_Report_Submitter="sender.test")
    raw = raw.replace(b'report-type="tlsrpt"', b'report-type="tlsrpt"; x="' + b"a" * 600 + b'"', 1)
    assert clean_report_part(raw) is None
    assert read_any(raw, max_bytes=2**20, is_mail=True) == read_report(raw)


@pytest.mark.parametrize(("extra", "fast"), [(MAX_PARTS - 2, True), (MAX_PARTS - 1, False)])
def test_a_mail_of_more_than_max_parts_goes_the_long_way(extra: int, fast: bool) -> None:
    """Two parts and ``extra`` text parts: up to MAX_PARTS the fast way, beyond it the
    long way (the split stops after MAX_PARTS + 2 delimiters, whatever the mail holds)."""
    msg = email.message_from_bytes(
        _mail(TLS_Report_Domain="a.test", TLS_Report_Submitter="sender.test")
    )
    for i in range(extra):
        part = Message()
        part["Content-Type"] = "text/plain"
        part.set_payload(f"note {i}\n--\n-- not a delimiter\n")
        msg.attach(part)
    raw = msg.as_bytes()
    assert (clean_report_part(raw) is not None) is fast
    assert read_any(raw, max_bytes=2**20, is_mail=True) == read_report(raw)


_PIECES = st.sampled_from(
    [
        "multipart/report",
        "Multipart/Report",
        "application/tlsrpt+gzip",
        "text/plain",
        "a/b/c",
        "nonsense",
        ";",
        " ",
        "=",
        '"',
        "\\",
        "*",
        "'",
        "boundary",
        "BOUNDARY",
        "report-type",
        "name",
        "tlsrpt",
        '"x y"',
        "(comment)",
        "=?utf-8?q?x?=",
        "a;b",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_media_type_reads_a_content_type_as_the_email_package_does(value: str) -> None:
    holder = Message()
    holder["Content-Type"] = value or "text/plain"
    kind, params = media_type(value)
    assert kind == holder.get_content_type()
    for name in ("boundary", "report-type", "name"):
        assert params.get(name) == holder.get_param(name), name


@pytest.mark.parametrize(
    "value",
    [
        'multipart/report; report-type="tlsrpt"; boundary="=_b x"',
        "multipart/report;boundary=abc; Report-Type=tlsrpt;",
        'multipart/report; boundary="a"; boundary="b"',  # the first one counts
        "application/tlsrpt+gzip; name=report.json.gz",
        "multipart/report; boundary*=utf-8''x",  # RFC 2231: the email package decides
    ],
)
def test_media_type_of_real_shapes(value: str) -> None:
    holder = Message()
    holder["Content-Type"] = value
    kind, params = media_type(value)
    assert kind == holder.get_content_type()
    for name in ("boundary", "report-type", "name"):
        assert params.get(name) == holder.get_param(name), name


_FIELD_NAME = re.compile(rb"[!-9;-~]+:")
_READ = {"content-type", "content-transfer-encoding", "content-disposition"}
_READ |= {"tls-report-domain", "tls-report-submitter"}


def _fields_line_by_line(head: bytes) -> dict[str, str] | None:
    """What fastmail._fields reads, written out line by line (the reference)."""
    if head.count(b"\n") >= 400 or head.count(b"=?") > 100:
        return None
    fields: list[list[bytes]] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if fields:
                fields[-1].append(line)
            continue
        if not _FIELD_NAME.match(line):
            return None  # neither a field nor a continuation
        fields.append([line])
    out: dict[str, str] = {}
    for lines in fields:
        name, _, first = lines[0].partition(b":")
        key = name.decode("ascii").lower()
        if key not in _READ:
            continue
        value = b"\n".join([first, *lines[1:]])
        if key in out or not value.isascii() or len(value) > 256:
            return None
        out[key] = " ".join(value.decode("ascii").split())
    return out


_HEADER_PIECES = st.sampled_from(
    [
        b"Content-Type: multipart/report",
        b"content-transfer-encoding: base64",
        b"TLS-Report-Domain: a.test",
        b"tls-report-submitter: b.test",
        b"Content-Disposition: x",
        b"tls-report-domain:",
        b"X-Other: y",
        b"--x: y",
        b"cx: 1",
        b"no field",
        b"\n",
        b"\n ",
        b"\n\t",
        b":",
        b" ",
        b"c",
        b"t",
        b"\r",
        b"\xff",
        b"=?",
    ]
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(_HEADER_PIECES, max_size=12).map(b"".join))
def test_header_fields_are_read_as_line_by_line(head: bytes) -> None:
    """One regex pass over the header finds the fields we read and any line that is no
    field, as reading it line by line does."""
    assert _fields(head) == _fields_line_by_line(head)


_SPLIT_PIECES = st.sampled_from(
    [b"Content-Type: x", b"X-A: b", b"\n", b"\r", b"\r\n", b"\n\n", b"\r\n\r\n", b" ", b"body"]
)


@settings(max_examples=2000, deadline=None)
@given(st.lists(_SPLIT_PIECES, max_size=14).map(b"".join))
def test_split_at_the_first_blank_line_as_the_two_searches_do(data: bytes) -> None:
    """One regex search for the first blank line (LF or CRLF) splits a message where the
    searches for CRLF CRLF and LF LF, and the mixed-line-end check, split it."""
    assert _split(data) == _split_mixed(data)
