"""The tree read from a real file: line numbers in errors, every section checked,
options over a section that came from elsewhere, the process's --config."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtasts.config import Settings
from mtasts.errors import ConfigError
from mtasts.postfix.config import DaemonConfig
from mtasts.settings.tree import load, use_file
from mtasts.tlsrpt.settings import TlsRptSettings

TEXT = """\
nameserver = "127.0.0.1:5353"

[daemon]
listen = ["127.0.0.1:18461"]

[daemon.zones.strict]
strict_testing = true

[tlsrpt]
organization = "Example"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mtasts.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_one_read_gives_every_section_and_origins(tmp_path: Path) -> None:
    path = write(tmp_path, TEXT)
    tree = load(path, environ={"MTASTS_TLSRPT_CONTACT": "t@example.com"})
    assert tree.section(Settings).nameserver == ("127.0.0.1", 5353)
    assert tree.section(DaemonConfig).zones["strict"].strict_testing is True
    tlsrpt = tree.section(TlsRptSettings)
    assert (tlsrpt.organization, tlsrpt.contact) == ("Example", "t@example.com")
    assert str(tree.origin(("daemon", "zones", "strict", "strict_testing"))) == f"{path}:7"
    assert str(tree.origin(("tlsrpt", "contact"))) == "environment MTASTS_TLSRPT_CONTACT"
    assert str(tree.origin(("tlsrpt", "store"))) == "default"


def test_a_table_no_section_registered_is_unknown(tmp_path: Path) -> None:
    """No component reads a raw table of its own any more: every table is checked."""
    path = write(tmp_path, TEXT + '\n[legacy]\nanything = "x"\n')
    with pytest.raises(ConfigError, match=r":12: unknown section \[legacy\]; known: .*daemon"):
        load(path, environ={})


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[daemon]\nlisten = ["x"]\n', ":2: daemon.listen = ['x']: item 1"),  # bad listener
        ("\n\n[tlsrpt.send]\nsettle = -1\n", ":4: tlsrpt.send.settle = -1: expected"),  # bound
        ("[tlsrpt]\nstor = 1\n", ":2: unknown setting 'stor' in [tlsrpt]"),  # typo
        ("[webb]\nx = 1\n", ":1: unknown section [webb]; known:"),  # unknown section
        ("tlsrpt = 1\n", ":1: tlsrpt must be a table"),  # a section as a value
        (
            '[serve]\ncert = "/c.pem"\n',
            ":1: [serve]: cert and key go together",
        ),  # cross-key: the header
        ("x = [\n", "is not valid TOML"),  # syntax: tomllib gives the line
    ],
)
def test_file_errors_name_file_line_key(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path, environ={})
    assert str(path) in str(caught.value)
    assert words in str(caught.value)


def test_a_typo_in_any_section_stops_every_reader(tmp_path: Path) -> None:
    """One file, read whole: `mtasts query` reports a bad [daemon] too."""
    from mtasts.config import load_settings

    path = write(tmp_path, "[daemon]\nlookup_timeout = 0\n")
    with pytest.raises(ConfigError, match=r"daemon\.lookup_timeout"):
        load_settings(path, environ={})


def test_options_override_with_their_names(tmp_path: Path) -> None:
    path = write(tmp_path, TEXT)
    tree = load(
        path,
        environ={"MTASTS_TLSRPT_ORGANIZATION": "Env"},
        overrides={"tlsrpt.organization": "Opt", "tlsrpt.contact": None},
        option_names={"tlsrpt.organization": "--organization"},
    )
    assert tree.section(TlsRptSettings).organization == "Opt"
    assert str(tree.origin(("tlsrpt", "organization"))) == "option --organization"
    with pytest.raises(ConfigError, match=r"option --relay: tlsrpt\.send\.relay = 'x:y'"):
        load(
            path,
            environ={},
            overrides={"tlsrpt.send.relay": "x:y"},
            option_names={"tlsrpt.send.relay": "--relay"},
        )


def test_the_root_config_option_is_the_file_of_the_process(tmp_path: Path) -> None:
    path = write(tmp_path, 'nameserver = "127.0.0.9"\n')
    use_file(path)
    try:
        assert load(environ={}).section(Settings).nameserver == ("127.0.0.9", 53)
        # an explicit path still wins
        other = tmp_path / "other.toml"
        other.write_text("")
        assert load(other, environ={}).section(Settings).nameserver is None
    finally:
        use_file(None)
    assert load(environ={"MTASTS_CONFIG": str(other)}).file == other


def test_options_over_a_section_read_elsewhere() -> None:
    """The daemon's --pmsr-config: [daemon] comes from another file, and the command-line
    options still go on top, typed and checked like the tree's own; keys of other
    sections are left to them; values not given change nothing."""
    from mtasts.settings.tree import with_options

    base = DaemonConfig(idle_timeout=7.0)
    options = {"daemon.listen": ["127.0.0.1:1"], "daemon.lookup_timeout": None, "cache.url": "x:"}
    got = with_options(base, options, {"daemon.listen": "--listen"})
    assert [str(x) for x in got.listen] == ["127.0.0.1:1"]
    assert got.idle_timeout == 7.0  # from the base
    assert got.lookup_timeout == DaemonConfig().lookup_timeout
    with pytest.raises(ConfigError, match=r"option --idle-timeout: daemon.idle_timeout = '0'"):
        with_options(base, {"daemon.idle_timeout": "0"}, {"daemon.idle_timeout": "--idle-timeout"})
    resolver = with_options(Settings(), {"timeouts.total": 5, "daemon.dane": False})
    assert resolver.timeouts.total == 5.0
