"""Value types settings use beyond str/int/float/bool/Path (pure: no I/O).

Each has the class methods ``parse(text)`` (what :mod:`mtasts.settings.coerce` calls
with the string from the file, the environment or an option) and ``expected()`` (the
words errors and the docs use); ``str()`` gives the text back, so ``config show``
prints what was written.
"""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from mtasts.errors import ConfigError


def parse_hostport(
    text: str, *, default_port: int = 53, what: str = "nameserver"
) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address -> (host, port)."""
    value = text.strip()
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ConfigError(f"{what} {text!r}: write [address]:port")
        port_text = rest[1:] if rest else str(default_port)
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    else:
        host, port_text = value, str(default_port)
    if not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{what} {text!r} is not host:port (e.g. 127.0.0.1:53)")
    return host, int(port_text)


class HostPort(NamedTuple):
    """``HOST:PORT`` (``[V6]:PORT``); a tuple, so ``host, port = value`` works."""

    host: str
    port: int

    @classmethod
    def expected(cls) -> str:
        return "HOST:PORT such as 127.0.0.1:25"

    @classmethod
    def parse(cls, text: str) -> HostPort:
        return cls(*parse_hostport(text, default_port=0, what="address"))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class Nameserver(HostPort):
    """A DNS server: ``ADDRESS`` (port 53) or ``ADDRESS:PORT`` (``[V6]:PORT``).

    An IP address, not a name: the resolver is what would look a name up (and
    dnspython refuses one at the first query, which ended commands in a traceback)."""

    __slots__ = ()

    @classmethod
    def expected(cls) -> str:
        return "ADDRESS or ADDRESS:PORT such as 127.0.0.1:53 or [::1]:53"

    @classmethod
    def parse(cls, text: str) -> Nameserver:
        host, port = parse_hostport(text)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(
                f"{host!r} is not an IP address "
                "(write the server's address, e.g. 127.0.0.1:53 or [::1]:53)"
            ) from None
        return cls(host, port)


class SmtpRelay(HostPort):
    """An SMTP relay: ``HOST`` (port 25) or ``HOST:PORT``."""

    __slots__ = ()

    @classmethod
    def expected(cls) -> str:
        return "HOST or HOST:PORT such as 127.0.0.1:25"

    @classmethod
    def parse(cls, text: str) -> SmtpRelay:
        return cls(*parse_hostport(text, default_port=25, what="relay"))


class OctalMode(int):
    """File permissions written in octal (``"0660"``)."""

    @classmethod
    def expected(cls) -> str:
        return "an octal mode such as '0660'"

    @classmethod
    def parse(cls, text: str) -> OctalMode:
        try:
            mode = int(text, 8)
        except ValueError:
            raise ConfigError(f"{text!r} is not octal: write a mode like '0660'") from None
        if not 0 <= mode <= 0o7777:
            raise ConfigError(f"{text!r} is not a file mode (0000-7777)")
        return cls(mode)

    def __str__(self) -> str:
        return f"{int(self):04o}"

    def __repr__(self) -> str:
        return f"'{self}'"
