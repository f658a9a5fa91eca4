"""The https intake (RFC 8460 §5.4): a Starlette app served by uvicorn.

``POST <path>`` (or ``<path>/<secret>``) with ``application/tlsrpt+gzip`` or
``application/tlsrpt+json``. The answer is 2xx only after the Receiver has durably
stored the report; every refusal says why in a small JSON body:

====  ===================================================================
200   stored, or already stored (a duplicate: the sender must not retry)
202   kept in quarantine (not ours, or unverified by configuration)
400   not a report (the Receiver's reason)
403   a report for a domain that is not ours, or for another secret's domain
404   an unknown path or secret (a POST without a secret where the configuration
      requires one, ``require_https_secret``, is kept in quarantine: 202)
408   the body did not arrive within ``body_timeout``
413   the body (as sent, or decompressed) is past the size bounds
415   not one of the two TLS-RPT media types
429   this client is over its rate or its concurrency (Retry-After)
503   too many ingests in progress, or the store cannot answer (Retry-After)
====  ===================================================================

The body is read as a stream and never buffered past ``max_body``; a declared
Content-Length past it is refused before a byte of the body is read.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from mtasts.clock import Clock, UtcClock, monotonic, utc_now
from mtasts.metricset import CONTENT_TYPE
from mtasts.tlsrpt.receive.decide import Channel
from mtasts.tlsrpt.receive.gate import Gate, StoreFailed
from mtasts.tlsrpt.receive.intake import Arrival
from mtasts.tlsrpt.receive.limits import (
    ClientSlots,
    RateLimiter,
    SecretPaths,
    http_status,
    media_type,
    one_line,
)
from mtasts.tlsrpt.receive.netconfig import NetConfig

log = logging.getLogger(__name__)

CHANNEL = "https"  # the metrics label


class TooLarge(Exception):
    pass


def _answer(
    status: int, result: str, reason: str = "", *, close: bool = False, retry_after: int = 0
) -> Response:
    body: dict[str, Any] = {"result": result}
    if reason:
        body["reason"] = one_line(reason)
    headers = {"Cache-Control": "no-store"}
    if close:
        # The body was not (all) read: end the connection rather than drain it.
        headers["Connection"] = "close"
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


class HttpIntake:
    """The request handler; :attr:`app` is the ASGI application."""

    def __init__(
        self,
        gate: Gate,
        config: NetConfig,
        *,
        clock: Clock = monotonic,
        utc_clock: UtcClock = utc_now,
    ) -> None:
        self.gate = gate
        self.config = config
        self.clock = clock  # monotonic: the rate limits
        self.utc_clock = utc_clock  # a report's arrival time
        self.secrets = SecretPaths.from_mapping(config.secrets)
        self.rates = RateLimiter(config.rate, config.burst)
        self.slots = ClientSlots(config.client_concurrency)
        base = config.path.rstrip("/")
        routes = [
            Route(base or "/", self.post, methods=["POST"]),
            Route(f"{base}/{{secret}}", self.post, methods=["POST"]),
        ]
        if config.metrics_path and config.metrics is None:
            routes.insert(0, Route(config.metrics_path, self.metrics, methods=["GET"]))
        self.app = Starlette(routes=routes)
        # With a `metrics` listener of its own, metrics are served there only (not on the
        # public report listener).
        self.metrics_app = Starlette(
            routes=[Route(config.metrics_path or "/metrics", self.metrics, methods=["GET"])]
        )

    async def metrics(self, request: Request) -> Response:
        return Response(self.gate.metrics.render(), media_type=CONTENT_TYPE)

    def _refuse(self, reason: str, response: Response) -> Response:
        self.gate.metrics.refuse(CHANNEL, reason)
        return response

    async def post(self, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        if not self.rates.allow(client, self.clock()):
            wait = self.rates.retry_after(client)
            return self._refuse(
                "rate-limited",
                _answer(429, "refused", "too many requests", close=True, retry_after=wait),
            )
        secret = request.path_params.get("secret")
        domain: str | None = None
        if secret is not None:
            domain = self.secrets.domain_for(secret)
            if domain is None:
                return self._refuse(
                    "bad-secret", _answer(404, "refused", "no such path", close=True)
                )
        content_type = request.headers.get("content-type")
        kind = media_type(content_type)
        if kind is None:
            return self._refuse(
                "media-type",
                _answer(
                    415,
                    "refused",
                    "Content-Type must be application/tlsrpt+gzip or application/tlsrpt+json "
                    "(RFC 8460 §5.4)",
                    close=True,
                ),
            )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.config.max_body:
            return self._refuse("too-large", self._too_large())
        if not self.slots.acquire(client):
            return self._refuse(
                "client-busy",
                _answer(429, "refused", "too many requests in progress", close=True, retry_after=1),
            )
        try:
            if not self.gate.enter():
                return self._refuse(
                    "busy", _answer(503, "busy", "try again later", close=True, retry_after=5)
                )
            try:
                return await self._ingest(request, client, kind, domain)
            finally:
                self.gate.leave()
        finally:
            self.slots.release(client)

    def _too_large(self) -> Response:
        return _answer(
            413,
            "refused",
            f"the body is larger than {self.config.max_body} bytes",
            close=True,
        )

    async def _read(self, request: Request) -> bytes:
        """The body, at most ``max_body`` bytes, within ``body_timeout`` seconds."""
        chunks: list[bytes] = []
        size = 0
        async with asyncio.timeout(self.config.body_timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > self.config.max_body:
                    raise TooLarge
                chunks.append(chunk)
        return b"".join(chunks)

    async def _ingest(
        self, request: Request, client: str, kind: str, domain: str | None
    ) -> Response:
        try:
            body = await self._read(request)
        except TooLarge:
            return self._refuse("too-large", self._too_large())
        except TimeoutError:
            return self._refuse(
                "timeout",
                _answer(408, "refused", "the body did not arrive in time", close=True),
            )
        except ClientDisconnect:
            self.gate.metrics.refuse(CHANNEL, "disconnected")
            return _answer(400, "refused", "the client went away", close=True)
        arrival = Arrival(
            channel=Channel.HTTPS,
            source=client,
            received_at=self.utc_clock(),
            content_type=kind,
            secret_domain=domain,
        )
        outcome = await self.gate.ingest("report", body, arrival)
        if isinstance(outcome, StoreFailed):
            return _answer(503, "retry", "the report store is unavailable", retry_after=60)
        name = outcome.disposition.name
        status = http_status(name, outcome.reason_code)
        reason = outcome.reason or outcome.reason_code or ""
        return _answer(status, name.lower(), reason if status != 200 else "")
