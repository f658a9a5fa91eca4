"""IMAP import against a real dovecot (Debian dovecot-imapd) started by the test."""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from dovecot_peer import PASSWORD, USER, Dovecot, start_dovecot
from receive_net_support import failing_receiver, open_receiver, report_mail

from mtasts.errors import ConfigError
from mtasts.tlsrpt.receive.imap import KEYWORD, ImapFolder, ImapImportError, ImapStats
from mtasts.tlsrpt.receive.imapurl import ImapSource, format_imap_url, parse_imap_url
from mtasts.tlsrpt.receive.intake import StoreUnavailable

pytestmark = pytest.mark.peer

NOT_A_REPORT = b"From: a@b.test\r\nTo: reports@example.test\r\nSubject: hi\r\n\r\nhello\r\n"


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[Dovecot]:
    peer = start_dovecot(tmp_path / "dovecot")
    try:
        yield peer
    finally:
        print(peer.log()[-8000:])  # shown by pytest when the test failed
        peer.stop()


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[Any]:
    r = await open_receiver(tmp_path)
    try:
        yield r
    finally:
        await r.close()


def _imap(peer: Dovecot) -> imaplib.IMAP4_SSL:
    ctx = ssl.create_default_context(cafile=str(peer.ca_file))
    client = imaplib.IMAP4_SSL("127.0.0.1", peer.port, ssl_context=ctx, timeout=30)
    client.login(USER, PASSWORD)
    return client


def _append(peer: Dovecot, *messages: bytes) -> None:
    with _imap(peer) as client:
        for m in messages:
            typ, data = client.append("INBOX", None, None, m)
            assert typ == "OK", data


def _folder(peer: Dovecot, folder: str) -> list[tuple[int, bytes]]:
    """(uid, flags) of every message in ``folder``."""
    with _imap(peer) as client:
        assert client.select(folder)[0] == "OK"
        _, data = client.uid("search", None, "ALL")
        out = []
        for uid in data[0].split():
            _, flags = client.uid("fetch", uid, "(FLAGS)")
            out.append((int(uid), flags[0]))
        return out


class _Run:
    def __init__(self, peer: Dovecot, receiver: Any, max_bytes: int = 10 * 2**20, **kw: Any):
        self.folder = ImapFolder(
            parse_imap_url(peer.url), password=PASSWORD, ca_file=str(peer.ca_file), **kw
        )
        self.receiver = receiver
        self.max_bytes = max_bytes

    async def run(self) -> ImapStats:
        return await self.folder.run(self.receiver, max_bytes=self.max_bytes)


def _importer(peer: Dovecot, receiver: Any, **kw: Any) -> _Run:
    return _Run(peer, receiver, **kw)


async def test_import_flags_what_it_took_and_a_rerun_takes_nothing(
    dovecot: Dovecot, receiver: Any
) -> None:
    _append(dovecot, report_mail("imap-1"), report_mail("imap-2"), NOT_A_REPORT)
    stats = await _importer(dovecot, receiver).run()
    assert stats.counts == {"stored": 2, "refused": 1}
    flags = _folder(dovecot, "INBOX")
    assert len(flags) == 3
    assert all(KEYWORD.encode() in f and b"\\Seen" in f for _, f in flags)
    again = await _importer(dovecot, receiver).run()
    assert again.processed == 0  # idempotent: nothing is fetched twice
    _append(dovecot, report_mail("imap-1"))  # the same report arriving again
    third = await _importer(dovecot, receiver).run()
    assert third.counts == {"duplicate": 1}


async def test_import_moves_processed_mail_to_the_done_folder(
    dovecot: Dovecot, receiver: Any
) -> None:
    _append(dovecot, report_mail("move-1"), report_mail("move-2"))
    stats = await _importer(dovecot, receiver, done_folder="Reports Done").run()
    assert stats.counts == {"stored": 2}
    assert _folder(dovecot, "INBOX") == []
    assert len(_folder(dovecot, '"Reports Done"')) == 2


