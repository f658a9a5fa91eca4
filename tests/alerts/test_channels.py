"""The channels against real servers on loopback: an aiosmtpd relay with STARTTLS and a
lab-CA certificate, a scripted HTTP server for webhooks (failing, slow, recovering),
and Apprise's json:// to the same server. Every failure is a ChannelError in bounded
time, never a crash."""

from __future__ import annotations

import asyncio
import email
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mtasts import alerts
from mtasts.alerts.channels import (
    APPRISE_HINT,
    AppriseNotifier,
    ChannelError,
    EmailNotifier,
    WebhookNotifier,
    notifiers,
)
from mtasts.alerts.message import Message
from mtasts.alerts.model import Condition, Severity
from mtasts.alerts.settings import AlertSettings, alert_settings
from mtasts.errors import ConfigError
from mtasts.lab.certs import LabPki
from mtasts.lab.smtp_host import MxHost

from .conftest import Hook, StoreAt

T0 = 1_800_000_000
COND = Condition(
    "failure-rate",
    "a.example",
    severity=Severity.CRITICAL,
    summary="12% of 400 sessions failed on 2027-01-14",
    details={"day": "2027-01-14", "failed": 48},
)
MESSAGE = Message.raised(COND, source="rules", now=T0, pk=1)


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[tuple[MxHost, int, str]]:
    """An SMTP relay on 127.0.0.1 offering STARTTLS with a certificate for 127.0.0.1
    from a CA of its own: (server, port, CA file)."""
    pki = LabPki(tmp_path)
    mx = MxHost("relay.test", pki.server_context("127.0.0.1", "valid"))
    server = await mx.listen("127.0.0.1", 0)
    try:
        yield mx, server.sockets[0].getsockname()[1], str(pki.ca_file)
    finally:
        server.close()
        mx.close_sessions()


def _email(port: int, **kw: object) -> EmailNotifier:
    table = {
        "relay": f"127.0.0.1:{port}",
        "sender": "mtasts@a.example",
        "to": ["admin@a.example", "noc@a.example"],
        "timeout": 3,
        **kw,
    }
    settings = alert_settings({"email": table})
    return EmailNotifier(settings.email)


async def test_email_goes_through_the_relay_over_verified_starttls(relay) -> None:
    mx, port, ca = relay
    notifier = notifiers(
        alert_settings(
            {
                "email": {
                    "relay": f"127.0.0.1:{port}",
                    "sender": "mtasts@a.example",
                    "to": ["admin@a.example", "noc@a.example"],
                }
            }
        ),
        ca_file=ca,
    )["email"]
    await notifier.send(MESSAGE)
    (got,) = mx.received
    assert got.tls  # STARTTLS, verified against the relay's CA
    assert got.mail_from == "mtasts@a.example"
    assert got.rcpt_tos == ("admin@a.example", "noc@a.example")
    mail = email.message_from_bytes(got.data)
    assert mail["Subject"] == "[mtasts] CRITICAL a.example: " + COND.summary
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["X-Mtasts-Alert"] == "raised failure-rate:a.example"
    assert "Details:" in mail.get_payload()


async def test_email_refuses_a_relay_certificate_it_cannot_verify(relay) -> None:
    mx, port, _ = relay
    notifier = _email(port)  # the system trust store does not know the relay's CA
    with pytest.raises(ChannelError, match=r"mail relay 127\.0\.0\.1:\d+: .*(?i:certificate)"):
        await notifier.send(MESSAGE)
    assert mx.received == []


async def test_email_relay_down_or_silent_fails_in_bounded_time() -> None:
    held: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda r, w: held.append(w), "127.0.0.1", 0)
    silent_port = silent.sockets[0].getsockname()[1]
    closed = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    closed_port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    try:
        for port in (closed_port, silent_port):
            start = time.monotonic()
            with pytest.raises(ChannelError, match=f"mail relay 127.0.0.1:{port}"):
                await _email(port, timeout=1, security="none").send(MESSAGE)
            assert time.monotonic() - start < 3
    finally:
        silent.close()
        for w in held:
            w.close()


def _hook(hook: Hook, **kw: object) -> WebhookNotifier:
    settings = alert_settings({"webhook": {"url": hook.url, **kw}})
    return WebhookNotifier(settings.webhook, backoff=0.01)


