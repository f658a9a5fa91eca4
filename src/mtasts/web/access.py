"""Who is asking: HTTP Basic (scrypt-hashed passwords) or Bearer tokens, checked against
the ``[web.users]`` of the configuration, and which domains they may see.

A verified Basic credential is remembered for a few minutes (keyed by a keyed hash of the
header value), so a page and its assets cost one scrypt, not one each.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets

from mtasts.clock import Clock, monotonic
from mtasts.web.auth import token_matches, verify_password
from mtasts.web.settings import User

REMEMBER_SECONDS = 300.0
_MAX_REMEMBERED = 10_000


class Authenticator:
    def __init__(self, users: tuple[User, ...], *, clock: Clock = monotonic) -> None:
        self.users = {u.name: u for u in users}
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._verified: dict[bytes, tuple[float, str]] = {}

    def _remember_key(self, header: str) -> bytes:
        return hmac.new(self._key, header.encode("utf-8", "replace"), hashlib.sha256).digest()

    async def user(self, authorization: str | None) -> User | None:
        """The user this Authorization header proves, or None."""
        if not authorization:
            return None
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and value:
            for candidate in self.users.values():
                if candidate.token_sha256 and token_matches(value, candidate.token_sha256):
                    return candidate
            return None
        if scheme.lower() != "basic" or not value or len(value) > 4096:
            return None
        key = self._remember_key(value)
        hit = self._verified.get(key)
        now = self.clock()
        if hit is not None and now - hit[0] < REMEMBER_SECONDS:
            return self.users.get(hit[1])
        try:
            name, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        u = self.users.get(name)
        if not sep or u is None or u.password is None:
            return None
        # scrypt takes tens of milliseconds: off the event loop
        if not await asyncio.to_thread(verify_password, password, u.password):
            return None
        if len(self._verified) >= _MAX_REMEMBERED:
            self._verified.clear()
        self._verified[key] = (now, u.name)
        return u
