"""libtlsrpt datagrams -> SessionOutcome values; malformed ones -> rejected with a reason."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.errors import TlsRptError
from mtasts.results import PolicyType, ResultType
from mtasts.tlsrpt.collect.datagram import (
    FAILURE_CODES,
    FailureOutcome,
    PolicyOutcome,
    SessionOutcome,
    decode_datagram,
    encode_datagram,
)

STS_LINES = [
    "version: STSv1",
    "mode: testing",
    "mx: *.mail.company-y.example",
    "max_age: 86400",
]

# Datagrams as libtlsrpt writes them (library/src/libtlsrpt.c: "policy-type" a number,
# empty lists omitted, "t" and "f" last; doc/example.txt examples 3, 4, 6; dpv/pr added
# in 0.5). Whitespace as libtlsrpt prints it ("\n," before policies, ": " in attributes).
EXAMPLE_3 = (
    b'{"dpv":"1","d": "company-y.example","pr": "v=TLSRPTv1; rua=mailto:tlsrpt@company-y.example"'
    b'\n,"policies":[{"policy-type":2,"policy-domain": "company-y.example"'
    b',"policy-string":["version: STSv1","mode: testing","mx: *.mail.company-y.example",'
    b'"max_age: 86400"],"mx-host":["*.mail.company-y.example","*.mail2.company-y.example"]'
    b',"failure-details":[{"c":302,"s": "1.2.3.4","n": "mailin.example.com",'
    b'"h": "test-ehlo.example.com","r": "11.22.33.44","a": "This is additional information",'
    b'"f": "999 TEST ERROR"},{"c":303,"s": "1.2.3.5","n": "mailin.example.com",'
    b'"h": "test-ehlo.example.com","r": "11.22.33.55","a": "This is additional information",'
    b'"f": "999 TEST ERROR"}],"t":2,"f":1}]}'
)
EXAMPLE_4_NO_POLICY = (  # old libtlsrpt: no dpv, no pr; policy-domain NULL; NULL host/helo
    b'{"d": "Company-Y.Example."\n,"policies":[{"policy-type":9,"failure-details":[{"c":205,'
    b'"s": "192.168.25.25","r": "11.22.33.55","a": "Something unexpected happened",'
    b'"f": "http://www.google.com/"}],"t":1,"f":1}]}'
)
EXAMPLE_6_SUCCESS = (
    b'{"dpv":"1","d": "company-y.example","pr": ""\n,"policies":[{"policy-type":2,'
    b'"policy-domain": "company-y.example","policy-string":["version: STSv1"],'
    b'"mx-host":["*.mail.company-y.example"],"t":0,"f":0}]}'
)


def test_sts_failure_datagram_decodes_every_field() -> None:
    """Example 3 of libtlsrpt's doc: two failures, codes 302/303 mapped to result types."""
    s = decode_datagram(EXAMPLE_3)
    assert s.domain == "company-y.example"
    assert s.tlsrpt_record == "v=TLSRPTv1; rua=mailto:tlsrpt@company-y.example"
    (p,) = s.policies
    assert p.policy_type is PolicyType.STS
    assert p.policy_string == tuple(STS_LINES)
    assert p.mx_host == ("*.mail.company-y.example", "*.mail2.company-y.example")
    assert p.failed
    assert [f.result_type for f in p.failures] == ["sts-policy-invalid", "sts-webpki-invalid"]
    assert p.failures[0] == FailureOutcome(
        "sts-policy-invalid",
        "1.2.3.4",
        "mailin.example.com",
        "test-ehlo.example.com",
        "11.22.33.44",
        "This is additional information",
        "999 TEST ERROR",
    )


def test_no_policy_found_without_policy_domain_gets_the_delivery_domain() -> None:
    """sys4/tlsrpt-reporter#51: policy-domain is never missing in our reports."""
    s = decode_datagram(EXAMPLE_4_NO_POLICY)
    assert s.domain == "company-y.example"  # case folded, trailing dot dropped
    assert s.tlsrpt_record == ""
    (p,) = s.policies
    assert p.policy_type is PolicyType.NO_POLICY_FOUND
    assert p.policy_domain == "company-y.example"
    assert p.failures[0].receiving_mx_hostname == ""
    assert p.failures[0].result_type == "validation-failure"


