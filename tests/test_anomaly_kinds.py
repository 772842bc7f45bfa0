"""docs/REPORTS.md's "Anomaly and warning kinds" and the code agree, both ways.

The code's side is collected, not hand-copied:

- anomaly kinds: the ``ANOMALIES`` tuple of every module under :mod:`dissect.protocols` (each module
  lists the tags it writes); a scan of each module's syntax tree checks that the tuple holds every tag
  the module actually writes (literal or constant arguments of ``anomaly.append``, ``tags.append``,
  ``join_tags``, ``Anomaly(...)``, ``DecryptError(...)``, ``_stop``, ``_drop``, ``error = (kind, ...)``,
  and every module-level kebab-case constant);
- warning kinds: :data:`dissect.capture.reader.WARNINGS`, plus every ``warnings[...]`` key in the code;
- decode counters: every ``counters[...]`` key in the code (``f"ip-proto-{proto}"`` stands for the
  documented ``ip-proto-N``), and the ``DECODE_COUNTERS`` tuples of the protocol modules.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import dissect
import dissect.protocols
from dissect.capture import reader
from dissect.output.anomalies import anomaly_kind

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "REPORTS.md"
PACKAGE = Path(dissect.__file__).resolve().parent
KEBAB = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+")
# Calls whose string arguments are anomaly tags (by the name of the function or method called).
TAG_CALLS = {"Anomaly", "DecryptError", "_stop", "_drop", "join_tags"}


def documented() -> dict[str, set[str]]:
    """Kinds per ``###`` heading of the section (the first cell of each table row, in backticks)."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index("\n## Anomaly and warning kinds")
    end = text.find("\n## ", start + 1)
    out: dict[str, set[str]] = {}
    heading = None
    for line in text[start:end if end > 0 else None].splitlines():
        if line.startswith("### "):
            heading = line[4:].strip()
            out[heading] = set()
        m = re.match(r"\| `([^`]+)` \|", line)
        if m and heading is not None:
            out[heading].add(m.group(1))
    return out


def doc_kinds(prefix: str) -> set[str]:
    kinds: set[str] = set()
    for heading, names in documented().items():
        if heading.startswith(prefix):
            kinds |= names
    return kinds


def protocol_modules() -> list[ModuleType]:
    names = [dissect.protocols.__name__]
    names += [m.name for m in pkgutil.walk_packages(dissect.protocols.__path__, "dissect.protocols.")]
    return [importlib.import_module(n) for n in names]


def _text_of(node: ast.AST, module: ModuleType) -> list[str]:
    """The tag(s) an argument can be: a string, a module constant, an f-string's kind, either arm of
    a conditional."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name):
        value = getattr(module, node.id, None)
        return [value] if isinstance(value, str) else []
    if isinstance(node, ast.JoinedStr):
        return ["".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)]
    if isinstance(node, ast.IfExp):
        return _text_of(node.body, module) + _text_of(node.orelse, module)
    return []


def _callee(node: ast.Call) -> str:
    f = node.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _receiver(node: ast.Call) -> str:
    f = node.func
    if isinstance(f, ast.Attribute):
        v = f.value
        return v.attr if isinstance(v, ast.Attribute) else v.id if isinstance(v, ast.Name) else ""
    return ""


def written_tags(module: ModuleType, own: bool = False) -> set[str]:
    """Every anomaly kind ``module``'s code writes (by the patterns of the module docstring); with
    ``own``, only those the module spells itself (literals, its own module-level constants), not
    constants imported from another module."""
    tree = ast.parse(inspect.getsource(module))
    defined = {t.id for node in tree.body if isinstance(node, ast.Assign)
               for t in node.targets if isinstance(t, ast.Name)}
    args: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _callee(node)
            recv = _receiver(node).lower()
            if name in TAG_CALLS or (name in ("append", "extend") and ("anomal" in recv or "tags" in recv)):
                args += node.args
        elif isinstance(node, ast.Assign):
            targets = [t.attr if isinstance(t, ast.Attribute) else t.id if isinstance(t, ast.Name) else ""
                       for t in node.targets]
            if "error" in targets and isinstance(node.value, ast.Tuple) and node.value.elts:
                args.append(node.value.elts[0])
    for node in tree.body:  # module-level constants such as LOST_BYTES = "lost-bytes"
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id.isupper():
                args.append(node.value)
    if own:
        args = [a for a in args if not (isinstance(a, ast.Name) and a.id not in defined)]
    found = [t for a in args for t in _text_of(a, module)]
    kinds = {anomaly_kind(t.replace("{}", "")) for t in found}
    return {k for k in kinds if KEBAB.fullmatch(k)}


def code_anomalies() -> set[str]:
    kinds: set[str] = set()
    for m in protocol_modules():
        kinds |= set(getattr(m, "ANOMALIES", ()))
    return kinds


def _keys_of(subscripted: str) -> set[str]:
    """Every key of ``<...>.<subscripted>[key]`` / ``<subscripted>[key]`` in dissect's code."""
    keys: set[str] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if name.endswith("__main__"):
            continue  # runs the command line when imported
        module = importlib.import_module(name.removesuffix(".__init__"))
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Subscript):
                continue
            v = node.value
            target = v.attr if isinstance(v, ast.Attribute) else v.id if isinstance(v, ast.Name) else ""
            if target == subscripted:
                keys.update(t for t in _text_of(node.slice, module) if KEBAB.fullmatch(t.replace("{}", "x")))
    return keys


