"""Rule results as JUnit XML, the test report format CI systems read: one ``<testcase>`` per rule."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from dissect.report.check.results import RuleResult
from dissect.report.terminal import safe_text

_XML_BAD = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(s: str) -> str:
    return _XML_BAD.sub("\ufffd", s)


def junit_xml(
    results: Sequence[RuleResult], suite: str = "dissect.check", classname: str = "dissect.check"
) -> str:
    """A JUnit XML document: one ``<testcase>`` per rule, ``<failure>`` with the offenders."""
    import xml.etree.ElementTree as ET

    failures = sum(1 for r in results if not r.passed)
    root = ET.Element(
        "testsuites",
        name=_xml_text(suite),
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
    )
    ts = ET.SubElement(
        root,
        "testsuite",
        name=_xml_text(suite),
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time="0",
    )
    for r in results:
        tc = ET.SubElement(
            ts,
            "testcase",
            classname=_xml_text(classname),
            name=_xml_text(safe_text(r.name, None)),
            time="0",
        )
        if r.passed:
            ET.SubElement(tc, "system-out").text = _xml_text(r.message)
        else:
            fail = ET.SubElement(tc, "failure", message=_xml_text(r.message), type="RuleFailed")
            fail.text = _xml_text("\n".join(r.lines()))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(
    results: Sequence[RuleResult], path: str | os.PathLike[str], suite: str = "dissect.check"
) -> None:
    """Write :func:`junit_xml` of ``results`` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(junit_xml(results, suite=suite, classname=suite))


def junit_error_xml(message: str, suite: str = "dissect.check") -> str:
    """A JUnit XML document for a run that could not check anything (exit 2: an unreadable capture,
    an unusable rules file or baseline): one ``<testcase>`` named after the suite with an
    ``<error>`` saying why, so that a CI publisher run after a failed step still finds a report."""
    import xml.etree.ElementTree as ET

    text = _xml_text(safe_text(message, None))
    root = ET.Element("testsuites", name=_xml_text(suite), tests="1", failures="0", errors="1")
    ts = ET.SubElement(root, "testsuite", name=_xml_text(suite), tests="1", failures="0",
                       errors="1", skipped="0", time="0")
    tc = ET.SubElement(ts, "testcase", classname=_xml_text(suite), name=_xml_text(suite), time="0")
    ET.SubElement(tc, "error", message=text, type="UnusableInput").text = text
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit_error(message: str, path: str | os.PathLike[str], suite: str = "dissect.check") -> None:
    """Write :func:`junit_error_xml` to ``path`` (UTF-8)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(junit_error_xml(message, suite))
