"""The HTML report: well formed, self-contained, complete, honest about undefined figures,
deterministic, and rendered by headless Chromium without console errors.

The Chromium test needs Debian's ``chromium`` package on PATH (CI installs it). It is skipped
only when Chromium is missing outside CI; under CI (``CI`` set) a missing browser fails.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from detectors.an0030 import AsymmetricOutbound
from detectors.an0144 import UnseenProcessHttpsVolume
from harness.analytics import ANALYTICS
from harness.cli import parse_assignments, parse_seeds
from harness.fields import Profile
from harness.holdout import drawn_knob_plan, held_out_seed_plan, holdout_section
from harness.registry import DETECTORS, REPORTERS, SCENARIOS
from harness.reporters.html import (
    HtmlReporter,
    detector_facts,
    known_gaps,
    render_html,
    reproduce_command,
)
from harness.results import build_results, plan_section, validate
from harness.runner import DetectorSpec, RunPlan, ScenarioSpec, run_plan
from scenarios.https_exfil import HttpsExfil
from tests.conftest import SMALL

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def doc() -> Doc:
    """A real small run: one attack scenario, two detectors (one tunable changed), a threshold
    sweep, held-out seeds and one drawn knob setting. Three analytics have no detector."""
    plan = RunPlan(
        scenarios=(ScenarioSpec(scenario=HttpsExfil, overrides=SMALL),),
        detectors=(
            DetectorSpec(detector=UnseenProcessHttpsVolume),
            DetectorSpec(detector=AsymmetricOutbound, tunables={"min_pcr": 0.5}),
        ),
        seeds=(0,),
        sweep_points=3,
    )
    seed_plan = held_out_seed_plan(plan)
    knob_plan = drawn_knob_plan(plan, 1)
    assert knob_plan is not None
    held = holdout_section(seed_plan, run_plan(seed_plan), knob_plan, run_plan(knob_plan))
    result = build_results(plan, run_plan(plan), held_out=held)
    validate(result)
    return result


@pytest.fixture(scope="module")
def page(doc: Doc) -> str:
    return HtmlReporter().render(doc)


# --------------------------------------------------------------------------- a small HTML checker

VOID = frozenset(
    "area base br col embed hr img input link meta source track wbr".split()  # noqa: SIM905
)
#: Attributes that make a browser fetch something.
FETCHING = frozenset({"src", "href", "action", "data", "poster", "srcset", "formaction"})
EXTERNAL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


class Checker(HTMLParser):
    """Collects structural problems: unbalanced tags, duplicate ids, tables without captions,
    charts without an accessible name, external references, and the visible text per section."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.ids: list[str] = []
        self.labelledby: list[str] = []
        self.doctype = ""
        self.external: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.last_start = ""
        self.text: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if self.last_start == "table" and tag != "caption":
            self.problems.append("a <table> whose first child is not a <caption>")
        self.last_start = tag
        if a.get("id"):
            self.ids.append(str(a["id"]))
        if a.get("aria-labelledby"):
            self.labelledby += str(a["aria-labelledby"]).split()
        for name, value in attrs:
            if name in FETCHING and value and EXTERNAL.match(value):
                self.external.append(f"<{tag} {name}={value!r}>")
            if name == "xlink:href" and value and not value.startswith("#"):
                self.external.append(f"<{tag} {name}={value!r}>")
        if tag == "svg" and (a.get("role") != "img" or not a.get("aria-labelledby")):
            self.problems.append(f"an <svg> without role=img and aria-labelledby: {a}")
        if tag == "img" and "alt" not in a:
            self.problems.append("an <img> without alt")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()  # self-closed SVG element

    def handle_endtag(self, tag: str) -> None:
        self.last_start = ""
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if data.strip() and self.last_start == "table":
            self.problems.append("text directly inside <table>")
        self.text.append(data)


def check(page: str) -> Checker:
    parser = Checker()
    parser.feed(page)
    parser.close()
    return parser


def section_text(page: str, section_id: str) -> str:
    return "".join(check(section_html(page, section_id)).text)


def table_rows(fragment: str) -> list[list[str]]:
    """The body rows of every table in ``fragment``, each as its cells' text."""
    rows = []
    for body in re.findall(r"<tbody>(.*?)</tbody>", fragment, re.S):
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
            cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
            rows.append(["".join(check(c).text) for c in cells])
    return rows


