"""The pure parts: CAA decisions (RFC 8659), the ClientHello ALPN reader, renewal times,
back-off, the issuance budget and the [acme] settings."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtasts.acme.caa import CaaRecord, climb, evaluate, issuer_of
from mtasts.acme.hello import offered_alpn, wants_acme_tls
from mtasts.acme.renewal import CertState, IssuanceBudget, Lifetime, backoff, cert_state, renew_at
from mtasts.acme.settings import AcmeSettings, acme_settings
from mtasts.check.acmecert import check_acme_status
from mtasts.errors import ConfigError

LE = ("letsencrypt.org",)


def test_climb_walks_up_to_the_tld() -> None:
    assert climb("mta-sts.Example.com.") == ("mta-sts.example.com", "example.com", "com")


@pytest.mark.parametrize(
    ("records", "issuers", "allowed", "words"),
    [
        ((), LE, True, "no CAA record"),
        ((CaaRecord(0, "issue", "letsencrypt.org"),), LE, True, "allows letsencrypt.org"),
        # parameters after ';' and case do not matter for the issuer (RFC 8659 §4.2)
        ((CaaRecord(0, "issue", " LetsEncrypt.org; accounturi=x"),), LE, True, "allows"),
        ((CaaRecord(0, "issue", "pki.goog"),), LE, False, 'CAA 0 issue "letsencrypt.org"'),
        # an empty issuer forbids every CA
        ((CaaRecord(0, "issue", ";"),), LE, False, "allows no CA"),
        # only iodef: does not restrict issuance
        ((CaaRecord(0, "iodef", "mailto:x@example.com"),), LE, True, "no issue property"),
        # issuewild does not apply to a non-wildcard name
        ((CaaRecord(0, "issuewild", ";"),), LE, True, "no issue property"),
        # an unknown property marked critical forbids issuance (§4.1)
        ((CaaRecord(128, "tbs", "x"),), LE, False, "unknown critical property"),
        ((CaaRecord(0, "tbs", "x"),), LE, True, "no issue property"),
        # our CA's identity unknown: cannot tell, so we do not ask
        ((CaaRecord(0, "issue", "letsencrypt.org"),), (), False, "caa_identities"),
    ],
)
def test_caa_evaluate(records, issuers, allowed, words) -> None:
    verdict = evaluate("mta-sts.example.com", "example.com" if records else None, records, issuers)
    assert verdict.allowed is allowed
    assert words in verdict.reason


def test_issuer_of() -> None:
    assert issuer_of("ca.example.net; policy=ev") == "ca.example.net"
    assert issuer_of("") == ""


def _client_hello(alpn: list[str] | None, server_name: str = "mta-sts.example.com") -> bytes:
    """The first flight of a real client (OpenSSL through Python's ssl module)."""
    context = ssl.create_default_context()
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        conn.do_handshake()
    return outgoing.read()


def test_alpn_from_a_real_client_hello() -> None:
    assert offered_alpn(_client_hello(["acme-tls/1"])) == (b"acme-tls/1",)
    assert wants_acme_tls(_client_hello(["acme-tls/1"]))
    assert offered_alpn(_client_hello(["h2", "http/1.1"])) == (b"h2", b"http/1.1")
    assert not wants_acme_tls(_client_hello(["http/1.1"]))
    assert offered_alpn(_client_hello(None)) == ()


def test_alpn_of_a_truncated_or_foreign_hello_is_none() -> None:
    hello = _client_hello(["acme-tls/1"])
    assert offered_alpn(hello[: len(hello) // 2]) is None
    assert offered_alpn(b"GET / HTTP/1.1\r\n\r\n") is None
    assert not wants_acme_tls(b"\x16\x03\x01\x00\x05acme-tls/1")  # the bytes alone are not enough


@given(st.binary(max_size=600))
def test_alpn_reader_never_raises(data: bytes) -> None:
    result = offered_alpn(data)
    assert result is None or isinstance(result, tuple)


@settings(max_examples=25)  # each example is a real OpenSSL ClientHello
@given(st.lists(st.from_regex(r"[a-z0-9/.-]{1,20}", fullmatch=True), min_size=1, max_size=5))
def test_alpn_round_trip_through_openssl(names: list[str]) -> None:
    assert offered_alpn(_client_hello(names)) == tuple(n.encode() for n in names)


T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LIFE = Lifetime(T0, T0 + dt.timedelta(days=90))


def test_renew_at_two_thirds_unless_ari_says() -> None:
    assert renew_at(LIFE, 2 / 3) == T0 + dt.timedelta(days=60)
    ari = T0 + dt.timedelta(days=5)  # a CA revoking early says so through ARI
    assert renew_at(LIFE, 2 / 3, ari) == ari


@pytest.mark.parametrize(
    ("days", "state"),
    [
        (10, CertState.VALID),
        (61, CertState.RENEWAL_DUE),
        (81, CertState.EXPIRING),  # within alert_days = 10 of expiry
        (90, CertState.EXPIRED),
    ],
)
def test_cert_state(days: int, state: CertState) -> None:
    due = renew_at(LIFE, 2 / 3)
    assert cert_state(T0 + dt.timedelta(days=days), LIFE, due, 10) is state


def test_cert_state_missing_and_short_lifetimes() -> None:
    assert cert_state(T0, None, None, 10) is CertState.MISSING
    short = Lifetime(T0, T0 + dt.timedelta(seconds=60))
    # a 60 s test certificate alerts in its last third, not from birth
    assert (
        cert_state(T0 + dt.timedelta(seconds=10), short, T0 + dt.timedelta(seconds=40), 10)
        is CertState.VALID
    )
    assert (
        cert_state(T0 + dt.timedelta(seconds=41), short, T0 + dt.timedelta(seconds=40), 10)
        is CertState.EXPIRING
    )


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(n, 60, 600) for n in range(6)] == [0, 60, 120, 240, 480, 600]
    assert backoff(10_000, 60, 600) == 600


def test_issuance_budget() -> None:
    budget = IssuanceBudget(2)
    assert budget.take(0)
    assert budget.take(0)
    assert not budget.take(0)
    assert budget.wait() == pytest.approx(1800)
    assert budget.take(1800)


def test_settings_defaults_and_values() -> None:
    assert acme_settings({}) == AcmeSettings()
    s = acme_settings(
        {
            "directory": "https://ca.example/dir",
            "email": "hostmaster@example.com",
            "state_dir": "/tmp/x",
            "challenges": ["http-01", "tls-alpn-01"],
            "http_listen": "0.0.0.0:80",
            "domains": ["Example.COM."],
            "on_demand": True,
            "cname_target": "sts.provider.example",
            "renew_fraction": 0.5,
            "eab_kid": "kid-1",
            "eab_hmac_key": "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W",
        }
    )
    assert s.challenges == ("http-01", "tls-alpn-01")
    assert s.domains == ("example.com",)
    assert s.state_dir == Path("/tmp/x")


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ({"directroy": "https://x"}, "unknown setting 'directroy'"),  # a typo
        ({"directory": "http://ca.example/dir"}, "https:// URL"),
        ({"email": "mailto:a@b.c"}, "an e-mail address"),
        ({"challenges": ["dns-01"]}, "tls-alpn-01 and/or http-01"),
        ({"challenges": ["http-01"]}, "http-01 needs http_listen"),
        ({"eab_kid": "k"}, "go together"),
        ({"eab_kid": "k", "eab_hmac_key": "not base64!"}, "base64url"),
        ({"renew_fraction": 1.5}, ">= 0.1 and <= 0.95"),
        ({"retry_min": 600, "retry_max": 60}, "at least retry_min"),
        ({"on_demand": "yes"}, "true or false"),
        ({"max_issuance_per_hour": 0}, "whole number >= 1"),
        ({"domains": ["not a domain"]}, "[acme] domains"),
        ({"http_listen": "nowhere:port"}, "host:port"),
    ],
)
def test_settings_errors_name_the_key(table, words) -> None:
    with pytest.raises(ConfigError) as caught:
        acme_settings(table)
    assert words in caught.value.message


def test_check_acme_status_findings() -> None:
    name = "mta-sts.example.com"
    ok = check_acme_status(name, {"not_after": 1.9e9, "renew_at": 1.8e9, "state": "valid"})
    assert [f.severity.value for f in ok] == ["ok"]
    failing = check_acme_status(
        name, {"not_after": 1.9e9, "failures": 3, "last_error": "validation failed: x"}
    )
    assert failing[0].severity.value == "warning"
    assert "3 time(s) in a row: validation failed: x" in failing[0].message
    assert check_acme_status(name, {})[0].severity.value == "warning"  # none yet
