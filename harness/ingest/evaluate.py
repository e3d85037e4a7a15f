"""Evaluate the detectors on recorded telemetry: readiness, detection, and scoring with labels.

The pipeline behind ``egress-harness readiness`` and ``egress-harness evaluate``:

1. :func:`harness.ingest.sources.open_inputs` reads the inputs as one time-ordered stream and
   infers the telemetry fields they supply.
2. :func:`assess` says per analytic whether that telemetry can support it. *Required* are the
   fields the registered detector declares (without them it does not run: **not evaluable**);
   *recommended* are the other fields of ANALYTICS.md's table for the analytic (its "required"
   and "helpful" columns, :data:`RECOMMENDED`). All present: **supported**; required present but
   a recommended one missing: **degraded** (the detector runs on less than the analytic calls
   for, e.g. AN0030 on flows without process identity).
3. :func:`build_telemetry` makes a :class:`~harness.telemetry.Telemetry` of the events: hosts
   from the events, start and end from the first and last, the baseline window up to
   ``--baseline-until`` (:func:`parse_time`), or empty, so that the detectors judge the capture
   on what it shows by itself.
4. :func:`harness.runner.run_detectors` runs the detectors; with labels (:func:`load_labels`) the
   run is scored as a synthetic one is (:mod:`harness.scoring`, :mod:`harness.results`).

**Labels** (``--labels FILE``), three forms:

* the ``truth.json`` that ``egress-harness generate`` writes: actors, and the actor of every
  event id (it applies to the ECS export written beside it, whose events keep their ids);
* a JSON rules file, ``{"labels": [RULE, ...]}`` (or a bare list);
* a CSV file with one RULE a row and these columns as header.

A RULE names an ``actor`` (lower-case kebab-case id), its ``kind`` (``malicious``, the default, or
``benign``), ``expected_analytics`` (for malicious actors: the analytics that should fire; a
list, or ``;``-separated in CSV), optional ``techniques`` and ``description``, and what it
matches: any of ``event_ids``, ``host``, ``process_guid``, ``src_ip``, ``src_port``, ``dst_ip``,
``dst_port``, ``transport`` (tcp/udp), ``domain`` (a DNS query name or a flow's server name equal
to it or under it), within ``start``/``end`` (ISO 8601 UTC, inclusive). An event matches a rule
when every criterion the rule gives holds (a DNS query's destination is its resolver); the first
matching rule wins. An actor's start is its first matched event and its bytes are the bytes out
of its matched flows (of its DNS queries if it has no flows).

**Injection** (:func:`inject_actor`): one synthetic malicious actor of a scenario (generated with
its default knobs, or overrides) is overlaid on the recording: its events (as the recording's
sensors would see them: the ``edr`` rendering when the recording attributes flows to processes,
else ``network-only``) are shifted in time to start at a chosen point (default: the middle of the
recording), its host is renamed to a host of the recording (the busiest, or one named) and its
addresses are rewritten to that host's address; ids get the prefix ``inject/``. Scoring then
assumes the recording itself is benign: every alert that cites none of the injected events is a
false alert (documented assumption: recorded traffic may hold real attacks, which would then be
counted as false alerts).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from harness import __version__
from harness.analytics import ANALYTICS, AnalyticId, analytic_id, technique_id
from harness.detector import Detector
from harness.errors import InputError, InvalidParameterError, SchemaError, UsageError
from harness.events import (
    NS_PER_S,
    DnsQuery,
    Event,
    FileAccess,
    NetworkConnection,
    NetworkFlow,
    ProcessStart,
    ProtocolAnomaly,
)
from harness.fields import Field, Profile
from harness.ingest.sources import InputSet, InputSummary, open_inputs, require_events
from harness.results import build_results, canonical_json, validate
from harness.runner import DetectorRun, DetectorSpec, RunPlan, RunRecord, run_detectors
from harness.scoring import classify_alert
from harness.telemetry import Telemetry, TelemetryInfo, sort_events
from harness.truth import ActorKind, ActorTruth, GroundTruth

__all__ = [
    "EVALUATE_SCHEMA_VERSION",
    "RECOMMENDED",
    "RECORDED_SCENARIO",
    "AnalyticReadiness",
    "Evaluation",
    "Injection",
    "LabelRule",
    "Labels",
    "Verdict",
    "alert_records",
    "alert_records_of",
    "assess",
    "build_telemetry",
    "detector_specs",
    "evaluate",
    "evaluation_document",
    "ground_truth",
    "inject_actor",
    "injected_truth",
    "load_labels",
    "parse_time",
    "read_inputs",
    "readiness_document",
    "recorded_results",
    "results_document",
    "scan_inputs",
    "validate_document",
]

#: Version of ``harness/schema/evaluate.schema.json`` (readiness and evaluation documents).
EVALUATE_SCHEMA_VERSION = "1.0"
#: The name results documents give the recording (in place of a scenario id).
RECORDED_SCENARIO = "recorded"

#: Per analytic, the fields ANALYTICS.md's table marks required or helpful.
RECOMMENDED: dict[AnalyticId, frozenset[Field]] = {
    AnalyticId("AN0988"): frozenset(
        {
            Field.PROCESS,
            Field.FLOW_PROCESS,
            Field.FILE_READ,
            Field.FLOW_BYTES,
            Field.DNS_QUERY,
            Field.FLOW_APP_PROTOCOL,
        }
    ),
    AnalyticId("AN0030"): frozenset(
        {
            Field.PROCESS,
            Field.FLOW_PROCESS,
            Field.FLOW_BYTES,
            Field.DNS_QUERY,
            Field.FLOW_APP_PROTOCOL,
            Field.PACKETS,
        }
    ),
    AnalyticId("AN1225"): frozenset(
        {
            Field.PROCESS,
            Field.FLOW_PROCESS,
            Field.FLOW_BYTES,
            Field.DNS_QUERY,
            Field.FLOW_APP_PROTOCOL,
            Field.PACKETS,
        }
    ),
    AnalyticId("AN0144"): frozenset(
        {
            Field.PROCESS,
            Field.FLOW_PROCESS,
            Field.FLOW_BYTES,
            Field.DNS_QUERY,
            Field.FLOW_APP_PROTOCOL,
        }
    ),
    AnalyticId("AN1962"): frozenset(
        {
            Field.PROCESS,
            Field.FLOW_PROCESS,
            Field.FLOW_BYTES,
            Field.DNS_QUERY,
            Field.FLOW_APP_PROTOCOL,
            Field.PACKETS,
        }
    ),
}


class Verdict(StrEnum):
    SUPPORTED = "supported"
    DEGRADED = "degraded"
    NOT_EVALUABLE = "not_evaluable"


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalyticReadiness:
    """Whether the fields at hand support one analytic, and which are missing."""

    analytic: AnalyticId
    title: str
    detector: str | None
    required: frozenset[Field]
    recommended: frozenset[Field]
    present: frozenset[Field]
    verdict: Verdict

    @property
    def missing_required(self) -> tuple[Field, ...]:
        return tuple(sorted(self.required - self.present))

    @property
    def missing_recommended(self) -> tuple[Field, ...]:
        return tuple(sorted(self.recommended - self.required - self.present))

    def as_dict(self) -> dict[str, Any]:
        relevant = self.required | self.recommended
        return {
            "title": self.title,
            "detector": self.detector,
            "verdict": self.verdict.value,
            "required": sorted(f.value for f in self.required),
            "recommended": sorted(f.value for f in self.recommended - self.required),
            "present": sorted(f.value for f in relevant & self.present),
            "missing_required": [f.value for f in self.missing_required],
            "missing_recommended": [f.value for f in self.missing_recommended],
        }


def assess(
    fields: frozenset[Field], detectors: Iterable[type[Detector]]
) -> dict[AnalyticId, AnalyticReadiness]:
    """Readiness of every analytic for ``fields``. ``detectors`` are the ones that would run;
    an analytic without one is judged on ANALYTICS.md's required fields alone."""
    by_analytic = {d.analytic: d for d in detectors}
    out: dict[AnalyticId, AnalyticReadiness] = {}
    for aid, info in ANALYTICS.items():
        det = by_analytic.get(aid)
        required = det.required_fields if det is not None else info.required_fields
        recommended = RECOMMENDED[aid] | info.required_fields
        if required - fields:
            verdict = Verdict.NOT_EVALUABLE
        elif recommended - fields:
            verdict = Verdict.DEGRADED
        else:
            verdict = Verdict.SUPPORTED
        out[aid] = AnalyticReadiness(
            analytic=aid,
            title=info.title,
            detector=det.id if det is not None else None,
            required=required,
            recommended=recommended,
            present=fields,
            verdict=verdict,
        )
    return out