def section_html(page: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}".*?</section>(?=<section|</main>)', page, re.S)
    assert match, f"no section {section_id!r}"
    return match.group(0)


def summary_cells(page: str) -> dict[str, list[str]]:
    """Summary table: analytic -> its cells as text."""
    return {row[0]: row for row in table_rows(section_html(page, "summary"))}


# --------------------------------------------------------------------------- structure


def test_page_is_well_formed_html5(page: str) -> None:
    parser = check(page)
    assert parser.doctype.lower() == "doctype html"
    assert parser.tags[0] == ("html", {"lang": "en"})
    assert parser.problems == []
    assert parser.stack == [], f"unclosed: {parser.stack}"
    assert len(parser.ids) == len(set(parser.ids)), "duplicate ids"
    missing = set(parser.labelledby) - set(parser.ids)
    assert not missing, f"aria-labelledby points at missing ids {missing}"
    assert [t for t, _ in parser.tags].count("h1") == 1
    assert sum(1 for t, _ in parser.tags if t == "svg") >= 8  # rate, FA, latency, bytes, 2+2


def test_no_external_reference_and_no_script(page: str) -> None:
    parser = check(page)
    assert parser.external == []
    tags = {t for t, _ in parser.tags}
    assert not tags & {"script", "iframe", "object", "embed", "img"}
    assert not re.search(r"url\(|@import", page, re.IGNORECASE)
    csp = [a for t, a in parser.tags if t == "meta" and a.get("http-equiv")]
    assert csp
    assert "default-src 'none'" in str(csp[0]["content"])
    links = [a for t, a in parser.tags if t == "link"]
    assert all(str(a.get("href", "")).startswith("data:") for a in links)


def test_registered_so_run_writes_report_html() -> None:
    cls = REPORTERS.load("html")
    assert cls is HtmlReporter
    assert cls.filename == "report.html"


def test_same_document_gives_the_same_bytes(doc: Doc, page: str) -> None:
    assert HtmlReporter().render(copy.deepcopy(doc)) == page


# --------------------------------------------------------------------------- content


def test_every_analytic_appears_in_every_per_analytic_view(doc: Doc, page: str) -> None:
    assert set(summary_cells(page)) == set(ANALYTICS)
    for section in ("detection", "false-alerts", "latency", "bytes", "readiness"):
        text = section_text(page, section)
        for aid in ANALYTICS:
            assert aid in text, f"{aid} missing from section {section}"
    for a in doc["analytics"].values():
        assert a["title"] in page


def test_null_renders_na_never_zero(doc: Doc, page: str) -> None:
    cells = summary_cells(page)
    nulls = 0
    for aid, a in doc["analytics"].items():
        row = cells[aid]
        rate, fa, _, precision, latency, bytes_ = row[4:10]
        if a["detection_rate"]["value"] is None:
            assert rate == "n/a"
            nulls += 1
        else:
            assert rate.startswith(f"{a['detection_rate']['value']:.2f} [")
        assert (fa == "n/a") == (a["false_alerts_per_100_host_days"]["value"] is None)
        assert (precision == "n/a") == (a["precision"]["value"] is None)
        median = a["latency_s"]["median"]
        assert latency.startswith("n/a /") == (median is None)
        assert bytes_.startswith("n/a /") == (a["bytes_before_alert"]["median"] is None)
        if a["status"] == "no_detector":
            assert {rate, fa, precision, latency, bytes_} <= {"n/a", "n/a / n/a"}
    assert nulls >= 3  # three analytics have no detector in this run
    # the chart rows of undefined rates say so instead of drawing a dot at zero
    assert section_text(page, "detection").count("n/a (undefined)") == nulls


def test_null_inside_sweep_and_held_out_renders_na(doc: Doc) -> None:
    broken = copy.deepcopy(doc)
    point = broken["analytics"]["AN0144"]["sweep"]["points"][0]
    point["detection_rate"] = {"value": None, "ci_low": None, "ci_high": None}
    point["expected_actors"] = point["detected_actors"] = 0
    broken["held_out"]["seeds"]["analytics"]["AN0144"]["latency_s"] = {
        "median": None,
        "p95": None,
    }
    validate(broken)
    page = render_html(broken)
    sweep_rows = table_rows(section_html(page, "sweeps"))
    first = next(r for r in sweep_rows if r[0].rstrip(" *") == f"{point['value']:,.0f}")
    assert first[1] == "n/a"
    held = table_rows(section_html(page, "held-out"))
    row = next(r for r in held if r[:2] == ["AN0144", "held-out seeds"])
    assert row[4] == "n/a / n/a"


