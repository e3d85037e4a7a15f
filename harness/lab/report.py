"""An emulation's documents: the results document and alert records (as a synthetic run's and
``evaluate``'s), and the run folder :func:`write_outputs` writes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError
from harness.lab.compare import side_by_side_text
from harness.runner import DetectorRun, DetectorSpec, RunRecord
from harness.telemetry import Telemetry
from harness.truth import GroundTruth

if TYPE_CHECKING:
    from harness.lab.emulate import EmulationOutcome

__all__ = ["alert_documents", "results_document", "write_outputs"]


def results_document(specs: Sequence[DetectorSpec], record: RunRecord) -> dict[str, Any]:
    """The results document (profile ``recorded``), built as ``evaluate`` builds its own."""
    from harness.ingest.evaluate import recorded_results

    return recorded_results(specs, record)


def alert_documents(
    telemetry: Telemetry, runs: Sequence[DetectorRun], truth: GroundTruth
) -> list[dict[str, Any]]:
    """The alert records, as ``evaluate`` writes them to ``alerts.ndjson``."""
    from harness.ingest.evaluate import alert_records_of

    return alert_records_of(telemetry, runs, truth)


def write_outputs(outcome: EmulationOutcome) -> list[Path]:
    """Write the run folder: ``results.json``, ``emulation.json``, ``alerts.ndjson`` (as
    ``evaluate`` writes it), ``truth.json`` and ``side-by-side.txt``, beside what the run left
    there (``capture.pcap``, ``sinks.log``, ``sinks/`` with ``sinks.jsonl``, ``conn.log``,
    ``dns.log``, ``actors/`` with each actor's log and audit file, ``certs/``)."""
    from harness.cli import truth_document
    from harness.results import canonical_json

    out = outcome.out
    written = []
    try:
        for name, text in (
            ("results.json", canonical_json(outcome.results)),
            ("emulation.json", canonical_json(outcome.emulation)),
            (
                "alerts.ndjson",
                "".join(
                    json.dumps(a, sort_keys=True, ensure_ascii=False) + "\n" for a in outcome.alerts
                ),
            ),
            (
                "truth.json",
                canonical_json(
                    truth_document(outcome.truth, profile=outcome.telemetry.profile, params={})
                ),
            ),
            ("side-by-side.txt", side_by_side_text(outcome.rows)),
        ):
            path = out / name
            path.write_text(text, encoding="utf-8")
            written.append(path)
        # The sink key never leaves the run folder readable by others; drop the bin links.
        shutil.rmtree(out / "bin", ignore_errors=True)
    except OSError as exc:
        raise HarnessError(f"cannot write to {out}: {exc.strerror or exc}") from exc
    return written
