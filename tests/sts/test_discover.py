"""Discovery against the lab: real DNS and HTTPS servers on loopback, no mocks.

Each way a TXT lookup or a policy fetch can go wrong maps to its outcome and its TLS-RPT
result type (RFC 8461 §3.1, §3.3; RFC 8460 §4.3.3).
"""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from mtasts.errors import FetchError, PolicyError, WebPkiError
from mtasts.lab.lab import Lab
from mtasts.lab.scenario import DnsSpec, DomainSpec, PolicyHostSpec, Scenario
from mtasts.lab.testing import LabPool, healthy_domain, policy_text
from mtasts.net.dns import DnsClient
from mtasts.net.https import HttpsClient, Timeouts
from mtasts.net.tls import client_context
from mtasts.results import ResultType
from mtasts.sts.discover import FetchedPolicy, discover, fetch_policy
from mtasts.sts.policy import Mode
from mtasts.sts.refresh import TxtKind

pytestmark = pytest.mark.lab

LabFactory = Callable[[Scenario], Awaitable[Lab]]


@pytest.fixture
async def lab_factory() -> AsyncIterator[LabFactory]:
    async with LabPool() as pool:
        yield pool.start


def clients(lab: Lab, *, total: float = 5.0) -> tuple[DnsClient, HttpsClient]:
    dns = DnsClient(lab.nameserver, timeout=1.0)
    https = HttpsClient(
        dns,
        client_context(str(lab.ca_file)),
        port=lab.https_port,
        timeouts=Timeouts(connect=2.0, read=min(total, 2.0), total=total),
    )
    return dns, https


def domain_with_txt(name: str, *records: tuple[str, ...]) -> Scenario:
    return Scenario(domains=(DomainSpec(name=name, mx=(f"mx1.{name}",), sts=records),))


# --- TXT discovery (RFC 8461 §3.1) ------------------------------------------------------