def test_success_datagram_has_no_failures() -> None:
    (p,) = decode_datagram(EXAMPLE_6_SUCCESS).policies
    assert not p.failed
    assert p.failures == ()


@pytest.mark.parametrize(("code", "result"), sorted(FAILURE_CODES.items()))
def test_failure_code_table(code: int, result: ResultType) -> None:
    """Every libtlsrpt failure code maps to its RFC 8460 result type."""
    raw = {
        "d": "a.example",
        "policies": [{"policy-type": 2, "failure-details": [{"c": code}], "t": 1, "f": 1}],
    }
    (p,) = decode_datagram(orjson.dumps(raw)).policies
    assert p.failures[0].result_type == result.value


def test_unknown_failure_code_is_a_validation_failure_with_a_reason() -> None:
    raw = {
        "d": "a.example",
        "policies": [{"policy-type": 2, "failure-details": [{"c": 777}], "t": 1, "f": 1}],
    }
    (f,) = decode_datagram(orjson.dumps(raw)).policies[0].failures
    assert (f.result_type, f.failure_reason_code) == (
        "validation-failure",
        "libtlsrpt-failure-code-777",
    )


@pytest.mark.parametrize("code", sorted(FAILURE_CODES))
def test_a_code_without_text_still_gets_a_failure_reason_code(code: int) -> None:
    """Issue 16: libtlsrpt gives the code but no "f" text (the MTA passed NULL): the
    report still carries a failure-reason-code naming the code (RFC 8460 §4.3.1 SHOULD
    for certificate-not-trusted and validation-failure)."""
    raw = {"d": "a.example", "policies": [{**_POL, "f": 1, "failure-details": [{"c": code}]}]}
    (failure,) = decode_datagram(orjson.dumps(raw)).policies[0].failures
    assert failure.result_type == FAILURE_CODES[code]
    assert failure.failure_reason_code == f"libtlsrpt-failure-code-{code}"
    raw["policies"][0]["failure-details"] = [{"c": code, "f": ""}]  # type: ignore[index]
    (failure,) = decode_datagram(orjson.dumps(raw)).policies[0].failures
    assert failure.failure_reason_code == f"libtlsrpt-failure-code-{code}"


def test_idn_domains_become_a_labels() -> None:
    raw = {
        "d": "bücher.example",
        "policies": [
            {
                "policy-type": 2,
                "policy-domain": "Bücher.example",
                "mx-host": ["*.Bücher.example"],
                "t": 0,
                "f": 0,
            }
        ],
    }
    s = decode_datagram(orjson.dumps(raw))
    assert s.domain == "xn--bcher-kva.example"
    assert s.policies[0].mx_host == ("*.xn--bcher-kva.example",)


