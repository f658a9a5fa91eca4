"""HTTPS adapter: GET one small resource from a named host, resolved through our DNS.

I/O. The connection goes to an address our :class:`~mtasts.net.dns.DnsClient` found (so
the configured nameserver, e.g. the lab's, is used), while SNI, certificate name check
and the Host header all use the host name. No redirects, no HTTP caching, no proxies,
no keep-alive (a pooled connection keyed by IP must never serve another host name), a
byte cap enforced while streaming, and connect / read / total deadlines.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
import zlib
from dataclasses import dataclass

import httpx

from mtasts import __version__
from mtasts.errors import DnsError, FetchError, WebPkiError
from mtasts.net.dns import DnsClient
from mtasts.rfcnames import MAX_POLICY_BYTES

USER_AGENT = f"mtasts/{__version__} (+RFC 8461)"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``total`` bounds the whole GET, including a slow trickle of bytes."""

    connect: float = 10.0
    read: float = 20.0
    total: float = 60.0


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What came back: status, the Content-Type and Location headers, the body bytes."""

    url: str
    address: str
    status: int
    content_type: str | None
    location: str | None
    body: bytes


class HttpsClient:
    """GETs over HTTPS with one TLS client context (PKIX, TLS 1.2+)."""

    def __init__(
        self,
        dns: DnsClient,
        context: ssl.SSLContext,
        *,
        port: int = 443,
        timeouts: Timeouts = Timeouts(),
        max_bytes: int = MAX_POLICY_BYTES,
    ) -> None:
        self._dns = dns
        self._port = port
        self._timeouts = timeouts
        self.max_bytes = max_bytes
        self._client = httpx.AsyncClient(
            verify=context,
            follow_redirects=False,  # RFC 8461 §3.3: MUST NOT follow redirects
            trust_env=False,  # no proxies from the environment: we connect where DNS says
            timeout=httpx.Timeout(
                connect=timeouts.connect, read=timeouts.read, write=timeouts.read, pool=None
            ),
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(self, host: str, path: str) -> HttpResponse:
        """GET ``https://host/path``; raises FetchError / WebPkiError for every failure."""
        shown = host if self._port == 443 else f"{host}:{self._port}"
        url = f"https://{shown}{path}"
        try:
            addresses = await self._dns.addresses(host)
        except DnsError as exc:
            raise FetchError(
                f"could not resolve the policy host {host}: {exc.message}", code="fetch.dns"
            ) from exc
        if not addresses:
            raise FetchError(
                f"the policy host {host} has no A or AAAA record; publish one for it",
                code="fetch.dns",
            )
        try:
            async with asyncio.timeout(self._timeouts.total):
                last: FetchError | None = None
                for address in addresses:
                    try:
                        return await self._get_from(address, host, shown, path, url)
                    except _Unreachable as exc:
                        last = exc.error
                assert last is not None
                raise last
        except TimeoutError as exc:
            raise FetchError(
                f"GET {url} did not complete within {self._timeouts.total:g} s",
                code="fetch.timeout",
            ) from exc

    async def _get_from(
        self, address: str, host: str, shown: str, path: str, url: str
    ) -> HttpResponse:
        ip = ipaddress.ip_address(address)
        literal = f"[{address}]" if ip.version == 6 else address
        target = f"https://{literal}:{self._port}{path}"
        headers = {
            "Host": shown,
            "User-Agent": USER_AGENT,
            "Accept": "text/plain",
            # We want the bytes as sent. A server that gzips anyway is decoded by _Decoder,
            # and the cap then holds for the raw and for the decoded bytes (E-18).
            "Accept-Encoding": "identity",
            "Connection": "close",
        }
        try:
            async with self._client.stream(
                "GET", target, headers=headers, extensions={"sni_hostname": host}
            ) as response:
                length = response.headers.get("content-length")
                if length is not None and length.isdigit() and int(length) > self.max_bytes:
                    raise _too_large(url, self.max_bytes)
                body = bytearray()
                if response.status_code == 200:
                    decoder = _Decoder(response.headers.get("content-encoding"), url)
                    received = 0
                    # Raw bytes, decoded here: httpx would inflate a whole network read at
                    # once (a few KiB of gzip -> GiB), before any cap could be checked.
                    async for chunk in response.aiter_raw():
                        received += len(chunk)
                        if received > self.max_bytes:
                            raise _too_large(url, self.max_bytes)
                        body += decoder.decode(chunk, self.max_bytes + 1 - len(body))
                        if len(body) > self.max_bytes:
                            raise _too_large(url, self.max_bytes)
                    decoder.finish()
                return HttpResponse(
                    url=url,
                    address=address,
                    status=response.status_code,
                    content_type=response.headers.get("content-type"),
                    location=response.headers.get("location"),
                    body=bytes(body),
                )
        except httpx.ConnectTimeout as exc:
            raise _Unreachable(
                FetchError(
                    f"connecting to {host} ({address}) timed out", code="fetch.connect-timeout"
                )
            ) from exc
        except httpx.ConnectError as exc:
            raise _connect_failure(exc, host, address) from exc
        except httpx.TimeoutException as exc:
            raise FetchError(
                f"{host} ({address}) stopped sending during GET {url}", code="fetch.read-timeout"
            ) from exc
        except httpx.HTTPError as exc:
            raise FetchError(
                f"GET {url} failed: {exc or type(exc).__name__}", code="fetch.http"
            ) from exc