# -- time -------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3_600, "d": 86_400}


def parse_time(text: str, *, start_ns: int, option: str = "--baseline-until") -> int:
    """An instant: ISO 8601 with a UTC offset (``2026-11-02T12:00:00Z``), or a duration after
    ``start_ns`` in seconds, minutes, hours or days (``90``, ``90s``, ``30m``, ``2h``, ``1d``)."""
    text = text.strip()
    rel = _RELATIVE.fullmatch(text)
    if rel:
        return start_ns + int(float(rel.group(1)) * _UNIT_S[rel.group(2)] * NS_PER_S)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidParameterError(
            option, text, "ISO 8601 UTC like 2026-11-02T12:00:00Z, or a duration like 2h or 30m"
        ) from exc
    if dt.tzinfo is None:
        raise InvalidParameterError(option, text, "a time with its UTC offset (end it with Z)")
    dt = dt.astimezone(UTC)
    whole = int(dt.replace(microsecond=0).timestamp())
    return whole * NS_PER_S + dt.microsecond * 1_000


def iso(ts_ns: int) -> str:
    from harness.ecs import format_timestamp

    return format_timestamp(ts_ns)


# -- telemetry --------------------------------------------------------------------------------


def event_host(e: Event) -> str | None:
    return e.host


def build_telemetry(
    events: Sequence[Event], fields: frozenset[Field], *, baseline_until_ns: int | None
) -> Telemetry:
    """The recording as a :class:`Telemetry`: ``events`` must be in time order and not empty.
    Without ``baseline_until_ns`` the baseline window is empty."""
    if not events:
        raise UsageError("the recording holds no events")
    start, end = events[0].ts_ns, events[-1].ts_ns
    split = start if baseline_until_ns is None else baseline_until_ns
    if not start <= split <= end:
        raise InvalidParameterError(
            "--baseline-until",
            iso(split),
            f"a time within the recording, {iso(start)} to {iso(end)}",
        )
    hosts = sorted({h for e in events if (h := event_host(e)) is not None})
    return Telemetry(
        profile=RECORDED_SCENARIO,
        fields=fields,
        hosts=tuple(hosts),
        start_ns=start,
        baseline_until_ns=split,
        end_ns=end,
        events=events,
    )