TXT_CASES = [
    ("one record", domain_with_txt("a.test", ("v=STSv1; id=20240101",)), TxtKind.RECORD,
     "20240101"),
    # STS-3.1-i / E-3: strings joined with no separator, even inside "v=STSv1".
    ("split strings", domain_with_txt("a.test", ("v=ST", "Sv1; id=12", "34")), TxtKind.RECORD,
     "1234"),
    # STS-3.1-f / E-2: non-STS records ignored; v=STSv10 is not STSv1.
    ("mixed RRset", domain_with_txt("a.test", ("v=spf1 -all",), ("v=STSv10; id=9",),
                                    ("v=STSv1; id=2",)), TxtKind.RECORD, "2"),
    # STS-3.1-g / E-1: two STSv1 records -> no policy.
    ("two records", domain_with_txt("a.test", ("v=STSv1; id=1",), ("v=STSv1; id=2",)),
     TxtKind.NONE, None),
    # STS-3.1-d: invalid id -> record invalid -> no policy.
    ("bad id", domain_with_txt("a.test", ("v=STSv1; id=bad-id!",)), TxtKind.NONE, None),
    # STS-3.1-e: version not first -> discarded.
    ("version not first", domain_with_txt("a.test", ("id=1; v=STSv1",)), TxtKind.NONE, None),
    ("only other TXT", domain_with_txt("a.test", ("google-site-verification=x",)),
     TxtKind.NONE, None),
    ("NXDOMAIN", Scenario(), TxtKind.NONE, None),
    # E-11: SERVFAIL and timeout are failures, not "no policy" (pmsr #60).
    ("SERVFAIL", Scenario(dns=(DnsSpec(name="_mta-sts.a.test", fault="servfail"),)),
     TxtKind.ERROR, None),
    ("timeout", Scenario(dns=(DnsSpec(name="_mta-sts.a.test", fault="timeout"),)),
     TxtKind.ERROR, None),
    # STS-3.1-k: CNAME at _mta-sts is followed.
    ("CNAME", Scenario(dns=(DnsSpec(name="_mta-sts.a.test", cname="_mta-sts.provider.test"),
                            DnsSpec(name="_mta-sts.provider.test", txt=(("v=STSv1; id=p1",),)))),
     TxtKind.RECORD, "p1"),
    # E-11: a CNAME loop is a permanent misconfiguration: no live record, not a failure.
    ("CNAME loop", Scenario(dns=(DnsSpec(name="_mta-sts.a.test", cname="_mta-sts.b.test"),
                                 DnsSpec(name="_mta-sts.b.test", cname="_mta-sts.a.test"))),
     TxtKind.NONE, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("scenario", "kind", "record_id"),
    [pytest.param(s, k, i, id=name) for name, s, k, i in TXT_CASES],
)
async def test_txt_discovery(
    lab_factory: LabFactory, scenario: Scenario, kind: TxtKind, record_id: str | None
) -> None:
    """The _mta-sts TXT answer is classified per RFC 8461 §3.1."""
    lab = await lab_factory(scenario)
    dns, https = clients(lab)
    outcome = await discover(dns, "a.test")
    await https.aclose()
    assert outcome.kind is kind, outcome.notice
    assert outcome.record_id == record_id
    if kind is not TxtKind.RECORD:
        assert outcome.notice is not None


async def test_two_records_keep_the_reason(lab_factory: LabFactory) -> None:
    lab = await lab_factory(domain_with_txt("a.test", ("v=STSv1; id=1",), ("v=STSv1; id=2",)))
    outcome = await discover(DnsClient(lab.nameserver), "a.test")
    assert outcome.notice is not None
    assert outcome.notice.code == "sts-record.multiple"


# --- policy fetch (RFC 8461 §3.3) -------------------------------------------------------

BIG = 65536
EXT = "x-padding: "


def exact_size_policy(size: int) -> str:
    """A valid policy of exactly ``size`` bytes (an extension line pads it)."""
    head = policy_text(("mx1.a.test",))
    return head + EXT + "a" * (size - len(head) - len(EXT) - 2) + "\r\n"


def host(spec: PolicyHostSpec) -> Scenario:
    return healthy_domain("a.test", policy_host=spec)


def policy(text: str | bytes) -> Scenario:
    base = healthy_domain("a.test")
    return replace(base, domains=(replace(base.domains[0], policy=text),))


# (name, scenario, expected error class, error code, TLS-RPT result type)
FETCH_FAILURES = [
    # STS-3.3-h / E-14: a redirect is not followed.
    ("301 redirect", host(PolicyHostSpec(redirect_to="https://mta-sts.a.test/other")),
     FetchError, "fetch.redirect", ResultType.STS_POLICY_FETCH_ERROR),
    # STS-3.3-g / E-15: only 200 counts.
    ("404", host(PolicyHostSpec(status=404)), FetchError, "fetch.status",
     ResultType.STS_POLICY_FETCH_ERROR),
    ("500", host(PolicyHostSpec(status=500)), FetchError, "fetch.status",
     ResultType.STS_POLICY_FETCH_ERROR),
    ("204", host(PolicyHostSpec(status=204)), FetchError, "fetch.status",
     ResultType.STS_POLICY_FETCH_ERROR),
    # E-16: a 304 can only be a misbehaving server.
    ("304", host(PolicyHostSpec(status=304)), FetchError, "fetch.redirect",
     ResultType.STS_POLICY_FETCH_ERROR),
    # STS-3.2-b / E-17: the media type must be text/plain.
    ("text/html", host(PolicyHostSpec(content_type="text/html")), PolicyError,
     "policy.media-type", ResultType.STS_POLICY_INVALID),
    ("no Content-Type", host(PolicyHostSpec(content_type="")), PolicyError,
     "policy.media-type", ResultType.STS_POLICY_INVALID),
    # E-18: over the 64 KiB cap, announced by Content-Length or streamed without one.
    ("64 KiB + 1 (Content-Length)", policy(exact_size_policy(BIG + 1)), FetchError,
     "fetch.too-large", ResultType.STS_POLICY_FETCH_ERROR),
    ("endless body", host(PolicyHostSpec(endless=True)), FetchError, "fetch.too-large",
     ResultType.STS_POLICY_FETCH_ERROR),
    # STS-3.3-a..c / E-20: PKIX failures are sts-webpki-invalid.
    ("expired cert", host(PolicyHostSpec(cert="expired")), WebPkiError, "fetch.webpki",
     ResultType.STS_WEBPKI_INVALID),
    ("wrong-name cert", host(PolicyHostSpec(cert="wrong-name")), WebPkiError, "fetch.webpki",
     ResultType.STS_WEBPKI_INVALID),
    ("self-signed cert", host(PolicyHostSpec(cert="self-signed")), WebPkiError, "fetch.webpki",
     ResultType.STS_WEBPKI_INVALID),
    # RFC 8461 §3.3 / RFC 6125: DNS-IDs only; the host's name in the subject CN is no match.
    ("CN-only cert", host(PolicyHostSpec(cert="cn-only")), WebPkiError, "fetch.webpki",
     ResultType.STS_WEBPKI_INVALID),
    ("untrusted CA", host(PolicyHostSpec(cert="untrusted")), WebPkiError, "fetch.webpki",
     ResultType.STS_WEBPKI_INVALID),
    # E-23: TLS 1.2+ only.
    ("TLS 1.1 only", host(PolicyHostSpec(tls_max_version="1.1")), FetchError, "fetch.tls",
     ResultType.STS_POLICY_FETCH_ERROR),
    # E-19: a host that never answers is cut off by the total deadline.
    ("slow host", host(PolicyHostSpec(delay_ms=5000)), FetchError, None,
     ResultType.STS_POLICY_FETCH_ERROR),
    ("slow trickle", host(PolicyHostSpec(slow_ms=200, drip_bytes=1)), FetchError,
     "fetch.timeout", ResultType.STS_POLICY_FETCH_ERROR),
    ("no listener", host(PolicyHostSpec(listen=False)), FetchError, "fetch.connect",
     ResultType.STS_POLICY_FETCH_ERROR),
    # STS-3.2-e: an invalid policy body.
    ("bad mode", policy("version: STSv1\nmode: Enforce\nmx: mx1.a.test\nmax_age: 86400\n"),
     PolicyError, "policy.mode.invalid", ResultType.STS_POLICY_INVALID),
    ("not UTF-8", policy(b"version: STSv1\nmode: enforce\nmx: mx1.a.test\nmax_age: 1\nx: \xff\n"),
     PolicyError, "policy.encoding", ResultType.STS_POLICY_INVALID),
]  # fmt: skip


@pytest.mark.parametrize(
    ("scenario", "error", "code", "result_type"),
    [pytest.param(s, e, c, r, id=name) for name, s, e, c, r in FETCH_FAILURES],
)
async def test_fetch_failures_map_to_result_types(
    lab_factory: LabFactory,
    scenario: Scenario,
    error: type[Exception],
    code: str | None,
    result_type: ResultType,
) -> None:
    """Every fetch failure raises its error, code and TLS-RPT result type."""
    lab = await lab_factory(scenario)
    _, https = clients(lab, total=1.0)
    try:
        with pytest.raises(error) as caught:
            await fetch_policy(https, "a.test")
    finally:
        await https.aclose()
    exc = caught.value
    assert isinstance(exc, FetchError | PolicyError)
    if code is not None:
        assert exc.code == code, exc
    assert exc.result_type is result_type
    assert "a.test" in str(exc)


FETCH_SUCCESSES = [
    ("healthy", healthy_domain("a.test")),
    # E-18: exactly 64 KiB is accepted.
    ("exactly 64 KiB", policy(exact_size_policy(BIG))),
    # STS-3.2-c / E-17: media type case-insensitive, parameters ignored, charset ignored.
    ("TEXT/PLAIN with parameters",
     host(PolicyHostSpec(content_type="TEXT/PLAIN; charset=US-ASCII; x=y"))),
    ("unknown charset", host(PolicyHostSpec(content_type="text/plain; charset=x-bogus"))),
    ("UTF-8 extension, no charset",
     policy("version: STSv1\nmode: enforce\nmx: mx1.a.test\nmax_age: 86400\ncomment: café\n")),
]  # fmt: skip


@pytest.mark.parametrize("scenario", [pytest.param(s, id=n) for n, s in FETCH_SUCCESSES])
async def test_fetch_successes(lab_factory: LabFactory, scenario: Scenario) -> None:
    """Valid policies are accepted, including the edge cases pmsr rejects."""
    lab = await lab_factory(scenario)
    _, https = clients(lab)
    try:
        fetched = await fetch_policy(https, "a.test")
    finally:
        await https.aclose()
    assert fetched.policy.mode is Mode.ENFORCE
    assert fetched.policy.matches_mx("mx1.a.test")


async def test_fetch_request_shape(lab_factory: LabFactory) -> None:
    """STS-3.2-a, STS-7.1-b, STS-3.3-i: GET of the well-known path, SNI and Host are the
    policy host, TLS 1.2+, a User-Agent, and no conditional (caching) headers."""
    lab = await lab_factory(healthy_domain("a.test"))
    _, https = clients(lab)
    await fetch_policy(https, "a.test")
    await fetch_policy(https, "a.test")
    await https.aclose()
    requests = lab.policy_requests("a.test")
    assert len(requests) == 2
    for request in requests:
        assert request.method == "GET"
        assert request.path == "/.well-known/mta-sts.txt"
        assert request.sni == "mta-sts.a.test"
        assert request.host is not None
        assert request.host.split(":")[0] == "mta-sts.a.test"
        assert request.tls_version in ("TLSv1.2", "TLSv1.3")
        assert request.header(
            "user-agent",
        ).startswith("mtasts/")  # type: ignore[union-attr]
        assert request.header("if-none-match") is None
        assert request.header("if-modified-since") is None


async def test_policy_host_without_address_is_a_fetch_error(lab_factory: LabFactory) -> None:
    """A record but no mta-sts host in DNS: sts-policy-fetch-error naming the host."""
    lab = await lab_factory(domain_with_txt("a.test", ("v=STSv1; id=1",)))
    _, https = clients(lab)
    with pytest.raises(FetchError) as caught:
        await fetch_policy(https, "a.test")
    await https.aclose()
    assert caught.value.code == "fetch.dns"
    assert "mta-sts.a.test" in str(caught.value)


# --- Content-Encoding (E-18): the cap holds for compressed bodies too ---------------------

GZ_POLICY = policy_text(("mx1.gz.test",)).encode()


def gzipped(data: bytes, times: int = 1) -> bytes:
    for _ in range(times):
        data = gzip.compress(data)
    return data


async def serve_encoded(lab: Lab, encoding: str, body: bytes) -> tuple[asyncio.Server, int]:
    """A policy host for gz.test (lab certificate) that ignores ``Accept-Encoding:
    identity`` and sends ``body`` with ``Content-Encoding: encoding``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                + f"Content-Encoding: {encoding}\r\nContent-Length: {len(body)}\r\n".encode()
                + b"Connection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    context = lab.pki.server_context("mta-sts.gz.test", "valid")
    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    return server, int(server.sockets[0].getsockname()[1])


GZ_DNS = Scenario(
    dns=(
        DnsSpec(name="_mta-sts.gz.test", txt=(("v=STSv1; id=1",),)),
        DnsSpec(name="mta-sts.gz.test", a=("127.0.0.1",)),
    )
)


async def fetch_encoded(lab: Lab, encoding: str, body: bytes) -> object:
    """fetch_policy against the encoding server: the policy, or the error raised."""
    server, port = await serve_encoded(lab, encoding, body)
    dns = DnsClient(lab.nameserver, timeout=1.0)
    https = HttpsClient(dns, client_context(str(lab.ca_file)), port=port)
    try:
        return await fetch_policy(https, "gz.test")
    except (FetchError, PolicyError) as exc:
        return exc
    finally:
        await https.aclose()
        server.close()
        await server.wait_closed()


async def test_gzip_policy_from_a_host_ignoring_identity_is_decoded(
    lab_factory: LabFactory,
) -> None:
    """A host that gzips although we asked for identity: the policy is decoded and used."""
    lab = await lab_factory(GZ_DNS)
    fetched = await fetch_encoded(lab, "gzip", gzipped(GZ_POLICY))
    assert isinstance(fetched, FetchedPolicy), fetched
    assert fetched.policy.matches_mx("mx1.gz.test")


ENCODING_FAILURES = [
    # defect: a 32 MiB gzip bomb in a 32 KiB body; the cap must stop decoding at 64 KiB
    ("gzip bomb", "gzip", gzipped(GZ_POLICY + b"#" * (32 << 20)), "fetch.too-large"),
    # defect: gzip inside gzip, each layer multiplying the size (KiB -> GiB)
    ("gzip, gzip", "gzip, gzip", gzipped(GZ_POLICY + b"#" * (8 << 20), 2), "fetch.encoding"),
    # defect: a coding we cannot decode
    ("br", "br", b"\x8b\x02\x80hello\x03", "fetch.encoding"),
    # defect: truncated gzip stream (a policy cut short could lose mx lines)
    ("truncated gzip", "gzip", gzipped(GZ_POLICY)[:-12], "fetch.encoding"),
]


@pytest.mark.parametrize(
    ("encoding", "body", "code"),
    [pytest.param(e, b, c, id=n) for n, e, b, c in ENCODING_FAILURES],
)
async def test_compressed_bodies_are_capped_and_bounded_in_memory(
    lab_factory: LabFactory, encoding: str, body: bytes, code: str
) -> None:
    """E-18: whatever the Content-Encoding, at most 64 KiB is decoded (no decompression
    bomb can make the sender allocate more) and a bad coding is sts-policy-fetch-error."""
    lab = await lab_factory(GZ_DNS)
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = await fetch_encoded(lab, encoding, body)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        if not tracing:
            tracemalloc.stop()
    assert isinstance(result, FetchError), result
    assert result.code == code, result
    assert result.result_type is ResultType.STS_POLICY_FETCH_ERROR
    assert peak < 4 << 20, f"decoding allocated {peak >> 20} MiB"
