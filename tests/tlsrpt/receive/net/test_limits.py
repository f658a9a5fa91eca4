"""The intake's pure decisions: media types, secret paths, rates, slots, answers, settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mtasts.errors import ConfigError
from mtasts.tlsrpt.receive.limits import (
    ClientSlots,
    RateLimiter,
    SecretPaths,
    http_status,
    media_type,
    one_line,
    smtp_reply,
)
from mtasts.tlsrpt.receive.netconfig import Listen, NetConfig, parse_netconfig


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("application/tlsrpt+gzip", "application/tlsrpt+gzip"),
        ("application/tlsrpt+json", "application/tlsrpt+json"),
        ("Application/TLSRPT+JSON; charset=utf-8", "application/tlsrpt+json"),  # case, params
        (" application/tlsrpt+gzip ", "application/tlsrpt+gzip"),
        (None, None),  # no header: not a report POST
        ("", None),
        ("application/json", None),  # plain JSON is not the RFC 8460 §6.4 type
        ("application/gzip", None),
        ("application/tlsrpt+gzip2", None),  # near miss
        ("multipart/report; report-type=tlsrpt", None),  # the mail type, not for https
    ],
)
def test_media_type(header: str | None, expected: str | None) -> None:
    assert media_type(header) == expected


def test_secret_paths_find_the_domain_and_nothing_else() -> None:
    paths = SecretPaths.from_mapping(
        {"a.test": "secret-of-a-000000", "b.test": "secret-of-b-000000"}
    )
    assert paths.domain_for("secret-of-a-000000") == "a.test"
    assert paths.domain_for("secret-of-b-000000") == "b.test"
    assert paths.domain_for("secret-of-a-00000") is None  # a prefix is not the secret
    assert paths.domain_for("") is None
    assert not SecretPaths.from_mapping({})


def test_rate_limiter_refills_at_its_rate() -> None:
    rl = RateLimiter(rate=1.0, burst=2)
    assert [rl.allow("c", 0.0) for _ in range(3)] == [True, True, False]
    assert rl.retry_after("c") == 1
    assert not rl.allow("c", 0.5)
    assert rl.allow("c", 1.6)  # 1.1 tokens earned since t=0.5
    assert rl.allow("other", 0.0)  # each client has its own bucket


def test_rate_limiter_off_when_rate_is_zero() -> None:
    rl = RateLimiter(rate=0, burst=1)
    assert all(rl.allow("c", 0.0) for _ in range(100))


@given(st.lists(st.integers(0, 10**6), max_size=300))
def test_rate_limiter_table_is_bounded(clients: list[int]) -> None:
    rl = RateLimiter(rate=1.0, burst=1, max_clients=50)
    for i, c in enumerate(clients):
        rl.allow(str(c), float(i))
    assert len(rl) <= 50


def test_client_slots() -> None:
    slots = ClientSlots(per_client=2)
    assert slots.acquire("a")
    assert slots.acquire("a")
    assert not slots.acquire("a")
    assert slots.acquire("b")
    slots.release("a")
    assert slots.acquire("a")
    for c in ("a", "a", "b"):
        slots.release(c)
    assert len(slots) == 0  # idle clients leave no entry
    unlimited = ClientSlots(per_client=0)
    assert all(unlimited.acquire("a") for _ in range(100))


@pytest.mark.parametrize(
    ("disposition", "code", "status"),
    [
        ("STORED", None, 200),
        ("DUPLICATE", None, 200),  # we have it: the sender must not retry
        ("QUARANTINED", "not-our-domain", 202),
        ("REFUSED", "too-large", 413),
        ("REFUSED", "not-our-domain", 403),
        ("REFUSED", "not-a-report", 400),
        ("REFUSED", "something-new", 400),
        ("REFUSED", None, 400),
    ],
)
def test_http_status(disposition: str, code: str | None, status: int) -> None:
    assert http_status(disposition, code) == status


@pytest.mark.parametrize(
    ("disposition", "code", "prefix"),
    [
        ("STORED", None, "250 "),
        ("DUPLICATE", None, "250 "),
        ("QUARANTINED", None, "250 "),
        ("REFUSED", "too-large", "552 5.3.4 "),
        ("REFUSED", "not-a-report", "554 5.6.0 "),
    ],
)
def test_smtp_reply(disposition: str, code: str | None, prefix: str) -> None:
    assert smtp_reply(disposition, code, "why\r\n250 injected").startswith(prefix)
    assert "\r" not in smtp_reply(disposition, code, "why\r\n250 injected")


@given(st.text(max_size=2000))
def test_one_line_is_one_printable_bounded_line(text: str) -> None:
    line = one_line(text)
    assert line
    assert len(line) <= 400
    assert line.isprintable()


# --- [receive] settings -------------------------------------------------------------------


def test_netconfig_defaults_and_passthrough() -> None:
    config, rest = parse_netconfig({"domains": ["a.test"], "foreign": "quarantine"})
    assert config == NetConfig()
    assert rest == {"domains": ["a.test"], "foreign": "quarantine"}  # the store side's keys


def test_netconfig_reads_every_kind_of_value() -> None:
    config, _ = parse_netconfig(
        {
            "http": "[::1]:8443",
            "lmtp": "unix:/run/x.sock",
            "smtp": ":2525",
            "path": "/reports/",
            "max_body": 1000,
            "rate": 0,
            "header_timeout": 2.5,
            "trusted_proxies": ["127.0.0.1"],
            "secrets": {"A.Test.": "abcdefghijklmnop"},
            "imap": {"password": "pw", "done_folder": "Done"},
        }
    )
    assert config.http == Listen(host="::1", port=8443)
    assert str(config.http) == "[::1]:8443"
    assert config.lmtp == Listen(path="/run/x.sock")
    assert config.smtp == Listen(host="0.0.0.0", port=2525)
    assert config.path == "/reports"
    assert (config.max_body, config.rate, config.header_timeout) == (1000, 0.0, 2.5)
    assert config.secrets == {"a.test": "abcdefghijklmnop"}
    assert config.imap.done_folder == "Done"
    off, _ = parse_netconfig({"http": ""}, config)
    assert off.http is None
    assert off.lmtp == config.lmtp


@pytest.mark.parametrize(
    ("table", "why"),
    [
        ({"http": "8443"}, "no colon"),
        ({"lmtp": "unix:relative.sock"}, "a relative unix path"),
        ({"max_body": 0}, "a zero bound"),
        ({"max_body": True}, "a bool is not a number"),
        ({"header_timeout": 0}, "a zero timeout"),
        ({"rate": -1}, "a negative rate"),
        ({"path": "tlsrpt"}, "not absolute"),
        ({"path": "/a?b"}, "a query in the path"),
        ({"secrets": {"a.test": "short"}}, "a guessable secret"),
        ({"secrets": {"a.test": "has/a/slash/in/it/00"}}, "not one path segment"),
        ({"imap": {"passwd": "x"}}, "an unknown imap key"),
        ({"cert": "/x.pem"}, "a certificate without its key"),
        ({"metrics_path": "/tlsrpt"}, "metrics on the report path"),
        ({"trusted_proxies": "127.0.0.1"}, "a string, not a list"),
    ],
)
def test_netconfig_refuses(table: dict[str, object], why: str) -> None:
    with pytest.raises(ConfigError):
        parse_netconfig(table)
