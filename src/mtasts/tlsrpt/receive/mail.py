"""The mail intake (RFC 8460 §5.3): SMTP and LMTP listeners (aiosmtpd) for the rua mailbox.

Put it behind the domain's MTA (Postfix ``transport_maps``: ``tls-reports@example.com
lmtp:unix:/run/mtasts/tlsrpt-lmtp.sock``) or let senders reach it directly by SMTP. Each
message is handed whole to the Receiver (which verifies DKIM and reads the report), and
the reply waits for the store:

- ``250`` only once the report is stored (or was already, or is kept in quarantine);
- ``451`` / ``452`` (transient: the MTA retries) when the store cannot answer or too many
  ingests are in progress;
- ``552`` / ``554`` (permanent: the MTA bounces) for what can never be a report;
- LMTP (RFC 2033 §4.2) answers once per accepted recipient, after the final dot.

Bounded: ``SIZE`` (RFC 1870) is advertised and enforced while reading (aiosmtpd stops
keeping data past it), the number of sessions is capped (``421`` past it), an idle
session is closed after ``body_timeout`` and any session after ``session_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP

from mtasts.clock import UtcClock, utc_now
from mtasts.errors import listen_failed
from mtasts.tlsrpt.receive.decide import Channel
from mtasts.tlsrpt.receive.gate import Gate, StoreFailed
from mtasts.tlsrpt.receive.intake import Arrival
from mtasts.tlsrpt.receive.limits import smtp_reply
from mtasts.tlsrpt.receive.netconfig import Listen, NetConfig

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 100


class MailIntake:
    """aiosmtpd handler and protocol factory for one listener (SMTP or LMTP)."""

    def __init__(
        self,
        gate: Gate,
        config: NetConfig,
        channel: Channel,
        tls_context: ssl.SSLContext | None = None,
        *,
        clock: UtcClock = utc_now,
    ) -> None:
        self.gate = gate
        self.clock = clock  # a report's arrival time
        self.config = config
        self.channel = channel
        self.tls_context = tls_context
        self.sessions: set[Any] = set()
        self.hostname = config.hostname or None

    # --- aiosmtpd hooks ------------------------------------------------------------

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or b""
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer or "")
        if not self.gate.enter():
            self.gate.metrics.refuse(str(self.channel), "busy")
            return self._per_recipient(envelope, "451 4.3.2 busy: try again later")
        try:
            arrival = Arrival(
                channel=self.channel, source=peer or "local", received_at=self.clock()
            )
            outcome = await self.gate.ingest("mail", bytes(raw), arrival)
        finally:
            self.gate.leave()
        if isinstance(outcome, StoreFailed):
            reply = "451 4.3.0 the report store is unavailable: try again later"
        else:
            reply = smtp_reply(outcome.disposition.name, outcome.reason_code, outcome.reason)
        return self._per_recipient(envelope, reply)

    def _per_recipient(self, envelope: Any, reply: str) -> str:
        # RFC 2033 §4.2: after DATA an LMTP server answers once per accepted recipient.
        # aiosmtpd sends the returned text followed by CRLF, so N lines are N replies.
        if self.channel is Channel.LMTP:
            return "\r\n".join([reply] * max(1, len(envelope.rcpt_tos)))
        return reply

    async def handle_exception(self, error: Exception) -> str:
        # A session that broke (TLS handshake refused, connection reset mid-command) is a
        # peer's problem, not ours: logged briefly, never a traceback in the service log.
        cause = error.__cause__ or error
        log.info("%s session ended: %s: %s", self.channel, type(cause).__name__, cause)
        return "421 4.3.0 session failed"

    # --- listening -----------------------------------------------------------------

    def protocol(self) -> SMTP:
        cls = _LmtpSession if self.channel is Channel.LMTP else _SmtpSession
        return cls(
            self,
            hostname=self.hostname,
            ident="mtasts TLS-RPT intake",
            tls_context=self.tls_context,
            require_starttls=False,
            data_size_limit=self.config.max_message,
            timeout=self.config.body_timeout,
            enable_SMTPUTF8=True,
            decode_data=False,
        )

    async def listen(self, listen: Listen) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        try:
            if listen.path:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(listen.path)  # a stale socket from an earlier run
                server = await loop.create_unix_server(self.protocol, listen.path)
                # The MTA's delivery agent (Postfix lmtp(8): user postfix) must connect.
                os.chmod(listen.path, 0o666)  # noqa: S103 (guard the directory instead)
                return server
            return await loop.create_server(self.protocol, listen.host, listen.port, backlog=256)
        except OSError as exc:
            raise listen_failed(str(listen), exc) from exc

    def close_sessions(self) -> None:
        for session in list(self.sessions):
            transport = getattr(session, "_original_transport", None) or session.transport
            if isinstance(transport, asyncio.Transport):
                transport.abort()


class _Bounded:
    """Session cap and whole-session deadline, mixed into aiosmtpd's protocols."""

    # RFC 5321 §4.5.3.1.6 caps a line at 1000 octets, and aiosmtpd answers a longer one
    # "500 Line too long", a permanent refusal of the whole report. Senders' report mail
    # is not always that careful, and the MTA in front passes it on: we take lines up to
    # 64 KiB (the message stays bounded by SIZE).
    line_length_limit = 65536
    _intake: MailIntake
    _refused = False
    _deadline: asyncio.TimerHandle | None = None

    def _admit(self, transport: asyncio.BaseTransport) -> bool:
        intake = self._intake
        if self in intake.sessions:  # STARTTLS: the same session on its TLS transport
            return True
        if len(intake.sessions) >= intake.config.max_connections:
            intake.gate.metrics.refuse(str(intake.channel), "too-many-sessions")
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(b"421 4.3.2 too many sessions: try again later\r\n")
            transport.close()
            self._refused = True
            return False
        intake.sessions.add(self)
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(intake.config.session_timeout, transport.close)
        return True

    def _forget(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._intake.sessions.discard(self)


class _SmtpSession(_Bounded, SMTP):
    def __init__(self, intake: MailIntake, **kwargs: Any) -> None:
        super().__init__(intake, **kwargs)
        self._intake = intake

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._admit(transport):
            super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        self._forget()
        super().connection_lost(error)


class _LmtpSession(_Bounded, LMTP):
    def __init__(self, intake: MailIntake, **kwargs: Any) -> None:
        super().__init__(intake, **kwargs)
        self._intake = intake

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._admit(transport):
            super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            return
        self._forget()
        super().connection_lost(error)