# -- labels -----------------------------------------------------------------------------------

_ACTOR_RE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelRule:
    """One labels rule (see the module docstring)."""

    actor: str
    kind: ActorKind
    expected_analytics: tuple[AnalyticId, ...] = ()
    techniques: tuple[str, ...] = ()
    description: str = ""
    event_ids: frozenset[str] = frozenset()
    host: str | None = None
    process_guid: str | None = None
    src_ip: str | None = None
    src_port: int | None = None
    dst_ip: str | None = None
    dst_port: int | None = None
    transport: str | None = None
    domain: str | None = None
    start_ns: int | None = None
    end_ns: int | None = None

    def matches(self, e: Event) -> bool:
        if self.start_ns is not None and e.ts_ns < self.start_ns:
            return False
        if self.end_ns is not None and e.ts_ns > self.end_ns:
            return False
        if self.event_ids and e.event_id not in self.event_ids:
            return False
        if self.host is not None and e.host != self.host:
            return False
        if self.process_guid is not None and getattr(e, "process_guid", None) != self.process_guid:
            return False
        five = _five_tuple(e)
        if any(v is not None for v in (self.src_ip, self.src_port, self.dst_ip, self.dst_port)):
            if five is None:
                return False
            _, sip, sport, dip, dport = five
            if (
                (self.src_ip is not None and sip != self.src_ip)
                or (self.src_port is not None and sport != self.src_port)
                or (self.dst_ip is not None and dip != self.dst_ip)
                or (self.dst_port is not None and dport != self.dst_port)
            ):
                return False
        if self.transport is not None and (five is None or five[0] != self.transport):
            return False
        if self.domain is not None:
            name = _name_of(e)
            if name is None or not _under(name, self.domain):
                return False
        return True


def _five_tuple(e: Event) -> tuple[str, str, int | None, str, int | None] | None:
    if isinstance(e, NetworkFlow | NetworkConnection | ProtocolAnomaly):
        return e.transport.value, e.src_ip, e.src_port, e.dst_ip, e.dst_port
    if isinstance(e, DnsQuery):
        return "udp", e.src_ip, None, e.resolver_ip, 53
    return None


def _name_of(e: Event) -> str | None:
    if isinstance(e, DnsQuery):
        return e.query
    if isinstance(e, NetworkFlow):
        return e.server_name
    return None


def _under(name: str, domain: str) -> bool:
    name = name.lower().rstrip(".")
    domain = domain.lower().rstrip(".")
    return name == domain or name.endswith("." + domain)


@dataclass(frozen=True, slots=True, kw_only=True)
class Labels:
    """Parsed labels: a ground truth by event id (``truth.json``) or rules."""

    path: str
    format: str
    truth: GroundTruth | None = None
    rules: tuple[LabelRule, ...] = ()


def _split_list(value: Any) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in re.split(r"[;,\s]+", value) if v.strip())
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    raise ValueError(f"expected a list or a ';'-separated string, got {value!r}")


def _opt_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} {value!r} is not an integer") from exc
    if not 0 <= number <= 65_535:
        raise ValueError(f"{name} {value!r} is not a port number")
    return number


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _rule(raw: Mapping[str, Any]) -> LabelRule:
    actor = str(raw.get("actor") or "")
    if not _ACTOR_RE.fullmatch(actor):
        raise ValueError(f"actor {actor!r} is not a lower-case kebab-case id like 'dns-tunnel'")
    kind_text = str(raw.get("kind") or "malicious").lower()
    if kind_text not in ("malicious", "benign"):
        raise ValueError(f"kind {kind_text!r} is not 'malicious' or 'benign'")
    transport = _opt_str(raw.get("transport"))
    if transport is not None and transport.lower() not in ("tcp", "udp"):
        raise ValueError(f"transport {transport!r} is not 'tcp' or 'udp'")

    def when(key: str) -> int | None:
        text = _opt_str(raw.get(key))
        return None if text is None else parse_time(text, start_ns=0, option=key)

    rule = LabelRule(
        actor=actor,
        kind=ActorKind(kind_text),
        expected_analytics=tuple(
            analytic_id(a) for a in _split_list(raw.get("expected_analytics"))
        ),
        techniques=tuple(technique_id(t) for t in _split_list(raw.get("techniques"))),
        description=str(raw.get("description") or ""),
        event_ids=frozenset(_split_list(raw.get("event_ids"))),
        host=_opt_str(raw.get("host")),
        process_guid=_opt_str(raw.get("process_guid")),
        src_ip=_opt_str(raw.get("src_ip")),
        src_port=_opt_int(raw.get("src_port"), "src_port"),
        dst_ip=_opt_str(raw.get("dst_ip")),
        dst_port=_opt_int(raw.get("dst_port"), "dst_port"),
        transport=None if transport is None else transport.lower(),
        domain=_opt_str(raw.get("domain")),
        start_ns=when("start"),
        end_ns=when("end"),
    )
    unknown = set(raw) - _RULE_KEYS
    if unknown:
        raise ValueError(
            f"unknown key {sorted(unknown)[0]!r}; known: {', '.join(sorted(_RULE_KEYS))}"
        )
    return rule


