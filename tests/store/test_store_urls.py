"""Store URLs: the two supported databases, and a fix named for anything else."""

from __future__ import annotations

import pytest

from mtasts.errors import ConfigError
from mtasts.store.engine import parse_store_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///var/lib/x.db", ("sqlite", "var/lib/x.db")),  # relative, as SQLAlchemy
        ("sqlite:////var/lib/x.db", ("sqlite", "/var/lib/x.db")),  # absolute
        ("sqlite+aiosqlite:////x.db", ("sqlite", "/x.db")),
        ("postgresql://u@h/db", ("postgresql", "postgresql://u@h/db")),
        ("postgres://u@h/db", ("postgresql", "postgresql://u@h/db")),
        ("postgresql+asyncpg://u@h/db", ("postgresql", "postgresql://u@h/db")),
    ],
)
def test_store_urls(url: str, expected: tuple[str, str]) -> None:
    assert parse_store_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://h/db", "/var/lib/x.db", "redis://h", "sqlite:x.db"])
def test_unsupported_store_urls_name_the_fix(url: str) -> None:
    with pytest.raises(ConfigError, match="sqlite:///"):
        parse_store_url(url)
