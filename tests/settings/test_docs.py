"""docs/configuration.md and the example file follow from the settings dataclasses."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from mtasts.settings.build import Layers, Origin, assemble, collect, fixed
from mtasts.settings.docs import INTRO
from mtasts.settings.registry import section_classes
from mtasts.settings.render import example_file, markdown

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs" / "configuration.md"
EXAMPLE = ROOT / "contrib" / "mtasts.toml"  # in the wheel: share/mtasts/contrib/mtasts.toml


def test_configuration_md_is_up_to_date() -> None:
    """Fails when a setting changed without `make docs` (python -m mtasts.settings.docs)."""
    expected = markdown(section_classes(), INTRO)
    assert DOCS.read_text(encoding="utf-8") == expected, (
        "docs/configuration.md is out of date: run `make docs` and commit it"
    )


def test_the_shipped_example_is_up_to_date() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == example_file(section_classes()), (
        "contrib/mtasts.toml is out of date: run `make docs` and commit it"
    )


def test_every_key_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for table in re.findall(r"^\| `(\w+)` \|.*\| (.*) \|$", text, re.M):
        assert table[1].strip(), f"{table[0]} has no words in its dataclass"


def _load(text: str) -> dict[str, object]:
    """Every section built from a TOML text (no environment, no file I/O)."""
    data = tomllib.loads(text)
    classes = section_classes()
    layers = Layers()
    origin = fixed(Origin("file", "example"))
    for name, value in data.items():
        if name in classes:
            collect(classes[name], value, (name,), origin, layers)
        else:
            collect(classes[""], {name: value}, (), origin, layers)
    return {n: assemble(c, layers, (n,) if n else ()) for n, c in classes.items()}


def test_the_example_file_is_valid_as_written_and_uncommented() -> None:
    text = example_file(section_classes())
    defaults = {n: c() for n, c in section_classes().items()}
    assert _load(text) == defaults  # everything commented out: the defaults
    uncommented = re.sub(r"^# ([a-z_]+ = .*)$", r"\1", text, flags=re.M)
    uncommented = re.sub(r"^# (\[[a-z_.]+\])$", r"\1", uncommented, flags=re.M)
    sections = _load(uncommented)  # every key set to its default or its example value
    assert sections.keys() == defaults.keys()
    assert "example" in sections["daemon"].zones  # type: ignore[attr-defined]