_RULE_KEYS = {
    "actor", "kind", "expected_analytics", "techniques", "description", "event_ids", "host",
    "process_guid", "src_ip", "src_port", "dst_ip", "dst_port", "transport", "domain", "start",
    "end",
}  # fmt: skip


def _truth_from_doc(doc: Mapping[str, Any]) -> GroundTruth:
    actors = []
    for a in doc["actors"]:
        actors.append(
            ActorTruth(
                actor_id=str(a["actor_id"]),
                kind=ActorKind(a["kind"]),
                description=str(a.get("description", "")),
                techniques=tuple(technique_id(t) for t in a.get("techniques", [])),
                expected_analytics=tuple(analytic_id(x) for x in a.get("expected_analytics", [])),
                trap_for=tuple(analytic_id(x) for x in a.get("trap_for", [])),
                observable_with=frozenset(Field(f) for f in a.get("observable_with", [])),
                start_ns=a.get("start_ns"),
                hosts=tuple(a.get("hosts", [])),
                process_instances=int(a.get("process_instances", 0)),
                bytes_timeline=tuple((int(t), int(b)) for t, b in a.get("bytes_timeline", [])),
            )
        )
    event_actor = {str(k): str(v) for k, v in doc["event_actor"].items()}
    return GroundTruth(
        scenario=str(doc.get("scenario", RECORDED_SCENARIO)),
        seed=int(doc.get("seed", 0)),
        actors=tuple(actors),
        event_actor=event_actor,
    )


def load_labels(path: str | os.PathLike[str]) -> Labels:
    """Read a labels file in any of the forms of the module docstring; a malformed one raises
    :class:`InputError` naming the file and the entry."""
    name = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"labels file {name!r} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read labels file {name!r}: {exc}") from exc
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        raise InputError(f"labels file {name!r} is empty")
    if stripped[0] in "{[":
        try:
            doc = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise InputError(f"labels file {name!r}: not valid JSON ({exc})") from exc
        if isinstance(doc, dict) and "event_actor" in doc and "actors" in doc:
            try:
                return Labels(path=name, format="truth.json", truth=_truth_from_doc(doc))
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(
                    f"labels file {name!r}: a malformed truth document ({exc})"
                ) from exc
        entries = doc.get("labels") if isinstance(doc, dict) else doc
        if not isinstance(entries, list):
            raise InputError(
                f'labels file {name!r}: expected a truth.json, {{"labels": [...]}} or a list'
            )
        rows: list[Mapping[str, Any]] = entries
        fmt = "json-rules"
        where = "entry"
    else:
        rows = list(csv.DictReader(io.StringIO(stripped)))
        fmt = "csv-rules"
        where = "row"
    rules = []
    for number, raw in enumerate(rows, 1):
        if not isinstance(raw, Mapping):
            raise InputError(f"labels file {name!r}, {where} {number}: expected an object")
        try:
            cleaned = {k.strip(): v for k, v in raw.items() if k is not None}
            rules.append(_rule(cleaned))
        except (ValueError, UsageError) as exc:
            raise InputError(f"labels file {name!r}, {where} {number}: {exc}") from exc
    if not rules:
        raise InputError(f"labels file {name!r} holds no labels")
    return Labels(path=name, format=fmt, rules=tuple(rules))


def ground_truth(labels: Labels, events: Sequence[Event]) -> tuple[GroundTruth, dict[str, Any]]:
    """The ground truth ``labels`` give for ``events``, and a note on how much it covered."""
    if labels.truth is not None:
        truth = labels.truth
        ids = {e.event_id for e in events}
        hits = sum(1 for eid in truth.event_actor if eid in ids)
        truth = replace(truth, scenario=RECORDED_SCENARIO)
        return truth, {"labelled_events": hits, "label_entries": len(truth.event_actor)}
    event_actor: dict[str, str] = {}
    matched: dict[str, list[Event]] = {}
    for e in events:
        for rule in labels.rules:
            if rule.matches(e):
                event_actor[e.event_id] = rule.actor
                matched.setdefault(rule.actor, []).append(e)
                break
    actors: dict[str, ActorTruth] = {}
    for rule in labels.rules:
        if rule.actor in actors:
            continue
        mine = matched.get(rule.actor, [])
        actors[rule.actor] = _actor_from_events(rule, mine)
    truth = GroundTruth(
        scenario=RECORDED_SCENARIO,
        seed=0,
        actors=tuple(actors.values()),
        event_actor=event_actor,
    )
    return truth, {"labelled_events": len(event_actor), "label_entries": len(labels.rules)}


