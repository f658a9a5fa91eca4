"""Import report mail from an IMAP folder (``imaps://user@host[:port]/FOLDER``), aioimaplib.

``mtasts tlsrpt import imaps://user@host/FOLDER`` (registered here as the ``imaps``
scheme of :mod:`.sources`) or :meth:`ImapFolder.run`. Each message not yet processed is
fetched (``BODY.PEEK[]``: reading does not mark it seen) and handed to the Receiver as
mail (DKIM verified there), in batches. Only once the Receiver has answered for a batch
are its messages marked processed: the keyword ``$MtastsTlsrpt`` (and ``\\Seen``), or a
move to ``done_folder``. A run that stops half-way (store down, connection lost, killed)
leaves the rest unmarked and the next run takes them; the importer's (bytes, source)
check and the Receiver's dedup make a message taken twice count once. So runs are
idempotent.

Bounded: at most ``max_bytes + 1`` bytes of a message are fetched (a partial fetch); a
larger one is refused by the Receiver as ``too-large`` and marked. Every command has a
timeout. The password comes from ``MTASTS_RECEIVE_IMAP_PASSWORD`` or ``[receive.imap]
password``, never from the URL.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aioimaplib

from mtasts.clock import UtcClock, utc_now
from mtasts.errors import ConfigError, MtastsError
from mtasts.net.tls import client_context
from mtasts.tlsrpt.receive.decide import Channel
from mtasts.tlsrpt.receive.gate import Ingests
from mtasts.tlsrpt.receive.imapurl import ImapSource, parse_imap_url
from mtasts.tlsrpt.receive.intake import Arrival, IngestOutcome
from mtasts.tlsrpt.receive.sources import Item, register_scheme

log = logging.getLogger(__name__)

KEYWORD = "$MtastsTlsrpt"  # RFC 3501 §2.3.2 keyword: processed by mtasts tlsrpt import


class ImapImportError(MtastsError):
    """The IMAP server refused a step (login, select, fetch) or could not be reached."""

    default_code = "import.imap"


@dataclass(slots=True)
class ImapStats:
    """What one :meth:`ImapFolder.run` did, by disposition (``stored``, ...)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    @property
    def processed(self) -> int:
        return sum(self.counts.values())


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


BATCH = 64  # messages handed to the store, then marked, at a time
PASSWORD_ENV = "MTASTS_RECEIVE_IMAP_PASSWORD"  # noqa: S105 (the variable's name)
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")


class ImapFolder:
    """One connection to one folder; :meth:`items` yields what is new there."""

    def __init__(
        self,
        source: ImapSource,
        *,
        password: str,
        done_folder: str = "",
        ca_file: str | None = None,
        timeout: float = 60.0,
        batch: int = BATCH,
        clock: UtcClock = utc_now,
    ) -> None:
        self.source = source
        self.password = password
        self.done_folder = done_folder
        self.ca_file = ca_file
        self.timeout = timeout
        self.batch = batch
        self.clock = clock

    async def _connect(self) -> aioimaplib.IMAP4_SSL:
        s = self.source
        client = aioimaplib.IMAP4_SSL(
            s.host, s.port, ssl_context=client_context(self.ca_file), timeout=self.timeout
        )
        try:
            await client.wait_hello_from_server()
        except (OSError, TimeoutError) as exc:
            raise ImapImportError(f"cannot reach {s.host}:{s.port}: {exc}") from exc
        return client

    async def items(self, max_bytes: int) -> AsyncIterator[Item]:
        """Every unprocessed message as an import Item (``is_mail``); each batch is marked
        once the importer reports it stored (``Item.done``), before the next is fetched."""
        s = self.source
        client = await self._connect()
        try:
            _check(await client.login(s.user, self.password), f"login as {s.user}")
            selected = _check(await client.select(_mailbox(s.folder)), f"select {s.folder}")
            validity = _UIDVALIDITY.search(b" ".join(bytes(x) for x in selected.lines))
            epoch = validity.group(1).decode() if validity else "0"
            if self.done_folder:
                await client.create(_mailbox(self.done_folder))  # NO when it exists: fine
            found = _check(await client.uid_search("UNKEYWORD", KEYWORD, charset=None), "search")
            uids = [int(u) for u in b" ".join(found.lines[:-1]).split() if u.isdigit()]
            settled: list[int] = []
            for n, uid in enumerate(uids, 1):
                where = f"{s};UIDVALIDITY={epoch};UID={uid}"
                part = f"(BODY.PEEK[]<0.{max_bytes + 1}>)"
                raw = _literal(_check(await client.uid("fetch", str(uid), part), f"fetch {where}"))
                if raw is None:
                    continue  # expunged since the search (another client moved it)

                def stored(ok: bool, uid: int = uid) -> None:
                    if ok:
                        settled.append(uid)

                yield Item(
                    raw,
                    Arrival(channel=Channel.IMAP, source=where, received_at=self.clock()),
                    True,
                    done=stored,
                    flush=n % self.batch == 0 or n == len(uids),
                )
                for done in settled:
                    await self._mark(client, done)
                settled.clear()
        finally:
            with contextlib.suppress(
                aioimaplib.Abort, aioimaplib.CommandTimeout, OSError, TimeoutError
            ):
                await client.logout()

    async def run(
        self,
        receiver: Ingests,
        *,
        max_bytes: int = 10 * 2**20,
        on_outcome: Callable[[str, IngestOutcome], None] | None = None,
    ) -> ImapStats:
        """Imports with ``receiver`` directly (one message at a time)."""
        stats = ImapStats()
        async for item in self.items(max_bytes):
            outcome = await receiver.ingest_mail(item.raw, item.arrival)
            stats.add(outcome.disposition.value)
            if on_outcome is not None:
                on_outcome(item.arrival.source, outcome)
            if item.done is not None:
                item.done(True)
        return stats

    async def _mark(self, client: aioimaplib.IMAP4_SSL, uid: int) -> None:
        _check(
            await client.uid("store", str(uid), "+FLAGS", f"(\\Seen {KEYWORD})"),
            f"mark UID {uid}",
        )
        if self.done_folder:
            if client.has_capability("MOVE"):
                _check(await client.uid("move", str(uid), _mailbox(self.done_folder)), "move")
            else:  # RFC 3501 without MOVE: a copy there, the original kept (marked)
                _check(await client.uid("copy", str(uid), _mailbox(self.done_folder)), "copy")


async def open_imaps(url: str, max_bytes: int) -> AsyncIterator[Item]:
    """The ``imaps`` opener of ``tlsrpt import``: settings from ``[receive.imap]`` and
    the environment (password, done folder; the CA file of MTASTS_CA_FILE)."""
    from mtasts.config import Settings
    from mtasts.settings.tree import current
    from mtasts.tlsrpt.receive.settings import ReceiveSection

    source = parse_imap_url(url)
    tree = current()  # [receive.imap] password is also MTASTS_RECEIVE_IMAP_PASSWORD
    imap = tree.section(ReceiveSection).net.imap
    password = imap.password
    if not password:
        raise ConfigError(
            f"{url}: no IMAP password: set {PASSWORD_ENV} or [receive.imap] password",
            code="config.imap-password",
        )
    ca_file = tree.section(Settings).ca_file
    folder = ImapFolder(
        source,
        password=password,
        done_folder=imap.done_folder,
        ca_file=str(ca_file) if ca_file else None,
    )
    async for item in folder.items(max_bytes):
        yield item


register_scheme("imaps", open_imaps)
