"""The policy host's answers as a pure function of method, path and Host (no I/O)."""

from __future__ import annotations

import pytest

from mtasts.errors import ConfigError
from mtasts.publish.site import Site, check_policy_file, policy_domain_of_host, render, respond

POLICY = b"version: STSv1\r\nmode: testing\r\nmx: mx1.example.com\r\nmax_age: 604800\r\n"
SITE = Site({"example.com": POLICY, "example.net": POLICY})
PATH = "/.well-known/mta-sts.txt"


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("mta-sts.example.com", "example.com"),
        ("MTA-STS.Example.COM", "example.com"),  # Host is case-insensitive
        ("mta-sts.example.com:8443", "example.com"),  # a port is ignored
        ("mta-sts.example.com.", "example.com"),  # so is the root dot
        ("www.example.com", None),  # not a policy host
        ("mta-sts.", None),
        ("[::1]:443", None),
    ],
)
def test_policy_domain_of_host(host: str, domain: str | None) -> None:
    assert policy_domain_of_host(host) == domain


def test_serves_the_policy_as_text_plain_with_short_caching() -> None:
    response = respond(SITE, "GET", PATH, "mta-sts.example.net")
    assert response.status == 200
    assert response.body == POLICY
    headers = dict(response.headers)
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Cache-Control"] == "max-age=60"
    assert headers["Content-Length"] == str(len(POLICY))


@pytest.mark.parametrize(
    ("method", "target", "host", "status"),
    [
        ("GET", PATH + "?x=1", "mta-sts.example.com", 200),  # a query string is ignored
        ("GET", PATH, "mta-sts.unknown.org", 404),  # unknown host: 404, never a redirect
        ("GET", PATH, None, 404),  # no Host header
        ("GET", "/", "mta-sts.example.com", 404),  # only the well-known path
        ("GET", "/.well-known/MTA-STS.txt", "mta-sts.example.com", 404),  # path is exact
        ("POST", PATH, "mta-sts.example.com", 405),
    ],
)
def test_status(method: str, target: str, host: str | None, status: int) -> None:
    assert respond(SITE, method, target, host).status == status


def test_head_has_the_get_headers_and_no_body() -> None:
    response = respond(SITE, "HEAD", PATH, "mta-sts.example.com")
    assert response.status == 200
    assert response.body == b""
    assert dict(response.headers)["Content-Length"] == str(len(POLICY))


def test_render_closes_the_connection() -> None:
    wire = render(respond(SITE, "GET", PATH, "mta-sts.example.com"))
    head, _, body = wire.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nConnection: close" in head
    assert body == POLICY


def test_a_valid_policy_file_passes() -> None:
    check_policy_file(POLICY, "site/example.com.txt")
    check_policy_file(b"version: STSv1\nmode: none\nmax_age: 60\n", "x.txt")  # warnings pass


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"version: STSv1\r\nmode: enforce\r\nmax_age: 86400\r\n", "policy.mx.missing"),
        (b"<html>Not Found</html>\n", "policy.syntax"),
        (b"version: STSv1\nmode: enforce\nmx: \xff.example\nmax_age: 1\n", "policy.encoding"),
        (b"", "policy"),
    ],
)
def test_a_policy_file_that_does_not_lint_is_refused_by_name(data: bytes, code: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_policy_file(data, "site/example.com.txt")
    message = str(info.value)
    assert message.startswith("site/example.com.txt is not a valid MTA-STS policy: ")
    assert f"[{code}" in message
    assert info.value.code == "serve.policy-invalid"
