"""Architecture rules that are easy to break by accident: detectors never see ground truth or
scenarios, the model depends on neither package, and library code never prints."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("detectors"), ids=lambda p: p.name)
def test_detectors_never_import_scenarios_or_truth(path: Path) -> None:
    bad = {
        m
        for m in _imports(path)
        if m.startswith("scenarios") or m in {"harness.truth", "harness.scoring"}
    }
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("harness"), ids=lambda p: p.name)
def test_harness_never_imports_scenarios_or_detectors(path: Path) -> None:
    bad = {m for m in _imports(path) if m.split(".")[0] in {"scenarios", "detectors"}}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("scenarios"), ids=lambda p: p.name)
def test_scenarios_never_import_detectors(path: Path) -> None:
    bad = {m for m in _imports(path) if m.split(".")[0] == "detectors"}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def _code_strings(path: Path) -> set[str]:
    """String constants of a module, docstrings excluded (they may explain the suite)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return {
        n.value.lower()
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
    }


@pytest.fixture(scope="module")
def suite_vocabulary() -> set[str]:
    """Names a detector tuned to our own suite would be tempted to test for: scenario and actor
    ids, every domain and address the scenarios use, and their process names outside Windows."""
    from detectors.features.dns import default_matcher
    from harness.events import DnsQuery, NetworkFlow, ProcessStart
    from harness.registry import SCENARIOS
    from scenarios.strategies import SMALL_OFFICE

    psl = default_matcher()
    words: set[str] = set()
    for name in SCENARIOS.names():
        scenario = SCENARIOS.load(name)()
        words.add(name)
        run = scenario.generate(scenario.params(dict(SMALL_OFFICE)), 0)
        words.update(a.actor_id for a in run.truth.actors)
        for e in run.telemetry.events:
            if isinstance(e, DnsQuery):
                words.add(psl.registered_domain(e.query).lower())
            elif isinstance(e, NetworkFlow):
                words.add(e.dst_ip)
                if e.server_name:
                    words.add(psl.registered_domain(e.server_name).lower())
            elif isinstance(e, ProcessStart) and not e.image.lower().startswith(r"c:\windows"):
                words.add(e.image.lower())
    return {w for w in words if len(w) >= 6}


@pytest.mark.parametrize("path", _modules("detectors"), ids=lambda p: p.name)
def test_detectors_never_name_what_the_suite_contains(
    path: Path, suite_vocabulary: set[str]
) -> None:
    """Detectors must not branch on scenario or actor names, ids, domains or addresses: no
    string in their code (docstrings aside) contains one."""
    hits = sorted((s, w) for s in _code_strings(path) for w in suite_vocabulary if w in s)
    assert not hits, f"{path.relative_to(ROOT)} names suite content: {hits[:5]}"
