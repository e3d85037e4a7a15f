"""JUnit XML reporter: the results as test cases a CI system can display and track.

Layout (Jenkins/Ant-style JUnit XML, the dialect Jenkins, GitLab, GitHub test-report actions
and Azure Pipelines read; validated in the tests against the Jenkins xUnit plugin's
``junit-10.xsd``)::

    <testsuites name="egress-harness">
      <testsuite name="egress-harness.AN0144">       one suite per analytic
        <properties>                                  its figures: rates with intervals, counts
        <testcase classname="egress-harness.AN0144" name="https-exfil">
                                                      fails when an expected actor was missed
        <testcase ... name="must-not-fire: backup-agent">
                                                      fails when that benign trap drew an alert

A test case is *skipped* when its analytic has no detector or is not evaluable under the
profile, or when no malicious actor of the scenario is expected to fire the analytic; it is an
*error* when the detector raised. The gate adds a suite ``egress-harness.gate`` with one test
case per rule checked (:func:`render_junit` with ``gate``).

The output is deterministic: the results document has no wall-clock figure, so every ``time``
is ``0``.
"""

from __future__ import annotations

import re

# Only ever used to write XML: nothing untrusted is parsed.
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from harness.gate import GateReport

__all__ = ["SUITE", "JunitReporter", "render_junit"]

#: Prefix of every suite name and test-case class name.
SUITE = "egress-harness"

# Characters XML 1.0 cannot carry, even escaped.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: object) -> str:
    return _INVALID_XML.sub("\ufffd", str(text))


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:g}"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _bytes(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,} bytes"


class _Suite:
    """Counters and element of one ``<testsuite>`` while its cases are added."""

    def __init__(self, parent: ET.Element, name: str) -> None:
        self.element = ET.SubElement(parent, "testsuite", {"name": name})
        self.properties = ET.SubElement(self.element, "properties")
        self.tests = self.failures = self.errors = self.skipped = 0

    def prop(self, name: str, value: object) -> None:
        text = "n/a" if value is None else value
        ET.SubElement(self.properties, "property", {"name": name, "value": _clean(text)})

    def case(
        self,
        classname: str,
        name: str,
        *,
        outcome: str = "passed",
        kind: str = "",
        message: str = "",
        details: str = "",
        output: str = "",
    ) -> None:
        """One test case; ``outcome`` is passed, failure, error or skipped."""
        case = ET.SubElement(
            self.element,
            "testcase",
            {"classname": _clean(classname), "name": _clean(name), "time": "0"},
        )
        self.tests += 1
        if outcome != "passed":
            attrs = {"message": _clean(message)}
            if kind:
                attrs["type"] = kind
            el = ET.SubElement(case, outcome, attrs)
            if details:
                el.text = _clean(details)
            if outcome == "failure":
                self.failures += 1
            elif outcome == "error":
                self.errors += 1
            else:
                self.skipped += 1
        if output:
            ET.SubElement(case, "system-out").text = _clean(output)

    def close(self) -> None:
        if not len(self.properties):
            self.element.remove(self.properties)
        for key in ("tests", "failures", "errors", "skipped"):
            self.element.set(key, str(getattr(self, key)))
        self.element.set("time", "0")


def _analytic_properties(suite: _Suite, aid: str, a: Mapping[str, Any], run: Any) -> None:
    c = a["counts"]
    suite.prop("analytic", aid)
    suite.prop("title", a["title"])
    suite.prop("detector", a["detector"])
    suite.prop("status", a["status"])
    if a["missing_fields"]:
        suite.prop("missing_fields", ", ".join(a["missing_fields"]))
    for name in ("detection_rate", "precision", "false_alerts_per_100_host_days"):
        for part in ("value", "ci_low", "ci_high"):
            suffix = "" if part == "value" else f".{part}"
            suite.prop(f"{name}{suffix}", _num(a[name][part]))
    suite.prop("latency_s.median", _num(a["latency_s"]["median"]))
    suite.prop("latency_s.p95", _num(a["latency_s"]["p95"]))
    suite.prop("bytes_before_alert.median", _num(a["bytes_before_alert"]["median"]))
    suite.prop("bytes_before_alert.p95", _num(a["bytes_before_alert"]["p95"]))
    for key in (
        "expected_actors",
        "detected_actors",
        "unobservable_actors",
        "true_alerts",
        "false_alerts",
        "errors",
    ):
        suite.prop(f"counts.{key}", c[key])
    suite.prop("counts.host_days", _num(c["host_days"]))
    suite.prop("profile", run["profile"])
    suite.prop("seeds", ",".join(map(str, run["seeds"])))
    for det in run["detectors"]:
        if det["analytic"] == aid:
            for name, value in sorted(det["tunables"].items()):
                suite.prop(f"tunable.{name}", _num(value))
    suite.prop("config_digest", run["config_digest"])


