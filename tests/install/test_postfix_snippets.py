"""Every Postfix main.cf (and master.cf) snippet in README.md and docs/ is valid when pasted.

Each snippet is written into a scratch configuration directory and read back with the real
``postconf -c DIR``: it must parse without a warning (an unknown parameter is reported as
``unused parameter``), and no value may carry a trailing ``# comment`` (Postfix allows
comments only on their own lines, so ``name = value  # why`` makes ``# why`` part of the
value). Needs /usr/sbin/postconf: skipped without it, failed under CI=true.

A fenced block is a snippet when it has no language (or ``cf``/``conf``/``ini``/``text``)
and: it has ``# main.cf`` / ``# master.cf`` marker lines (a block may hold both, marker
first); or every line of it is a ``name = value`` line, a continuation or a comment
(main.cf); or the prose line just before it names only ``master.cf``; or it names
``main.cf`` and the block has a ``name = value`` line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
POSTCONF = shutil.which("postconf") or "/usr/sbin/postconf"
# the package's pristine master.cf, never the machine's own configuration
MASTER_DIST = [Path("/usr/share/postfix/master.cf.dist")]
UNTYPED = {"", "cf", "conf", "ini", "text", "postfix", "main.cf", "master.cf"}
FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w.+-]*)")
PARAM = re.compile(r"^[a-z][a-z0-9_]*\s*=")
MARKER = re.compile(r"^#\s*(?:/etc/postfix/)?(main|master)\.cf\b")


@dataclass(frozen=True, slots=True)
class Snippet:
    where: str  # file:line
    main: str
    master: str


def _documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _looks_like_main_cf(body: list[str]) -> bool:
    """Only ``name = value`` lines, their indented continuations and comments."""
    return any(PARAM.match(line) for line in body) and all(
        not line.strip() or line.lstrip().startswith("#") or PARAM.match(line) or line[:1] in " \t"
        for line in body
    )


def _classify(info: str, prose: str, body: list[str]) -> Snippet | None:
    if info.lower() not in UNTYPED:
        return None
    markers = [m.group(1) for line in body if (m := MARKER.match(line.strip()))]
    if markers:
        parts: dict[str, list[str]] = {"main": [], "master": []}
        current = markers[0]
        for line in body:
            m = MARKER.match(line.strip())
            if m:
                current = m.group(1)
                continue
            parts[current].append(line)
        return Snippet("", "\n".join(parts["main"]), "\n".join(parts["master"]))
    kind = None
    if _looks_like_main_cf(body):
        kind = "main"  # also when the prose names both files
    elif "master.cf" in prose and "main.cf" not in prose:
        kind = "master"
    elif "main.cf" in prose and any(PARAM.match(line) for line in body):
        kind = "main"
    if kind is None:
        return None
    text = "\n".join(body)
    return Snippet("", text if kind == "main" else "", text if kind == "master" else "")


def snippets() -> list[Snippet]:
    found: list[Snippet] = []
    for doc in _documents():
        lines = doc.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            m = FENCE.match(lines[i])
            if not m:
                i += 1
                continue
            fence, info = m.group(1), m.group(2)
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith(fence[:3]):
                end += 1
            prose = next((p for p in reversed(lines[max(0, i - 3) : i]) if p.strip()), "")
            snippet = _classify(info, prose, lines[i + 1 : end])
            if snippet is not None:
                where = f"{doc.relative_to(ROOT)}:{i + 1}"
                found.append(Snippet(where, snippet.main, snippet.master))
            i = end + 1
    return found


def _postconf() -> str:
    if Path(POSTCONF).is_file() and os.access(POSTCONF, os.X_OK):
        return POSTCONF
    if os.environ.get("CI") == "true":
        pytest.fail("postconf is not installed: CI must install postfix (.ci/run does)")
    pytest.skip("postconf not installed (apt-get install postfix)")


def _known_parameters(postconf: str, scratch: Path) -> set[str]:
    scratch.mkdir(exist_ok=True)
    (scratch / "main.cf").write_text("")
    out = subprocess.run(
        [postconf, "-c", str(scratch), "-d"], capture_output=True, text=True, timeout=60
    )
    return {line.split(" = ", 1)[0] for line in out.stdout.splitlines()}


def _allowed(warning: str, postconf: str, scratch: Path) -> bool:
    """Parameters of a newer Postfix than the one installed (the TLSRPT ones are 3.10+;
    the docs say so) are reported as unused by an older postconf: that is no error in the
    snippet."""
    if not re.search(r"unused parameter: smtp_tlsrpt_\w+=", warning):
        return False
    return "smtp_tlsrpt_enable" not in _known_parameters(postconf, scratch / "defaults")


SNIPPETS = snippets()


def test_the_docs_have_postfix_snippets() -> None:
    wheres = " ".join(s.where for s in SNIPPETS)
    assert "docs/postfix.md" in wheres
    assert "docs/tlsrpt-sending.md" in wheres


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.where for s in SNIPPETS])
def test_snippet_is_valid_postfix_configuration(snippet: Snippet, tmp_path: Path) -> None:
    postconf = _postconf()
    master = next((p for p in MASTER_DIST if p.is_file()), None)
    base = master.read_text() if master is not None else ""
    (tmp_path / "master.cf").write_text(base + "\n" + snippet.master + "\n")
    (tmp_path / "main.cf").write_text(snippet.main + "\n")
    problems: list[str] = []
    for mode in ("-n", "-M", "-P"):
        done = subprocess.run(
            [postconf, "-c", str(tmp_path), mode], capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            problems.append(f"postconf {mode} failed: {done.stderr.strip()}")
        for warning in done.stderr.splitlines():
            if "master.cf: No such file" in warning or _allowed(warning, postconf, tmp_path):
                continue
            problems.append(warning.replace(str(tmp_path), "DIR"))
        if mode == "-n":
            for line in done.stdout.splitlines():
                name, _, value = line.partition(" = ")
                if re.search(r"(^|\s)#", value):
                    problems.append(
                        f"{name}: the value {value!r} carries a comment; Postfix allows "
                        "comments only on their own lines"
                    )
        if mode == "-P":
            for line in done.stdout.splitlines():
                if re.search(r"\s#", line.partition(" = ")[2]):
                    problems.append(f"master.cf override carries a comment: {line}")
    assert problems == [], f"{snippet.where}: " + "; ".join(dict.fromkeys(problems))


def test_a_trailing_comment_is_caught(tmp_path: Path) -> None:
    """The check itself: the mistake this test exists for is found."""
    postconf = _postconf()
    (tmp_path / "main.cf").write_text("smtp_tls_loglevel = 1   # logs verified connections\n")
    done = subprocess.run(
        [postconf, "-c", str(tmp_path), "-n"], capture_output=True, text=True, timeout=60
    )
    assert "smtp_tls_loglevel = 1 # logs verified connections" in done.stdout


def test_classification() -> None:
    prose = "`/etc/postfix/main.cf`:"
    s = _classify("", prose, ["a_b = 1"])
    assert s == Snippet("", "a_b = 1", "")
    assert _classify("toml", prose, ["a = 1"]) is None
    assert _classify("sh", "", ["postfix reload"]) is None
    assert _classify("", "run this:", ["mtasts daemon"]) is None
    s = _classify("", "", ["# master.cf", "x unix - - n - - smtp", "# main.cf", "p = q"])
    assert s == Snippet("", "p = q", "x unix - - n - - smtp")
    s = _classify("", "main.cf and master.cf:", ["a = b"])
    assert s == Snippet("", "a = b", "")
    s = _classify("", "in master.cf:", ["x unix - - n - - smtp", "  -o a=b"])
    assert s == Snippet("", "", "x unix - - n - - smtp\n  -o a=b")
    assert _classify("", "main.cf logs this:", ["Verified TLS connection"]) is None
    s = _classify("", "", ["# /etc/postfix/main.cf", "p = q"])
    assert s == Snippet("", "p = q", "")
    s = _classify("", "", ["relayhost = [mail]:587", "    # why"])
    assert s == Snippet("", "relayhost = [mail]:587\n    # why", "")
