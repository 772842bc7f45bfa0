"""What a pip user reads (``--help``, ``help(dissect.analyze)``) stands on its own: it names what is
installed and never points to a file the user does not have as if it were local."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from click.testing import CliRunner

import dissect
from dissect.cli import main

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(dissect.__file__).resolve().parent
CAPTURE = ROOT / "captures" / "sio4_websocket.pcap"


def _help(*args: str) -> str:
    res = CliRunner().invoke(main, [*args, "--help"])
    assert res.exit_code == 0, res.output
    return res.output


def test_no_installed_text_points_to_the_projects_shared_folder() -> None:
    """``shared/`` is the project's working folder, not part of the repository or the package."""
    offenders = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
                 if re.search(r"shared/(REPORTS|PROTOCOLS)\.md", p.read_text(encoding="utf-8"))]
    assert not offenders
    for doc in ("README.md", "docs/ci-gating.md", "docs/REPORTS.md"):
        assert "shared/REPORTS.md" not in (ROOT / doc).read_text(encoding="utf-8"), doc


def test_help_of_every_command_names_no_local_doc() -> None:
    for command in [[], *([name] for name in main.commands)]:
        text = _help(*command)
        assert "shared/" not in text, command
        for m in re.finditer(r"docs/[\w.-]+", text):
            around = " ".join(text[m.end():m.end() + 60].split())
            assert around.startswith("in dissect's source repository"), (command, around)


def test_analyze_help_names_the_installed_columns() -> None:
    doc = inspect.getdoc(dissect.analyze) or ""
    assert "shared/" not in doc
    assert "dissect.records" in doc
    for name in ("Session", "Handshake", "HttpExchange", "WsFrame", "WsMessage", "SioPacket"):
        assert f"``{name}``" in doc
        assert hasattr(__import__("dissect.records", fromlist=[name]), name)
    assert "source repository" in doc


def test_the_rules_example_in_check_help_is_a_working_rules_file(tmp_path: Path) -> None:
    """The example in ``dissect check --help`` parses and runs (exit 0 or 1, never 2 'unusable')."""
    text = _help("check")
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip() == "[[rule]]")
    body = []
    for ln in lines[start:]:
        if not ln.startswith("    "):
            break
        body.append(ln.strip())
    rules = tmp_path / "rules.toml"
    rules.write_text("\n".join(body) + "\n", encoding="utf-8")
    assert body.count("[[rule]]") == 4
    res = CliRunner().invoke(main, ["check", str(CAPTURE), "--rules", str(rules), "--quiet"])
    assert res.exit_code in (0, 1), res.output
    res = CliRunner().invoke(main, ["check", str(CAPTURE), "--rules", str(rules)])
    assert "4 rule(s)" in res.output
