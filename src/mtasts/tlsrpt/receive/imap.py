"""Import report mail from an IMAP folder (``imaps://user@host[:port]/FOLDER``), aioimaplib.

Each message not yet processed is fetched whole (``BODY.PEEK[]``: reading it does not
mark it seen) and handed to the Receiver's ``ingest_mail``, which verifies DKIM and
stores it once. Only after the Receiver answered is the message marked processed: with
the keyword ``$MtastsTlsrpt`` (and ``\\Seen``), or moved to ``done_folder``. A run that
stops half-way (store down, connection lost, killed) leaves the rest unmarked, and the
next run takes them; a message marked but not moved is never fetched twice, and one
fetched twice is a duplicate to the Receiver anyway. So runs are idempotent.

Bounded: a message larger than ``max_message`` (its ``RFC822.SIZE``) is never fetched;
it is marked and counted as too large. Every command has a timeout.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aioimaplib

from mtasts.errors import MtastsError
from mtasts.net.tls import client_context
from mtasts.tlsrpt.receive.decide import Channel
from mtasts.tlsrpt.receive.gate import Ingests
from mtasts.tlsrpt.receive.imapurl import ImapSource
from mtasts.tlsrpt.receive.intake import Arrival, IngestOutcome

log = logging.getLogger(__name__)

KEYWORD = "$MtastsTlsrpt"  # RFC 3501 §2.3.2 keyword: processed by mtasts tlsrpt import
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_UID = re.compile(rb"UID (\d+)")


class ImapImportError(MtastsError):
    """The IMAP server refused a step (login, select, fetch) or could not be reached."""

    default_code = "import.imap"


@dataclass(slots=True)
class ImapStats:
    """What one run did, by disposition (``stored``, ``duplicate``, ...)."""

    counts: dict[str, int] = field(default_factory=dict)
    too_large: int = 0

    def add(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    @property
    def processed(self) -> int:
        return sum(self.counts.values()) + self.too_large


def _mailbox(name: str) -> str:
    """A mailbox name as an IMAP astring (RFC 3501 §9): quoted when it needs to be."""
    if name and all(c.isalnum() or c in "._-/" for c in name):
        return name
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _check(response: aioimaplib.Response, what: str) -> aioimaplib.Response:
    if response.result != "OK":
        text = b" ".join(
            line if isinstance(line, bytes) else bytes(line) for line in response.lines[-1:]
        )
        raise ImapImportError(
            f"{what}: the server answered {response.result} {text.decode(errors='replace')}"
        )
    return response


def _literal(response: aioimaplib.Response) -> bytes | None:
    """The message bytes of a ``FETCH (BODY[] {n}``...``)`` answer (aioimaplib gives the
    literal as its own bytearray line)."""
    for line in response.lines:
        if isinstance(line, bytearray):
            return bytes(line)
    return None


class ImapImporter:
    """One connection to one folder; :meth:`run` imports what is new there."""

    def __init__(
        self,
        source: ImapSource,
        receiver: Ingests,
        *,
        password: str,
        done_folder: str = "",
        ca_file: str | None = None,
        max_message: int = 10 * 2**20,
        timeout: float = 60.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.source = source
        self.receiver = receiver
        self.password = password
        self.done_folder = done_folder
        self.ca_file = ca_file
        self.max_message = max_message
        self.timeout = timeout
        self.clock = clock

    async def run(
        self, on_outcome: Callable[[str, IngestOutcome], None] | None = None
    ) -> ImapStats:
        s = self.source
        client = aioimaplib.IMAP4_SSL(
            s.host, s.port, ssl_context=client_context(self.ca_file), timeout=self.timeout
        )
        try:
            await client.wait_hello_from_server()
        except (OSError, TimeoutError) as exc:
            raise ImapImportError(f"cannot reach {s.host}:{s.port}: {exc}") from exc
        try:
            _check(await client.login(s.user, self.password), f"login as {s.user}")
            _check(await client.select(_mailbox(s.folder)), f"select {s.folder}")
            if self.done_folder:
                await client.create(_mailbox(self.done_folder))  # NO when it exists: fine
            found = _check(await client.uid_search("UNKEYWORD", KEYWORD, charset=None), "search")
            uids = [int(u) for u in b" ".join(found.lines[:-1]).split() if u.isdigit()]
            stats = ImapStats()
            for uid in uids:
                await self._one(client, uid, stats, on_outcome)
            return stats
        finally:
            with contextlib.suppress(
                aioimaplib.Abort, aioimaplib.CommandTimeout, OSError, TimeoutError
            ):
                await client.logout()

    async def _one(
        self,
        client: aioimaplib.IMAP4_SSL,
        uid: int,
        stats: ImapStats,
        on_outcome: Callable[[str, IngestOutcome], None] | None,
    ) -> None:
        where = f"{self.source};UID={uid}"
        head = _check(await client.uid("fetch", str(uid), "(RFC822.SIZE)"), f"fetch {where}")
        size = _SIZE.search(b" ".join(bytes(line) for line in head.lines))
        if size is None:
            return  # gone since the search (another client moved it)
        if int(size.group(1)) > self.max_message:
            log.warning(
                "%s: %s bytes, above %s: not imported", where, size.group(1), self.max_message
            )
            stats.too_large += 1
            await self._done(client, uid)
            return
        body = _check(await client.uid("fetch", str(uid), "(BODY.PEEK[])"), f"fetch {where}")
        raw = _literal(body)
        if raw is None:
            return
        arrival = Arrival(channel=Channel.IMAP, source=where, received_at=self.clock())
        # A StoreUnavailable propagates: this message stays unmarked for the next run.
        outcome = await self.receiver.ingest_mail(raw, arrival)
        stats.add(outcome.disposition.value)
        if on_outcome is not None:
            on_outcome(where, outcome)
        await self._done(client, uid)

    async def _done(self, client: aioimaplib.IMAP4_SSL, uid: int) -> None:
        _check(
            await client.uid("store", str(uid), "+FLAGS", f"(\\Seen {KEYWORD})"),
            f"mark UID {uid}",
        )
        if self.done_folder:
            if client.has_capability("MOVE"):
                _check(await client.uid("move", str(uid), _mailbox(self.done_folder)), "move")
            else:  # RFC 3501 without MOVE: a copy there, the original flagged (kept marked)
                _check(await client.uid("copy", str(uid), _mailbox(self.done_folder)), "copy")
