"""One conversion by annotation: file values (typed by TOML) and text (environment,
options); every bad value names what is expected."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.settings.coerce import Invalid, coerce, expected
from mtasts.settings.schema import Meta
from mtasts.settings.types import HostPort, Nameserver, OctalMode, SmtpRelay


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


GOOD: list[tuple[Any, Any, bool, Any]] = [
    # (annotation, value, from text, result)
    (str, "x", False, "x"),
    (int, 5, False, 5),
    (int, "5", True, 5),
    (float, 5, False, 5.0),
    (float, "2.5", True, 2.5),
    (bool, True, False, True),
    (bool, "yes", True, True),
    (bool, "OFF", True, False),
    (bool, "0", True, False),
    (Path, "/etc/x", False, Path("/etc/x")),
    (Colour, "blue", False, Colour.BLUE),
    (int | None, "", False, None),
    (int | None, None, False, None),
    (int | None, 3, False, 3),
    (Path | None, "", True, None),
    (tuple[str, ...], ["a", "b"], False, ("a", "b")),
    (tuple[str, ...], "a", True, ("a",)),  # one value from the environment: a list of one
    (tuple[str, ...], "a, b,", True, ("a", "b")),
    (tuple[int, ...], "[1, 2]", True, (1, 2)),
    (list[int], [1], False, [1]),
    (frozenset[str], ["b", "a", "b"], False, frozenset({"a", "b"})),
    (Mapping[str, int], {"a": 1}, False, {"a": 1}),
    (Mapping[str, int], "{ a = 1 }", True, {"a": 1}),
    (Mapping[str, Path], {"x.org": "p.txt"}, False, {"x.org": Path("p.txt")}),
    (HostPort, "127.0.0.1:25", False, ("127.0.0.1", 25)),
    (HostPort, "[::1]:8461", False, ("::1", 8461)),
    (Nameserver, "127.0.0.1", False, ("127.0.0.1", 53)),
    (SmtpRelay, "relay.example", True, ("relay.example", 25)),
    (OctalMode, "0660", False, 0o660),
    (OctalMode, 660, False, 0o660),  # as written: the digits are octal
    (Any, {"x": [1]}, False, {"x": [1]}),
]


@pytest.mark.parametrize(("tp", "value", "text", "result"), GOOD)
def test_good_values(tp: Any, value: Any, text: bool, result: Any) -> None:
    got = coerce(tp, value, text=text)
    assert got == result
    assert type(got) is type(result) or isinstance(got, type(result))


BAD: list[tuple[Any, Any, bool, Meta, str]] = [
    # (annotation, value, from text, bounds, words expected in the reason)
    (int, True, False, Meta(), "whole number"),  # defect: a bool is not a number
    (int, 2.5, False, Meta(), "whole number"),  # defect: not whole
    (int, "5", False, Meta(), "whole number"),  # defect: a string in the file
    (int, "five", True, Meta(), "whole number"),  # defect: not a number in the environment
    (float, "1e", True, Meta(), "a number"),  # defect: malformed
    (float, 0, False, Meta(above=0), "> 0"),  # defect: must be positive
    (float, -1, False, Meta(minimum=0), ">= 0"),  # defect: below the minimum
    (int, 70000, False, Meta(minimum=1, maximum=65535), "<= 65535"),  # defect: above
    (bool, "yes", False, Meta(), "true or false"),  # defect: text in the file
    (bool, "maybe", True, Meta(), "true or false"),  # defect: not a boolean word
    (str, 5, False, Meta(), "a string"),  # defect: a number
    (Path, "", False, Meta(), "file path"),  # defect: empty, not optional
    (Colour, "green", False, Meta(), "'red', 'blue'"),  # defect: not a member
    (tuple[int, ...], ["1"], False, Meta(), "item 1"),  # defect: an item of the wrong type
    (tuple[str, ...], "a", False, Meta(), "even for one"),  # defect: not an array in the file
    (tuple[int, ...], "[1,", True, Meta(), "a list like"),  # defect: broken TOML array
    (Mapping[str, int], [1], False, Meta(), "a table"),  # defect: not a table
    (Mapping[str, int], "{ a = ", True, Meta(), "a table like"),  # defect: broken inline table
    (HostPort, "127.0.0.1", False, Meta(), "host:port"),  # defect: no port
    (HostPort, 25, False, Meta(), "HOST:PORT"),  # defect: a number, not HOST:PORT
    (Nameserver, "127.0.0.1:fifty", False, Meta(), "not host:port"),  # defect: port
    (OctalMode, "rw-rw-rw-", False, Meta(), "not octal"),  # defect: symbolic mode
    (OctalMode, "77777", False, Meta(), "not a file mode"),  # defect: too large
]


@pytest.mark.parametrize(("tp", "value", "text", "meta", "words"), BAD)
def test_bad_values_say_what_is_expected(
    tp: Any, value: Any, text: bool, meta: Meta, words: str
) -> None:
    with pytest.raises(Invalid) as caught:
        coerce(tp, value, meta, text=text)
    assert words in caught.value.reason


def test_expected_words_for_the_docs() -> None:
    assert expected(float, Meta(above=0)) == "a number > 0"
    assert expected(int | None, Meta(minimum=1)) == 'a whole number >= 1, or "" for none'
    assert expected(tuple[str, ...]) == "a list of strings"
    assert expected(SmtpRelay) == "HOST or HOST:PORT such as 127.0.0.1:25"


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_integers_read_the_same_from_file_and_text(n: int) -> None:
    assert coerce(int, n) == coerce(int, str(n), text=True) == n


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_read_the_same_from_file_and_text(x: float) -> None:
    assert coerce(float, x) == coerce(float, repr(x), text=True) == x


@given(
    st.lists(
        st.text(
            alphabet=st.characters(codec="ascii", exclude_characters=",\"'[\\"),
            min_size=1,
        ).filter(lambda s: s.strip() == s and s != ""),
        max_size=5,
    )
)
def test_a_comma_list_in_the_environment_is_the_file_list(items: list[str]) -> None:
    assert coerce(tuple[str, ...], ",".join(items), text=True) == tuple(items)
    assert coerce(tuple[str, ...], items) == tuple(items)


@given(st.sampled_from(["127.0.0.1", "::1", "mx.example", "2001:db8::25"]), st.integers(1, 65535))
def test_host_port_round_trips_through_its_text(host: str, port: int) -> None:
    value = HostPort(host, port)
    assert coerce(HostPort, str(value)) == value


@given(st.integers(min_value=0, max_value=0o7777))
def test_octal_modes_round_trip(mode: int) -> None:
    assert coerce(OctalMode, str(OctalMode(mode))) == mode
