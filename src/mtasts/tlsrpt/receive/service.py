"""``mtasts tlsrpt receive``: the https, SMTP and LMTP listeners around one Receiver.

:class:`ReceiveService` starts every configured listener on one event loop and one
:class:`~mtasts.tlsrpt.receive.gate.Gate` (so ``max_inflight`` bounds the ingests of all
channels together), and stops them: new connections are refused first, then sessions in
progress finish (uvicorn waits up to 10 s; mail sessions are cut, their senders retry,
and nothing they sent was acknowledged).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mtasts.net.tls import server_context
from mtasts.runtime import stop_event
from mtasts.tlsrpt.receive.decide import Channel
from mtasts.tlsrpt.receive.gate import Gate, Ingests
from mtasts.tlsrpt.receive.http import HttpIntake
from mtasts.tlsrpt.receive.httpserve import HttpServer, bind
from mtasts.tlsrpt.receive.mail import MailIntake
from mtasts.tlsrpt.receive.metrics import IntakeMetrics
from mtasts.tlsrpt.receive.netconfig import NetConfig

log = logging.getLogger(__name__)


class ReceiveService:
    def __init__(
        self, receiver: Ingests, config: NetConfig, *, metrics: IntakeMetrics | None = None
    ) -> None:
        self.config = config
        self.gate = Gate(receiver, max_inflight=config.max_inflight, metrics=metrics)
        self.http: HttpServer | None = None
        self.metrics_server: HttpServer | None = None
        self.http_intake: HttpIntake | None = None
        self.mail: dict[str, tuple[MailIntake, asyncio.Server]] = {}

    @property
    def metrics(self) -> IntakeMetrics:
        return self.gate.metrics

    @property
    def http_port(self) -> int:
        assert self.http is not None
        return self.http.port

    @property
    def metrics_port(self) -> int:
        assert self.metrics_server is not None
        return self.metrics_server.port

    def port(self, channel: str) -> int:
        """The TCP port the ``smtp`` or ``lmtp`` listener is bound to."""
        server = self.mail[channel][1]
        sockets = server.sockets
        return int(sockets[0].getsockname()[1])

    async def start(self) -> None:
        config = self.config
        try:
            self.http_intake = HttpIntake(self.gate, config)
            if config.http is not None:
                self.http = HttpServer(self.http_intake.app, config, bind(config.http))
                await self.http.start()
            if config.metrics is not None:
                plain = replace(config, cert="", key="")
                app = self.http_intake.metrics_app
                self.metrics_server = HttpServer(app, plain, bind(config.metrics))
                await self.metrics_server.start()
            tls: ssl.SSLContext | None = None
            if config.cert and (config.smtp or config.lmtp):
                tls = server_context(config.cert, config.key)
            for channel, listen in ((Channel.SMTP, config.smtp), (Channel.LMTP, config.lmtp)):
                if listen is None:
                    continue
                intake = MailIntake(self.gate, config, channel, tls)
                self.mail[str(channel)] = (intake, await intake.listen(listen))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for intake, server in self.mail.values():
            server.close()
            intake.close_sessions()
        for _, server in self.mail.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
        self.mail.clear()
        for web in (self.http, self.metrics_server):
            if web is not None:
                await web.stop()
        self.http = self.metrics_server = None

    def describe(self) -> list[str]:
        """One line per listener, with the address it is bound to (port 0 resolved)."""
        lines = []
        if self.http is not None:
            scheme = "https" if self.config.cert else "http"
            host, port = self.http.sock.getsockname()[:2]
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            lines.append(f"{scheme} {where} POST {self.config.path}")
        if self.metrics_server is not None:
            host, port = self.metrics_server.sock.getsockname()[:2]
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            lines.append(f"metrics http {where} GET {self.config.metrics_path or '/metrics'}")
        for channel, (_, server) in self.mail.items():
            for sock in server.sockets:
                name = sock.getsockname()
                if isinstance(name, tuple):
                    host, port = name[:2]
                    name = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                else:
                    name = f"unix:{name}"
                lines.append(f"{channel} {name}")
        return lines


async def run_until_signalled(
    service: ReceiveService, *, ready: Callable[[ReceiveService], Any] | None = None
) -> None:
    """Starts ``service``, waits for SIGTERM or SIGINT, then stops it."""
    try:
        with stop_event() as stop:
            await service.start()
            if ready is not None:
                ready(service)
            await stop.wait()
    finally:
        await service.stop()
