"""Where ``mtasts tlsrpt import`` finds reports: files (.json, .json.gz, .eml, anything a
report can be), directories (recursively), Maildir folders and mbox files; other sources
by URL scheme through :func:`register_scheme` (``imaps://`` is registered by the IMAP
importer).

I/O: reads files, each bounded to ``max_bytes + 1`` (a larger file is refused as
``too-large`` by the receiver without being read whole).
"""

from __future__ import annotations

import mailbox
import os
import stat
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mtasts.clock import UtcClock, utc_now
from mtasts.errors import ConfigError
from mtasts.tlsrpt.receive.decide import Channel
from mtasts.tlsrpt.receive.intake import Arrival


@dataclass(frozen=True, slots=True)
class Item:
    """One input found in a source, and how it arrived."""

    raw: bytes
    arrival: Arrival
    is_mail: bool  # a whole message (DKIM verified), else a report file
    # Told True once the input is in the store (stored, duplicate, quarantined, refused
    # or skipped as already imported); never called if the store failed. A source that
    # marks what it delivered (IMAP flags) marks it then.
    done: Callable[[bool], None] | None = None
    flush: bool = False  # the importer writes what it holds before the next item


#: scheme -> opener(source URL, max_bytes) yielding items; see register_scheme.
Opener = Callable[[str, int], AsyncIterator[Item]]
_SCHEMES: dict[str, Opener] = {}


def register_scheme(scheme: str, opener: Opener) -> None:
    """Let ``tlsrpt import`` read ``scheme://...`` sources (e.g. ``imaps``)."""
    _SCHEMES[scheme.lower()] = opener


def _scheme(source: str) -> str | None:
    head, sep, _ = source.partition("://")
    # RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
    rest = head[1:].replace("+", "").replace("-", "").replace(".", "")
    if sep and head.isascii() and head[:1].isalpha() and (not rest or rest.isalnum()):
        return head.lower()
    return None


def _mtime(path: Path, clock: UtcClock) -> datetime:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return clock()


def _read(path: str | Path, max_bytes: int) -> tuple[bytes, datetime] | None:
    """At most ``max_bytes + 1`` bytes of a regular file and its modification time, or
    None for anything else (a FIFO or a device in the tree is no report): open
    (non-blocking, so a FIFO cannot hang us), fstat, read the file's size (a read of
    ``max_bytes + 1`` would allocate that much for every small file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        want = min(st.st_size, max_bytes) + 1  # one more: a file that grew is seen
        chunks, size = [], 0
        while size < max_bytes + 1:
            ask = want - size if size < want else max_bytes + 1 - size
            chunk = os.read(fd, ask)
            chunks.append(chunk)
            size += len(chunk)
            if len(chunk) < ask:
                break  # the end of a regular file (no second read to be told so)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return raw, datetime.fromtimestamp(st.st_mtime, UTC)


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def _file_items(path: str, max_bytes: int, clock: UtcClock) -> Iterator[Item]:
    """A regular file: one input, or an mbox (one read decides); nothing otherwise."""
    try:
        read = _read(path, max_bytes)
    except FileNotFoundError:  # gone since the directory was listed
        return
    if read is None:
        return
    raw, mtime = read
    if raw.startswith(b"From "):
        yield from _mbox_items(Path(path), max_bytes, clock)
        return
    name = os.path.basename(path).lower()
    is_mail = name.endswith((".eml", ".msg", ".mail")) or not name.endswith(
        (".json", ".gz", ".json.gz")
    )
    yield Item(raw, Arrival(Channel.FILE, path, mtime), is_mail)


def _maildir_items(path: Path, max_bytes: int) -> Iterator[Item]:
    """Messages in new/ then cur/ (Maildir: one file per message, never rewritten)."""
    for sub in ("new", "cur"):
        for name in sorted(os.listdir(path / sub)):
            full = path / sub / name
            if name.startswith(".") or not full.is_file():
                continue
            try:
                read = _read(full, max_bytes)
            except FileNotFoundError:  # moved from new/ to cur/ while we read
                continue
            if read is not None:
                yield Item(read[0], Arrival(Channel.MAILDIR, str(full), read[1]), True)


def _mbox_items(path: Path, max_bytes: int, clock: UtcClock) -> Iterator[Item]:
    box = mailbox.mbox(path, factory=None, create=False)
    when = _mtime(path, clock)
    try:
        for i, key in enumerate(box.keys()):
            raw = box.get_bytes(key)
            if len(raw) > max_bytes:
                raw = raw[: max_bytes + 1]
            yield Item(raw, Arrival(Channel.MBOX, f"{path}#{i + 1}", when), True)
    finally:
        box.close()


def _path_items(path: Path, max_bytes: int, clock: UtcClock) -> Iterator[Item]:
    if path.is_dir():
        if _is_maildir(path):
            yield from _maildir_items(path, max_bytes)
            return
        for root, dirs, files in os.walk(path):
            dirs.sort()
            here = Path(root)
            if _is_maildir(here) and here != path:
                dirs.clear()
                yield from _maildir_items(here, max_bytes)
                continue
            if here.name in ("cur", "new", "tmp") and _is_maildir(here.parent):
                continue
            for name in sorted(files):
                if not name.startswith("."):
                    yield from _file_items(os.path.join(root, name), max_bytes, clock)
        return
    if path.is_file():
        yield from _file_items(str(path), max_bytes, clock)
        return
    raise ConfigError(f"{path}: no such file or directory")


async def iter_source(
    source: str, max_bytes: int, *, clock: UtcClock = utc_now
) -> AsyncIterator[Item]:
    """Every input in ``source``, in a stable order. Raises ConfigError for a source
    that does not exist or a scheme nobody registered. ``clock``: the arrival time of
    an mbox whose modification time cannot be read."""
    scheme = _scheme(source)
    if scheme is not None:
        opener = _SCHEMES.get(scheme)
        if opener is None:
            known = ", ".join(f"{s}://" for s in sorted(_SCHEMES)) or "none"
            raise ConfigError(f"{source}: cannot import from {scheme}:// (known: {known})")
        async for item in opener(source, max_bytes):
            yield item
        return
    # an import is a batch job: small synchronous reads keep it fast
    for item in _path_items(Path(source), max_bytes, clock):
        yield item
