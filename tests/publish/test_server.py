"""The policy host server on loopback: HTTPS and plain HTTP, Host routing, bad requests."""

from __future__ import annotations

import asyncio
import re
import ssl
from pathlib import Path

import pytest
import trustme

from mtasts.errors import ConfigError
from mtasts.publish.server import PolicyServer, load_config, load_directory, server_tls_context
from mtasts.publish.site import Site

POLICY = b"version: STSv1\r\nmode: testing\r\nmx: mx1.example.com\r\nmax_age: 604800\r\n"


async def raw_request(
    port: int, request: bytes, ctx: ssl.SSLContext | None = None, sni: str | None = None
) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname=sni)
    writer.write(request)
    await writer.drain()
    if ctx is None:
        writer.write_eof()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def get(host: str, path: str = "/.well-known/mta-sts.txt") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


async def test_https_serves_each_domain_by_host(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("mta-sts.example.com", "mta-sts.example.net")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "both.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    tls = server_tls_context(tmp_path / "both.pem", tmp_path / "key.pem")
    site = Site({"example.com": POLICY, "example.net": POLICY.replace(b"testing", b"enforce")})
    client = ssl.create_default_context()
    ca.configure_trust(client)
    async with PolicyServer(site, tls) as server:
        _, port = await server.start("127.0.0.1", 0)
        one = await raw_request(port, get("mta-sts.example.com"), client, "mta-sts.example.com")
        two = await raw_request(port, get("mta-sts.example.net"), client, "mta-sts.example.net")
        unknown = await raw_request(port, get("mta-sts.other.org"), client, "mta-sts.example.com")
    assert one.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nContent-Type: text/plain; charset=utf-8\r\n" in one
    assert one.endswith(POLICY)
    assert two.endswith(b"mode: enforce\r\nmx: mx1.example.com\r\nmax_age: 604800\r\n")
    assert unknown.startswith(b"HTTP/1.1 404 ")
    assert b"Location" not in unknown


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GARBAGE\r\n\r\n", b"400"),  # defect: not an HTTP request line
        (
            b"GET / HTTP/1.1\r\nHost: mta-sts.example.com\r\n" + b"X: " + b"a" * 9000 + b"\r\n\r\n",
            b"400",
        ),  # defect: head too big
        (b"", b"400"),  # defect: the client sends nothing and closes its side
    ],
)
async def test_bad_requests_get_400_and_do_not_hurt_the_server(
    request_bytes: bytes, status: bytes
) -> None:
    async with PolicyServer(Site({"example.com": POLICY})) as server:
        _, port = await server.start("127.0.0.1", 0)
        answer = await raw_request(port, request_bytes)
        assert answer[9:12] == status
        good = await raw_request(port, get("mta-sts.example.com"))
    assert good.startswith(b"HTTP/1.1 200 OK")


async def test_reload_swaps_policies() -> None:
    async with PolicyServer(Site({"example.com": POLICY})) as server:
        _, port = await server.start("127.0.0.1", 0)
        server.reload(Site({"example.org": POLICY}))
        assert (await raw_request(port, get("mta-sts.example.com"))).startswith(b"HTTP/1.1 404")
        assert (await raw_request(port, get("mta-sts.example.org"))).startswith(b"HTTP/1.1 200")


def test_load_directory_and_config(tmp_path: Path) -> None:
    (tmp_path / "example.com.txt").write_bytes(POLICY)
    (tmp_path / "notes.md").write_text("ignored")
    assert load_directory(tmp_path).policies == {"example.com": POLICY}
    config = tmp_path / "sites.toml"
    config.write_text('[policies]\n"Example.NET" = "example.com.txt"\n')
    assert load_config(config).policies == {"example.net": POLICY}


@pytest.mark.parametrize(
    ("toml", "fragment"),
    [
        ("[policies]\n", "needs a [policies] table"),  # defect: empty
        ('[policy]\n"a.example" = "x.txt"\n', "unknown key"),  # defect: typo in the table name
        (
            '[policies]\n"mta-sts.a.example" = "example.com.txt"\n',
            "not the policy host",
        ),  # defect: host, not domain
        ('[policies]\n"a.example" = "missing.txt"\n', "cannot read"),  # defect: no such file
    ],
)
def test_config_errors_name_the_problem(tmp_path: Path, toml: str, fragment: str) -> None:
    (tmp_path / "example.com.txt").write_bytes(POLICY)
    config = tmp_path / "sites.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config(config)


def test_oversized_policy_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "example.com.txt").write_bytes(POLICY + b"x" * 70000)
    with pytest.raises(ConfigError, match="64 KB"):
        load_directory(tmp_path)


async def test_close_ends_connections_still_being_read() -> None:
    """close() ends a half-sent request at once, leaving no handler task or socket behind
    (asyncio.Server.close() in Python 3.11 only stops listening)."""
    async with PolicyServer(Site({"example.com": POLICY})) as server:
        _, port = await server.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /.well-known/mta-sts.txt HTTP/1.1\r\n")  # defect: never finished
        await writer.drain()
        await asyncio.sleep(0.05)  # the server has accepted and is reading
        await asyncio.wait_for(server.close(), 3)
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert leftover == []
        assert await asyncio.wait_for(reader.read(), 3) == b""
        writer.close()
        await writer.wait_closed()


async def test_silent_tls_client_is_dropped_after_the_read_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that connects to the HTTPS port and never starts TLS is dropped after
    READ_TIMEOUT, like a slow request (asyncio's own handshake limit is 60 s)."""
    monkeypatch.setattr("mtasts.publish.server.READ_TIMEOUT", 0.5)
    ca = trustme.CA()
    ca.issue_cert("mta-sts.example.com").private_key_and_cert_chain_pem.write_to_path(
        str(tmp_path / "c.pem")
    )
    tls = server_tls_context(tmp_path / "c.pem", tmp_path / "c.pem")
    async with PolicyServer(Site({"example.com": POLICY}), tls) as server:
        _, port = await server.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # defect: no hello
        try:
            assert await asyncio.wait_for(reader.read(), 20) == b""
        finally:
            writer.close()
            await writer.wait_closed()


def test_directory_names_are_read_as_senders_spell_them(tmp_path: Path) -> None:
    """A file named with the U-label serves the A-label host senders ask for."""
    (tmp_path / "Bücher.example.txt").write_bytes(POLICY)
    assert load_directory(tmp_path).policies == {"xn--bcher-kva.example": POLICY}


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        (["a..example.txt"], "empty label"),  # defect: no Host header can ever match it
        (["a_b.example.txt"], "letters, digits and hyphens"),  # defect: not a host name
        (["bücher.example.txt", "xn--bcher-kva.example.txt"], "two policies"),  # defect: twice
    ],
)
def test_directory_names_that_no_sender_asks_for_are_errors(
    tmp_path: Path, files: list[str], fragment: str
) -> None:
    for name in files:
        (tmp_path / name).write_bytes(POLICY)
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_directory(tmp_path)
