"""The README's examples are real: the Quick start has exactly two commands and the plugin
example passes the conformance kit as written.

The example detector is checked as if it lived in this module, whose docstring therefore carries
the section the kit requires.

Known gaps:
  The README example is a toy rule, on purpose: it shows the contract, not good detection.
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.testing import check_detector
from scenarios.https_exfil import HttpsExfil

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_quick_start_has_exactly_two_commands() -> None:
    block = re.search(r"```bash\n(.*?)```", _section("Quick start"), re.S)
    assert block is not None
    commands = [ln for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(commands) == 2
    assert "egress-harness run" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_quick_start_test_command() -> None:
    block = re.search(r"```bash\n(.*?)```", _section("Quick start"), re.S)
    assert block is not None
    test_command = block.group(1).strip().splitlines()[1]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()


def test_plugin_example_passes_the_conformance_kit() -> None:
    blocks = re.findall(r"```python\n(.*?)```", _section("Writing a plugin"), re.S)
    example = next(b for b in blocks if "class MyRule" in b)
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(example, "README.md", "exec"), namespace)
    rule = namespace["MyRule"]
    rule.__module__ = __name__  # type: ignore[attr-defined]
    check_detector(rule, HttpsExfil)  # type: ignore[arg-type]


def test_strategies_example_runs_as_written() -> None:
    section = _section("Scenarios, synthetic telemetry and property tests")
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    code = "\n".join(
        line[2:] if line.startswith("  ") else line for line in block.group(1).splitlines()
    )
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    test = namespace["test_my_detector_never_raises"]
    assert callable(test)
    test()
