"""Line numbers of TOML keys, for errors that name the line."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mtasts.settings.locate import key_lines, line_of

DOC = '''\
# a comment
nameserver = "127.0.0.1"

[daemon]
listen = [
  "127.0.0.1:1",   # x = 1 inside an array is not a key
  "unix:/run/x",
]
description = """
fake = "not a key"
"""
metrics = ''

[daemon.zones."a.b"]
strict_testing = true
"quoted key" = 1
inline = { inner = 1 }

[[array]]
item = 1
tlsrpt.store = "dotted"
'''


def test_every_key_and_table_has_its_line() -> None:
    lines = key_lines(DOC)
    assert lines[("nameserver",)] == 2
    assert lines[("daemon",)] == 4
    assert lines[("daemon", "listen")] == 5
    assert lines[("daemon", "description")] == 9
    assert lines[("daemon", "metrics")] == 12
    assert lines[("daemon", "zones", "a.b")] == 14
    assert lines[("daemon", "zones", "a.b", "strict_testing")] == 15
    assert lines[("daemon", "zones", "a.b", "quoted key")] == 16
    assert lines[("array", "tlsrpt", "store")] == 21
    assert ("daemon", "x") not in lines
    assert ("daemon", "fake") not in lines


def test_keys_inside_inline_tables_get_the_enclosing_line() -> None:
    lines = key_lines(DOC)
    assert line_of(lines, ("daemon", "zones", "a.b", "inline", "inner")) == 17
    assert line_of(lines, ("daemon", "unknown")) == 4
    assert line_of(lines, ("nowhere",)) is None


HEADERS = {
    "": (),
    "daemon": ("daemon",),
    "tlsrpt.send": ("tlsrpt", "send"),
    'serve.policies."x.y"': ("serve", "policies", "x.y"),
}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(HEADERS)),
            st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True),
            st.sampled_from(
                ['"text"', "5", "true", '["a", "b"]', '"""\nx = 1\n"""', "[\n 1,\n 2,\n]"]
            ),
        ),
        max_size=8,
        unique_by=lambda t: (t[0], t[1]),
    )
)
def test_each_written_key_is_found_on_its_line(items: list[tuple[str, str, str]]) -> None:
    """Keys written under headers, with multi-line values between them, are placed exactly."""
    lines: list[str] = []
    where: dict[tuple[str, ...], int] = {}
    current = ""
    for table, key, value in sorted(items, key=lambda t: t[0]):  # top-level keys first
        if table != current:
            lines.append(f"[{table}]")
            current = table
        where[(*HEADERS[table], key)] = len(lines) + 1
        lines.extend(f"{key} = {value}".split("\n"))
    found = key_lines("\n".join(lines) + "\n")
    for key, line in where.items():
        assert found[key] == line, (key, lines)
