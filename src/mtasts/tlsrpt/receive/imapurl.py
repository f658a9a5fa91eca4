"""``imaps://user@host[:port]/FOLDER`` import sources (pure: text in, value out).

RFC 5092 is the IMAP URL scheme; we take its server part and one mailbox: the user is
percent-decoded (``tls%40example.com`` is ``tls@example.com``), the port defaults to 993
(RFC 8314: implicit TLS), the folder is percent-decoded and defaults to ``INBOX``. No
password in the URL: it comes from the configuration or the environment, never from a
command line that ``ps`` shows. Only ``imaps`` is taken: a report mailbox's password is
not sent in clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from mtasts.errors import ConfigError

DEFAULT_PORT = 993


@dataclass(frozen=True, slots=True)
class ImapSource:
    user: str
    host: str
    port: int = DEFAULT_PORT
    folder: str = "INBOX"

    def __str__(self) -> str:
        return format_imap_url(self)


def is_imap_url(text: str) -> bool:
    return text.lower().startswith(("imaps://", "imap://"))


def parse_imap_url(text: str) -> ImapSource:
    """``imaps://user@host[:port]/FOLDER`` -> ImapSource; anything else is a ConfigError."""
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "imap":
        raise ConfigError(
            f"{text}: use imaps:// (TLS); the mailbox password must not cross the network in clear",
            code="config.imap-url",
        )
    if scheme != "imaps":
        raise ConfigError(f"{text} is not an imaps:// URL", code="config.imap-url")
    if parts.password is not None:
        raise ConfigError(
            f"imaps://{parts.hostname}: no password in the URL; set it in [receive.imap] "
            "password or MTASTS_RECEIVE_IMAP_PASSWORD",
            code="config.imap-url",
        )
    if not parts.username or not parts.hostname:
        raise ConfigError(f"{text}: write imaps://user@host[:port]/FOLDER", code="config.imap-url")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ConfigError(
            f"{text}: the port is not a number 1-65535", code="config.imap-url"
        ) from None
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    if parts.query or parts.fragment or any(c in folder for c in '\r\n\x00"'):
        raise ConfigError(
            f"{text}: a folder name only, no ?query, # or quotes", code="config.imap-url"
        )
    return ImapSource(unquote(parts.username), parts.hostname, port, folder)


def format_imap_url(source: ImapSource) -> str:
    from urllib.parse import quote

    host = f"[{source.host}]" if ":" in source.host else source.host
    port = "" if source.port == DEFAULT_PORT else f":{source.port}"
    return f"imaps://{quote(source.user, safe='')}@{host}{port}/{quote(source.folder, safe='/')}"
