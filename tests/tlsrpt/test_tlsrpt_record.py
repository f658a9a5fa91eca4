"""The ``_smtp._tls`` TXT record (RFC 8460 §3): parse, format, select, lint."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.errors import TlsRptRecordError
from mtasts.tlsrpt.record import (
    TlsRptRecord,
    format_tlsrpt_record,
    lint_tlsrpt_record,
    lint_tlsrpt_records,
    parse_tlsrpt_record,
    select_tlsrpt_record,
    tlsrpt_record_to_json,
)

GOOD = [
    # RFC 8460 §3.1.1 and Appendix A (mailto)
    ("v=TLSRPTv1;rua=mailto:reports@example.com", ("mailto:reports@example.com",), ()),
    # RFC 8460 §3.1.2 (https)
    (
        "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
        ("https://reporting.example.com/v1/tlsrpt",),
        (),
    ),
    # two URIs, spaces around the comma (RPT-3-c)
    (
        "v=TLSRPTv1; rua=mailto:a@x.example , https://r.example/t",
        ("mailto:a@x.example", "https://r.example/t"),
        (),
    ),
    # trailing delimiter and tabs around ';'
    ("v=TLSRPTv1;\trua=mailto:a@x.example\t;\t", ("mailto:a@x.example",), ()),
    # an unknown field is accepted and kept (RPT-3-w, RPT-3-x)
    ("v=TLSRPTv1; rua=mailto:a@x.example; foo=bar", ("mailto:a@x.example",), (("foo", "bar"),)),
    # an extension before rua
    ("v=TLSRPTv1; ext.1=x; rua=mailto:a@x.example", ("mailto:a@x.example",), (("ext.1", "x"),)),
    # a percent-encoded comma inside a mailto (RPT-3-p)
    ("v=TLSRPTv1; rua=mailto:a@x.example%2Cb@x.example", ("mailto:a@x.example%2Cb@x.example",), ()),
    # the scheme is case-insensitive (RFC 3986 §3.1); the URI is kept as written
    ("v=TLSRPTv1; rua=MAILTO:a@x.example", ("MAILTO:a@x.example",), ()),
    # an unusable scheme beside a usable one: the usable one is kept (RPT-3-d)
    ("v=TLSRPTv1; rua=http://r.example/t, mailto:a@x.example", ("mailto:a@x.example",), ()),
    # duplicate rua=: the first wins (checklist §8 item 9)
    ("v=TLSRPTv1; rua=mailto:a@x.example; rua=mailto:b@x.example", ("mailto:a@x.example",), ()),
    # whitespace before the first ';' is in the ABNF (E-58; accepted, lint warns)
    ("v=TLSRPTv1 ; rua=mailto:a@x.example", ("mailto:a@x.example",), ()),
    # an empty field ';;' (outside the ABNF; skipped, lint warns)
    ("v=TLSRPTv1;; rua=mailto:a@x.example", ("mailto:a@x.example",), ()),
]


@pytest.mark.parametrize(("text", "rua", "extensions"), GOOD)
def test_good_records_parse(text: str, rua: tuple[str, ...], extensions: tuple[()]) -> None:
    """Every grammatical record parses into its usable rua URIs and its extensions."""
    assert parse_tlsrpt_record(text) == TlsRptRecord(rua, extensions)


NOT_TLSRPT = [
    "v=spf1 -all",  # another kind of record
    "v=TLSRPTv10; rua=mailto:a@x.example",  # another version
    "v=tlsrptv1; rua=mailto:a@x.example",  # the version is case-sensitive (RPT-3-b)
    "v=TLSRPTv2; rua=mailto:a@x.example",  # a future version
    " v=TLSRPTv1; rua=mailto:a@x.example",  # the version must come first
    "",  # empty
]


@pytest.mark.parametrize("text", NOT_TLSRPT)
def test_other_records_are_not_tlsrpt(text: str) -> None:
    """A record that does not start with the exact version tag is not TLS-RPT: None."""
    assert parse_tlsrpt_record(text) is None
    assert lint_tlsrpt_record(text).errors[0].code == "tlsrpt-record.not-tlsrpt"


BAD = [
    ("v=TLSRPTv1", "rua-missing"),  # no fields at all
    ("v=TLSRPTv1; foo=bar", "rua-missing"),  # no rua (RPT-3-c)
    ("v=TLSRPTv1; RUA=mailto:a@x.example", "rua-missing"),  # rua= is case-sensitive (E-58)
    ("v=TLSRPTv1; rua=", "rua-empty"),  # empty rua (E-59)
    ("v=TLSRPTv1; rua=  ", "rua-empty"),  # blank rua
    ("v=TLSRPTv1; rua=http://r.example/t", "rua-scheme"),  # only an unusable scheme (RPT-3-d)
    ("v=TLSRPTv1; rua=ftp://r.example/t", "rua-scheme"),  # only an unusable scheme
    ("v=TLSRPTv1; rua=mailto:a@x.example!10m", "rua-unencoded"),  # DMARC size suffix (RPT-3-p)
    ("v=TLSRPTv1; rua=mailto:a@x.example,,https://r.example/", "rua-syntax"),  # empty URI
    ("v=TLSRPTv1; rua=reports@example.com", "rua-syntax"),  # no scheme: not a URI
    ("v=TLSRPTv1; rua=mailto:a b@x.example", "rua-syntax"),  # a space inside the URI
    ("v=TLSRPTv1; rua=mailto:", "rua-syntax"),  # a mailto with no address
    ("v=TLSRPTv1; rua=https:/r.example", "rua-syntax"),  # https without an authority
    ("v=TLSRPTv1; rua=mailto:a@x.example%2", "rua-syntax"),  # broken percent-encoding
    ("v=TLSRPTv1; rua = mailto:a@x.example", "syntax"),  # spaces around '=' (E-58)
    ("v=TLSRPTv1 rua=mailto:a@x.example", "syntax"),  # no ';' after the version
    ("v=TLSRPTv1; rua=mailto:a@x.example; foo", "syntax"),  # a field without '='
    ("v=TLSRPTv1; rua=mailto:a@x.example; f=a=b", "syntax"),  # '=' inside an ext value
    ("v=TLSRPTv1; rua=mailto:a@x.example; -x=1", "syntax"),  # ext name starts with '-'
    ("v=TLSRPTv1; rua=mailto:a@x.example; f=é", "syntax"),  # non-ASCII ext value
    ("v=TLSRPTv1; rua=mailto:a@x.example\r\n", "rua-syntax"),  # CR LF is not WSP
    ("v=TLSRPTv1; rua=mailto:a@x.example; f=x\r\n", "syntax"),  # CR LF is not WSP
]


@pytest.mark.parametrize(("text", "code"), BAD)
def test_malformed_records_raise_with_a_stable_code(text: str, code: str) -> None:
    """A TLS-RPT record that breaks the grammar raises TlsRptRecordError naming the defect."""
    with pytest.raises(TlsRptRecordError) as info:
        parse_tlsrpt_record(text)
    assert info.value.code == f"tlsrpt-record.{code}"
    linted = lint_tlsrpt_record(text)
    assert linted.value is None
    assert [n.code for n in linted.errors] == [f"tlsrpt-record.{code}"]


LINT_WARNINGS = [
    ("v=TLSRPTv1; rua=mailto:a@x.example", []),
    ("v=TLSRPTv1 ; rua=mailto:a@x.example", ["space-before-semicolon"]),
    ("v=TLSRPTv1;; rua=mailto:a@x.example", ["empty-field"]),
    ("v=TLSRPTv1; rua=mailto:a@x.example; rua=mailto:b@x.example", ["duplicate-rua"]),
    ("v=TLSRPTv1; rua=mailto:a@x.example; foo=bar", ["unknown-field"]),
    ("v=TLSRPTv1; rua=ftp://r.example/, mailto:a@x.example", ["rua-scheme-unusable"]),
    # WSP the ABNF allows: around ',' and ';', after the final ';'
    ("v=TLSRPTv1; rua=mailto:a@x.example ,\tmailto:b@x.example ; ", []),
]


@pytest.mark.parametrize(("text", "codes"), LINT_WARNINGS)
def test_lint_warns_about_accepted_oddities(text: str, codes: list[str]) -> None:
    """Lint accepts these records but names every oddity for the administrator."""
    linted = lint_tlsrpt_record(text)
    assert linted.valid
    assert [n.code for n in linted.warnings] == [f"tlsrpt-record.{c}" for c in codes]


FORBIDDEN_WHITESPACE = [
    # the ABNF has no WSP between "rua=" and the first URI
    ("v=TLSRPTv1; rua= mailto:a@x.example", "rua-whitespace"),
    ("v=TLSRPTv1; rua=\tmailto:a@x.example", "rua-whitespace"),
    # nor after the last field without a ';' (E-5, as lint sts-record)
    ("v=TLSRPTv1; rua=mailto:a@x.example ", "trailing-whitespace"),
    ("v=TLSRPTv1; rua=mailto:a@x.example; foo=bar\t", "trailing-whitespace"),
]


@pytest.mark.parametrize(("text", "code"), FORBIDDEN_WHITESPACE)
def test_lint_refuses_whitespace_the_abnf_forbids(text: str, code: str) -> None:
    """Issue 16: lint (and check) report it as an error, consistent with lint sts-record;
    the sender still reads the unambiguous address (it would lose the report otherwise)."""
    linted = lint_tlsrpt_record(text)
    assert linted.value is None
    assert linted.errors[0].code == f"tlsrpt-record.{code}"
    if "rua=" in text:
        record = parse_tlsrpt_record(text)
        assert record is not None
        assert record.rua == ("mailto:a@x.example",)
    assert lint_tlsrpt_records(["v=spf1 -all", text]).errors[0].code == f"tlsrpt-record.{code}"


def test_lint_hints_at_a_misspelt_rua() -> None:
    """``RUA=`` is an unknown extension, so the record lacks rua; the warning says so."""
    linted = lint_tlsrpt_record("v=TLSRPTv1; RUA=mailto:a@x.example")
    assert linted.errors[0].code == "tlsrpt-record.rua-missing"
    assert (
        "did you mean 'rua'"
        in lint_tlsrpt_record("v=TLSRPTv1; RUA=mailto:a@x.example; rua=mailto:a@x.example")
        .warnings[0]
        .message
    )


def test_lint_names_a_lower_case_version() -> None:
    """A lower-case version tag is not TLS-RPT, and lint says the tag is case-sensitive."""
    notice = lint_tlsrpt_record("v=tlsrptv1; rua=mailto:a@x.example").errors[0]
    assert "case-sensitive" in notice.message


def test_multi_string_records_are_joined_by_the_caller() -> None:
    """RPT-3-s: the strings of one record are joined with no separator before parsing."""
    joined = "".join(["v=TLSRPTv1; rua=mailto:re", "ports@example.com"])
    assert parse_tlsrpt_record(joined) == TlsRptRecord(("mailto:reports@example.com",))


SELECT = [
    # RPT-3-q: non-TLS-RPT records are dropped
    (["v=spf1 -all", "v=TLSRPTv1; rua=mailto:a@x.example"], ("mailto:a@x.example",)),
    # RPT-3-r: two TLS-RPT records -> the domain has no TLS-RPT (E-56)
    (["v=TLSRPTv1; rua=mailto:a@x.example", "v=TLSRPTv1; rua=mailto:b@x.example"], None),
    # none at all
    (["v=spf1 -all"], None),
    ([], None),
]


@pytest.mark.parametrize(("records", "rua"), SELECT)
def test_select_needs_exactly_one_tlsrpt_record(
    records: list[str], rua: tuple[str, ...] | None
) -> None:
    """RFC 8460 §3: exactly one v=TLSRPTv1 record must remain, else no reporting."""
    record = select_tlsrpt_record(records)
    assert (record.rua if record else None) == rua


def test_select_raises_for_the_one_malformed_record() -> None:
    """A single TLS-RPT record that is malformed raises, so the caller can say why."""
    with pytest.raises(TlsRptRecordError):
        select_tlsrpt_record(["v=spf1 -all", "v=TLSRPTv1; rua="])


def test_lint_rrset_reports_several_or_missing_records() -> None:
    """The RRset lint names the two ways a domain ends up with no TLS-RPT."""
    two = ["v=TLSRPTv1; rua=mailto:a@x.example", "v=TLSRPTv1; rua=mailto:b@x.example"]
    assert lint_tlsrpt_records(two).errors[0].code == "tlsrpt-record.multiple"
    codes = [n.code for n in lint_tlsrpt_records(["v=tlsrptv1; rua=mailto:a@x.example"]).errors]
    assert codes == ["tlsrpt-record.not-tlsrpt", "tlsrpt-record.missing"]
    assert lint_tlsrpt_records(["v=TLSRPTv1; rua=mailto:a@x.example"]).valid


def test_format_and_json() -> None:
    """The canonical text and the --json form of a record."""
    record = TlsRptRecord(("mailto:a@x.example", "https://r.example/t"), (("foo", "bar"),))
    text = "v=TLSRPTv1; rua=mailto:a@x.example,https://r.example/t; foo=bar"
    assert format_tlsrpt_record(record) == text
    assert tlsrpt_record_to_json(record) == {
        "rua": ["mailto:a@x.example", "https://r.example/t"],
        "extensions": {"foo": "bar"},
    }
    assert tlsrpt_record_to_json(TlsRptRecord(("mailto:a@x.example",))) == {
        "rua": ["mailto:a@x.example"]
    }


@pytest.mark.parametrize(
    ("rua", "extensions"),
    [
        ((), ()),  # no URI
        (("http://r.example/",), ()),  # unusable scheme
        (("mailto:a@x.example!10m",), ()),  # unencoded '!'
        (("mailto:a@x.example",), (("rua", "x"),)),  # rua is not an extension
        (("mailto:a@x.example",), (("foo", "a b"),)),  # space in an extension value
    ],
)
def test_records_are_validated_when_built(
    rua: tuple[str, ...], extensions: tuple[tuple[str, str], ...]
) -> None:
    """A TlsRptRecord that could not be published cannot be built."""
    with pytest.raises(TlsRptRecordError):
        TlsRptRecord(rua, extensions)


_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_labels = st.text(_ALNUM, min_size=1, max_size=10)
_domains = st.lists(_labels, min_size=2, max_size=4).map(".".join)
_mailto = st.builds(lambda u, d: f"mailto:{u}@{d}", _labels, _domains)
_https = st.builds(
    lambda d, p: f"https://{d}/{p}", _domains, st.text(_ALNUM + "/-_.~", max_size=20)
)
_ext_name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}", fullmatch=True).filter(
    lambda n: n != "rua"
)
_ext_value = st.text(
    st.sampled_from([chr(c) for c in range(0x21, 0x7F) if chr(c) not in ";="]),
    min_size=1,
    max_size=20,
)
records = st.builds(
    TlsRptRecord,
    st.lists(st.one_of(_mailto, _https), min_size=1, max_size=4).map(tuple),
    st.lists(st.tuples(_ext_name, _ext_value), max_size=3).map(tuple),
)


@given(records)
def test_format_then_parse_round_trips(record: TlsRptRecord) -> None:
    """parse(format(x)) == x for every valid record."""
    assert parse_tlsrpt_record(format_tlsrpt_record(record)) == record


@given(st.text(max_size=200))
def test_lint_never_raises_on_any_text(text: str) -> None:
    """Arbitrary text gives a Linted value, never an exception."""
    lint_tlsrpt_record(text)
    lint_tlsrpt_record("v=TLSRPTv1;" + text)


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80))
def test_parse_only_raises_record_errors(tail: str) -> None:
    """After the version tag, parse either succeeds or raises TlsRptRecordError."""
    with contextlib.suppress(TlsRptRecordError):
        parse_tlsrpt_record("v=TLSRPTv1; rua=mailto:a@x.example; " + tail)