def _actor_from_events(rule: LabelRule, events: Sequence[Event]) -> ActorTruth:
    flows = [e for e in events if isinstance(e, NetworkFlow)]
    timeline: list[tuple[int, int]] = []
    total = 0
    sized: list[tuple[int, int]] = (
        [(f.ts_ns, f.bytes_out) for f in flows]
        if flows
        else [(e.ts_ns, e.query_bytes) for e in events if isinstance(e, DnsQuery)]
    )
    for ts, size in sorted(sized):
        total += size
        timeline.append((ts, total))
    guids = {g for e in events if (g := getattr(e, "process_guid", None)) is not None}
    return ActorTruth(
        actor_id=rule.actor,
        kind=rule.kind,
        description=rule.description or f"labelled {rule.kind.value} actor",
        techniques=tuple(technique_id(t) for t in rule.techniques),
        expected_analytics=rule.expected_analytics if rule.kind is ActorKind.MALICIOUS else (),
        start_ns=min((e.ts_ns for e in events), default=None),
        hosts=tuple(sorted({h for e in events if (h := e.host) is not None})),
        process_instances=len(guids) if rule.kind is ActorKind.BENIGN else 0,
        bytes_timeline=tuple(timeline),
    )


# -- injection --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Injection:
    """What :func:`inject_actor` overlaid on the recording."""

    scenario: str
    actor: str
    seed: int
    profile: Profile
    events: tuple[Event, ...]
    truth: ActorTruth
    target_host: str
    target_address: str | None
    shift_ns: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "actor": self.actor,
            "seed": self.seed,
            "profile": self.profile.value,
            "events": len(self.events),
            "host": self.target_host,
            "address": self.target_address,
            "start": None if self.truth.start_ns is None else iso(self.truth.start_ns),
            "shift_s": self.shift_ns / NS_PER_S,
            "bytes_total": self.truth.bytes_total,
            "expected_analytics": list(self.truth.expected_analytics),
        }


def busiest_host(events: Sequence[Event]) -> tuple[str, str | None]:
    """The host with the most flows (events, if there are no flows) and its commonest source
    address; ties go to the smallest name."""
    flows = Counter(e.host for e in events if isinstance(e, NetworkFlow))
    counts = flows or Counter(h for e in events if (h := e.host) is not None)
    if not counts:
        raise UsageError("the recording names no host to inject onto; give --inject-host")
    host = min(counts, key=lambda h: (-counts[h], h))
    return host, host_address(events, host)


def host_address(events: Sequence[Event], host: str) -> str | None:
    addrs = Counter(
        e.src_ip
        for e in events
        if isinstance(e, NetworkFlow | NetworkConnection) and e.host == host
    )
    if addrs:
        return min(addrs, key=lambda a: (-addrs[a], a))
    return None


def inject_actor(
    spec: str,
    recorded: Sequence[Event],
    fields: frozenset[Field],
    *,
    at_ns: int | None = None,
    host: str | None = None,
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
) -> Injection:
    """Generate ``SCENARIO:ACTOR`` and overlay that actor's events on ``recorded`` (see the
    module docstring). ``recorded`` must be in time order and not empty."""
    from harness.registry import SCENARIOS

    scenario_id, sep, actor_id = spec.partition(":")
    if not sep or not scenario_id or not actor_id:
        raise InvalidParameterError(
            "--inject", spec, "SCENARIO:ACTOR, e.g. dns-tunnels:iodine-tunnel"
        )
    scenario = SCENARIOS.load(scenario_id)()
    params = scenario.params(overrides or {})
    profile = Profile.EDR if Field.FLOW_PROCESS in fields else Profile.NETWORK_ONLY
    run = scenario.generate(params, seed, profile)
    malicious = {a.actor_id: a for a in run.truth.malicious}
    if actor_id not in malicious:
        from harness.errors import UnknownPluginError

        raise UnknownPluginError(f"malicious actor of {scenario_id!r}", actor_id, malicious)
    actor = malicious[actor_id]
    mine = [e for e in run.telemetry.events if run.truth.event_actor.get(e.event_id) == actor_id]
    if not mine:
        raise UsageError(
            f"actor {actor_id!r} of {scenario_id!r} has no events under the {profile.value} view"
        )
    start, end = recorded[0].ts_ns, recorded[-1].ts_ns
    target_ts = (start + end) // 2 if at_ns is None else at_ns
    if not start <= target_ts <= end:
        raise InvalidParameterError(
            "--inject-at",
            iso(target_ts),
            f"a time within the recording, {iso(start)} to {iso(end)}",
        )
    if host is None:
        target_host, target_addr = busiest_host(recorded)
    else:
        target_host, target_addr = host, host_address(recorded, host)
    shift = target_ts - mine[0].ts_ns
    # The synthetic host's own addresses: the source of its outbound flows and queries.
    own_hosts = set(actor.hosts)
    own_addrs = {
        e.src_ip
        for e in mine
        if isinstance(e, NetworkFlow | NetworkConnection | DnsQuery) and e.host in own_hosts
    }
    events = tuple(_moved(e, shift, own_hosts, own_addrs, target_host, target_addr) for e in mine)
    truth = replace(
        actor,
        start_ns=None if actor.start_ns is None else actor.start_ns + shift,
        hosts=(target_host,),
        bytes_timeline=tuple((t + shift, b) for t, b in actor.bytes_timeline),
    )
    return Injection(
        scenario=scenario_id,
        actor=actor_id,
        seed=seed,
        profile=profile,
        events=events,
        truth=truth,
        target_host=target_host,
        target_address=target_addr,
        shift_ns=shift,
    )


