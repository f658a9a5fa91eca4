"""Line numbers of the keys of a TOML document (pure: text in, numbers out).

:mod:`tomllib` gives values but not where they were written; errors about a setting
should name its line. This scanner follows table headers (``[a.b]``), key lines
(``a.b = ...``, quoted parts too), and skips the inside of multi-line strings and
arrays. It is only asked about documents ``tomllib`` has already accepted, so it can
be simple; a key it cannot place (inside an inline table) gets the line of the
nearest enclosing key or table it can.
"""

from __future__ import annotations

import re

from mtasts.settings.schema import Key

_PART = re.compile(r"""\s*(?:([A-Za-z0-9_-]+)|"((?:[^"\\]|\\.)*)"|'([^']*)')\s*""")


def _parts(text: str) -> tuple[Key, int] | None:
    """The dotted key at the start of ``text`` and where it ends, or None."""
    parts: list[str] = []
    pos = 0
    while True:
        match = _PART.match(text, pos)
        if match is None or match.end() == pos:
            return None
        bare, basic, literal = match.groups()
        if basic is not None:
            part = basic.encode("utf-8").decode("unicode_escape") if "\\" in basic else basic
        else:
            part = bare if bare is not None else literal
        parts.append(part)
        pos = match.end()
        if text.startswith(".", pos):
            pos += 1
            continue
        return tuple(parts), pos


def _depth_change(text: str) -> int:
    """Brackets opened minus closed outside strings (a multi-line array's lines)."""
    depth = 0
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "#":
            break
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
        i += 1
    return depth


def key_lines(text: str) -> dict[Key, int]:
    """Every key and table header of ``text`` -> its 1-based line number."""
    lines: dict[Key, int] = {}
    table: Key = ()
    depth = 0  # inside a multi-line array or inline table
    string = ""  # inside a multi-line string: its delimiter
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if string:
            if string in stripped:
                string = ""
            continue
        if depth > 0:
            depth += _depth_change(stripped)
            continue
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            inner = stripped[2:] if stripped.startswith("[[") else stripped[1:]
            found = _parts(inner)
            if found is not None:
                table = found[0]
                lines.setdefault(table, number)
            continue
        found = _parts(stripped)
        if found is None or not stripped[found[1] :].startswith("="):
            continue
        key = (*table, *found[0])
        lines.setdefault(key, number)
        value = stripped[found[1] + 1 :].strip()
        for delimiter in ('"""', "'''"):
            if value.startswith(delimiter) and value.count(delimiter) == 1:
                string = delimiter
        if not string:
            depth = _depth_change(value)
    return lines


def line_of(lines: dict[Key, int], key: Key) -> int | None:
    """The line of ``key``, else of its nearest enclosing key or table, else None."""
    for end in range(len(key), 0, -1):
        if key[:end] in lines:
            return lines[key[:end]]
    return None
