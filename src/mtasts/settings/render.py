"""Settings as text: TOML values, the commented example file, docs/configuration.md (pure).

Everything here is derived from the registered dataclasses (their fields, defaults and
:func:`~mtasts.settings.schema.setting` docs), so the docs and the example cannot
drift from what the reader accepts; tests/settings/test_docs.py fails when the
committed docs/configuration.md differs from :func:`markdown`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import textwrap
from collections.abc import Iterator, Mapping
from typing import Any

from mtasts.settings.coerce import expected
from mtasts.settings.schema import (
    Field,
    Key,
    dotted,
    entry_type,
    env_name,
    fields_of,
    keys_of,
    section_doc,
)


def toml_value(value: Any) -> str:
    """``value`` written as TOML (None: ``""``, the way to say unset)."""
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return toml_value(value.value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int) and type(value) is int:
        return str(value)
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_toml_key(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list | frozenset | set) or (
        type(value) is tuple  # not a HostPort: those print as HOST:PORT
    ):
        items = sorted(value) if isinstance(value, frozenset | set) else value
        return "[" + ", ".join(toml_value(v) for v in items) + "]"
    if dataclasses.is_dataclass(value) and not hasattr(type(value), "parse"):
        return toml_value(dataclasses.asdict(value))  # type: ignore[arg-type]
    return json.dumps(str(value), ensure_ascii=False)


def _toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "_-" for c in key) else json.dumps(key)


def masked(value: Any, f: Field) -> Any:
    """``"***"`` for a set secret, a URL without its password, else ``value``."""
    if f.meta.secret and value not in (None, ""):
        return "***"
    if isinstance(value, str) and "://" in value:
        from mtasts.redact import redacted

        return redacted(value)
    return value


# --- walking the schema -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Table:
    """One ``[table]`` of the file: its key, dataclass, words and its value keys."""

    key: Key
    cls: type
    doc: str
    fields: tuple[Field, ...]
    #: a named entry (``[daemon.zones.NAME]``): the key holds the placeholder ``NAME``
    entry: bool = False
    inherits: str = ""


def tables(sections: Mapping[str, type]) -> Iterator[Table]:
    """Every table of every section, parents before children."""
    for name, cls in sections.items():
        yield from _tables(cls, (name,) if name else (), section_doc(cls))


def _tables(
    cls: type, key: Key, doc: str, *, entry: bool = False, inherits: str = ""
) -> Iterator[Table]:
    values = tuple(f for f in keys_of(cls) if f.kind == "value")
    yield Table(key, cls, doc, values, entry, inherits)
    for f in keys_of(cls):
        if f.kind == "table":
            yield from _tables(f.type, (*key, f.name), f.meta.doc or section_doc(f.type))
        elif f.kind == "tables":
            sub = entry_type(f.type)
            assert sub is not None
            yield from _tables(
                sub,
                (*key, f.name, "NAME"),
                f.meta.doc or section_doc(sub),
                entry=True,
                inherits=".".join((*key, f.meta.inherit)) if f.meta.inherit else "",
            )


# --- the example file ---------------------------------------------------------------------


def example_file(sections: Mapping[str, type]) -> str:
    """A commented mtasts.toml: every key with its default, commented out."""
    out = [
        "# mtasts.toml: every setting with its default (commented out). Uncomment and",
        "# change what you need; `mtasts config check FILE` validates, `mtasts config",
        "# show` prints the effective values. Each key also reads MTASTS_<SECTION>_<KEY>",
        "# from the environment. Reference: docs/configuration.md.",
    ]
    for table in tables(sections):
        if not table.fields and not table.entry:
            continue
        out.append("")
        out.extend(_comment(table.doc))
        if table.entry:
            example = dotted((*table.key[:-1], "example"))
            if table.inherits:
                out.append(f"# (each key of such a table defaults to [{table.inherits}])")
            out.append(f"# [{example}]")
        elif table.key:
            out.append(f"[{dotted(table.key)}]")
        for f in table.fields:
            out.extend(_comment(f.meta.doc))
            line = f"# {f.name} = {toml_value(f.default)}"
            if f.meta.example:
                shown = json.dumps(f.meta.example)
                if toml_value(f.default).startswith("[") and not f.meta.example.startswith("["):
                    shown = f"[{shown}]"  # a list, even of the one example
                line = f"# {f.name} = {shown}  # default {toml_value(f.default)}"
            out.append(line)
    return "\n".join(out) + "\n"


def _comment(text: str) -> list[str]:
    return [f"# {line}" for line in textwrap.wrap(text, 86)] if text else []


# --- docs/configuration.md ----------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(f: Field) -> str:
    if f.default is None:
        return "unset"
    return f"`{toml_value(f.default)}`"


def _environment(table: Table, f: Field) -> str:
    if table.entry:
        return "(the whole table: see above)"
    names = [env_name((*table.key, f.name)), *f.meta.env]
    return ", ".join(f"`{n}`" for n in names)


def markdown(sections: Mapping[str, type], intro: str) -> str:
    """docs/configuration.md: ``intro``, then one table of keys per ``[table]``."""
    out = [intro.rstrip(), ""]
    for table in tables(sections):
        title = f"[{dotted(table.key)}]" if table.key else "Top level (no table header)"
        out.append(f"## {title}")
        out.append("")
        if table.doc:
            out.append(table.doc)
            out.append("")
        if table.entry:
            over = f", starting from [{table.inherits}]" if table.inherits else ""
            out.append(
                f"`NAME` is yours; each such table is one entry{over}. From the environment "
                f"the whole table is one variable, `{env_name(table.key[:-1])}`, holding a "
                "TOML inline table."
            )
            out.append("")
        if not table.fields:
            out.append("(only the tables below)")
            out.append("")
            continue
        out.append("| key | type | default | environment | meaning |")
        out.append("| --- | --- | --- | --- | --- |")
        for f in table.fields:
            kind = expected(f.type, f.meta) + (
                " (secret: masked in `config show`)" if f.meta.secret else ""
            )
            out.append(
                f"| `{f.name}` | {_cell(kind)} | {_cell(_default(f))} | "
                f"{_environment(table, f)} | {_cell(f.meta.doc)} |"
            )
        out.append("")
    return "\n".join(out)


# --- the effective settings (config show) -------------------------------------------------


def leaves(
    sections: Mapping[str, type], values: Mapping[str, Any]
) -> Iterator[tuple[Key, Field, Any]]:
    """Every value key of the tree with its field and effective value, in file order."""
    for name, cls in sections.items():
        yield from _leaves(cls, values[name], (name,) if name else ())


def _leaves(cls: type, instance: Any, prefix: Key) -> Iterator[tuple[Key, Field, Any]]:
    for f in fields_of(cls):
        key = (*prefix, f.name)
        value = getattr(instance, f.name)
        if f.meta.internal:
            continue
        if f.meta.flatten and f.kind == "table":
            yield from _leaves(f.type, value, prefix)
        elif f.kind == "table":
            yield from _leaves(f.type, value, key)
        elif f.kind == "tables":
            sub = entry_type(f.type)
            assert sub is not None
            for entry_name, entry in value.items():
                yield from _leaves(sub, entry, (*key, entry_name))
        else:
            yield key, f, value


def json_value(value: Any) -> Any:
    """A setting as JSON: numbers, booleans, strings, lists and objects; None is null."""
    if value is None or isinstance(value, bool | float) or type(value) is int:
        return value
    if isinstance(value, enum.Enum):
        return json_value(value.value)
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | frozenset | set) or type(value) is tuple:
        items = sorted(value) if isinstance(value, frozenset | set) else value
        return [json_value(v) for v in items]
    return str(value)