def _pattern(name: str) -> str:
    """A documented name with a number placeholder (``ip-proto-N``, ``ethertype-0xNNNN``) as the
    code's f-string shape (``ip-proto-{}``)."""
    return re.sub(r"N+$", "{}", name)


def _compare(code: set[str], doc: set[str], what: str) -> None:
    missing = sorted(code - doc)
    stale = sorted(doc - code)
    assert not missing and not stale, (
        f"{what}: written by the code but not in docs/REPORTS.md: {missing}; "
        f"documented but never written: {stale}")


def test_the_section_has_its_tables() -> None:
    headings = documented()
    for prefix in ("Anomalies in `sessions`", "Anomalies in `http`", "Anomalies in `ws_frames`",
                   "Anomalies in `sio_packets`", "Warnings", "Decode counters"):
        assert any(h.startswith(prefix) and headings[h] for h in headings), prefix


def test_anomaly_kinds_documented_both_ways() -> None:
    _compare(code_anomalies(), doc_kinds("Anomalies"), "anomaly kinds")


def test_each_module_lists_every_tag_it_writes() -> None:
    every = code_anomalies()
    checked = 0
    for m in protocol_modules():
        listed = set(getattr(m, "ANOMALIES", ())) | set(getattr(m, "DECODE_COUNTERS", ()))
        unknown = written_tags(m) - every - listed
        assert not unknown, f"{m.__name__} writes {sorted(unknown)}, in no module's ANOMALIES tuple"
        own = written_tags(m, own=True) - set(getattr(m, "DECODE_COUNTERS", ()))
        if own:
            checked += 1
            unlisted = own - set(getattr(m, "ANOMALIES", ()))
            assert not unlisted, f"{m.__name__} writes {sorted(unlisted)} but its ANOMALIES tuple lacks them"
    assert checked >= 9  # http, websocket, socketio, engineio.packets, registry, tls: 4 modules


def test_the_tag_scan_sees_tags() -> None:
    """The scan is not vacuous: it finds literal tags where the code writes them."""
    from dissect.protocols.http import dissector as http_dissector
    from dissect.protocols.tls import cipher, connection, dissector, records

    assert {"no-response", "bad-request-line"} <= written_tags(http_dissector)
    assert "tls-fatal-alert" in written_tags(dissector)
    assert "tls-lost-bytes" in written_tags(connection)
    assert "tls-bad-mac" in written_tags(cipher)
    assert "tls-record-too-large" in written_tags(records)


def test_warning_kinds_documented_both_ways() -> None:
    code = set(reader.WARNINGS) | _keys_of("warnings")
    assert "unknown-link-type" in code and "truncated-file" in code
    _compare(code, doc_kinds("Warnings"), "summary.json warnings")


def test_decode_counters_documented_both_ways() -> None:
    code = _keys_of("counters")
    for m in protocol_modules():
        assert set(getattr(m, "DECODE_COUNTERS", ())) <= code, m.__name__
    assert {"ip-proto-{}", "ethertype-0x{}", "tunnel-vxlan", "tunnel-geneve"} <= code
    _compare(code, {_pattern(n) for n in doc_kinds("Decode counters")}, "summary.json decode counters")


def test_kinds_in_the_reviewed_reports_are_documented() -> None:
    """What dissect wrote on the corpus (reports/*/summary.json) is all documented."""
    anomalies = doc_kinds("Anomalies")
    warnings = doc_kinds("Warnings")
    decode = {_pattern(n) for n in doc_kinds("Decode counters")}
    seen = 0
    for path in sorted((ROOT / "reports").glob("*/summary.json")):
        s = json.loads(path.read_text(encoding="utf-8"))
        for kind in s["anomalies"]["by_kind"]:
            assert kind in anomalies, (path, kind)
            seen += 1
        for kind in s["warnings"]["by_kind"]:
            assert kind in warnings, (path, kind)
        for name in s.get("decode", {}):
            assert re.sub(r"(?<=-)(0x)?[0-9a-f]+$", lambda m: (m.group(1) or "") + "{}", name) in decode \
                or name in decode, (path, name)
    assert seen


def test_a_truncated_capture_warns_with_a_documented_kind(tmp_path: Path) -> None:
    """A real capture cut short: its warning kind is one of the documented ones."""
    from dissect.api import run

    data = (ROOT / "captures" / "ws_basic.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 7])
    result = run([str(cut)], [], quiet=True)
    kinds = set(result.summary["warnings"]["by_kind"])
    assert kinds == {"truncated-file"}
    assert kinds <= doc_kinds("Warnings")
