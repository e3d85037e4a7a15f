"""Validated identifiers and the catalogue of the five analytics.

Analytic ids (``AN0988``) and ATT&CK technique ids (``T1071.004``) are only ever made by the
validators here, which use ``fullmatch`` so that no prefix or suffix slips through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NewType

from harness.errors import InvalidParameterError
from harness.fields import Field

__all__ = [
    "ANALYTICS",
    "AnalyticId",
    "AnalyticInfo",
    "TechniqueId",
    "analytic_id",
    "technique_id",
]

AnalyticId = NewType("AnalyticId", str)
TechniqueId = NewType("TechniqueId", str)

_ANALYTIC_RE = re.compile(r"AN[0-9]{4}")
_TECHNIQUE_RE = re.compile(r"T[0-9]{4}(?:\.[0-9]{3})?")


def analytic_id(value: str) -> AnalyticId:
    """Validate a MITRE analytic id such as ``AN0988``."""
    if not isinstance(value, str) or not _ANALYTIC_RE.fullmatch(value):
        raise InvalidParameterError("analytic id", value, "'AN' followed by four digits")
    return AnalyticId(value)


def technique_id(value: str) -> TechniqueId:
    """Validate an ATT&CK technique or sub-technique id such as ``T1071`` or ``T1071.004``."""
    if not isinstance(value, str) or not _TECHNIQUE_RE.fullmatch(value):
        raise InvalidParameterError(
            "ATT&CK technique id", value, "'T' and four digits, optionally '.' and three digits"
        )
    return TechniqueId(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalyticInfo:
    """What MITRE says about one analytic, and the telemetry it needs at the least."""

    id: AnalyticId
    title: str
    description: str
    platform: str
    strategy: str
    techniques: tuple[TechniqueId, ...]
    required_fields: frozenset[Field]


def _info(
    ident: str,
    title: str,
    description: str,
    platform: str,
    strategy: str,
    techniques: tuple[str, ...],
    required: frozenset[Field],
) -> AnalyticInfo:
    return AnalyticInfo(
        id=analytic_id(ident),
        title=title,
        description=description,
        platform=platform,
        strategy=strategy,
        techniques=tuple(technique_id(t) for t in techniques),
        required_fields=required,
    )


#: The five analytics, keyed by id, in the order ANALYTICS.md lists them (ATT&CK release 19.1).
ANALYTICS: dict[AnalyticId, AnalyticInfo] = {
    a.id: a
    for a in (
        _info(
            "AN0988",
            "Outbound volume from normally quiet processes after data access",
            "Identifies suspicious outbound traffic volume mismatches from processes that "
            "typically do not generate network activity, particularly over C2 protocols like "
            "HTTPS, DNS, or custom TCP/UDP ports, following file or data access.",
            "Windows",
            "DET0348",
            ("T1041",),
            frozenset({Field.PROCESS, Field.FILE_READ, Field.FLOW_PROCESS, Field.FLOW_BYTES}),
        ),
        _info(
            "AN0030",
            "Disproportionate send/receive ratios and junk data",
            "Processes generating large outbound connections with disproportionate send/receive "
            "ratios, often to uncommon ports or hosts, potentially inserting meaningless data "
            "into protocol payloads.",
            "Windows",
            "DET0011",
            ("T1001.001",),
            frozenset({Field.PROCESS, Field.FLOW_PROCESS, Field.FLOW_BYTES}),
        ),
        _info(
            "AN1225",
            "Application-layer protocols used by abnormal processes",
            "Detects suspicious usage of common application-layer protocols (e.g., HTTP, HTTPS, "
            "DNS, SMB) by abnormal processes, with high outbound byte counts or irregular ports, "
            "possibly indicating command and control or data exfiltration.",
            "Windows",
            "DET0444",
            ("T1071",),
            frozenset(
                {Field.PROCESS, Field.FLOW_PROCESS, Field.FLOW_BYTES, Field.FLOW_APP_PROTOCOL}
            ),
        ),
        _info(
            "AN0144",
            "Excessive HTTP(S) upload from uncommon or unseen processes",
            "Detects excessive outbound traffic to remote host over HTTP(S) from uncommon or "
            "previously unseen processes.",
            "Windows",
            "DET0053",
            ("T1001",),
            frozenset(
                {Field.PROCESS, Field.FLOW_PROCESS, Field.FLOW_BYTES, Field.FLOW_APP_PROTOCOL}
            ),
        ),
        _info(
            "AN1962",
            "Uncommon data flows and protocol non-conformance",
            "Monitor network data for uncommon data flows. Processes utilizing the network that "
            "do not normally have network communication or have never been seen before are "
            "suspicious. Monitor and analyze traffic patterns and packet inspection associated to "
            "protocol(s) that do not follow the expected protocol standards and traffic flows.",
            "PRE",
            "DET0830",
            (),
            frozenset({Field.FLOW_APP_PROTOCOL, Field.PACKETS}),
        ),
    )
}