_PREFIX = "inject/"


def _moved(
    e: Event,
    shift: int,
    own_hosts: set[str],
    own_addrs: set[str],
    host: str,
    addr: str | None,
) -> Event:
    def a(ip: str) -> str:
        return addr if addr is not None and ip in own_addrs else ip

    new_host = host if e.host in own_hosts else e.host
    eid = _PREFIX + e.event_id
    ts = e.ts_ns + shift
    if isinstance(e, NetworkFlow):
        return replace(
            e,
            event_id=eid,
            ts_ns=ts,
            flow_id=_PREFIX + e.flow_id,
            host=new_host or host,
            process_guid=None if e.process_guid is None else _PREFIX + e.process_guid,
            src_ip=a(e.src_ip),
            dst_ip=a(e.dst_ip),
            start_ns=e.start_ns + shift,
            end_ns=e.end_ns + shift,
        )
    if isinstance(e, DnsQuery):
        return replace(
            e,
            event_id=eid,
            ts_ns=ts,
            host=new_host or host,
            process_guid=None if e.process_guid is None else _PREFIX + e.process_guid,
            src_ip=a(e.src_ip),
        )
    if isinstance(e, ProcessStart):
        return replace(
            e,
            event_id=eid,
            ts_ns=ts,
            host=new_host or host,
            process_guid=_PREFIX + e.process_guid,
            parent_guid=None if e.parent_guid is None else _PREFIX + e.parent_guid,
        )
    if isinstance(e, FileAccess):
        return replace(
            e, event_id=eid, ts_ns=ts, host=new_host or host, process_guid=_PREFIX + e.process_guid
        )
    if isinstance(e, NetworkConnection):
        return replace(
            e,
            event_id=eid,
            ts_ns=ts,
            host=new_host or host,
            process_guid=_PREFIX + e.process_guid,
            src_ip=a(e.src_ip),
            dst_ip=a(e.dst_ip),
        )
    return replace(e, event_id=eid, ts_ns=ts, host=new_host, src_ip=a(e.src_ip), dst_ip=a(e.dst_ip))


def injected_truth(injection: Injection, base: GroundTruth | None) -> GroundTruth:
    """The ground truth of a recording with an injected actor: the injected actor's events,
    plus ``base`` (labels given with ``--labels``) if any."""
    event_actor = {e.event_id: injection.actor for e in injection.events}
    actors: tuple[ActorTruth, ...] = (injection.truth,)
    if base is not None:
        event_actor = {**base.event_actor, **event_actor}
        actors = tuple(a for a in base.actors if a.actor_id != injection.actor) + actors
    return GroundTruth(
        scenario=RECORDED_SCENARIO, seed=injection.seed, actors=actors, event_actor=event_actor
    )


