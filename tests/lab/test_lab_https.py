"""Policy hosts and the https TLS-RPT receiver, seen by independent clients (ssl, httpx).

Each misbehaviour a scenario can ask for must be real on the wire.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
import time
import zlib

import httpx
import pytest

from mtasts.lab import PolicyHostSpec, Scenario
from mtasts.lab.testing import healthy_domain, policy_text, running_lab
from mtasts.net.tls import client_context

WELL_KNOWN = "/.well-known/mta-sts.txt"


def policy(domain: str) -> bytes:
    """What healthy_domain(domain) publishes."""
    return policy_text((f"mx1.{domain}",)).encode()


async def fetch(lab, domain: str, *, ctx=None, limit: float = 3.0, path: str = WELL_KNOWN):
    """GET like a policy fetcher: the lab address, with Host and SNI of the policy host."""
    host = f"mta-sts.{domain}"
    async with httpx.AsyncClient(
        verify=ctx or client_context(str(lab.ca_file)), follow_redirects=False, timeout=limit
    ) as client:
        return await client.get(
            f"https://{lab.address(host)}:{lab.https_port}{path}",
            headers={"Host": host},
            extensions={"sni_hostname": host},
        )


async def handshake(lab, host: str, ctx: ssl.SSLContext) -> str | None:
    """TLS handshake with a lab host; returns the negotiated version."""
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(lab.address(host), lab.https_port, ssl=ctx, server_hostname=host),
        5,
    )
    version = writer.get_extra_info("ssl_object").version()
    writer.close()
    return version


async def test_healthy_host_serves_policy_byte_for_byte(lab_factory) -> None:
    """200, text/plain, the policy exactly; the request is recorded with SNI, Host, path."""
    lab = await lab_factory(healthy_domain("good.test"))
    response = await fetch(lab, "good.test")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain"
    assert response.content == policy("good.test")
    (request,) = lab.policy_requests("good.test")
    assert (request.method, request.path, request.host) == ("GET", WELL_KNOWN, "mta-sts.good.test")
    assert request.sni == "mta-sts.good.test"


async def test_other_paths_are_404(lab_factory) -> None:
    """Only /.well-known/mta-sts.txt has the policy."""
    lab = await lab_factory(healthy_domain("good.test"))
    assert (await fetch(lab, "good.test", path="/mta-sts.txt")).status_code == 404


@pytest.mark.parametrize(
    ("cert", "code", "message"),
    [
        ("expired", 10, "certificate has expired"),
        ("wrong-name", 62, "Hostname mismatch"),
        ("self-signed", 18, "self-signed certificate"),
        ("untrusted", 20, "unable to get local issuer certificate"),
        ("cn-only", 62, "Hostname mismatch"),  # right name, but in the CN only (issue 16)
    ],
)
async def test_bad_certificates_fail_verification(lab_factory, cert, code, message) -> None:
    """Each certificate variant fails PKIX validation against the lab CA for its reason."""
    lab = await lab_factory(healthy_domain("bad.test", policy_host=PolicyHostSpec(cert=cert)))
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        await handshake(lab, "mta-sts.bad.test", client_context(str(lab.ca_file)))
    assert info.value.verify_code == code
    assert message in info.value.verify_message


async def test_cn_only_certificate_names_the_host_in_its_common_name(lab_factory) -> None:
    """The cn-only variant is right in every way but the missing DNS-ID: a client that
    still falls back to the subject CN (OpenSSL's default) accepts it, ours refuses it."""
    lab = await lab_factory(healthy_domain("cn.test", policy_host=PolicyHostSpec(cert="cn-only")))
    lenient = ssl.create_default_context(cafile=str(lab.ca_file))
    lenient.hostname_checks_common_name = True
    assert await handshake(lab, "mta-sts.cn.test", lenient) in ("TLSv1.2", "TLSv1.3")
    assert client_context(str(lab.ca_file)).hostname_checks_common_name is False


async def test_valid_certificate_passes_and_system_store_refuses_it(lab_factory) -> None:
    """The valid certificate verifies against lab.ca_file, and against nothing else."""
    lab = await lab_factory(healthy_domain("good.test"))
    ctx = client_context(str(lab.ca_file))
    assert await handshake(lab, "mta-sts.good.test", ctx) in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(ssl.SSLCertVerificationError):
        await handshake(lab, "mta-sts.good.test", client_context())


@pytest.mark.parametrize(
    ("spec", "status", "location"),
    [
        (PolicyHostSpec(status=404), 404, None),
        (PolicyHostSpec(status=500), 500, None),
        (PolicyHostSpec(status=599), 599, None),  # a status with no reason phrase
        (PolicyHostSpec(redirect_to="https://elsewhere.test/p"), 301, "https://elsewhere.test/p"),
        (PolicyHostSpec(status=307, redirect_to="/other"), 307, "/other"),
    ],
)
async def test_status_and_redirects(lab_factory, spec, status, location) -> None:
    """httpx (not following redirects) sees the configured status and Location."""
    lab = await lab_factory(healthy_domain("x.test", policy_host=spec))
    response = await fetch(lab, "x.test")
    assert response.status_code == status
    assert response.headers.get("location") == location


@pytest.mark.parametrize(("content_type", "seen"), [("text/html", "text/html"), ("", None)])
async def test_content_type_wrong_or_missing(lab_factory, content_type, seen) -> None:
    """content_type is sent as given; an empty one sends no header at all."""
    spec = PolicyHostSpec(content_type=content_type)
    lab = await lab_factory(healthy_domain("x.test", policy_host=spec))
    response = await fetch(lab, "x.test")
    assert response.headers.get("content-type") == seen
    assert response.content == policy("x.test")


async def test_extra_bytes_and_oversized_body(lab_factory) -> None:
    """body_extra is appended after the policy; oversize pads the body to that size."""
    extra = healthy_domain("extra.test", policy_host=PolicyHostSpec(body_extra="garbage\x00"))
    big = healthy_domain("big.test", policy_host=PolicyHostSpec(oversize=200_000))
    lab = await lab_factory(extra + big)
    assert (await fetch(lab, "extra.test")).content == policy("extra.test") + b"garbage\x00"
    body = (await fetch(lab, "big.test")).content
    assert len(body) == 200_000
    assert body.startswith(policy("big.test"))


async def test_policy_bytes_are_served_unchanged(lab_factory) -> None:
    """A policy given as bytes (here invalid UTF-8) goes out exactly as given."""
    lab = await lab_factory(healthy_domain("x.test"))
    lab.set_policy("x.test", b"version: STSv1\r\nmode: \xff\r\n")
    assert (await fetch(lab, "x.test")).content == b"version: STSv1\r\nmode: \xff\r\n"


async def test_delay_before_headers_times_out_a_client(lab_factory) -> None:
    """delay_ms holds back the status line: a short read timeout expires; the request
    was still received."""
    lab = await lab_factory(healthy_domain("x.test", policy_host=PolicyHostSpec(delay_ms=2000)))
    with pytest.raises(httpx.ReadTimeout):
        await fetch(lab, "x.test", limit=0.2)
    assert len(lab.policy_requests("x.test")) == 1


async def test_slow_body_drips(lab_factory) -> None:
    """slow_ms/drip_bytes send the body a few bytes at a time."""
    spec = PolicyHostSpec(slow_ms=20, drip_bytes=16)
    lab = await lab_factory(healthy_domain("x.test", policy_host=spec))
    started = time.perf_counter()
    response = await fetch(lab, "x.test")
    chunks = -(-len(policy("x.test")) // 16)
    assert response.content == policy("x.test")
    assert time.perf_counter() - started >= 0.8 * chunks * 0.02


async def test_endless_body_never_ends(lab_factory) -> None:
    """endless: no Content-Length, and more bytes than any policy cap keep coming."""
    lab = await lab_factory(healthy_domain("x.test", policy_host=PolicyHostSpec(endless=True)))
    host = "mta-sts.x.test"
    async with (
        httpx.AsyncClient(verify=client_context(str(lab.ca_file)), timeout=3) as client,
        client.stream(
            "GET",
            f"https://{lab.address(host)}:{lab.https_port}{WELL_KNOWN}",
            headers={"Host": host},
            extensions={"sni_hostname": host},
        ) as response,
    ):
        assert "content-length" not in response.headers
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > 1_000_000:
                break
    assert received > 1_000_000


async def test_no_listener(lab_factory) -> None:
    """listen=false: the name resolves in the lab DNS but the connection is refused."""
    lab = await lab_factory(healthy_domain("x.test", policy_host=PolicyHostSpec(listen=False)))
    assert lab.address("mta-sts.x.test").startswith("127.")
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(lab.address("mta-sts.x.test"), lab.https_port)


async def test_tls10_only_host(lab_factory) -> None:
    """A TLS 1.0-only host refuses a TLS 1.2-minimum client and accepts a TLS 1.0 one
    (which, like the server, lowers OpenSSL's security level)."""
    spec = PolicyHostSpec(tls_max_version="1.0")
    lab = await lab_factory(healthy_domain("old.test", policy_host=spec))
    # asyncio's TLS server drops the connection without flushing the protocol_version
    # alert, so the refusal shows as a reset rather than an SSLError.
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        await handshake(lab, "mta-sts.old.test", client_context(str(lab.ca_file)))
    old = client_context(str(lab.ca_file), minimum_version=ssl.TLSVersion.TLSv1)
    assert await handshake(lab, "mta-sts.old.test", old) == "TLSv1"


async def test_live_changes_apply_to_the_next_request(lab_factory) -> None:
    """set_policy_host (status, cert) and set_policy change what the next client sees."""
    lab = await lab_factory(healthy_domain("x.test"))
    lab.set_policy_host("x.test", status=503)
    assert (await fetch(lab, "x.test")).status_code == 503
    lab.set_policy_host("x.test", status=200)
    lab.set_policy("x.test", "version: STSv1\r\n")
    assert (await fetch(lab, "x.test")).content == b"version: STSv1\r\n"
    lab.set_policy_host("x.test", cert="expired")
    with pytest.raises(ssl.SSLCertVerificationError, match="expired"):
        await handshake(lab, "mta-sts.x.test", client_context(str(lab.ca_file)))
    with pytest.raises(ValueError, match="listen"):
        lab.set_policy_host("x.test", listen=False)
    assert len(lab.policy_requests("x.test")) == 2


async def test_tlsrpt_https_receiver_stores_posts_and_follows_status_sequence(
    lab_factory,
) -> None:
    """The https receiver stores body and headers of each POST and answers 500 then 200."""
    lab = await lab_factory(healthy_domain("x.test"))
    lab.tlsrpt_https.set_statuses([500, 200])
    host = "reports.lab.test"
    statuses = []
    async with httpx.AsyncClient(verify=client_context(str(lab.ca_file))) as client:
        for n in range(3):
            response = await client.post(
                f"https://{lab.address(host)}:{lab.https_port}/tlsrpt",
                content=b"report-%d" % n,
                headers={"Host": host, "Content-Type": "application/tlsrpt+gzip"},
                extensions={"sni_hostname": host},
            )
            statuses.append(response.status_code)
    assert statuses == [500, 200, 200]
    posts = lab.tlsrpt_https.posts
    assert [p.body for p in posts] == [b"report-0", b"report-1", b"report-2"]
    assert posts[0].header("content-type") == "application/tlsrpt+gzip"
    assert posts[0].sni == host
    assert lab.tlsrpt_https.url == f"https://{host}:{lab.https_port}/tlsrpt"


async def test_receiver_reads_chunked_posts_and_running_lab_describes_hosts() -> None:
    """A chunked POST (no Content-Length) is stored whole; describe() lists every host."""
    scenario = healthy_domain("x.test") + Scenario.from_toml("[tlsrpt_https]\nstatuses = [202]\n")
    async with running_lab(scenario) as lab:

        async def parts():
            yield b"part-1,"
            yield b"part-2"

        host = "reports.lab.test"
        async with httpx.AsyncClient(verify=client_context(str(lab.ca_file))) as client:
            response = await client.post(
                f"https://{lab.address(host)}:{lab.https_port}/tlsrpt",
                content=parts(),
                headers={"Host": host},
                extensions={"sni_hostname": host},
            )
        assert response.status_code == 202
        (post,) = lab.tlsrpt_https.posts
        assert post.header("transfer-encoding") == "chunked"
        assert post.body == b"part-1,part-2"
        rows = {name: address for name, address, _ in lab.describe()}
        assert rows["mta-sts.x.test"] == lab.address("mta-sts.x.test")
        assert set(rows) == set(lab.addresses)


async def test_certificate_without_sni_is_the_hosts_own(lab_factory) -> None:
    """Certificates are issued at the first handshake, chosen per listener: a client that
    sends no SNI still gets mta-sts.<domain>'s certificate, and the lab records no SNI."""
    lab = await lab_factory(healthy_domain("a.test") + healthy_domain("b.test"))
    ctx = client_context(str(lab.ca_file))
    ctx.check_hostname = False  # no server_hostname: no SNI sent
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(lab.address("mta-sts.b.test"), lab.https_port, ssl=ctx), 5
    )
    cert = writer.get_extra_info("peercert")
    writer.close()
    assert cert["subjectAltName"] == (("DNS", "mta-sts.b.test"),)


@pytest.mark.parametrize(
    ("encoding", "decode"),
    [
        ("gzip", gzip.decompress),
        ("deflate", zlib.decompress),
        ("gzip, gzip", lambda b: gzip.decompress(gzip.decompress(b))),  # applied in order
        ("br", lambda b: b),  # a coding the lab does not know: named, body left as is
    ],
)
async def test_content_encoding(lab_factory, encoding: str, decode) -> None:
    """content_encoding sends the header and encodes the body on the wire."""
    spec = PolicyHostSpec(content_encoding=encoding)
    lab = await lab_factory(healthy_domain("z.test", policy_host=spec))
    host = "mta-sts.z.test"
    async with httpx.AsyncClient(verify=client_context(str(lab.ca_file))) as client:
        request = client.build_request(
            "GET",
            f"https://{lab.address(host)}:{lab.https_port}{WELL_KNOWN}",
            headers={"Host": host, "Accept-Encoding": "identity"},
            extensions={"sni_hostname": host},
        )
        response = await client.send(request, stream=True)
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        await response.aclose()
    assert response.headers["content-encoding"] == encoding
    assert int(response.headers["content-length"]) == len(raw)
    assert decode(raw) == policy("z.test")
