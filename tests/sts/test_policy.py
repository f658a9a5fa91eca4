"""The policy file: RFC 8461 §3.2 grammar, the pinned decisions, lint advice, round trip."""

from __future__ import annotations

import contextlib
import time
import tracemalloc
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.errors import PolicyError
from mtasts.names import MxPattern
from mtasts.sts.policy import (
    MAX_AGE_LIMIT,
    Mode,
    Policy,
    format_policy,
    lint_policy,
    parse_policy,
    policy_to_json,
)

RFC_3_2 = """version: STSv1
mode: enforce
mx: mail.example.com
mx: *.example.net
mx: backupmx.example.com
max_age: 604800
"""
RFC_APPENDIX_A = """version: STSv1
mode: testing
mx: mx1.example.com
mx: mx2.example.com
mx: mx.backup-example.com
max_age: 1296000
"""
NONE = "version: STSv1\nmode: none\nmax_age: 86400\n"
ENFORCE = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 604800\n"


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


@pytest.mark.parametrize("endings", [str, crlf], ids=["LF", "CRLF"])
def test_rfc_section_3_2_example(endings: Callable[[str], str]) -> None:
    """RFC 8461 §3.2 example (checklist §5.2), served with LF and with CRLF (erratum 6253)."""
    text = endings(RFC_3_2)
    policy = parse_policy(text)
    assert policy.mode is Mode.ENFORCE
    assert policy.max_age == 604800
    assert [str(p) for p in policy.mx] == [
        "mail.example.com",
        "*.example.net",
        "backupmx.example.com",
    ]
    assert policy.matches_mx("mail.example.com")
    assert policy.matches_mx("a.example.net")
    assert not policy.matches_mx("a.b.example.net")
    assert not policy.matches_mx("example.net")
    assert policy.raw_lines == tuple(RFC_3_2.splitlines())


@pytest.mark.parametrize("endings", [str, crlf], ids=["LF", "CRLF"])
def test_rfc_appendix_a_example(endings: Callable[[str], str]) -> None:
    policy = parse_policy(endings(RFC_APPENDIX_A))
    assert policy == Policy(
        Mode.TESTING,
        (
            MxPattern("mx1.example.com"),
            MxPattern("mx2.example.com"),
            MxPattern("mx.backup-example.com"),
        ),
        1296000,
    )


GOOD = [
    # (policy text, what it must parse to: (mode, [mx], max_age, extensions))
    (ENFORCE.rstrip("\n"), (Mode.ENFORCE, ["mx.example.com"], 604800, [])),  # no final EOL
    (crlf(ENFORCE)[:-2], (Mode.ENFORCE, ["mx.example.com"], 604800, [])),  # CRLF, no final
    (
        "version: STSv1\r\nmode: enforce\nmx: mx.example.com\r\nmax_age: 604800",
        (Mode.ENFORCE, ["mx.example.com"], 604800, []),
    ),  # mixed LF / CRLF (E-25)
    (NONE, (Mode.NONE, [], 86400, [])),  # none needs no mx (STS-3.2-k, E-36)
    (NONE + "mx: mx.example.com\n", (Mode.NONE, ["mx.example.com"], 86400, [])),  # unused mx
    (
        "max_age: 604800\nmx: mx.example.com\nmode: enforce\nversion: STSv1\n",
        (Mode.ENFORCE, ["mx.example.com"], 604800, []),
    ),  # field order is free (E-32)
    (
        "version:STSv1\nmode:\tenforce\nmx:mx.example.com  \nmax_age: 604800\t\n",
        (Mode.ENFORCE, ["mx.example.com"], 604800, []),
    ),  # no WSP, HTAB after ':', trailing WSP (STS-3.2-n, E-30)
    (
        "version: STSv1\nmode: testing\nmode: enforce\nmx: mx.example.com\n"
        "max_age: 1\nmax_age: 2\n",
        (Mode.TESTING, ["mx.example.com"], 1, []),
    ),  # duplicates: the first wins (STS-3.2-q, E-33; pmsr gets this wrong)
    (
        "version: STSv1\nmode: enforce\nmode: bogus\nmx: mx.example.com\nmax_age: 1\n",
        (Mode.ENFORCE, ["mx.example.com"], 1, []),
    ),  # E-35: an ignored duplicate need only be well-formed
    (
        ENFORCE + "mx: mx.example.com\nmx: *.example.org\n",
        (Mode.ENFORCE, ["mx.example.com", "mx.example.com", "*.example.org"], 604800, []),
    ),  # every mx line counts; repeats are harmless
    (
        ENFORCE + "foo: bar\ncomment: café au lait\n",
        (Mode.ENFORCE, ["mx.example.com"], 604800, [("foo", "bar"), ("comment", "café au lait")]),
    ),  # unknown fields kept as ignored extensions; UTF-8 and inner spaces (E-34, E-40)
    (ENFORCE + "foo: 1\nfoo: 2\n", (Mode.ENFORCE, ["mx.example.com"], 604800, [("foo", "1")])),
    (ENFORCE + "Mode: none\n", (Mode.ENFORCE, ["mx.example.com"], 604800, [("Mode", "none")])),
    (
        "version: STSv1\nmode: enforce\nmx: MX.Example.COM\nmax_age: 0086400\n",
        (Mode.ENFORCE, ["mx.example.com"], 86400, []),
    ),  # upper-case mx is folded; leading zeros in max_age (E-38, E-39)
    (NONE.replace("86400", "0"), (Mode.NONE, [], 0, [])),  # max_age 0 is valid (E-38)
    (
        NONE.replace("86400", "31557600"),
        (Mode.NONE, [], MAX_AGE_LIMIT, []),
    ),  # the maximum
    (
        NONE.replace("86400", "31557601"),
        (Mode.NONE, [], MAX_AGE_LIMIT, []),
    ),  # above the maximum: capped (E-38)
    (
        NONE.replace("86400", "9999999999"),
        (Mode.NONE, [], MAX_AGE_LIMIT, []),
    ),  # ten digits: no overflow, capped
    (
        ENFORCE + "x.y-z_1: a\u2028b\x85c",
        (Mode.ENFORCE, ["mx.example.com"], 604800, [("x.y-z_1", "a\u2028b\x85c")]),
    ),  # UTF8-2/UTF8-3 in an extension value are in the grammar, not line breaks
]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_parse_accepts_valid_policies(
    text: str, expected: tuple[Mode, list[str], int, list[tuple[str, str]]]
) -> None:
    mode, mx, max_age, extensions = expected
    policy = parse_policy(text)
    assert policy == Policy(mode, tuple(map(MxPattern.parse, mx)), max_age, tuple(extensions))
    assert lint_policy(text).valid


