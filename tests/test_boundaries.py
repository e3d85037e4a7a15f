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