def test_sections_present(doc: Doc, page: str) -> None:
    for sid in (
        "summary",
        "detection",
        "false-alerts",
        "latency",
        "bytes",
        "sweeps",
        "held-out",
        "catalogue",
        "readiness",
        "known-gaps",
        "provenance",
    ):
        assert f'<section id="{sid}"' in page
    plain = copy.deepcopy(doc)
    plain["held_out"] = None
    for a in plain["analytics"].values():
        a["sweep"] = None
    other = render_html(plain)
    assert '<section id="sweeps"' not in other
    assert '<section id="held-out"' not in other


def test_catalogue_lists_every_actor_with_its_labels(doc: Doc, page: str) -> None:
    text = section_text(page, "catalogue")
    for scen in doc["scenarios"].values():
        for actor in scen["actors"]:
            assert actor["actor_id"] in text
            assert actor["description"] in text
            for t in actor["techniques"]:
                assert t in text
    assert "caught 1/1" in text or "caught 0/1" in text
    assert "false alert" in text


def test_per_actor_latency_points_match_the_document(doc: Doc, page: str) -> None:
    caught = [
        d["latency_s"]
        for scen in doc["scenarios"].values()
        for actor in scen["actors"]
        for run in actor["runs"]
        for aid, d in run["detections"].items()
        if d["detected"] and aid in actor["expected_analytics"]
    ]
    assert caught, "the fixture run should catch something"
    latency = re.search(r'<svg[^>]*aria-labelledby="chart-latency-t.*?</svg>', page, re.S)
    assert latency
    assert latency.group(0).count('fill-opacity="0.55"') == len(caught)


def test_provenance_and_reproducing_command(doc: Doc, page: str) -> None:
    text = section_text(page, "provenance")
    run = doc["run"]
    for item in (doc["harness_version"], doc["schema_version"], run["config_digest"]):
        assert item in text
    assert "min_pcr" in text
    assert "(changed)" in text
    command = reproduce_command(doc, {d["id"]: detector_facts(d["id"]) for d in run["detectors"]})
    assert command is not None
    assert command in text
    # the command rebuilds the same plan, hence the same configuration digest
    args = shlex.split(command)
    assert args[:2] == ["egress-harness", "run"]

    def values(flag: str) -> list[str]:
        return [args[i + 1] for i, a in enumerate(args) if a == flag]

    params = parse_assignments(values("--param"), "--param")
    tunables = parse_assignments(values("--tunable"), "--tunable")
    plan = RunPlan(
        scenarios=tuple(
            ScenarioSpec(scenario=SCENARIOS.load(i), overrides=params.get(i, {}))
            for i in values("--scenario")
        ),
        detectors=tuple(
            DetectorSpec(detector=DETECTORS.load(i), tunables=tunables.get(i, {}))
            for i in values("--detector")
        ),
        seeds=parse_seeds(values("--seeds")[0]),
        profile=Profile(values("--profile")[0]),
        sweep_points=int(values("--sweep")[0]),
    )
    assert plan_section(plan)["config_digest"] == run["config_digest"]
    assert "--holdout" in args


def test_known_gaps_of_every_registered_detector() -> None:
    for name in DETECTORS.names():
        facts = detector_facts(name)
        assert facts.installed
        assert facts.gaps, f"{name}: no 'Known gaps:' items in {facts.module}"
        assert all(len(g) > 20 for g in facts.gaps)


def test_known_gaps_in_the_page(doc: Doc, page: str) -> None:
    text = " ".join(section_text(page, "known-gaps").split())
    for d in doc["run"]["detectors"]:
        module = sys.modules[DETECTORS.load(d["id"]).__module__]
        for gap in known_gaps(module.__doc__):
            assert " ".join(gap.replace("``", "").split()) in text