class _Decoder:
    """Undo a Content-Encoding of ``gzip``/``x-gzip``/``deflate`` with bounded output.

    We ask for ``identity``; a host that compresses anyway is tolerated for one gzip or
    deflate layer. Anything else (``br``, ``zstd``, stacked codings such as ``gzip,
    gzip``, which multiply a bomb's ratio) and a truncated stream are fetch errors: a
    policy cut short could silently lose ``mx`` lines or digits of ``max_age``.
    """

    def __init__(self, header: str | None, url: str) -> None:
        self._url = url
        self.coding = (header or "identity").strip().lower()
        self._inflate: zlib._Decompress | None = None
        if self.coding in ("gzip", "x-gzip"):
            self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.coding == "deflate":
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS)  # RFC 9110 §8.4.1.2: zlib
        elif self.coding not in ("identity", ""):
            raise self._error(f"uses Content-Encoding {header!r}, which we do not decode")

    def _error(self, what: str) -> FetchError:
        return FetchError(
            f"the policy at {self._url} {what}; serve the policy uncompressed "
            "(the request asks for Accept-Encoding: identity)",
            code="fetch.encoding",
        )

    def decode(self, chunk: bytes, limit: int) -> bytes:
        """Decoded bytes of ``chunk``, at most ``limit`` (more would exceed the cap)."""
        if self._inflate is None:
            return chunk
        try:
            return self._inflate.decompress(chunk, limit)
        except zlib.error as exc:
            raise self._error(f"is not valid {self.coding} data ({exc})") from exc

    def finish(self) -> None:
        if self._inflate is not None and not self._inflate.eof:
            raise self._error(f"ends in the middle of its {self.coding} stream")


class _Unreachable(Exception):
    """This address could not be connected to; the next one may be tried."""

    def __init__(self, error: FetchError) -> None:
        super().__init__(error.message)
        self.error = error


def _too_large(url: str, cap: int) -> FetchError:
    return FetchError(
        f"the policy at {url} is larger than {cap} bytes; a policy file must be small "
        "(RFC 8461 §3.3)",
        code="fetch.too-large",
    )


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _connect_failure(exc: httpx.ConnectError, host: str, address: str) -> Exception:
    """Map a failed connection: PKIX failures to WebPkiError, TLS to FetchError."""
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            reason = cause.verify_message or cause.reason or str(cause)
            return WebPkiError(
                f"the certificate of {host} is not valid for it: {reason}; it must chain to "
                f"a trusted CA, be unexpired and name {host} in its subjectAltName",
                code="fetch.webpki",
            )
        if isinstance(cause, ssl.SSLError):
            reason = cause.reason or str(cause)
            return FetchError(
                f"the TLS handshake with {host} ({address}) failed: {reason}; the policy host "
                "must offer TLS 1.2 or later",
                code="fetch.tls",
            )
    return _Unreachable(
        FetchError(f"could not connect to {host} ({address}): {exc}", code="fetch.connect")
    )
