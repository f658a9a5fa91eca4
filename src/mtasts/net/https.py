"""The one HTTPS client: a request to a named host, connected where our DNS says.

I/O. The connection goes to an address our :class:`~mtasts.net.dns.DnsClient` found (so
the configured nameserver, e.g. the lab's, is used), while SNI, certificate name check
and the Host header all use the host name. No redirects, no HTTP caching, no proxies,
no keep-alive (a pooled connection keyed by IP must never serve another host name), a
byte cap enforced while streaming, and connect / read / total deadlines.

Three callers, one code path (:meth:`HttpsClient.exchange`):

- the sender's policy fetch (:meth:`HttpsClient.get`): every problem is one
  FetchError / WebPkiError, a body above the cap is an error, a gzip or deflate body
  from a host that ignores ``Accept-Encoding: identity`` is decoded within the cap;
- the checker (``mtasts.check.fetch``): ``raw=True`` keeps the bytes as sent (the first
  ``max_bytes`` of an oversized body, ``truncated`` set) and every header, and its
  ``on_tls`` hook reads the peer certificate and TLS version while the connection is open;
- the TLS-RPT report upload (:meth:`HttpsClient.post`, RFC 8460 §5.4).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import httpx

from mtasts import __version__
from mtasts.errors import DnsError, FetchError, WebPkiError
from mtasts.net.dns import DnsClient
from mtasts.rfcnames import MAX_POLICY_BYTES

USER_AGENT = f"mtasts/{__version__} (+RFC 8461)"

#: error codes of a connection that never got as far as TLS: the next address may do
UNREACHABLE = frozenset({"fetch.connect", "fetch.connect-timeout"})

#: called once the response head is in, with the connection's SSL object (None if none)
TlsHook = Callable[[ssl.SSLObject | None], object]


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. ``total`` bounds the whole request, including a slow trickle of bytes."""

    connect: float = 10.0
    read: float = 20.0
    total: float = 60.0


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What came back: status, the Content-Type and Location headers, the body bytes.

    ``headers`` holds every header field as received (duplicates kept, in order);
    ``truncated`` says a ``raw`` exchange stopped reading at the cap.
    """

    url: str
    address: str
    status: int
    content_type: str | None
    location: str | None
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    truncated: bool = False


def authority(host: str, port: int) -> str:
    """``host[:port]`` as a URL and the Host header write it (``[v6]``, no ``:443``)."""
    try:
        literal = f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        literal = host
    return literal if port == 443 else f"{literal}:{port}"


class HttpsClient:
    """Requests over HTTPS with one TLS client context (``net.tls.client_context``:
    PKIX, TLS 1.2+, DNS-IDs only)."""

    def __init__(
        self,
        dns: DnsClient,
        context: ssl.SSLContext,
        *,
        port: int = 443,
        timeouts: Timeouts = Timeouts(),
        max_bytes: int = MAX_POLICY_BYTES,
        user_agent: str = USER_AGENT,
    ) -> None:
        self._dns = dns
        self._port = port
        self._timeouts = timeouts
        self._user_agent = user_agent
        self.max_bytes = max_bytes
        self._client = httpx.AsyncClient(
            verify=context,
            follow_redirects=False,  # RFC 8461 §3.3: MUST NOT follow redirects (and a
            # 3xx to a report upload is not success, RFC 8460 §5.4)
            trust_env=False,  # no proxies from the environment: we connect where DNS says
            timeout=httpx.Timeout(
                connect=timeouts.connect, read=timeouts.read, write=timeouts.read, pool=None
            ),
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    @property
    def dns(self) -> DnsClient:
        return self._dns

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(self, host: str, path: str) -> HttpResponse:
        """GET ``https://host/path`` as a sender fetches a policy: each address in turn
        until one connects; raises FetchError / WebPkiError for every failure."""
        url = f"https://{authority(host, self._port)}{path}"
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
        async with self._deadline("GET", url):
            last: FetchError | None = None
            for address in addresses:
                try:
                    return await self._exchange(
                        "GET", address, host, self._port, path, {"Accept": "text/plain"}
                    )
                except FetchError as exc:
                    if exc.code not in UNREACHABLE:
                        raise
                    last = exc
            assert last is not None
            raise last

    async def post(
        self, address: str, host: str, port: int, path: str, body: bytes, content_type: str
    ) -> HttpResponse:
        """POST ``body`` to ``https://host:port/path`` at ``address`` (the report upload,
        RFC 8460 §5.4); the answer's body is read up to the cap and dropped beyond it."""
        return await self.exchange(
            address,
            host,
            path,
            method="POST",
            port=port,
            body=body,
            headers={"Content-Type": content_type},
            raw=True,
        )

    async def exchange(
        self,
        address: str,
        host: str,
        path: str,
        *,
        method: str = "GET",
        port: int | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        raw: bool = False,
        on_tls: TlsHook | None = None,
    ) -> HttpResponse:
        """One request to ``host`` at ``address``, within the total deadline.

        ``raw`` keeps the body as sent: no Content-Encoding decoding, read whatever the
        status, and a body above ``max_bytes`` is cut there (``truncated``) instead of
        failing. Raises FetchError (``code`` in :data:`UNREACHABLE` when the connection
        was never made) or WebPkiError; the underlying exception is its ``__cause__``.
        """
        port = self._port if port is None else port
        url = f"https://{authority(host, port)}{path}"
        async with self._deadline(method, url):
            return await self._exchange(
                method, address, host, port, path, headers or {}, body, raw=raw, on_tls=on_tls
            )

    def _deadline(self, method: str, url: str) -> AbstractAsyncContextManager[None]:
        return _deadline(self._timeouts.total, f"{method} {url}")

    async def _exchange(
        self,
        method: str,
        address: str,
        host: str,
        port: int,
        path: str,
        extra: Mapping[str, str],
        content: bytes | None = None,
        *,
        raw: bool = False,
        on_tls: TlsHook | None = None,
    ) -> HttpResponse:
        shown = authority(host, port)
        url = f"https://{shown}{path}"
        target = f"https://{_literal(address)}:{port}{path}"
        headers = {
            "Host": shown,
            "User-Agent": self._user_agent,
            # We want the bytes as sent. A server that gzips anyway is decoded by _Decoder,
            # and the cap then holds for the raw and for the decoded bytes (E-18).
            "Accept-Encoding": "identity",
            "Connection": "close",
            **extra,
        }
        cap = self.max_bytes
        try:
            async with self._client.stream(
                method,
                target,
                headers=headers,
                content=content,
                extensions={"sni_hostname": host},
            ) as response:
                if on_tls is not None:
                    stream = response.extensions.get("network_stream")
                    on_tls(stream.get_extra_info("ssl_object") if stream is not None else None)
                length = response.headers.get("content-length")
                if not raw and length is not None and length.isdigit() and int(length) > cap:
                    raise _too_large(url, cap)
                body = bytearray()
                truncated = False
                if raw:
                    async for chunk in response.aiter_raw():
                        body += chunk
                        if len(body) > cap:
                            truncated = True
                            del body[cap:]
                            break
                elif response.status_code == 200:
                    decoder = _Decoder(response.headers.get("content-encoding"), url)
                    received = 0
                    # Raw bytes, decoded here: httpx would inflate a whole network read at
                    # once (a few KiB of gzip -> GiB), before any cap could be checked.
                    async for chunk in response.aiter_raw():
                        received += len(chunk)
                        if received > cap:
                            raise _too_large(url, cap)
                        body += decoder.decode(chunk, cap + 1 - len(body))
                        if len(body) > cap:
                            raise _too_large(url, cap)
                    decoder.finish()
                return HttpResponse(
                    url=url,
                    address=address,
                    status=response.status_code,
                    content_type=response.headers.get("content-type"),
                    location=response.headers.get("location"),
                    body=bytes(body),
                    headers=tuple(response.headers.multi_items()),
                    truncated=truncated,
                )
        except httpx.ConnectTimeout as exc:
            raise FetchError(
                f"connecting to {host} ({address}) timed out", code="fetch.connect-timeout"
            ) from exc
        except httpx.ConnectError as exc:
            raise _connect_failure(exc, host, address) from exc
        except httpx.TimeoutException as exc:
            raise FetchError(
                f"{host} ({address}) stopped sending during {method} {url}",
                code="fetch.read-timeout",
            ) from exc
        except httpx.HTTPError as exc:
            raise FetchError(
                f"{method} {url} failed: {exc or type(exc).__name__}", code="fetch.http"
            ) from exc


@contextlib.asynccontextmanager
async def _deadline(seconds: float, what: str) -> AsyncIterator[None]:
    """``asyncio.timeout(seconds)`` whose expiry is a FetchError (``fetch.timeout``)."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as exc:
        raise FetchError(
            f"{what} did not complete within {seconds:g} s", code="fetch.timeout"
        ) from exc


def _literal(address: str) -> str:
    return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address


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


def _connect_failure(exc: httpx.ConnectError, host: str, address: str) -> FetchError:
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
                f"the TLS handshake with {host} ({address}) failed: {reason}; {host} must "
                "offer TLS 1.2 or later",
                code="fetch.tls",
            )
    return FetchError(f"could not connect to {host} ({address}): {exc}", code="fetch.connect")