# -- the pipeline -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """Everything one ``evaluate`` produced: inputs read, telemetry, readiness, detector runs
    and, with labels or an injection, the ground truth to score against."""

    inputs: tuple[InputSummary, ...]
    kinds: tuple[str, ...]
    telemetry: Telemetry
    readiness: Mapping[AnalyticId, AnalyticReadiness]
    join: Mapping[str, Any]
    specs: tuple[DetectorSpec, ...]
    runs: tuple[DetectorRun, ...]
    truth: GroundTruth | None
    labels: Mapping[str, Any] | None
    injection: Injection | None


def join_section(inputs: InputSet) -> dict[str, Any]:
    """The endpoint-network join: whether it ran, and the share of flows attributed to a
    process (each flow counted once, by its final record)."""
    attributed, flows = inputs.attributed_flows
    combined = any(f.endpoint for f in inputs.families) and any(f.network for f in inputs.families)
    return {
        "endpoint_and_network": combined,
        "performed": inputs.join_performed,
        "flows": flows,
        "attributed_flows": attributed,
        "rate": attributed / flows if flows else None,
        "note": inputs.join_error,
    }


def read_inputs(
    paths: Sequence[str | os.PathLike[str]],
    *,
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[list[Event], InputSet]:
    """Every event of the inputs in time order, and the :class:`InputSet` that read them.
    Raises :class:`UnreadableInputError` (exit 3) when nothing at all could be read."""
    with open_inputs(paths, progress=progress) as inputs:
        events = sort_events(inputs)
    require_events(inputs)
    return events, inputs


def scan_inputs(
    paths: Sequence[str | os.PathLike[str]],
    *,
    progress: Callable[[int, int, str], None] | None = None,
) -> InputSet:
    """Read the inputs through without keeping their events (constant memory), for readiness.
    Raises :class:`UnreadableInputError` (exit 3) when nothing at all could be read."""
    with open_inputs(paths, progress=progress) as inputs:
        for _ in inputs:
            pass
    require_events(inputs)
    return inputs


def readiness_document(
    inputs: InputSet, fields: frozenset[Field], readiness: Mapping[AnalyticId, AnalyticReadiness]
) -> dict[str, Any]:
    """The readiness document (``readiness.json``; schema ``evaluate.schema.json``)."""
    return {
        "schema_version": EVALUATE_SCHEMA_VERSION,
        "document": "readiness",
        "harness_version": __version__,
        "inputs": [_input_dict(s) for s in inputs.summaries],
        "fields": sorted(f.value for f in fields),
        "join": join_section(inputs),
        "analytics": {aid: r.as_dict() for aid, r in readiness.items()},
    }


def _input_dict(s: InputSummary) -> dict[str, Any]:
    return {
        "path": s.path,
        "kind": s.kind,
        "events": s.events,
        "events_by_kind": dict(s.events_by_kind),
        "skipped_records": s.skipped_records,
        "warnings": s.warnings,
        "first_warnings": list(s.first_warnings),
        "out_of_order": s.out_of_order,
        "error": s.error,
        "details": dict(s.details),
    }


def detector_specs(
    detector_ids: Sequence[str], tunables: Mapping[str, Mapping[str, Any]]
) -> tuple[DetectorSpec, ...]:
    """Specs of the chosen detectors (all registered ones by default), tunables checked."""
    from harness.registry import DETECTORS

    ids = list(dict.fromkeys(detector_ids or DETECTORS.names()))
    classes = {i: DETECTORS.load(i) for i in ids}
    for plugin in tunables:
        if plugin not in classes:
            raise UsageError(f"--tunable names detector {plugin!r}, which is not being run")
    seen: dict[str, str] = {}
    specs = []
    for i, cls in classes.items():
        if cls.analytic in seen:
            raise UsageError(
                f"detectors {seen[cls.analytic]!r} and {i!r} both implement {cls.analytic}; "
                "select one detector per analytic"
            )
        seen[cls.analytic] = i
        spec = DetectorSpec(detector=cls, tunables=dict(tunables.get(i, {})))
        cls(**spec.tunables)  # validate before reading anything
        specs.append(spec)
    return tuple(specs)


def evaluate(
    paths: Sequence[str | os.PathLike[str]],
    *,
    specs: Sequence[DetectorSpec],
    baseline_until: str | None = None,
    labels: Labels | None = None,
    inject: str | None = None,
    inject_at: str | None = None,
    inject_host: str | None = None,
    inject_params: Mapping[str, Any] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Evaluation:
    """Read ``paths``, run the detectors over them and keep what scoring needs."""
    events, inputs = read_inputs(paths, progress=progress)
    fields = inputs.fields()
    injection = None
    if inject is not None:
        at = (
            None
            if inject_at is None
            else parse_time(inject_at, start_ns=events[0].ts_ns, option="--inject-at")
        )
        injection = inject_actor(
            inject, events, fields, at_ns=at, host=inject_host, overrides=inject_params
        )
        events = sort_events([*events, *injection.events])
    start = events[0].ts_ns
    split = None if baseline_until is None else parse_time(baseline_until, start_ns=start)
    telemetry = build_telemetry(events, fields, baseline_until_ns=split)
    readiness = assess(fields, [s.detector for s in specs])
    runs = run_detectors(telemetry, specs)
    truth: GroundTruth | None = None
    note: dict[str, Any] | None = None
    if labels is not None:
        truth, cover = ground_truth(labels, telemetry.events)
        note = {"path": labels.path, "format": labels.format, **cover}
    if injection is not None:
        truth = injected_truth(injection, truth)
    return Evaluation(
        inputs=inputs.summaries,
        kinds=tuple(k.value for k in inputs.kinds),
        telemetry=telemetry,
        readiness=readiness,
        join=join_section(inputs),
        specs=tuple(specs),
        runs=runs,
        truth=truth,
        labels=note,
        injection=injection,
    )


def _evidence_index(telemetry: Telemetry, runs: Sequence[DetectorRun]) -> dict[str, Event]:
    cited = {eid for r in runs for a in r.alerts for eid in a.alert.evidence}
    return {e.event_id: e for e in telemetry.events if e.event_id in cited}


def alert_records(ev: Evaluation) -> list[dict[str, Any]]:
    """Every alert of an evaluation as a JSON-ready record (:func:`alert_records_of`)."""
    return alert_records_of(ev.telemetry, ev.runs, ev.truth)


def alert_records_of(
    telemetry: Telemetry, runs: Sequence[DetectorRun], truth: GroundTruth | None
) -> list[dict[str, Any]]:
    """Every alert of ``runs`` (on ``telemetry``) as a JSON-ready record, in time order:
    analytic, detector, score, time (ISO and ns), the entity (host, process, source and
    destination address and port, domain; what the alert's entity leaves open is taken from its
    first cited network event), reason, evidence and, with ``truth``, whether it is true and for
    which actors. Shared by ``evaluate`` and the lab's ``emulate``."""
    index = _evidence_index(telemetry, runs)
    malicious = frozenset(a.actor_id for a in truth.malicious) if truth else frozenset()
    out = []
    for run in runs:
        for raised in run.alerts:
            a = raised.alert
            net = next(
                (
                    index[e]
                    for e in a.evidence
                    if isinstance(index.get(e), NetworkFlow | DnsQuery | ProtocolAnomaly)
                ),
                None,
            )
            five = _five_tuple(net) if net is not None else None
            ent = a.entity
            entity = {
                "host": ent.host if ent.host is not None else (net.host if net else None),
                "process_guid": ent.process_guid
                or (getattr(net, "process_guid", None) if net else None),
                "process_name": ent.process_name,
                "src_ip": ent.src_ip or (five[1] if five else None),
                "src_port": five[2] if five and (ent.src_ip in (None, five[1])) else None,
                "dst_ip": ent.dst_ip or (five[3] if five else None),
                "dst_port": ent.dst_port
                if ent.dst_port is not None
                else (five[4] if five else None),
                "domain": ent.domain,
            }
            record: dict[str, Any] = {
                "analytic": a.analytic,
                "detector": a.detector,
                "score": a.score,
                "ts_ns": a.ts_ns,
                "time": iso(a.ts_ns),
                "raised_ns": raised.raised_ns,
                "entity": entity,
                "reason": a.reason,
                "evidence": list(a.evidence),
            }
            if truth is not None:
                actors = sorted(classify_alert(a.evidence, truth, malicious))
                record["true_alert"] = bool(actors)
                record["actors"] = actors
            out.append(record)
    out.sort(key=lambda r: (r["ts_ns"], r["analytic"], r["evidence"]))
    return out


