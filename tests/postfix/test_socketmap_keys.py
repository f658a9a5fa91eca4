"""Socketmap requests and next-hop keys: what Postfix sends and which Policy Domain it means."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.postfix.netstring import NetstringDecoder
from mtasts.postfix.socketmap import (
    NOTFOUND,
    Reply,
    Request,
    SocketmapError,
    Status,
    format_request,
    parse_request,
    policy_domain_for_key,
)

KEYS = [
    # (key as Postfix sends it, Policy Domain or None for "answer NOTFOUND")
    ("example.com", "example.com"),
    ("Example.COM", "example.com"),  # Postfix keeps the recipient's case
    ("example.com.", "example.com"),  # DNS form
    ("example.com:587", "example.com"),  # unbracketed next hop: MX still looked up
    ("bücher.example", "xn--bcher-kva.example"),  # SMTPUTF8 recipient domain
    (".example.com", None),  # Postfix's parent-domain walk: never the parent's policy
    (".com", None),
    ("[mx.example.com]", None),  # bracketed next hop: no MX lookup, no Policy Domain
    ("[mx.example.com]:25", None),
    ("[192.0.2.1]", None),  # address literal (RFC 8461 §3.4)
    ("[ipv6:2001:db8::1]", None),
    ("192.0.2.1", None),  # bare IP
    ("192.0.2.1.", None),  # bare IP in DNS form (was looked up as domain "192.0.2.1")
    ("192.0.2.1.:25", None),
    ("example.com:²5", None),  # a superscript is not a port digit (str.isdigit says yes)
    ("2001:db8::1", None),  # bare IPv6 (several ':')
    ("example.com:smtp", None),  # port is not a number
    ("", None),
    ("exa mple.com", None),  # not a domain name
    ("under_score.example", None),
]


@pytest.mark.parametrize(("key", "domain"), KEYS)
def test_key_to_policy_domain(key: str, domain: str | None) -> None:
    assert policy_domain_for_key(key) == domain


REQUESTS = [
    (b"postfix example.com", Request("postfix", "example.com")),
    (b"strict Example.COM", Request("strict", "Example.COM")),
    (b"postfix a b", Request("postfix", "a b")),  # only the first space separates
]

BAD_REQUESTS = [
    b"postfix",  # no key
    b"postfix ",  # empty key
    b" example.com",  # empty name
    b"postfix \xff.com",  # not UTF-8
]


@pytest.mark.parametrize(("payload", "request_"), REQUESTS)
def test_parse_request(payload: bytes, request_: Request) -> None:
    assert parse_request(payload) == request_


@pytest.mark.parametrize("payload", BAD_REQUESTS)
def test_bad_request_raises_socketmap_error(payload: bytes) -> None:
    with pytest.raises(SocketmapError):
        parse_request(payload)


@given(
    st.from_regex(r"[a-z0-9_-]{1,20}", fullmatch=True),
    st.text(min_size=1, max_size=60).filter(lambda s: s.strip() == s and s),
)
def test_format_request_round_trips(name: str, key: str) -> None:
    (payload,) = NetstringDecoder().feed(format_request(Request(name, key)))
    assert parse_request(payload) == Request(name, key)


REPLIES = [
    # the incumbent's wire format (postfix-mta-sts-resolver 1.5.1), byte for byte
    (NOTFOUND, b"9:NOTFOUND ,"),
    (
        Reply(Status.OK, "secure match=mail.loc servername=hostname"),
        b"44:OK secure match=mail.loc servername=hostname,",
    ),
    (Reply(Status.TEMP, "try later"), b"14:TEMP try later,"),
]


@pytest.mark.parametrize(("reply", "wire"), REPLIES)
def test_reply_wire_format(reply: Reply, wire: bytes) -> None:
    assert reply.encode() == wire
