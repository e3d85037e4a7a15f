"""Console reporter: the per-analytic table, plus the errors that need attention."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from tabulate import tabulate

from harness.reporters._table import HEADERS, HOLDOUT_HEADERS, holdout_rows, summary_rows

__all__ = ["ConsoleReporter"]


class ConsoleReporter:
    id: ClassVar[str] = "console"
    filename: ClassVar[str | None] = None

    def render(self, doc: Mapping[str, Any]) -> str:
        run = doc["run"]
        head = (
            f"egress-harness {doc['harness_version']}: {len(run['scenarios'])} scenario(s) x "
            f"{len(run['seeds'])} seed(s), profile {run['profile']}"
        )
        table = tabulate(summary_rows(doc), headers=HEADERS, tablefmt="simple")
        lines = [head, "", table]
        held = holdout_rows(doc)
        if held:
            lines += [
                "",
                "Not tuned on: held-out seeds and Hypothesis-drawn knob settings",
                tabulate(held, headers=HOLDOUT_HEADERS, tablefmt="simple"),
            ]
        for aid, a in doc["analytics"].items():
            for err in a["errors"][:3]:
                lines.append(f"ERROR {aid}: {err}")
            if len(a["errors"]) > 3:
                lines.append(f"ERROR {aid}: ... and {len(a['errors']) - 3} more")
        return "\n".join(lines) + "\n"