_POL = {"policy-type": 2, "t": 0, "f": 0}
BAD: list[tuple[bytes, str]] = [
    (b"", "datagram.bad-json"),  # empty datagram
    (b"{not json", "datagram.bad-json"),  # truncated / garbage
    (b"\xff\xfe\x00", "datagram.bad-json"),  # not UTF-8
    (b"[]", "datagram.bad-type"),  # not an object
    (orjson.dumps({"policies": [_POL]}), "datagram.missing-field"),  # no "d"
    (orjson.dumps({"d": 5, "policies": [_POL]}), "datagram.bad-type"),  # d not a string
    (orjson.dumps({"d": "", "policies": [_POL]}), "datagram.bad-domain"),  # empty domain
    (orjson.dumps({"d": "a..b", "policies": [_POL]}), "datagram.bad-domain"),  # empty label
    (orjson.dumps({"d": "a.example"}), "datagram.no-policies"),  # no policies
    (orjson.dumps({"d": "a.example", "policies": []}), "datagram.no-policies"),  # empty list
    (orjson.dumps({"d": "a.example", "policies": {}}), "datagram.no-policies"),  # object
    (orjson.dumps({"dpv": "2", "d": "a.example", "policies": [_POL]}), "datagram.bad-version"),
    (orjson.dumps({"dpv": 1, "d": "a.example", "policies": [_POL]}), "datagram.bad-version"),
    (
        orjson.dumps({"d": "a.example", "policies": [{"policy-type": 3, "t": 0, "f": 0}]}),
        "datagram.bad-policy-type",
    ),  # 3 is no libtlsrpt policy type
    (
        orjson.dumps({"d": "a.example", "policies": [{"policy-type": "sts", "t": 0, "f": 0}]}),
        "datagram.bad-type",
    ),  # policy-type must be the number
    (
        orjson.dumps({"d": "a.example", "policies": [{"policy-type": 2, "t": 0, "f": 901}]}),
        "datagram.bad-final-result",
    ),  # TLSRPT_UNFINISHED_POLICY never goes on the wire
    (
        orjson.dumps({"d": "a.example", "policies": [{"policy-type": 2, "t": 0, "f": True}]}),
        "datagram.bad-type",
    ),  # a JSON boolean is not libtlsrpt's 0/1
    (
        orjson.dumps(
            {
                "d": "a.example",
                "policies": [{"policy-type": 2, "f": 1, "failure-details": [{"s": "1.2.3.4"}]}],
            }
        ),
        "datagram.bad-type",
    ),  # failure without a code
    (
        orjson.dumps(
            {
                "d": "a.example",
                "policies": [{"policy-type": 2, "f": 1, "failure-details": {"c": 201}}],
            }
        ),
        "datagram.bad-type",
    ),  # failure-details not a list
    (
        orjson.dumps(
            {"d": "a.example", "policies": [{"policy-type": 2, "f": 0, "policy-string": [1, 2]}]}
        ),
        "datagram.bad-type",
    ),  # policy lines not strings
    (orjson.dumps({"d": "a.example", "policies": [_POL] * 17}), "datagram.too-long"),  # hostile
    (
        orjson.dumps(
            {
                "d": "a.example",
                "policies": [{"policy-type": 2, "f": 1, "failure-details": [{"c": 201}] * 1025}],
            }
        ),
        "datagram.too-long",
    ),  # hostile
    (
        orjson.dumps({"d": "a.example", "pr": "x" * 9000, "policies": [_POL]}),
        "datagram.too-long",
    ),  # hostile record length
    (b" " * (1 << 20), "datagram.too-large"),  # over the size cap
    (b"[" * 100_000 + b"]" * 100_000, "datagram.bad-json"),  # nesting bomb
]


@pytest.mark.parametrize(("data", "code"), BAD, ids=[c for _, c in BAD])
def test_malformed_datagrams_are_rejected_with_a_reason(data: bytes, code: str) -> None:
    with pytest.raises(TlsRptError) as info:
        decode_datagram(data)
    assert info.value.code == code


_label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
_domain = st.builds(lambda a, b: f"{a}.{b}", _label, _label)
_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
_failure = st.builds(
    FailureOutcome,
    st.sampled_from([r.value for r in FAILURE_CODES.values()]),
    _text,
    st.one_of(st.just(""), _domain),
    _text,
    _text,
    _text,
    # A failure without reason text is decoded with one (see the test below), so only
    # those with a reason are the decoder's fixed points.
    _text.filter(bool),
)
_policy = st.builds(
    PolicyOutcome,
    st.sampled_from(list(PolicyType)),
    _domain,
    st.lists(_text, max_size=4).map(tuple),
    st.lists(_domain, max_size=3).map(tuple),
    st.booleans(),
    st.lists(_failure, max_size=3).map(tuple),
)
_session = st.builds(
    SessionOutcome, _domain, _text, st.lists(_policy, min_size=1, max_size=3).map(tuple)
)


@given(_session)
def test_encode_decode_round_trip(session: SessionOutcome) -> None:
    assert decode_datagram(encode_datagram(session)) == session


def test_the_decode_cache_does_not_keep_big_datagrams() -> None:
    """Only small datagrams (what Postfix sends for a session: a few hundred bytes) are
    cached: 60 distinct valid 400 KiB datagrams used to stay in the cache, bytes and
    decoded strings, ~50 MB (16,384 of them could pin ~32 GiB)."""
    import gc
    import tracemalloc

    import orjson

    lines = [f"mx: mx{i}.a.example" + "x" * 3900 for i in range(100)]

    def big(i: int) -> bytes:
        pol = {"policy-type": 2, "policy-domain": "a.example", "policy-string": lines, "f": 0}
        return orjson.dumps({"dpv": "1", "d": f"d{i}.example", "policies": [pol]})

    assert len(big(0)) > 390_000
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for i in range(60):
        assert decode_datagram(big(i)).domain == f"d{i}.example"
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert kept < 5_000_000, f"{kept / 1e6:.0f} MB kept after decoding"