async def test_webhook_posts_the_json_message(hook: Hook) -> None:
    notifier = _hook(hook, headers={"Authorization": "Bearer t0ken"})
    try:
        await notifier.send(MESSAGE)
    finally:
        await notifier.aclose()
    (body,) = hook.bodies
    assert body["schema"] == "mtasts.alert/1"
    assert body["event"] == "raised"
    assert body["key"] == "failure-rate:a.example"
    assert body["details"] == {"day": "2027-01-14", "failed": 48}
    assert hook.headers[0]["authorization"] == "Bearer t0ken"
    assert hook.headers[0]["content-type"] == "application/json"


async def test_webhook_retries_5xx_with_back_off_until_it_recovers(hook: Hook) -> None:
    hook.script = [(500, 0), (503, 0), (200, 0)]
    notifier = _hook(hook, retries=3)
    try:
        await notifier.send(MESSAGE)
    finally:
        await notifier.aclose()
    assert hook.requests == 3
    assert len(hook.bodies) == 1


@pytest.mark.parametrize(
    ("script", "requests", "why"),
    [
        ([(500, 0)], 3, "HTTP 500 after 3 attempt"),
        ([(404, 0)], 1, "HTTP 404 after 1 attempt"),  # a client error is not retried
        ([(429, 0)], 3, "HTTP 429 after 3 attempt"),
        ([(200, 5)], 3, "ReadTimeout|Timeout"),  # slower than the timeout
    ],
)
async def test_webhook_failures_are_channel_errors_in_bounded_time(
    hook: Hook, script: list[tuple[int, float]], requests: int, why: str
) -> None:
    hook.script = script
    notifier = _hook(hook, retries=3, timeout=0.3)
    start = time.monotonic()
    try:
        with pytest.raises(ChannelError, match=why) as info:
            await notifier.send(MESSAGE)
    finally:
        await notifier.aclose()
    assert time.monotonic() - start < 3
    assert hook.requests == requests
    assert "secret-path" not in str(info.value)  # the URL's path may be a secret


async def test_a_failing_then_recovering_webhook_gets_every_transition(
    hook: Hook, at: StoreAt
) -> None:
    """End to end through alerts.sync: the webhook answers 500 while a condition is
    raised and resolved; once it recovers, both notifications arrive, in order."""
    settings = alert_settings({"webhook": {"url": hook.url, "retries": 1, "timeout": 2}})
    hook.script = [(500, 0)]
    r = await alerts.sync(at.store, "rules", [COND], settings=settings, now=T0)
    assert r.delivered is not None
    assert r.delivered.failed == 1
    r = await alerts.sync(at.store, "rules", [], settings=settings, now=T0 + 30)
    assert r.resolved == (COND.key,)
    assert hook.bodies == []
    hook.script = [(200, 0)]
    hook.requests = 0
    # the resolve was due at once but the channel was down: both wait for the back-off
    r = await alerts.sync(at.store, "rules", [], settings=settings, now=T0 + 200)
    assert r.delivered is not None
    assert r.delivered.sent == 2
    assert [b["event"] for b in hook.bodies] == ["raised", "resolved"]
    assert await at.store.outbox_counts() == {"sent": 2}


async def test_apprise_notifies_its_urls(hook: Hook) -> None:
    url = hook.url.replace("http://", "json://")
    notifier = AppriseNotifier(alert_settings({"apprise": {"urls": [url]}}).apprise)
    try:
        await notifier.send(MESSAGE)
        (body,) = hook.bodies
        assert body["title"] == MESSAGE.subject()
        assert COND.summary in str(body["message"])
        hook.script = [(500, 0)]
        with pytest.raises(ChannelError, match="apprise"):
            await notifier.send(MESSAGE)
    finally:
        await notifier.aclose()


def test_apprise_missing_is_a_clear_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # as if not installed
    settings = alert_settings({"apprise": {"urls": ["json://127.0.0.1:9/x"]}})
    with pytest.raises(ConfigError, match=r"pip install 'mtasts\[apprise\]'"):
        notifiers(settings)
    assert "apprise" in APPRISE_HINT


def test_apprise_refuses_an_url_it_does_not_know() -> None:
    with pytest.raises(ConfigError, match=r"Apprise does not accept 'nosuchscheme://h/\.\.\.'"):
        notifiers(alert_settings({"apprise": {"urls": ["nosuchscheme://h/secret"]}}))


def test_no_channel_configured_builds_none() -> None:
    assert notifiers(AlertSettings()) == {}
