"""Every real report sample (tests/data/tlsrpt-samples) arrives over the network: the
JSON and gzip files POSTed by https, the e-mails by LMTP, and each is taken (stored, or
a duplicate of another sample), none refused."""

from __future__ import annotations

import asyncio
import smtplib
from pathlib import Path

import pytest
from receive_net_support import GZIP, JSON, open_receiver, post, running_service

pytestmark = pytest.mark.lab


def _lmtp(port: int, raw: bytes) -> tuple[int, bytes]:
    with smtplib.LMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo_or_helo_if_needed()
        client.mail("reports@sender.example")
        client.rcpt("tls-reports@example.com")
        return client.data(raw)


def _samples(samples_dir: Path) -> list[tuple[Path, bytes]]:
    files = sorted(p for p in samples_dir.rglob("*") if p.is_file() and p.name != "SOURCES.md")
    return [(p, p.read_bytes()) for p in files]


async def test_every_real_sample_arrives_by_https_or_lmtp(
    samples_dir: Path, tmp_path: Path
) -> None:
    files = _samples(samples_dir)
    assert len(files) >= 20
    # DKIM off: the samples' signing keys are on the internet, which tests never reach.
    receiver = await open_receiver(tmp_path, verify_dkim=False)
    try:
        async with running_service(receiver, lmtp="127.0.0.1:0", max_body=10 * 2**20) as service:
            answers: dict[str, str] = {}
            for path, raw in files:
                if path.suffix == ".eml":
                    # as an MTA sends it: CRLF line ends (some samples were saved with LF)
                    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                    code, text = await asyncio.to_thread(_lmtp, service.port("lmtp"), raw)
                    assert code == 250, (path.name, text)
                    answers[path.name] = text.decode()
                else:
                    kind = GZIP if raw[:2] == b"\x1f\x8b" else JSON
                    answer = await post(service.http_port, raw, kind)
                    assert answer.status == 200, (path.name, answer.body)
                    answers[path.name] = answer.json["result"]
            assert all("stored" in a or "duplicate" in a for a in answers.values()), answers
            assert sum("stored" in a for a in answers.values()) >= len(files) // 2
    finally:
        await receiver.close()