def test_crlf_without_final_lf_is_a_bare_cr() -> None:
    """A file ending in CR (no LF) ends with a bare CR: invalid (STS-3.2-l)."""
    with pytest.raises(PolicyError) as info:
        parse_policy(crlf(NONE)[:-1])
    assert info.value.code == "policy.line-ending"


BAD = [
    # (policy text, first error code)
    ("", "policy.empty"),  # empty body
    ("\n\n", "policy.empty"),  # only blank lines
    ("mode: enforce\nmx: mx.example.com\nmax_age: 1\n", "policy.version.missing"),  # E-36
    ("version: STSv1\nmx: mx.example.com\nmax_age: 1\n", "policy.mode.missing"),  # E-36
    ("version: STSv1\nmode: enforce\nmx: mx.example.com\n", "policy.max_age.missing"),  # E-36
    ("version: STSv1\nmode: enforce\nmax_age: 1\n", "policy.mx.missing"),  # enforce needs mx
    ("version: STSv1\nmode: testing\nmax_age: 1\n", "policy.mx.missing"),  # testing needs mx
    (NONE.replace("STSv1", "STSv2"), "policy.version.invalid"),  # STS-3.2-d
    (NONE.replace("STSv1", "stsv1"), "policy.version.invalid"),  # case-sensitive (E-31)
    (NONE.replace("none", "Enforce"), "policy.mode.invalid"),  # case-sensitive (STS-3.2-e)
    (NONE.replace("none", "report"), "policy.mode.invalid"),  # not a mode
    (NONE.replace("none", "enforced"), "policy.mode.invalid"),  # not a mode
    (NONE.replace("none", "\u00a0none"), "policy.mode.invalid"),  # NBSP is not WSP
    (NONE.replace("mode: none", "mode: bogus\nmode: none"), "policy.mode.invalid"),  # E-35
    (NONE.replace("mode: none", "Mode: none"), "policy.mode.missing"),  # key case (STS-3.2-m)
    (NONE.replace("86400", "-1"), "policy.max_age.invalid"),  # sign
    (NONE.replace("86400", "+86400"), "policy.max_age.invalid"),  # sign (pmsr accepts)
    (NONE.replace("86400", "86_400"), "policy.max_age.invalid"),  # Python int() accepts
    (NONE.replace("86400", "1e6"), "policy.max_age.invalid"),  # exponent
    (NONE.replace("86400", "86400s"), "policy.max_age.invalid"),  # unit
    (NONE.replace("86400", "86400.0"), "policy.max_age.invalid"),  # decimal point
    (NONE.replace("86400", "00000086400"), "policy.max_age.invalid"),  # 11 digits (pmsr ok)
    (NONE.replace("86400", "\u0668\u0666"), "policy.max_age.invalid"),  # Arabic-Indic digits
    (NONE.replace("86400", ""), "policy.max_age.invalid"),  # empty value
    (ENFORCE + "mx: \n", "policy.mx.invalid"),  # empty mx (pmsr passes it on)
    (ENFORCE + "mx: mx1.x.test servername=other.test\n", "policy.mx.invalid"),  # injection
    (ENFORCE + "mx: a.example.com, b.example.com\n", "policy.mx.invalid"),  # STS-3.2-i
    (ENFORCE + "mx: *.*.example.com\n", "policy.mx.invalid"),  # two wildcards
    (ENFORCE + "mx: foo*.example.com\n", "policy.mx.invalid"),  # partial wildcard
    (ENFORCE + "mx: *example.com\n", "policy.mx.invalid"),  # '*' not a label
    (ENFORCE + "mx: *\n", "policy.mx.invalid"),  # bare '*'
    (ENFORCE + "mx: 192.0.2.1\n", "policy.mx.invalid"),  # IP address (E-39)
    (ENFORCE + "mx: mail.bücher.example\n", "policy.mx.invalid"),  # U-label (STS-3.2-j)
    (ENFORCE + "mx: mail.example.com.\n", "policy.mx.invalid"),  # trailing dot (E-39)
    (ENFORCE + "mx: mail.example.com:25\n", "policy.mx.invalid"),  # port
    (ENFORCE + "mx: _mx.example.com\n", "policy.mx.invalid"),  # underscore
    ("\ufeff" + NONE, "policy.bom"),  # UTF-8 BOM (E-29)
    ("version: STSv1\n\nmode: none\nmax_age: 1\n", "policy.blank-line"),  # E-27
    (NONE + "\n", "policy.blank-line"),  # trailing blank line (E-27)
    (crlf(NONE) + "\r\n", "policy.blank-line"),  # trailing blank line, CRLF
    ("version: STSv1\rmode: none\rmax_age: 1\r", "policy.line-ending"),  # bare CR (E-25)
    ("# MTA-STS policy\n" + NONE, "policy.syntax"),  # comment line (E-28)
    (" " + NONE, "policy.syntax"),  # leading space (STS-3.2-n)
    (NONE.replace("mode:", "\tmode:"), "policy.syntax"),  # leading tab
    (NONE.replace("mode:", "mode :"), "policy.syntax"),  # space before ':' (E-30)
    (NONE.replace("mode: none", "mode none"), "policy.syntax"),  # no ':'
    (NONE.replace("mode: none", "mode=none"), "policy.syntax"),  # '=' instead of ':'
    (NONE + "_foo: bar\n", "policy.syntax"),  # key starts with '_'
    (NONE + "x" * 33 + ": bar\n", "policy.syntax"),  # key of 33 characters
    (NONE + ": bar\n", "policy.syntax"),  # empty key
    (NONE + "mode:\n", "policy.syntax"),  # ignored duplicate must still be well-formed
    (NONE + "foo:\n", "policy.extension.invalid"),  # empty extension value (E-34)
    (NONE + "foo: a\tb\n", "policy.extension.invalid"),  # HTAB inside a value
    (NONE + "foo: a\x00b\n", "policy.extension.invalid"),  # NUL
    (NONE + "foo: a\x7f\n", "policy.extension.invalid"),  # DEL
    (NONE + "foo: a\x0bb\n", "policy.extension.invalid"),  # VT is a CTL, not a line break
    (NONE + "foo: a\udcffb\n", "policy.extension.invalid"),  # lone surrogate: not UTF-8
]


