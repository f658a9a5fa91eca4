"""Every mtasts.toml snippet in README.md and docs/ is a valid settings file, so an
operator who pastes one gets no error (issue 10: every code block is run by a test)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from mtasts.settings.tree import load

ROOT = Path(__file__).parents[2]
FENCE = re.compile(r"^( *)```toml\n(.*?)^\1```", re.S | re.M)


def _snippets() -> list[tuple[str, str]]:
    out = []
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = md.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text[: match.start()].count("\n") + 1
            out.append((f"{md.relative_to(ROOT)}:{line}", textwrap.dedent(match.group(2))))
    return out


SNIPPETS = _snippets()


def test_the_docs_have_snippets() -> None:
    assert len(SNIPPETS) >= 8


@pytest.mark.parametrize(("where", "text"), SNIPPETS, ids=[w for w, _ in SNIPPETS])
def test_snippet_is_a_valid_settings_file(where: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / "mtasts.toml"
    path.write_text(text, encoding="utf-8")
    load(path, environ={})  # raises ConfigError naming the line of the mistake
