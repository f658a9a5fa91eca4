"""The [receive] table: known keys typed, unknown keys named."""

from __future__ import annotations

import pytest

from mtasts.errors import ConfigError
from mtasts.tlsrpt.receive.decide import OtherDomains
from mtasts.tlsrpt.receive.settings import receive_settings


def test_a_full_table() -> None:
    s = receive_settings(
        {
            "owned_domains": ["Example.com", "example.net."],
            "other_domains": "quarantine",
            "require_dkim": True,
            "keep_days": 400,
            "max_bytes": 5_000_000,
        }
    )
    assert s.owned_domains == frozenset({"example.com", "example.net"})
    assert s.other_domains is OtherDomains.QUARANTINE
    assert (s.require_dkim, s.keep_days, s.max_bytes) == (True, 400, 5_000_000)


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"owned_domain": ["a"]}, "unknown setting 'owned_domain'"),  # a typo
        ({"owned_domains": "example.com"}, "expected a list of strings"),  # not a list
        ({"other_domains": "drop"}, "one of 'refuse', 'quarantine', 'accept'"),
        ({"require_dkim": "yes"}, "expected true or false"),
        ({"keep_days": 0}, "expected a whole number >= 1"),
        ({"max_bytes": True}, "a whole number"),
    ],
)
def test_bad_tables_name_the_setting(table: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        receive_settings(table)


def test_listener_keys_are_left_to_their_owner() -> None:
    receive_settings({"http": "127.0.0.1:8443"}, other_keys=frozenset({"http"}))
