"""The netstring codec under Postfix's socketmap: framing, limits, partial input, fuzz."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.postfix.netstring import NetstringDecoder, NetstringError, encode

GOOD = [
    # (stream, payloads)
    (b"0:,", [b""]),
    (b"20:postfix example.test,", [b"postfix example.test"]),
    (b"3:abc,3:def,", [b"abc", b"def"]),  # many requests in one read, in order
    (b"5:a,b:c,", [b"a,b:c"]),  # payload may hold ':' and ','
    (b"3:abc,4:de", [b"abc"]),  # second one incomplete: kept for later
]

BAD = [
    b"x:abc,",  # length is not a number
    b"-1:a,",  # sign
    b"03:abc,",  # leading zero
    b"3:abcX",  # terminator is not ','
    b"3 :abc,",  # space in the length
    b"2000:",  # longer than the 1024-byte request limit
    b"12345",  # length prefix already longer than the limit allows, no ':' yet
    b":abc,",  # empty length
    b"\xd9\xa3:abc,",  # non-ASCII digit (Arabic-Indic 3 in UTF-8)
]


@pytest.mark.parametrize(("stream", "payloads"), GOOD)
def test_decodes_complete_netstrings_in_order(stream: bytes, payloads: list[bytes]) -> None:
    assert NetstringDecoder().feed(stream) == payloads


@pytest.mark.parametrize(("stream", "payloads"), GOOD)
def test_byte_by_byte_gives_the_same_payloads(stream: bytes, payloads: list[bytes]) -> None:
    dec = NetstringDecoder()
    got: list[bytes] = []
    for i in range(len(stream)):
        got += dec.feed(stream[i : i + 1])
    assert got == payloads


@pytest.mark.parametrize("stream", BAD)
def test_malformed_stream_raises_netstring_error(stream: bytes) -> None:
    with pytest.raises(NetstringError):
        NetstringDecoder().feed(stream)


def test_decoder_stays_broken_after_an_error() -> None:
    """A stream that lost its framing cannot resync: every later feed raises too."""
    dec = NetstringDecoder()
    with pytest.raises(NetstringError):
        dec.feed(b"x")
    with pytest.raises(NetstringError):
        dec.feed(b"3:abc,")


def test_limit_is_inclusive() -> None:
    dec = NetstringDecoder(max_length=4)
    assert dec.feed(encode(b"abcd")) == [b"abcd"]
    with pytest.raises(NetstringError, match="longer than the limit of 4"):
        NetstringDecoder(max_length=4).feed(b"5:abcde,")


def test_error_names_the_fix_for_an_administrator() -> None:
    with pytest.raises(NetstringError) as info:
        NetstringDecoder().feed(b"3:abcX")
    assert "socketmap" in info.value.message
    assert info.value.code == "socketmap.framing"


@given(st.lists(st.binary(max_size=300), max_size=8))
def test_encode_then_decode_round_trips(payloads: list[bytes]) -> None:
    stream = b"".join(encode(p) for p in payloads)
    assert NetstringDecoder().feed(stream) == payloads


@given(st.lists(st.binary(max_size=64), max_size=20))
def test_arbitrary_bytes_raise_only_netstring_error_and_stay_bounded(chunks: list[bytes]) -> None:
    """Fuzz: any byte soup either decodes or raises NetstringError; the buffer stays small."""
    dec = NetstringDecoder(max_length=100)
    for chunk in chunks:
        try:
            dec.feed(chunk)
        except NetstringError:
            return
        # at most "100:" + 100 payload bytes (the ',' completes it)
        assert dec.buffered <= 3 + 1 + 100


@given(st.lists(st.binary(max_size=50), min_size=1, max_size=6), st.data())
def test_any_split_of_a_valid_stream_decodes_the_same(
    payloads: list[bytes], data: st.DataObject
) -> None:
    stream = b"".join(encode(p) for p in payloads)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    dec = NetstringDecoder()
    got: list[bytes] = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        got += dec.feed(stream[prev:cut])
        prev = cut
    assert got == payloads


# --- framing errors: what came before still counts, and the fault is named right ----------


@pytest.mark.parametrize(
    ("stream", "complete"),
    [
        (b"20:postfix example.test,GARBAGE", (b"postfix example.test",)),  # defect: lost
        (b"3:abc,3:def,3:ghiX", (b"abc", b"def")),  # defect: bad terminator after two
        (b"3:abc,GET / HTTP/1.1\r\n", (b"abc",)),
        (b"GARBAGE", ()),
    ],
)
def test_payloads_before_the_bad_bytes_are_kept_on_the_error(
    stream: bytes, complete: tuple[bytes, ...]
) -> None:
    """A valid request followed by garbage in one read: the request is not lost."""
    with pytest.raises(NetstringError) as info:
        NetstringDecoder().feed(stream)
    assert info.value.complete == complete


@pytest.mark.parametrize(
    ("stream", "says", "never"),
    [
        # defect: an HTTP request was "length prefix is longer than 4 digits"
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "does not speak the socketmap protocol", "digits ("),
        (b"hello", "does not speak the socketmap protocol", "longer than"),
        (b"12345", "longer than 4 digits", "socketmap protocol"),
        (b":abc,", "no length before ':'", "not a decimal"),
        (b"3x:abc,", "is not a decimal number", "longer than"),
        (b"0123:", "leading zero", "longer than"),
        (b"2000:", "longer than the limit of 1024 bytes", "digits"),
        (b"3:abcX", "not terminated by ','", "decimal"),
    ],
)
def test_framing_errors_name_the_real_fault(stream: bytes, says: str, never: str) -> None:
    with pytest.raises(NetstringError) as info:
        NetstringDecoder().feed(stream)
    assert says in info.value.message
    assert never not in info.value.message
