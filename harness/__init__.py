"""egress-harness: detection validation and emulation test harness for outbound-traffic
analytics (MITRE ATT&CK AN0988, AN0030, AN1225, AN0144, AN1962).

The engine: event model, ground truth, detector and scenario contracts, runner, scoring,
canonical results and reporters. Scenarios live in :mod:`scenarios`, reference detectors in
:mod:`detectors`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
