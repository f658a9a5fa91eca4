"""The ``_mta-sts`` TXT record: RFC 8461 §3.1 grammar, selection from an RRset, lint."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.errors import StsRecordError
from mtasts.sts.record import (
    StsRecord,
    format_sts_record,
    is_sts_record,
    lint_sts_record,
    parse_sts_record,
    select_sts_record,
    sts_record_to_json,
)

GOOD = [
    # (record text, id, extensions)
    ("v=STSv1; id=20160831085700Z;", "20160831085700Z", ()),  # RFC 8461 §3.1 example
    ("v=STSv1; id=20160831085700Z", "20160831085700Z", ()),  # no trailing delimiter
    ("v=STSv1;id=1", "1", ()),  # no whitespace at all (E-5)
    ("v=STSv1; id=1 ;  ", "1", ()),  # WSP around the trailing delimiter (E-5)
    ("v=STSv1\t;\tid=1", "1", ()),  # HTAB is WSP; WSP before ';' is in the ABNF (E-4)
    ("v=STSv1 ; id=1", "1", ()),  # grammar allows WSP before the first ';' (E-4, lint warns)
    ("v=STSv1; foo=bar; id=1", "1", (("foo", "bar"),)),  # order free (STS-3.1-e)
    ("v=STSv1; id=1; foo=bar", "1", (("foo", "bar"),)),  # extension kept, ignored (E-8)
    ("v=STSv1; id=" + "a" * 32, "a" * 32, ()),  # 32 characters is the longest id
    ("v=STSv1; id=AbC123", "AbC123", ()),  # upper-case letters are ALPHA
    ("v=STSv1; id=1; id=2", "1", ()),  # duplicate id: the first wins (E-9)
    ("v=STSv1; id=1; id=abc-def", "1", ()),  # ignored duplicate only needs to be well-formed
    ("v=STSv1; id=1; v=STSv2", "1", ()),  # a later v= is an ignored duplicate
    (
        "v=STSv1; id=1; a.b-c_d=!#$%&'()*+,-./:<>?@[]^_`{|}~",
        "1",
        (("a.b-c_d", "!#$%&'()*+,-./:<>?@[]^_`{|}~"),),
    ),
    ("v=STSv1; id=1; x=1; x=2", "1", (("x", "1"),)),  # duplicate extension: first wins
    ("v=STSv1; id=1; " + "n" * 32 + "=v", "1", (("n" * 32, "v"),)),  # longest ext name
    ("v=STSv1; ID=abc; id=1", "1", (("ID", "abc"),)),  # ID is an extension (%s"id")
]


@pytest.mark.parametrize(("text", "record_id", "extensions"), GOOD)
def test_parse_accepts_valid_records(
    text: str, record_id: str, extensions: tuple[tuple[str, str], ...]
) -> None:
    assert parse_sts_record(text) == StsRecord(record_id, extensions)
    assert lint_sts_record(text).valid


NOT_STS = [
    "",  # empty TXT
    "v=spf1 -all",  # another kind of record (E-2)
    "google-site-verification=abc",  # verification token
    "v=STSv10; id=1",  # STSv10 is not STSv1 (pmsr counts it; sending-anchors §2.5)
    "v=STSv2; id=1",  # another version (STS-3.1-b)
    "v=stsv1; id=1",  # version is case-sensitive (E-6)
    "V=STSv1; id=1",  # tag is case-sensitive (IMP-7405-a)
    " v=STSv1; id=1",  # leading space (E-10)
    "id=1; v=STSv1",  # version not first (STS-3.1-e, E-10)
    "v=STSv1 id=1",  # no ';' after the version
    "v=STSv1.0; id=1",  # version followed by more characters
]


@pytest.mark.parametrize("text", NOT_STS)
def test_parse_returns_none_for_records_that_are_not_stsv1(text: str) -> None:
    assert not is_sts_record(text)
    assert parse_sts_record(text) is None
    linted = lint_sts_record(text)
    assert linted.value is None
    assert [e.code for e in linted.errors] == ["sts-record.not-sts"]


BAD = [
    # (record text, first error code)
    ("v=STSv1", "sts-record.id.missing"),  # version alone (E-10)
    ("v=STSv1;", "sts-record.id.missing"),  # version and a delimiter only
    ("v=STSv1; foo=bar", "sts-record.id.missing"),  # no id field
    ("v=STSv1; ID=abc", "sts-record.id.missing"),  # ID is not id (E-6)
    ("v=STSv1; id=", "sts-record.id.invalid"),  # empty id (STS-3.1-d)
    ("v=STSv1; id=abc-1", "sts-record.id.invalid"),  # hyphen in id
    ("v=STSv1; id=abc_1", "sts-record.id.invalid"),  # underscore in id
    ("v=STSv1; id=1.2", "sts-record.id.invalid"),  # dot in id
    ("v=STSv1; id=12:00", "sts-record.id.invalid"),  # colon in id
    ("v=STSv1; id=bad-id!", "sts-record.id.invalid"),  # pmsr accepts this one
    ("v=STSv1; id=" + "a" * 33, "sts-record.id.invalid"),  # 33 characters
    ("v=STSv1; id=abc-1; id=2", "sts-record.id.invalid"),  # first id counts, and is bad
    ("v=STSv1; id=1; x=é", "sts-record.non-ascii"),  # non-ASCII (STS-3.1-a, E-12)
    ("v=STSv1; id=ü1", "sts-record.non-ascii"),  # non-ASCII id
    ("v=STSv1;; id=1", "sts-record.syntax"),  # empty field (E-5)
    ("v=STSv1; id=1;; ", "sts-record.syntax"),  # empty field before the trailing one
    ("v=STSv1; id=1 ", "sts-record.syntax"),  # WSP after the last field without ';'
    ("v=STSv1; id = 1", "sts-record.syntax"),  # spaces around '='
    ("v=STSv1; id=1 2", "sts-record.syntax"),  # space inside a value
    ("v=STSv1; id=1, foo=bar", "sts-record.syntax"),  # ',' is no delimiter: space in value
    ("v=STSv1; id1", "sts-record.syntax"),  # field without '='
    ("v=STSv1; id=1; foo", "sts-record.syntax"),  # extension without '='
    ("v=STSv1; id=1; foo=", "sts-record.extension.invalid"),  # empty extension value
    ("v=STSv1; id=1; foo=a=b", "sts-record.extension.invalid"),  # '=' in a value (E-8)
    ("v=STSv1; id=1; _foo=1", "sts-record.extension.invalid"),  # name starts with '_'
    ("v=STSv1; id=1; -foo=1", "sts-record.extension.invalid"),  # name starts with '-'
    ("v=STSv1; id=1; " + "n" * 33 + "=v", "sts-record.extension.invalid"),  # name > 32
    ("v=STSv1; id=1; =v", "sts-record.extension.invalid"),  # empty name
    ("v=STSv1; id=1; foo=\x7f", "sts-record.extension.invalid"),  # DEL is a CTL
    ("v=STSv1; id=1; v=", "sts-record.extension.invalid"),  # ignored repeat is malformed
    ("v=STSv1; id=1; id=", "sts-record.extension.invalid"),  # ignored repeat is malformed
]


@pytest.mark.parametrize(("text", "code"), BAD)
def test_parse_raises_a_specific_error_for_malformed_stsv1_records(text: str, code: str) -> None:
    with pytest.raises(StsRecordError) as info:
        parse_sts_record(text)
    assert info.value.code == code
    linted = lint_sts_record(text)
    assert linted.value is None
    assert linted.errors[0].code == code


def test_lint_suggests_the_fix_for_near_misses() -> None:
    """The not-sts message names the likely mistake, not just 'not a record'."""
    assert "case-sensitive" in lint_sts_record("v=stsv1; id=1").errors[0].message
    assert "whitespace" in lint_sts_record(" v=STSv1; id=1").errors[0].message
    assert "first" in lint_sts_record("id=1; v=STSv1").errors[0].message
    assert "';'" in lint_sts_record("v=STSv1 id=1").errors[0].message
    assert "exactly STSv1" in lint_sts_record("v=STSv10; id=1").errors[0].message
    assert "write id, not ID" in lint_sts_record("v=STSv1; ID=1").errors[0].message


@pytest.mark.parametrize(
    ("text", "warnings"),
    [
        ("v=STSv1; id=1", []),
        ("v=STSv1 ; id=1", ["sts-record.whitespace"]),  # strict-prefix senders drop it
        ("v=STSv1; id=1; foo=bar", ["sts-record.extension"]),
        ("v=STSv1; id=1; id=2", ["sts-record.duplicate"]),
        ("v=STSv1; id=1; v=STSv1", ["sts-record.duplicate"]),
    ],
)
def test_lint_warns_about_legal_but_risky_content(text: str, warnings: list[str]) -> None:
    linted = lint_sts_record(text)
    assert linted.valid
    assert [w.code for w in linted.warnings] == warnings


@pytest.mark.parametrize(
    ("rrset", "expected"),
    [
        ([], None),  # no TXT at all
        (["v=spf1 -all"], None),  # only other records
        (["v=spf1 -all", "v=STSv1; id=1"], "1"),  # STS-3.1-f, E-2
        (["v=STSv10; id=1", "v=STSv1; id=2"], "2"),  # STSv10 is discarded, not counted
        (["v=STSv1; id=12" + "34"], "1234"),  # strings joined by the caller (STS-3.1-i)
        (["v=ST" + "Sv1; id=9"], "9"),  # split inside the version, joined first
        (["v=stsv1; id=1", "v=STSv1; id=2"], "2"),  # lower-case version discarded
    ],
)
def test_select_uses_the_single_stsv1_record(rrset: list[str], expected: str | None) -> None:
    record = select_sts_record(rrset)
    assert (record.id if record else None) == expected


def test_select_refuses_several_stsv1_records() -> None:
    """RFC 8461 §3.1: more than one STSv1 record means no available policy (E-1)."""
    with pytest.raises(StsRecordError) as info:
        select_sts_record(["v=STSv1; id=1", "v=STSv1; id=2"])
    assert info.value.code == "sts-record.multiple"
    with pytest.raises(StsRecordError):  # a malformed second STSv1 record still counts
        select_sts_record(["v=STSv1; id=1", "v=STSv1; id=bad-id"])


def test_select_raises_the_parse_error_of_a_single_malformed_record() -> None:
    with pytest.raises(StsRecordError) as info:
        select_sts_record(["v=spf1 -all", "v=STSv1; id=a-b"])
    assert info.value.code == "sts-record.id.invalid"


def test_format_and_json() -> None:
    record = StsRecord("20160831085700Z", (("foo", "bar"),))
    assert format_sts_record(record) == "v=STSv1; id=20160831085700Z; foo=bar"
    assert sts_record_to_json(record) == {"id": "20160831085700Z", "extensions": {"foo": "bar"}}


@pytest.mark.parametrize(
    ("record_id", "extensions"),
    [
        ("", ()),  # empty id
        ("a-b", ()),  # punctuation in id
        ("1", (("id", "2"),)),  # id is not an extension
        ("1", (("v", "STSv1"),)),  # v is not an extension
        ("1", (("x", "1"), ("x", "2"))),  # repeated extension name
        ("1", (("x", "a b"),)),  # space in a value
        ("1", (("x;y", "1"),)),  # ';' in a name
    ],
)
def test_record_constructor_validates(
    record_id: str, extensions: tuple[tuple[str, str], ...]
) -> None:
    with pytest.raises(StsRecordError):
        StsRecord(record_id, extensions)


EXT_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", fullmatch=True).filter(
    lambda n: n not in ("v", "id")
)
EXT_VALUE = st.from_regex(r"[\x21-\x3a\x3c\x3e-\x7e]{1,20}", fullmatch=True)
RECORDS = st.builds(
    StsRecord,
    st.from_regex(r"[A-Za-z0-9]{1,32}", fullmatch=True),
    st.lists(st.tuples(EXT_NAME, EXT_VALUE), max_size=4, unique_by=lambda kv: kv[0]).map(tuple),
)


@given(RECORDS)
def test_parse_inverts_format(record: StsRecord) -> None:
    assert parse_sts_record(format_sts_record(record)) == record


RECORDISH = st.lists(
    st.sampled_from(["v=STSv1", "id=", "a", "Z", "9", ";", " ", "\t", "=", "-", "_", "é", "\x00"]),
    max_size=20,
).map("".join)


@given(st.one_of(st.text(max_size=60), RECORDISH))
def test_parse_and_lint_raise_nothing_undeclared(text: str) -> None:
    linted = lint_sts_record(text)  # never raises
    assert (linted.value is None) == bool(linted.errors)
    with contextlib.suppress(StsRecordError):
        record = parse_sts_record(text)
        assert record == linted.value
    with contextlib.suppress(StsRecordError):
        select_sts_record([text, "v=spf1 -all"])
