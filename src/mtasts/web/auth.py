"""Passwords and tokens: scrypt hashes (hashlib) and SHA-256 token digests.

Pure: no I/O. A password hash is ``scrypt$N$r$p$<salt b64>$<hash b64>`` (what
``mtasts web --hash-password`` prints). Bearer tokens are random, so the config keeps
their SHA-256 only. Every comparison is constant-time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt cost: N=2^14, r=8, p=1 (16 MiB, ~50 ms here), RFC 7914's interactive example
N, R, P = 16384, 8, 1
_MAXMEM = 64 * 1024 * 1024
_MAX_N = 2**20


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=N, r=R, p=P, maxmem=_MAXMEM, dklen=32
    )
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def parse_password_hash(text: str) -> tuple[int, int, int, bytes, bytes]:
    """(N, r, p, salt, hash); ValueError saying what is wrong."""
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("not an scrypt hash: run `mtasts web --hash-password`")
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        raise ValueError("a malformed scrypt hash: run `mtasts web --hash-password`") from None
    if n < 2 or n > _MAX_N or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise ValueError("scrypt parameters out of range (N a power of 2 up to 2^20)")
    if len(salt) < 8 or len(digest) < 16:
        raise ValueError("scrypt salt or hash too short")
    return n, r, p, salt, digest


def verify_password(password: str, stored: str) -> bool:
    try:
        n, r, p, salt, digest = parse_password_hash(stored)
    except ValueError:
        return False
    got = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=max(_MAXMEM, 129 * n * r * p + 1024 * 1024),
        dklen=len(digest),
    )
    return hmac.compare_digest(got, digest)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, stored_hex: str) -> bool:
    return hmac.compare_digest(token_digest(token), stored_hex)
