"""Shell completion as docs/install.md documents it (click's ``_MTASTS_COMPLETE``), through
the lazy command group: the script is generated, and commands, sub-commands and options of
a lazily loaded module complete."""

from __future__ import annotations

import os
import subprocess

import pytest
from tests.commands import MTASTS


def _complete(env: dict[str, str]) -> str:
    done = subprocess.run(
        MTASTS, env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "_mtasts_completion"), ("zsh", "#compdef mtasts"), ("fish", "complete")],
)
def test_completion_script_is_generated(shell: str, marker: str) -> None:
    assert marker in _complete({"_MTASTS_COMPLETE": f"{shell}_source"})


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("mtasts tl", "plain,tlsrpt"),
        ("mtasts tlsrpt s", "plain,send"),
        ("mtasts policy generate --mo", "plain,--mode"),
    ],
)
def test_bash_completes_lazily_loaded_commands(words: str, expected: str) -> None:
    out = _complete(
        {
            "_MTASTS_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
        }
    )
    assert expected in out.splitlines()