def test_known_gaps_parser() -> None:
    doc = """Title.

    Body text.

    Known gaps:
      * First gap that wraps
        onto a second line.
      - Second gap with ``code``.

      A closing paragraph.
    """
    assert known_gaps(doc) == [
        "First gap that wraps onto a second line.",
        "Second gap with ``code``.",
        "A closing paragraph.",
    ]
    assert known_gaps("No section here.") == []
    assert known_gaps(None) == []


def test_readiness_against_the_profile(doc: Doc) -> None:
    ready = section_text(render_html(doc), "readiness")
    assert "ready" in ready
    assert "needed, missing" not in ready
    network = copy.deepcopy(doc)
    network["run"]["profile"] = "network-only"
    text = section_text(render_html(network), "readiness")
    # AN0144's detector judges processes; a packet capture has no process identity
    assert "needed, missing" in text
    assert re.search(r"AN0144.*?not evaluable: missing [a-z.]*process", text, re.S)


def test_foreign_detector_not_installed_is_na(doc: Doc) -> None:
    foreign = copy.deepcopy(doc)
    foreign["run"]["detectors"][0]["id"] = "acme-not-installed"
    foreign["analytics"]["AN0144"]["detector"] = "acme-not-installed"
    page = render_html(foreign)
    assert "n/a: the detector is not installed here" in page
    assert "n/a (detector not installed)" in page


def test_frontier_section(doc: Doc) -> None:
    frontier = {
        "schema_version": "1.0",
        "harness_version": doc["harness_version"],
        "seeds": [0, 1],
        "profile": "edr",
        "detectors": [],
        "errors": [],
        "frontier": [
            {
                "scenario": "https-exfil",
                "actor": "unseen-uploader",
                "description": "d",
                "analytic": "AN0144",
                "detector": "an0144-unseen-process-https",
                "knob": "chunk_bytes",
                "ladder": [
                    {"value": 4_000_000, "caught_seeds": 2, "seeds": 2},
                    {"value": 1_000_000, "caught_seeds": 1, "seeds": 2},
                ],
                "weakest_caught": 4_000_000,
                "caught_at_hardest": False,
                "unobservable_without": [],
            }
        ],
    }
    page = HtmlReporter(frontier=frontier).render(doc)
    text = section_text(page, "frontier")
    assert "unseen-uploader" in text
    assert "4_000_000 ✔ → 1_000_000 ✘ (1/2)" in text
    assert check(page).problems == []


# --------------------------------------------------------------------------- headless Chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Chromium writes console messages to stderr as "[...:INFO:CONSOLE:12] "text", source: ..."
#: (older builds: "CONSOLE(12)"); uncaught exceptions read "Uncaught ...".
CONSOLE = re.compile(r":CONSOLE[:(]\d+|Uncaught")


def _chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (CI installs Debian's chromium package)")
        pytest.skip("chromium is not installed")
    return CHROMIUM


def _screenshot(browser: str, html: Path, png: Path, profile: Path) -> list[str]:
    """Render ``html`` to ``png`` at 1400x3000; the console lines Chromium logged."""
    proc = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={png}",
            "--window-size=1400,3000",
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line for line in proc.stderr.splitlines() if CONSOLE.search(line)]


def _png_size(png: Path) -> tuple[int, int]:
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.slow
def test_renders_in_headless_chromium_without_console_errors(page: str, tmp_path: Path) -> None:
    browser = _chromium()
    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")
    png = tmp_path / "report.png"
    console = _screenshot(browser, report, png, tmp_path / "profile-report")
    assert console == []
    assert _png_size(png) == (1400, 3000)

    # Control: the same scan does see a console error and an uncaught exception, and a page
    # with almost nothing on it gives a far smaller screenshot than the report.
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html lang="en"><head><title>x</title></head><body><p>x</p>'
        '<script>console.error("control-error"); throw new Error("control-throw");</script>'
        "</body></html>",
        encoding="utf-8",
    )
    bad_png = tmp_path / "bad.png"
    bad_console = _screenshot(browser, bad, bad_png, tmp_path / "profile-bad")
    assert any("control-error" in line for line in bad_console), bad_console
    assert any("Uncaught" in line for line in bad_console), bad_console
    assert png.stat().st_size > 10 * bad_png.stat().st_size