def _scenario_case(
    suite: _Suite, aid: str, name: str, scen: Mapping[str, Any], errors: list[str]
) -> None:
    classname = f"{SUITE}.{aid}"
    m = scen["analytics"].get(aid)
    status = m["status"] if m is not None else "no_detector"
    if status == "no_detector":
        suite.case(classname, name, outcome="skipped", message=f"no detector for {aid}")
        return
    if status == "not_evaluable":
        missing = ", ".join(m["missing_fields"]) if m else ""
        suite.case(
            classname,
            name,
            outcome="skipped",
            message=f"{aid} is not evaluable under this profile: missing {missing}",
        )
        return
    lines: list[str] = []
    missed: list[str] = []
    detected = 0
    for actor in scen["actors"]:
        if actor["kind"] != "malicious":
            continue
        for run in actor["runs"]:
            hit = run["detections"].get(aid)
            if hit is None:
                continue
            label = f"{actor['actor_id']} seed {run['seed']}"
            if hit["detected"]:
                detected += 1
                lines.append(
                    f"{label}: detected after {_seconds(hit['latency_s'])} and "
                    f"{_bytes(hit['bytes_before_alert'])} ({hit['true_alerts']} true alerts)"
                )
            else:
                missed.append(label)
                lines.append(f"{label}: MISSED ({_bytes(run['bytes_total'])} sent)")
    counts = m["counts"] if m is not None else {}
    if counts.get("false_alerts"):
        lines.append(f"false alerts of {aid} in this scenario: {counts['false_alerts']}")
    output = "\n".join(lines)
    if counts.get("errors"):
        suite.case(
            classname,
            name,
            outcome="error",
            kind="detector-error",
            message=f"the detector raised in {counts['errors']} run(s)",
            details="\n".join(errors),
            output=output,
        )
    elif missed:
        suite.case(
            classname,
            name,
            outcome="failure",
            kind="missed-detection",
            message=f"missed {len(missed)} of {len(missed) + detected} expected actor runs: "
            + ", ".join(missed),
            output=output,
        )
    elif not detected:
        unobservable = counts.get("unobservable_actors", 0)
        why = (
            f"{unobservable} expected actor run(s) unobservable under this profile"
            if unobservable
            else f"no malicious actor of this scenario is expected to fire {aid}"
        )
        suite.case(classname, name, outcome="skipped", message=why, output=output)
    else:
        suite.case(classname, name, output=output)


def _trap_cases(suite: _Suite, aid: str, doc: Mapping[str, Any]) -> None:
    classname = f"{SUITE}.{aid}"
    status = doc["analytics"][aid]["status"]
    runs_by_trap: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for scen_id, scen in doc["scenarios"].items():
        for actor in scen["actors"]:
            if actor["kind"] == "benign" and aid in actor["trap_for"]:
                for run in actor["runs"]:
                    n = run["false_alerts"].get(aid, 0)
                    runs_by_trap[actor["actor_id"]].append((scen_id, run["seed"], n))
    for actor_id in sorted(runs_by_trap):
        name = f"must-not-fire: {actor_id}"
        runs = runs_by_trap[actor_id]
        if status in ("no_detector", "not_evaluable"):
            suite.case(classname, name, outcome="skipped", message=f"{aid} is {status}")
            continue
        if status == "error":
            suite.case(
                classname,
                name,
                outcome="error",
                kind="detector-error",
                message="the detector raised in every run; the trap was not tested",
            )
            continue
        fired = [(s, seed, n) for s, seed, n in runs if n]
        output = f"{len(runs)} actor run(s) over {len({s for s, _, _ in runs})} scenario(s)"
        if fired:
            total = sum(n for _, _, n in fired)
            where = ", ".join(f"{s} seed {seed}: {n}" for s, seed, n in fired)
            suite.case(
                classname,
                name,
                outcome="failure",
                kind="false-alert",
                message=f"{total} false alert(s) on benign trap {actor_id}: {where}",
                output=output,
            )
        else:
            suite.case(classname, name, output=output)


def _gate_suite(root: ET.Element, gate: GateReport) -> _Suite:
    suite = _Suite(root, f"{SUITE}.gate")
    suite.prop("policy", gate.policy)
    suite.prop("results", gate.results)
    suite.prop("baseline", gate.baseline or "none")
    suite.prop("verdict", "pass" if gate.passed else "fail")
    for check in gate.checks:
        suite.case(
            f"{SUITE}.gate.{check.analytic}",
            check.rule,
            outcome="passed" if check.passed else "failure",
            kind="policy-violation",
            message=check.line(),
            output=f"observed {check.observed}, limit {check.limit}"
            + (f" ({check.detail})" if check.detail else ""),
        )
    if gate.notes:
        ET.SubElement(suite.element, "system-out").text = _clean("\n".join(gate.notes))
    return suite


def render_junit(doc: Mapping[str, Any], *, gate: GateReport | None = None) -> str:
    """The JUnit XML of a results document (and of a gate run over it)."""
    root = ET.Element("testsuites", {"name": SUITE})
    suites: list[_Suite] = []
    errors_by: dict[tuple[str, str], list[str]] = defaultdict(list)
    for aid, a in doc["analytics"].items():
        for message in a["errors"]:
            scen_id = message.split(" seed ", 1)[0]
            errors_by[(aid, scen_id)].append(message)
    for aid, a in doc["analytics"].items():
        suite = _Suite(root, f"{SUITE}.{aid}")
        _analytic_properties(suite, aid, a, doc["run"])
        for name, scen in doc["scenarios"].items():
            _scenario_case(suite, aid, name, scen, errors_by[(aid, name)])
        _trap_cases(suite, aid, doc)
        suites.append(suite)
    if gate is not None:
        suites.append(_gate_suite(root, gate))
    for suite in suites:
        suite.close()
    for key in ("tests", "failures", "errors"):
        root.set(key, str(sum(getattr(s, key) for s in suites)))
    root.set("time", "0")
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


class JunitReporter:
    id: ClassVar[str] = "junit"
    filename: ClassVar[str | None] = "junit.xml"

    def render(self, doc: Mapping[str, Any]) -> str:
        return render_junit(doc)
