"""Line numbers of TOML keys, for errors that name the line."""

from __future__ import annotations

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