@pytest.mark.parametrize(("text", "code"), BAD)
def test_parse_raises_a_specific_error_for_invalid_policies(text: str, code: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    assert info.value.code == code
    assert info.value.result_type == "sts-policy-invalid"
    linted = lint_policy(text)
    assert linted.value is None
    assert linted.errors[0].code == code


def test_lint_collects_every_error_with_line_numbers() -> None:
    text = "version: STSv2\nmode : enforce\nmx: *.*.x\nmax_age: -1\nfoo:\n"
    codes = [e.code for e in lint_policy(text).errors]
    assert codes == [
        "policy.version.invalid",
        "policy.syntax",
        "policy.mx.invalid",
        "policy.max_age.invalid",
        "policy.extension.invalid",
        "policy.mode.missing",
    ]
    messages = [e.message for e in lint_policy(text).errors]
    assert [m.split(":")[0].split(" ")[:2] for m in messages[:5]] == [
        ["line", "1"],
        ["line", "2"],
        ["line", "3"],
        ["line", "4"],
        ["line", "5"],
    ]


def test_lint_names_the_fix() -> None:
    def first(text: str) -> str:
        return lint_policy(text).errors[0].message

    assert "comment" in first("# x\n" + NONE)
    assert "whitespace before ':'" in first(NONE.replace("mode:", "mode :"))
    assert "starts with whitespace" in first(" " + NONE)
    assert "BOM" in first("\ufeff" + NONE)
    assert "xn--bcher-kva" in first(ENFORCE + "mx: mail.bücher.example\n")
    assert "trailing dot" in first(ENFORCE + "mx: mail.example.com.\n")


@pytest.mark.parametrize(
    ("text", "warnings"),
    [
        (ENFORCE, []),
        (RFC_APPENDIX_A, ["policy.mode.testing"]),
        (NONE, ["policy.mode.none"]),  # short max_age is right for none (§8.3)
        (ENFORCE.replace("604800", "86400"), ["policy.max_age.short"]),  # under a week
        (ENFORCE.replace("604800", "0"), ["policy.max_age.short"]),
        (ENFORCE.replace("604800", "31557601"), ["policy.max_age.capped"]),
        (ENFORCE + "mode: none\n", ["policy.duplicate"]),
        (ENFORCE + "mx: mx.example.com\n", ["policy.mx.duplicate"]),
        (ENFORCE + "mx: *.com\n", ["policy.mx.broad"]),  # E-39
        (ENFORCE + "mx: *.example.com\n", ["policy.mx.redundant"]),  # literal under wildcard
        (ENFORCE + "foo: bar\n", ["policy.extension"]),
        (ENFORCE + "max-age: 5\n", ["policy.extension"]),
        (ENFORCE.replace("enforce", "enforce "), ["policy.whitespace"]),
        (ENFORCE.replace("mx.example.com\n", "mx.example.com\r\n"), ["policy.line-ending"]),
    ],
)
def test_lint_warns_about_legal_but_risky_policies(text: str, warnings: list[str]) -> None:
    linted = lint_policy(text)
    assert linted.valid
    assert [w.code for w in linted.warnings] == warnings


def test_lint_advice_is_linear_in_the_number_of_mx_lines() -> None:
    """A 64 KiB policy (the fetch cap) of mixed literal and wildcard mx lines parses fast.

    The redundancy advice once compared every literal with every wildcard: a policy host
    serving this file cost each sender about 15 s of CPU per fetch.
    """
    lines = [line for i in range(2000) for line in (f"mx: *.a{i}.co", f"mx: m.a{i}.co")]
    text = "version: STSv1\nmode: enforce\nmax_age: 604800\n" + "\n".join(lines)
    assert len(text) <= 64 * 1024
    # CPU time of this process, not wall time: other processes loading the machine must
    # not make this fail (it measures about 0.02 s; the quadratic version took 15 s).
    started = time.process_time()
    linted = lint_policy(text)
    elapsed = time.process_time() - started
    assert linted.value is not None
    assert len(linted.value.mx) == 4000
    assert [w.code for w in linted.warnings] == ["policy.mx.redundant"] * 2000
    if not tracemalloc.is_tracing():  # PYTHONTRACEMALLOC multiplies CPU time ~100x
        assert elapsed < 1.0, f"lint_policy took {elapsed:.1f} s of CPU"


def test_lint_hints_at_case_and_hyphen_typos_in_known_keys() -> None:
    assert "'max_age'" in lint_policy(ENFORCE + "max-age: 5\n").warnings[0].message
    assert "'mode'" in lint_policy(ENFORCE + "MODE: none\n").warnings[0].message


def test_format_writes_crlf_in_rfc_order_and_json() -> None:
    policy = parse_policy(RFC_3_2 + "foo: bar\n")
    assert format_policy(policy) == crlf(RFC_3_2 + "foo: bar\n")
    assert format_policy(policy, newline="\n") == RFC_3_2 + "foo: bar\n"
    assert policy_to_json(policy) == {
        "version": "STSv1",
        "mode": "enforce",
        "mx": ["mail.example.com", "*.example.net", "backupmx.example.com"],
        "max_age": 604800,
        "extensions": {"foo": "bar"},
    }


def test_raw_lines_keep_the_text_as_served_but_do_not_affect_equality() -> None:
    served = "version: STSv1\r\nmode:\tnone  \r\nmax_age: 0086400"
    policy = parse_policy(served)
    assert policy.raw_lines == ("version: STSv1", "mode:\tnone  ", "max_age: 0086400")
    assert policy == parse_policy(NONE)
    assert hash(policy) == hash(parse_policy(NONE))


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"mode": Mode.ENFORCE, "mx": (), "max_age": 1}, "policy.mx.missing"),
        ({"mode": "enforce", "mx": (), "max_age": 1}, "policy.mode.invalid"),  # not a Mode
        ({"mode": Mode.NONE, "mx": (), "max_age": -1}, "policy.max_age.invalid"),
        ({"mode": Mode.NONE, "mx": (), "max_age": MAX_AGE_LIMIT + 1}, "policy.max_age.invalid"),
        ({"mode": Mode.NONE, "mx": (), "max_age": True}, "policy.max_age.invalid"),  # a bool
        ({"mode": Mode.NONE, "mx": (), "max_age": 1, "version": "STSv2"}, "policy.version.invalid"),
        ({"mode": Mode.NONE, "mx": ("mx.example.com",), "max_age": 1}, "policy.mx.invalid"),
        (
            {"mode": Mode.NONE, "mx": (), "max_age": 1, "extensions": (("mode", "x"),)},
            "policy.extension.invalid",
        ),  # a known key is not an extension
        (
            {"mode": Mode.NONE, "mx": (), "max_age": 1, "extensions": (("a", "1"), ("a", "2"))},
            "policy.extension.invalid",
        ),  # repeated extension
        (
            {"mode": Mode.NONE, "mx": (), "max_age": 1, "extensions": (("a", " x"),)},
            "policy.extension.invalid",
        ),  # leading space would not survive a round trip
        (
            {"mode": Mode.NONE, "mx": (), "max_age": 1, "extensions": (("a", "x\ny"),)},
            "policy.extension.invalid",
        ),  # a newline would inject a field
    ],
)
def test_policy_constructor_validates(kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(PolicyError) as info:
        Policy(**kwargs)  # type: ignore[arg-type]
    assert info.value.code == code


LABEL = st.from_regex(r"[a-z]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True).filter(
    lambda label: label[2:4] != "--"
)
MX = st.builds(
    MxPattern,
    st.lists(LABEL, min_size=1, max_size=3).map(".".join),
    st.booleans(),
)
EXT_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", fullmatch=True).filter(
    lambda name: name not in ("version", "mode", "max_age", "mx")
)
VCHAR = st.characters(min_codepoint=0x21, max_codepoint=0x7E) | st.characters(
    min_codepoint=0x80, exclude_categories=("Cs",)
)
EXT_VALUE = st.builds(
    lambda first, middle, last: first + middle + last if last is not None else first,
    VCHAR,
    st.text(alphabet=VCHAR | st.just(" "), max_size=10),
    st.none() | VCHAR,
)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    mode = draw(st.sampled_from(Mode))
    mx = tuple(draw(st.lists(MX, min_size=0 if mode is Mode.NONE else 1, max_size=4)))
    extensions = draw(
        st.lists(st.tuples(EXT_NAME, EXT_VALUE), max_size=3, unique_by=lambda kv: kv[0])
    )
    return Policy(mode, mx, draw(st.integers(0, MAX_AGE_LIMIT)), tuple(extensions))


@given(policies(), st.sampled_from(["\r\n", "\n"]))
def test_parse_inverts_format(policy: Policy, newline: str) -> None:
    text = format_policy(policy, newline=newline)
    assert parse_policy(text) == policy
    assert parse_policy(text.removesuffix(newline)) == policy  # final terminator optional


POLICYISH = st.lists(
    st.sampled_from(
        [
            "version: STSv1",
            "mode: enforce",
            "mode: none",
            "mx: ",
            "*.",
            "example.com",
            "max_age: ",
            "31557601",
            "9",
            "\n",
            "\r\n",
            "\r",
            " ",
            "\t",
            ":",
            "é",
            "\x00",
            "\ufeff",
            "\udcff",
        ]
    ),
    max_size=25,
).map("".join)


@given(st.one_of(st.text(max_size=80), POLICYISH))
def test_parse_and_lint_raise_nothing_undeclared(text: str) -> None:
    linted = lint_policy(text)  # never raises
    assert (linted.value is None) == bool(linted.errors)
    with contextlib.suppress(PolicyError):
        assert parse_policy(text) == linted.value
