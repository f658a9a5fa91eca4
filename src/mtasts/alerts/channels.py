"""Where notifications go: e-mail through a relay, a webhook, Apprise URLs.

I/O. Each channel's ``send`` either delivers one :class:`~mtasts.alerts.message.Message`
or raises :class:`ChannelError` saying why (the outbox then retries later). Every send
is bounded by the channel's timeout; nothing here retries for longer than that.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import logging
import random
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import orjson

from mtasts import __version__
from mtasts.alerts.message import Message
from mtasts.alerts.settings import AlertSettings, AppriseSettings, EmailSettings, WebhookSettings
from mtasts.errors import ConfigError, MtastsError

log = logging.getLogger(__name__)
USER_AGENT = f"mtasts/{__version__} (alerts)"
APPRISE_HINT = "Apprise URLs need the apprise extra: pip install 'mtasts[apprise]'"


class ChannelError(MtastsError):
    """One notification could not be delivered now (retried later)."""

    default_code = "alerts.channel-failed"


class Notifier(Protocol):
    name: str

    async def send(self, message: Message) -> None: ...

    async def aclose(self) -> None: ...


class EmailNotifier:
    """A plain-text mail through the configured relay (aiosmtplib)."""

    name = "email"

    def __init__(self, config: EmailSettings, *, ca_file: str | None = None) -> None:
        self.config = config
        self.ca_file = ca_file

    async def aclose(self) -> None:
        return None

    def build(self, message: Message) -> EmailMessage:
        c = self.config
        mail = EmailMessage()
        mail["From"] = c.sender
        mail["To"] = ", ".join(c.to)
        mail["Subject"] = message.subject()
        mail["Date"] = email.utils.formatdate(usegmt=True)
        mail["Message-ID"] = email.utils.make_msgid(domain=c.sender.rpartition("@")[2])
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to it
        mail["X-Mtasts-Alert"] = f"{message.event} {message.key}"
        mail.set_content(message.text())
        return mail

    def _password(self) -> str | None:
        c = self.config
        if c.password_file is None:
            return c.password or None
        try:
            return Path(c.password_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ChannelError(f"cannot read [alerts.email] password_file: {exc}") from None

    async def send(self, message: Message) -> None:
        import aiosmtplib

        from mtasts.net.tls import client_context

        c = self.config
        host, port = c.relay
        try:
            await asyncio.wait_for(
                aiosmtplib.send(
                    self.build(message),
                    hostname=host,
                    port=port,
                    username=c.username or None,
                    password=self._password(),
                    use_tls=c.security == "tls",
                    start_tls=c.security == "starttls",
                    tls_context=client_context(self.ca_file) if c.security != "none" else None,
                    timeout=c.timeout,
                ),
                c.timeout + 1,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise ChannelError(
                f"mail relay {host}:{port}: {type(exc).__name__}: {exc}".strip()
            ) from None


class WebhookNotifier:
    """A JSON POST of the message; 2xx is delivered. Retries within one send (back-off
    0.5 s, 1 s, ... with jitter) on connection errors, timeouts, 429 and 5xx."""

    name = "webhook"

    def __init__(
        self, config: WebhookSettings, *, ca_file: str | None = None, backoff: float = 0.5
    ) -> None:
        import httpx

        from mtasts.net.tls import client_context

        self.config = config
        self.backoff = backoff
        self.client = httpx.AsyncClient(
            verify=client_context(ca_file),
            timeout=httpx.Timeout(config.timeout),
            follow_redirects=False,
            trust_env=False,  # no proxy from the environment (nor .netrc credentials)
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(self, message: Message) -> None:
        import httpx

        c = self.config
        body = orjson.dumps(message.to_json(), option=orjson.OPT_NON_STR_KEYS)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        headers.update(c.headers)
        why = ""
        for attempt in range(c.retries):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 4))
            try:
                response = await asyncio.wait_for(
                    self.client.post(c.url, content=body, headers=headers), c.timeout + 1
                )
            except (httpx.HTTPError, TimeoutError) as exc:
                why = f"{type(exc).__name__}: {exc}".rstrip(": ")
                continue
            if 200 <= response.status_code < 300:
                return
            why = f"HTTP {response.status_code}"
            if response.status_code != 429 and response.status_code < 500:
                break  # 4xx: the request is wrong; retrying it now will not help
        raise ChannelError(f"webhook {_redact(c.url)}: {why} after {attempt + 1} attempt(s)")


class AppriseNotifier:
    """Every configured Apprise URL (Slack, Matrix, Telegram, mailto, ...)."""

    name = "apprise"

    def __init__(self, config: AppriseSettings) -> None:
        with warnings.catch_warnings():
            # apprise imports the stdlib's deprecated imghdr (Python 3.11-3.12) when it
            # loads its plugins, which adding the first URL does
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                import apprise
            except ImportError:
                raise ConfigError(APPRISE_HINT, code="alerts.apprise-missing") from None
            self.config = config
            self.apprise: Any = apprise.Apprise()
            for url in config.urls:
                if not self.apprise.add(url):
                    raise ConfigError(
                        f"[alerts.apprise] urls: Apprise does not accept {_redact(url)!r}",
                        code="config.invalid",
                    )

        # Apprise sends synchronously (requests): in a thread of its own, bounded
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="mtasts-apprise")

    async def aclose(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def send(self, message: Message) -> None:
        loop = asyncio.get_running_loop()
        call = functools.partial(self.apprise.notify, body=message.text(), title=message.subject())
        try:
            ok = await asyncio.wait_for(loop.run_in_executor(self.pool, call), self.config.timeout)
        except TimeoutError:
            raise ChannelError(f"apprise: no answer within {self.config.timeout:g} s") from None
        if not ok:
            raise ChannelError("apprise: at least one URL failed (see the log)")


def _redact(url: str) -> str:
    """A URL for a log line: no credentials, no path (webhook paths are often secrets)."""
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0].rpartition("@")[2]
    return f"{scheme}{sep}{host}/..." if sep else "(url)"


def notifiers(settings: AlertSettings, *, ca_file: str | None = None) -> dict[str, Notifier]:
    """One notifier per configured channel, by name. An Apprise channel without the
    package is a ConfigError with the install hint."""
    out: dict[str, Notifier] = {}
    if settings.email.enabled:
        out["email"] = EmailNotifier(settings.email, ca_file=ca_file)
    if settings.webhook.enabled:
        out["webhook"] = WebhookNotifier(settings.webhook, ca_file=ca_file)
    if settings.apprise.enabled:
        out["apprise"] = AppriseNotifier(settings.apprise)
    return out


async def close_all(channels: Mapping[str, Notifier]) -> None:
    for channel in channels.values():
        try:
            await channel.aclose()
        except Exception as exc:  # closing must not hide the result of the sends
            log.debug("closing channel %s: %s", channel.name, exc)