async def test_a_store_that_is_down_leaves_the_message_for_the_next_run(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    _append(dovecot, report_mail("later-1"))
    async with failing_receiver() as down:
        with pytest.raises(StoreUnavailable):
            await _importer(dovecot, down).run()
    assert all(KEYWORD.encode() not in f for _, f in _folder(dovecot, "INBOX"))
    up = await open_receiver(tmp_path)
    try:
        assert (await _importer(dovecot, up).run()).counts == {"stored": 1}
    finally:
        await up.close()


async def test_a_message_past_the_size_bound_is_fetched_only_to_the_bound(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    receiver = await open_receiver(tmp_path, max_bytes=50_000)
    try:
        _append(dovecot, report_mail("huge") + (b"X" * 76 + b"\r\n") * 20_000)  # 1.5 MB
        seen: list[int] = []
        run = _importer(dovecot, receiver, max_bytes=50_000)
        async for item in run.folder.items(50_000):
            seen.append(len(item.raw))
            out = await receiver.ingest_mail(item.raw, item.arrival)
            assert (out.disposition.value, out.reason_code) == ("refused", "too-large")
            assert item.done is not None
            item.done(True)
        assert seen == [50_001]  # a partial fetch: never more than the bound + 1
        assert all(KEYWORD.encode() in f for _, f in _folder(dovecot, "INBOX"))
    finally:
        await receiver.close()


async def test_a_wrong_password_is_a_clear_error(dovecot: Dovecot, receiver: Any) -> None:
    folder = ImapFolder(parse_imap_url(dovecot.url), password="wrong", ca_file=str(dovecot.ca_file))
    with pytest.raises(ImapImportError, match=r"login as tlsrpt@example\.test"):
        await folder.run(receiver)


async def test_an_untrusted_server_certificate_is_refused(dovecot: Dovecot, receiver: Any) -> None:
    folder = ImapFolder(parse_imap_url(dovecot.url), password=PASSWORD)
    with pytest.raises((ImapImportError, ssl.SSLError)):
        await folder.run(receiver)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("imaps://u@h/", ImapSource("u", "h")),
        (
            "imaps://tls%40example.com@imap.example.com:1993/Reports%20TLS",
            ImapSource("tls@example.com", "imap.example.com", 1993, "Reports TLS"),
        ),
        ("IMAPS://u@H.example/INBOX/tls", ImapSource("u", "h.example", 993, "INBOX/tls")),
    ],
)
def test_parse_imap_url(url: str, expected: ImapSource) -> None:
    assert parse_imap_url(url) == expected
    assert parse_imap_url(format_imap_url(expected)) == expected


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("imap://u@h/INBOX", "no TLS: the password would cross in clear"),
        ("imaps://u:pw@h/INBOX", "a password in the URL (ps shows it)"),
        ("imaps://h/INBOX", "no user"),
        ("imaps://u@h:99999/", "a port out of range"),
        ("https://u@h/", "another scheme"),
        ("imaps://u@h/IN%0ABOX", "a line break in the folder"),
    ],
)
def test_parse_imap_url_refuses(url: str, why: str) -> None:
    with pytest.raises(ConfigError):
        parse_imap_url(url)


def test_the_import_command_reads_imaps_sources(dovecot: Dovecot, tmp_path: Path) -> None:
    """`mtasts tlsrpt import imaps://...`: the password from the environment, processed
    mail moved to [receive.imap] done_folder, a second run adds nothing."""
    from click.testing import CliRunner

    from mtasts.cli.main import cli

    _append(dovecot, report_mail("cli-1"), report_mail("cli-2"), NOT_A_REPORT)
    config = tmp_path / "mtasts.toml"
    config.write_text('[receive.imap]\ndone_folder = "Done"\n')
    env = {
        "MTASTS_CONFIG": str(config),
        "MTASTS_RECEIVE_IMAP_PASSWORD": PASSWORD,
        "MTASTS_CA_FILE": str(dovecot.ca_file),
    }
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    args = ["tlsrpt", "import", "--store", store, "--json", dovecot.url]
    first = CliRunner().invoke(cli, args, env=env)
    assert first.exit_code == 0, first.output
    assert '"stored": 2' in first.output
    assert '"refused": 1' in first.output
    assert _folder(dovecot, "INBOX") == []
    assert len(_folder(dovecot, "Done")) == 3
    again = CliRunner().invoke(cli, args, env=env)
    assert again.exit_code == 0, again.output
    assert '"counts": {}' in again.output
    no_password = CliRunner().invoke(cli, args, env={**env, "MTASTS_RECEIVE_IMAP_PASSWORD": ""})
    assert no_password.exit_code != 0
    assert "MTASTS_RECEIVE_IMAP_PASSWORD" in no_password.output