def run_record(ev: Evaluation) -> RunRecord:
    assert ev.truth is not None
    return RunRecord(
        scenario=RECORDED_SCENARIO,
        seed=ev.truth.seed,
        parameters={},
        telemetry=TelemetryInfo.of(ev.telemetry),
        truth=ev.truth,
        detectors=ev.runs,
        generate_s=0.0,
    )


def results_document(ev: Evaluation) -> dict[str, Any] | None:
    """The canonical results document (:func:`recorded_results`) of a labelled or injected
    evaluation; ``None`` without ground truth."""
    if ev.truth is None:
        return None
    return recorded_results(ev.specs, run_record(ev))


def recorded_results(specs: Sequence[DetectorSpec], record: RunRecord) -> dict[str, Any]:
    """The canonical results document (``results.schema.json``) of one scored run on recorded
    rather than generated telemetry: profile ``recorded``, its config digest recomputed over the
    run section so changed; validated. Shared by ``evaluate`` and the lab's ``emulate``."""
    plan = RunPlan(scenarios=(), detectors=tuple(specs), seeds=(record.seed,))
    doc = build_results(plan, [record])
    run = dict(doc["run"])
    run["profile"] = RECORDED_SCENARIO
    run.pop("config_digest")
    digest = hashlib.sha256(canonical_json(run).encode()).hexdigest()
    run["config_digest"] = f"sha256:{digest}"
    doc["run"] = run
    validate(doc)
    return doc


def _analytic_status(ev: Evaluation) -> dict[str, Any]:
    by_analytic = {r.analytic: r for r in ev.runs}
    out: dict[str, Any] = {}
    for aid in ANALYTICS:
        run = by_analytic.get(aid)
        ready = ev.readiness[aid]
        if run is None:
            status, alerts, missing, error = "no_detector", 0, [], None
        else:
            status = run.outcome.value
            alerts = len(run.alerts)
            missing = [f.value for f in run.missing_fields]
            error = run.error
        out[aid] = {
            "detector": None if run is None else run.detector,
            "status": status,
            "readiness": ready.verdict.value,
            "missing_fields": missing,
            "error": error,
            "alerts": alerts,
            "events_observed": 0 if run is None else run.events_observed,
        }
    return out


def evaluation_document(ev: Evaluation) -> dict[str, Any]:
    """The evaluation document (``evaluation.json``; schema ``evaluate.schema.json``)."""
    t = ev.telemetry
    by_kind = Counter(e.kind.value for e in t.events)
    return {
        "schema_version": EVALUATE_SCHEMA_VERSION,
        "document": "evaluation",
        "harness_version": __version__,
        "inputs": [_input_dict(s) for s in ev.inputs],
        "telemetry": {
            "kinds": list(ev.kinds),
            "fields": sorted(f.value for f in t.fields),
            "events": len(t.events),
            "events_by_kind": dict(sorted(by_kind.items())),
            "hosts": len(t.hosts),
            "start": iso(t.start_ns),
            "end": iso(t.end_ns),
            "baseline_until": iso(t.baseline_until_ns),
            "baseline_events": len(t.baseline),
            "detection_host_days": t.detection_host_days,
        },
        "join": dict(ev.join),
        "readiness": {aid: r.as_dict() for aid, r in ev.readiness.items()},
        "detectors": [
            {
                "id": s.detector.id,
                "analytic": s.detector.analytic,
                "tunables": s.detector(**s.tunables).tunables,
            }
            for s in ev.specs
        ],
        "analytics": _analytic_status(ev),
        "labels": None if ev.labels is None else dict(ev.labels),
        "injection": None if ev.injection is None else ev.injection.as_dict(),
    }


@cache
def _evaluate_schema() -> dict[str, Any]:
    text = resources.files("harness").joinpath("schema/evaluate.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_document(doc: Mapping[str, Any]) -> None:
    """Raise :class:`SchemaError` if ``doc`` is not a valid readiness or evaluation document."""
    validator = jsonschema.Draft202012Validator(_evaluate_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "<root>"
        raise SchemaError(f"{doc.get('document')} document invalid at {where}: {error.message}")
