"""The ingest API every intake uses (https, LMTP/SMTP, IMAP, files): bytes in, one
:class:`IngestOutcome` out, after the report is durably stored.

I/O: calls the pure reader and decisions, DKIM (:mod:`.dkimcheck`) and the store.

Usage::

    receiver = await Receiver.open("sqlite:///var/lib/mtasts/tlsrpt.db", ReceiveSettings())
    outcome = await receiver.ingest_mail(raw_message, Arrival(Channel.LMTP, "192.0.2.7", now))
    outcome = await receiver.ingest_report(body, Arrival(Channel.HTTPS, "192.0.2.9", now,
                                                         content_type="application/tlsrpt+gzip"))
    await receiver.close()

Contract:

- ``ingest_mail``: a whole RFC 5322 message (DKIM verified here), or any input a mail
  intake received; ``ingest_report``: an https body (JSON or gzip, RFC 8460 §5.4);
  ``ingest``: either, sniffed (files).
- The call returns only after the arrival (and the report, if new) is committed. Arrivals
  from concurrent callers are committed together, in batches of up to
  ``settings.batch_size`` per transaction.
- Bad input is never an exception: it is REFUSED with a stable ``reason_code``:
  ``too-large`` (HTTP 413), ``not-a-report``, ``not-our-domain``; quarantine codes are
  ``dkim-required``, ``not-our-domain`` (when configured so), ``https-secret-required``,
  ``secret-domain-mismatch``. The reader's repairs are in ``warnings``.
- A store that cannot be written raises :class:`StoreUnavailable` (HTTP 503, SMTP 451:
  the sender retries); nothing was stored for that call.
- ``queued``: arrivals waiting for the next commit (an intake's back-pressure bound);
  ``ingest_many``: an import's batch; ``prune(today)``: retention (``keep_days``), for a
  service to call daily; ``reprocess()``: re-read the archive (``tlsrpt reprocess``).
- Other import sources: :func:`mtasts.tlsrpt.receive.sources.register_scheme` (e.g.
  ``imaps``); ``import_sources(progress=...)`` is called per input after its commit,
  where an IMAP importer flags or moves the message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TypeVar

from mtasts.clock import Clock, wall
from mtasts.errors import Notice, ServiceUnavailable
from mtasts.net.dns import DnsClient
from mtasts.tlsrpt.receive.decide import (
    NO_DKIM,
    Channel,
    Disposition,
    DkimResult,
    DkimVerdict,
    ReceiveSettings,
    Verdict,
    archive_refused,
    content_hash,
    decide,
    dedup_key,
    policy_domains,
    raw_hash,
    reader_reason,
    retention_cutoff,
)
from mtasts.tlsrpt.receive.dkimcheck import DkimChecker
from mtasts.tlsrpt.receive.fastmail import read_any
from mtasts.tlsrpt.receive.received import Pending, ReceivedStore, Written
from mtasts.tlsrpt.unpack import GZIP_MAGIC, looks_like_mail

T = TypeVar("T")
_THREAD_PARSE = 256 * 1024  # inputs above this are parsed off the event loop


class StoreUnavailable(ServiceUnavailable):
    """The store could not be written; the arrival was not recorded (retry later)."""

    default_code = "receive.store-unavailable"


@dataclass(frozen=True, slots=True)
class Arrival:
    """How one copy arrived."""

    channel: Channel
    source: str  # client address, file path, "imaps://user@host/INBOX;UID=12" ...
    received_at: datetime  # UTC, from the caller's clock
    content_type: str | None = None
    secret_domain: str | None = None  # the domain whose secret https path was used


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    disposition: Disposition
    report_pk: int | None
    reason_code: str | None
    reason: str | None  # one line an administrator can act on
    warnings: tuple[Notice, ...] = ()
    dkim: DkimVerdict = NO_DKIM


class Receiver:
    """Takes reports in; one per process and store. See the module docstring."""

    def __init__(
        self,
        store: ReceivedStore,
        settings: ReceiveSettings,
        *,
        dkim: DkimChecker | None = None,
        clock: Clock = wall,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.dkim = dkim or DkimChecker(
            DnsClient(settings.nameserver, timeout=settings.dns_timeout)
        )
        self.lock = asyncio.Lock()  # one operation at a time on the store's connection
        self._queue: asyncio.Queue[tuple[Pending, asyncio.Future[Written]] | None] | None = None
        self._writer: asyncio.Task[None] | None = None
        # look-ups of already-seen bytes waiting for the next query (see _known)
        self._lookups: list[tuple[str, asyncio.Future[int | None]]] = []
        self._looker: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Arrivals read and waiting for the next commit (for back-pressure: an intake
        answers 503 / 451 above its own bound instead of queueing more)."""
        return self._queue.qsize() if self._queue is not None else 0

    @classmethod
    async def open(
        cls,
        store_url: str,
        settings: ReceiveSettings,
        *,
        resolver: DnsClient | None = None,
        clock: Clock = wall,
        schema: str | None = None,
        batch: bool = False,
    ) -> Receiver:
        """Open the store (upgrading its schema) and return a receiver on it. ``batch``:
        for a command that only works the store (``tlsrpt import``, ``reprocess``):
        SQLite runs on this thread, which is cheaper, and the event loop waits while it
        does (a service, which must keep answering, leaves it False)."""
        store = ReceivedStore.open(store_url, schema=schema, inline=batch)
        try:
            await store.upgrade()
        except Exception:
            await store.close()
            raise
        dkim = DkimChecker(resolver) if resolver is not None else None
        return cls(store, settings, dkim=dkim, clock=clock)

    async def close(self) -> None:
        """Answer the look-ups and write what is queued, then close the store."""
        if self._looker is not None:
            await self._looker
            self._looker = None
        if self._writer is not None and self._queue is not None:
            await self._queue.put(None)
            await self._writer
            self._writer = None
        await self.store.close()

    # --- the API -------------------------------------------------------------------------

    async def ingest_mail(self, raw: bytes, arrival: Arrival) -> IngestOutcome:
        return await self._ingest(raw, arrival, https=False)

    async def ingest_report(self, raw: bytes, arrival: Arrival) -> IngestOutcome:
        return await self._ingest(raw, arrival, https=True)

    async def ingest(self, raw: bytes, arrival: Arrival) -> IngestOutcome:
        """A file's content: a report e-mail, JSON or gzip, told apart by its bytes."""
        return await self._ingest(raw, arrival, https=False)

    async def ingest_many(
        self,
        inputs: Sequence[tuple[bytes, Arrival]],
        *,
        shas: Sequence[str] | None = None,
        known: Mapping[str, int] | None = None,
    ) -> list[IngestOutcome]:
        """:meth:`ingest` for many inputs (an import): one look-up of the bytes already
        seen, and the arrivals committed together. ``shas`` (each input's
        :func:`raw_hash`) and ``known`` (:meth:`ReceivedStore.known_raws` of them), when
        the caller has them already, save computing them again."""
        if shas is None:
            shas = [raw_hash(raw) for raw, _ in inputs]
        if known is None:
            async with self.lock:
                known = await self._read_store(self.store.known_raws(shas))
        prepared = [
            await self.prepare(
                raw, arrival, https=False, lookup=False, known_pk=known.get(sha), sha=sha
            )
            for (raw, arrival), sha in zip(inputs, shas, strict=True)
        ]
        out: list[IngestOutcome] = []
        size = self.settings.batch_size
        for i in range(0, len(prepared), size):
            batch = prepared[i : i + size]
            try:
                async with self.lock:
                    written = await self.store.write(batch, int(self.clock()))
            except Exception:
                # one bad item must not fail the others: the single-item path isolates it
                await self.store.db.reset()
                out += [await self._write(p) for p in batch]
                continue
            out += [_outcome(p, w) for p, w in zip(batch, written, strict=True)]
        return out

    # --- the steps -----------------------------------------------------------------------

    async def _ingest(self, raw: bytes, arrival: Arrival, *, https: bool) -> IngestOutcome:
        return await self._write(await self.prepare(raw, arrival, https=https))

    async def prepare(
        self,
        raw: bytes,
        arrival: Arrival,
        *,
        https: bool,
        dkim: DkimVerdict | None = None,
        replay: bool = False,
        lookup: bool = True,
        known_pk: int | None = None,
        sha: str | None = None,
    ) -> Pending:
        """Read and decide one input, without writing it. ``dkim``: a verdict recorded
        earlier (``tlsrpt reprocess`` never re-verifies: keys rotate, x= expires);
        ``replay``: the archive is being re-read, so identical bytes are read again;
        ``sha``: :func:`raw_hash` of ``raw`` if the caller has it."""
        s = self.settings
        if sha is None:
            sha = raw_hash(raw)
        keep = archive_refused(s, https=https, secret_domain=arrival.secret_domain)
        base = _base(arrival, raw, sha)
        if len(raw) > s.max_bytes:
            why = f"the input is {len(raw)} bytes, above this receiver's {s.max_bytes}-byte limit"
            return _pending(base, None, Verdict(Disposition.REFUSED, "too-large", why))
        if not replay:
            # the same bytes again (a re-run import, a resent mail): no need to read them
            known = known_pk
            if lookup:
                known = await self._known(sha)
            if known is not None:
                return _pending(base, raw, Verdict(Disposition.DUPLICATE), known_pk=known)
        head = raw.lstrip(b" \t\r\n")
        is_mail = not head.startswith(
            (GZIP_MAGIC, b"{", b"[", b"\xef\xbb\xbf")
        ) and looks_like_mail(raw)
        if https and is_mail:
            refused = Verdict(
                Disposition.REFUSED,
                "not-a-report",
                "the body is an e-mail message; RFC 8460 §5.4 posts the report itself "
                "(application/tlsrpt+gzip or application/tlsrpt+json)",
            )
            return _pending(base, raw if keep else None, refused)
        if len(raw) > _THREAD_PARSE:
            linted = await asyncio.to_thread(read_any, raw, max_bytes=s.max_bytes, is_mail=is_mail)
        else:
            linted = read_any(raw, max_bytes=s.max_bytes, is_mail=is_mail)
        warnings = linted.warnings + _content_type_warnings(arrival.content_type, head, https)
        if linted.value is None:
            error = linted.errors[0] if linted.errors else Notice("report.invalid", "unreadable")
            code = reader_reason(error.code)
            refused = Verdict(Disposition.REFUSED, code, f"{error.message} ({error.code})"[:500])
            return _pending(base, raw if keep else None, refused, warnings=warnings)
        report = linted.value
        if dkim is None:
            dkim = NO_DKIM
            if is_mail and s.verify_dkim:
                dkim = await self.dkim.verify(raw)
        domains = policy_domains(report)  # once: the verdict, the dedup key, the row
        verdict = decide(
            report,
            s,
            is_mail=is_mail,
            https=https,
            dkim=dkim,
            secret_domain=arrival.secret_domain,
            domains=domains,
        )
        if verdict.disposition is Disposition.REFUSED:
            return _pending(base, raw if keep else None, verdict, dkim=dkim, warnings=warnings)
        # built whole (dataclasses.replace() costs ~10 µs per report in an import)
        return Pending(
            *base,
            raw,
            report,
            verdict,
            dkim,
            warnings,
            dedup_key(report, domains),
            content_hash(report),
            None,
            domains,
        )

    async def _known(self, sha: str) -> int | None:
        """:meth:`ReceivedStore.known_raw`, with concurrent callers answered together: the
        shas queued while one query runs are asked in the next one (one query for a burst
        of POSTs instead of one each, every one waiting its turn on the lock)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int | None] = loop.create_future()
        self._lookups.append((sha, future))
        if self._looker is None or self._looker.done():
            self._looker = loop.create_task(self._lookup_loop())
        return await future

    async def _lookup_loop(self) -> None:
        while self._lookups:
            batch, self._lookups = self._lookups, []
            try:
                async with self.lock:
                    known = await self._read_store(self.store.known_raws([sha for sha, _ in batch]))
            except StoreUnavailable as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(StoreUnavailable(str(exc)))
                continue
            for sha, future in batch:
                if not future.done():  # a caller that went away was cancelled
                    future.set_result(known.get(sha))

    async def _read_store(self, call: Awaitable[T]) -> T:
        """A read the intake needs; a store that fails is StoreUnavailable (retry)."""
        try:
            return await call
        except Exception as exc:
            await self.store.db.reset()
            why = (
                str(exc) if isinstance(exc, ServiceUnavailable) else f"{type(exc).__name__}: {exc}"
            )
            raise StoreUnavailable(f"the store could not be read: {why}") from exc

    # --- maintenance ---------------------------------------------------------------------

    async def reprocess(self) -> dict[str, int]:
        """Read every archived input again (after a reader fix) and rebuild the reports
        from them, in one transaction: arrivals keep their time, channel, source and
        recorded DKIM verdict. Returns the new dispositions counted."""
        counts: dict[str, int] = {}
        async with self.lock, self.store.transaction():
            log = await self.store.replay_log()
            await self.store.clear_reports()
            batch: list[Pending] = []
            for row in log:
                raw = await self.store.raw(row["raw_sha256"])
                if raw is None:
                    continue
                arrival = Arrival(
                    Channel(row["channel"]),
                    row["source"],
                    datetime.fromtimestamp(row["received_at"], UTC),
                    row["content_type"],
                    row["secret_domain"],
                )
                verdict = DkimVerdict(
                    DkimResult(row["dkim_result"]),
                    row["dkim_domain"],
                    row["dkim_selector"],
                    row["dkim_reason"],
                    bool(row["dkim_aligned"]),
                )
                https = arrival.channel is Channel.HTTPS
                batch.append(
                    await self.prepare(raw, arrival, https=https, dkim=verdict, replay=True)
                )
                if len(batch) >= self.settings.batch_size:
                    for w in await self.store.write_in_transaction(batch, int(self.clock())):
                        counts[w.disposition.value] = counts.get(w.disposition.value, 0) + 1
                    batch = []
            for w in await self.store.write_in_transaction(batch, int(self.clock())):
                counts[w.disposition.value] = counts.get(w.disposition.value, 0) + 1
            released = await self.store.finish_replay()
        if released:
            counts["released"] = released
        return counts

    async def release(self, pks: Sequence[int], note: str | None = None) -> dict[int, str]:
        """Store quarantined reports by hand (``tlsrpt release``): pk -> ``released``,
        ``not-quarantined`` or ``no-such-report``. A later reprocess keeps the release."""
        async with self.lock:
            return await self.store.release(pks, int(self.clock()), note)

    async def prune(self, today: date) -> dict[str, int]:
        """Retention (``keep_days``): delete reports of older days, older arrivals and the
        raw bytes nothing refers to any more. Nothing is deleted without keep_days."""
        cutoff = retention_cutoff(today, self.settings.keep_days)
        if cutoff is None:
            return {}
        ts = int(datetime.combine(cutoff, datetime.min.time(), UTC).timestamp())
        async with self.lock:
            return await self.store.prune(cutoff.isoformat(), ts)

    async def _write(self, pending: Pending) -> IngestOutcome:
        loop = asyncio.get_running_loop()
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._writer is None:
            self._writer = loop.create_task(self._writer_loop(self._queue))
        future: asyncio.Future[Written] = loop.create_future()
        await self._queue.put((pending, future))
        return _outcome(pending, await future)

    async def _writer_loop(
        self, queue: asyncio.Queue[tuple[Pending, asyncio.Future[Written]] | None]
    ) -> None:
        """Group commit: take what is queued (up to batch_size), write it in one
        transaction, answer every caller after the COMMIT."""
        stop = False
        while not stop:
            first = await queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < self.settings.batch_size and not queue.empty():
                item = queue.get_nowait()
                if item is None:
                    stop = True
                    break
                batch.append(item)
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[Pending, asyncio.Future[Written]]]) -> None:
        now = int(self.clock())
        try:
            async with self.lock:
                results = await self.store.write([p for p, _ in batch], now)
        except Exception as exc:
            # the connection may be broken (a PostgreSQL restart): the next use reconnects
            await self.store.db.reset()
            if len(batch) > 1:
                # one bad item must not fail the others: write them one by one
                for item in batch:
                    await self._commit([item])
                return
            _, future = batch[0]
            if not future.done():
                future.set_exception(
                    StoreUnavailable(f"the store could not be written: {type(exc).__name__}: {exc}")
                )
            return
        for (_, future), written in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(written)


_Base = tuple[int, str, str, str | None, str | None, int, str]


def _base(arrival: Arrival, raw: bytes, sha: str) -> _Base:
    """The first fields of every :class:`Pending` of this input (up to its sha256), in
    their order."""
    return (
        int(arrival.received_at.timestamp()),
        arrival.channel._value_,
        arrival.source[:2000],
        arrival.content_type[:200] if arrival.content_type else None,
        arrival.secret_domain[:253] if arrival.secret_domain else None,
        len(raw),
        sha,
    )


def _pending(
    base: _Base,
    raw: bytes | None,
    verdict: Verdict,
    *,
    dkim: DkimVerdict = NO_DKIM,
    warnings: tuple[Notice, ...] = (),
    known_pk: int | None = None,
) -> Pending:
    """A :class:`Pending` without a report (refused, or bytes already known)."""
    return Pending(*base, raw, None, verdict, dkim, warnings, known_report_pk=known_pk)


def _outcome(pending: Pending, written: Written) -> IngestOutcome:
    return IngestOutcome(
        written.disposition,
        written.report_pk,
        written.reason_code,
        written.reason,
        pending.warnings,
        pending.dkim,
    )


def _content_type_warnings(
    content_type: str | None, head: bytes, https: bool
) -> tuple[Notice, ...]:
    """RFC 8460 §5.4: application/tlsrpt+gzip or +json; the bytes decide (sniffed)."""
    if not https or content_type is None:
        return ()
    kind = content_type.split(";", 1)[0].strip().lower()
    is_gzip = head.startswith(GZIP_MAGIC)
    expected = "application/tlsrpt+gzip" if is_gzip else "application/tlsrpt+json"
    if kind == expected:
        return ()
    return (
        Notice(
            "receive.content-type",
            f"posted as {kind or '(none)'} but the body is {'gzip' if is_gzip else 'JSON'}; "
            "read by its content",
            "RFC 8460 §5.4",
        ),
    )
