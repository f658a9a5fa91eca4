"""Per-client limits of the policy host: pure bookkeeping with the clock passed in."""

from __future__ import annotations

import pytest

from mtasts.publish import limits
from mtasts.publish.limits import ClientLimits, ClientTable, client_key


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),  # one subscriber's /64 is one client
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),  # IPv4-mapped: the IPv4 client
        ("fe80::1%eth0", "fe80::/64"),  # a zone index is not part of the address
        ("/run/mtasts.sock", "/run/mtasts.sock"),  # not an IP address: one client as is
    ],
)
def test_client_key(address: str, key: str) -> None:
    assert client_key(address) == key


def test_connections_at_once_are_limited_and_released() -> None:
    table = ClientTable(ClientLimits(max_open=2, rate=0))
    assert table.admit("a", 0.0) is None
    assert table.admit("a", 0.0) is None
    assert table.admit("a", 0.0) == "more than 2 connections at once"
    assert table.admit("b", 0.0) is None  # another client is not affected
    table.release("a")
    assert table.admit("a", 0.0) is None


def test_new_connections_a_second_are_limited_with_a_burst() -> None:
    table = ClientTable(ClientLimits(max_open=0, rate=2, burst=3))
    verdicts = [table.admit("a", 0.0) for _ in range(4)]
    assert verdicts == [None, None, None, "more than 2 new connections a second"]
    for _ in range(3):
        table.release("a")
    assert table.admit("a", 0.4) == "more than 2 new connections a second"  # 0.8 token
    assert table.admit("a", 0.6) is None  # 1.2 tokens: one used
    assert table.admit("a", 1.0) is None  # 0.2 + 0.8


def test_a_refused_connection_costs_no_token_and_holds_no_slot() -> None:
    table = ClientTable(ClientLimits(max_open=1, rate=1, burst=1))
    assert table.admit("a", 0.0) is None
    assert table.admit("a", 5.0) == "more than 1 connections at once"
    table.release("a")
    assert table.admit("a", 5.0) is None  # the refused attempt consumed nothing


def test_idle_clients_are_forgotten_beyond_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many distinct clients (an attacker with many addresses) cannot grow the table
    without bound; clients holding a connection are never forgotten."""
    monkeypatch.setattr(limits, "MAX_IDLE_CLIENTS", 10)
    table = ClientTable(ClientLimits(max_open=1, rate=1, burst=1))
    assert table.admit("holder", 0.0) is None  # keeps its connection open throughout
    for n in range(1000):
        key = f"198.51.100.{n}"
        assert table.admit(key, 0.0) is None
        table.release(key)
    assert len(table) == 11
    assert table.admit("holder", 0.0) == "more than 1 connections at once"


def test_limits_must_be_sensible() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        ClientLimits(max_open=-1)
    with pytest.raises(ValueError, match="burst"):
        ClientLimits(burst=0)
