"""AN0144 reference detector: excessive HTTP(S) upload from uncommon or unseen processes.

MITRE (DET0053, T1001): "Detects excessive outbound traffic to remote host over HTTP(S) from
uncommon or previously unseen processes." MITRE gives no logic or thresholds; this is ours.

Logic
-----
A process's identity is its normalised executable path (:func:`detectors.features.process.
image_key`: case-folded, per-user profile folders folded together), so ``chrome.exe`` run from
``C:\\Users\\Public`` is not Chrome, while every user's OneDrive is one application.

From the baseline window the detector learns which images sent HTTP or TLS traffic outward on
which host, and on how many hosts each image runs at all (fleet prevalence, from process
starts). It keeps learning prevalence in the detection window, because a software rollout
reaches many hosts within hours and stops looking rare.

In the detection window it keeps, per process instance, the bytes sent outward over HTTP/TLS in
the last ``window_s`` seconds, from flow records as they are exported (so a long upload is seen
while it is still running). It alerts once per process instance when that sum reaches
``min_bytes`` and the image never used HTTP(S) on this host in the baseline, and is either
**uncommon** (it has run on fewer than ``max_fleet_hosts`` hosts so far) or **unseen as a web
client**: common, but no host at all sent HTTP(S) from it in the baseline (Notepad or
rundll32 uploading over TLS). The score grows with the volume over the threshold and is raised
for unsigned images.

Software deployments (:class:`detectors.features.process.DeploymentHold`): an alert on an image
that never ran anywhere in the baseline, is signed and is not under ``C:\\Windows`` (operating-
system binaries are not rolled out; one never run before is a LOLBin) is held until
``rollout_hold_s`` after the image first started in the fleet. If by then it has started on
``rollout_hosts`` hosts or more it is judged a deployment (SCCM, Intune and the like push signed
software to many machines within minutes to hours) and dropped; otherwise it is raised then.
Unsigned new images are never held.

MITRE's related tunable (AN0988) is "more than 1 MB in under 5 minutes"; the default here is
2 MB in 5 minutes, because signed software routinely sends diagnostic bundles of 1 to 2 MB.

Assumptions: flows carry the owning process (EDR, or Sysmon 3 joined to flow bytes); the
application protocol is identified from payload (``http``/``tls``), not from the port; the
baseline covers the organisation's normal software (7 to 20 days in Elastic's new_terms rules;
the default suite gives three).

Known gaps:
  * A process already seen using HTTP(S) on the host never alerts, however much it sends:
    code injected into a browser or svchost, or a renamed copy placed at the real path, is
    invisible here (AN0988 and AN0030 judge volume against a process's own history).
  * Uploads slower than ``min_bytes`` per ``window_s`` (low and slow) are not caught.
  * A genuine software rollout that reaches fewer than ``rollout_hosts`` hosts within
    ``rollout_hold_s`` (a pilot group) alerts on its uploads; an attacker's signed tool that
    spreads to that many hosts within the hold is dropped as a deployment.
  * A common program that starts using HTTP(S) for the first time after an update (no host
    used it as a web client in the baseline) alerts when it uploads ``min_bytes``.
  * HTTP(S) relayed through an explicit proxy shows the proxy as destination; the process is
    still right, so the logic holds, but the alert names the proxy.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

from detectors.features.process import DEPLOYMENT_TUNABLES, DeploymentHold, ProcessTable
from harness.alerts import Alert, Entity
from harness.analytics import AnalyticId, TechniqueId, analytic_id, technique_id
from harness.detector import Detector, Tunable
from harness.events import (
    NS_PER_S,
    AppProtocol,
    Direction,
    Event,
    EventKind,
    NetworkFlow,
    ProcessStart,
)
from harness.fields import Field

__all__ = ["UnseenProcessHttpsVolume"]

_HTTP, _TLS = AppProtocol.HTTP, AppProtocol.TLS
_OUTBOUND = Direction.OUTBOUND


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


class _Window:
    """Bytes of one process instance within the last ``window_ns``, with their evidence."""

    __slots__ = ("items", "total")

    def __init__(self) -> None:
        self.items: deque[tuple[int, int, str]] = deque()
        self.total = 0


class UnseenProcessHttpsVolume(Detector):
    """Alerts when a process unseen on the host and rare in the fleet uploads ``min_bytes``
    over HTTP(S) within ``window_s`` (see the module docstring for the logic and its gaps)."""

    id: ClassVar[str] = "an0144-unseen-process-https"
    analytic: ClassVar[AnalyticId] = analytic_id("AN0144")
    techniques: ClassVar[tuple[TechniqueId, ...]] = (technique_id("T1001"),)
    required_fields: ClassVar[frozenset[Field]] = frozenset(
        {Field.PROCESS, Field.FLOW_PROCESS, Field.FLOW_BYTES, Field.FLOW_APP_PROTOCOL}
    )
    consumes: ClassVar[frozenset[EventKind]] = frozenset(
        {EventKind.PROCESS_START, EventKind.NETWORK_FLOW}
    )
    tunable_specs: ClassVar[Mapping[str, Tunable]] = {
        "min_bytes": Tunable(
            default=2_000_000,
            minimum=1_000,
            maximum=1e10,
            primary=True,
            description="bytes sent over HTTP(S) by one process instance within window_s "
            "before it can alert (MITRE's AN0988 tunable: 1 MB in under 5 minutes)",
        ),
        "window_s": Tunable(
            default=300,
            minimum=10,
            maximum=86_400,
            description="sliding window over which uploaded bytes are summed, seconds",
        ),
        "max_fleet_hosts": Tunable(
            default=5,
            minimum=1,
            maximum=1e6,
            description="an image that has run on at least this many hosts is common, not rare",
        ),
        **DEPLOYMENT_TUNABLES,
    }

    def __init__(self, **tunables: float) -> None:
        super().__init__(**tunables)
        self.min_bytes = self.tunables["min_bytes"]
        self.window_ns = int(self.tunables["window_s"] * NS_PER_S)
        self.max_fleet_hosts = int(self.tunables["max_fleet_hosts"])
        self._procs = ProcessTable()
        self._hold = DeploymentHold.from_tunables(self._procs, self.tunables)
        self._web_here: set[tuple[str, str]] = set()  # (host, image) that used HTTP(S)
        self._web_anywhere: set[str] = set()  # images any host used HTTP(S) from
        self._windows: dict[str, _Window] = {}
        self._alerted: set[str] = set()

    def fit(self, baseline: Iterable[Event]) -> None:
        procs = self._procs
        web_here, web_anywhere = self._web_here, self._web_anywhere
        # process_guid -> host of the web uploads already learnt for it (until its start is
        # learnt again, which can change its image): one look-up per further upload.
        done: dict[str | None, str] = {}
        for event in baseline:
            if type(event) is NetworkFlow:
                if (
                    event.direction is _OUTBOUND
                    and ((app := event.app_protocol) is _TLS or app is _HTTP)
                    and event.bytes_out > 0
                ):
                    guid, host = event.process_guid, event.host
                    if done.get(guid) != host:
                        image = self._image(guid)
                        web_here.add((host, image))
                        web_anywhere.add(image)
                        done[guid] = host
            elif type(event) is ProcessStart:
                procs.learn(event)
                done.pop(event.process_guid, None)
        procs.end_baseline()

    def observe(self, event: Event) -> Sequence[Alert]:
        released: Sequence[Alert] = ()
        if event.ts_ns >= self._hold.next_due_ns:
            released = self._hold.release(event.ts_ns)
        if type(event) is NetworkFlow:
            # Only web uploads are judged; most flows are not.
            if (
                event.direction is not _OUTBOUND
                or ((app := event.app_protocol) is not _TLS and app is not _HTTP)
                or event.bytes_out <= 0
            ):
                return released
            judged = self._judge(event)
            return (*released, *judged) if released else judged
        if type(event) is ProcessStart:
            self._procs.learn(event)
        return released

    def flush(self) -> Sequence[Alert]:
        return self._hold.release(None)

    def _judge(self, flow: NetworkFlow) -> Sequence[Alert]:
        """One outbound web upload record (``observe`` filters): the window update inline."""
        guid = flow.process_guid
        if guid is None or guid in self._alerted:
            return ()
        win = self._windows.get(guid)
        if win is None:
            win = self._windows[guid] = _Window()
        ts = flow.ts_ns
        items = win.items
        items.append((ts, flow.bytes_out, flow.event_id))
        win.total += flow.bytes_out
        horizon = ts - self.window_ns
        while items and items[0][0] <= horizon:
            win.total -= items.popleft()[1]
        if win.total < self.min_bytes:
            return ()
        image = self._image(guid)
        if (flow.host, image) in self._web_here:
            return ()
        fleet = self._procs.fleet_hosts(image)
        if fleet >= self.max_fleet_hosts and image in self._web_anywhere:
            return ()
        self._alerted.add(guid)
        del self._windows[guid]
        alert = self._alert(flow, win, fleet)
        proc = self._procs.get(guid)
        if proc is not None and self._hold.applies(proc):
            return self._hold.submit(proc, alert)
        return (alert,)

    def _image(self, guid: str | None) -> str:
        return self._procs.image(guid) or f"<unknown process {guid}>"

    def _alert(self, flow: NetworkFlow, win: _Window, fleet: int) -> Alert:
        proc = self._procs.get(flow.process_guid)
        name = proc.name if proc else "unknown process"
        unsigned = proc is not None and proc.signer is None
        signature = "unsigned" if unsigned else f"signed by {proc.signer}" if proc else "?"
        image = proc.image if proc else "an unknown path"
        excess = win.total / self.min_bytes
        score = min(1.0, 0.5 + 0.25 * math.log10(excess) + 0.2 * unsigned)
        minutes = self.window_ns / NS_PER_S / 60
        novelty = (
            f"runs on {fleet} host{'s' if fleet != 1 else ''}"
            if fleet < self.max_fleet_hosts
            else f"runs on {fleet} hosts but none ever used it for HTTP(S)"
        )
        return Alert(
            analytic=self.analytic,
            detector=self.id,
            ts_ns=flow.ts_ns,
            score=round(score, 4),
            entity=Entity(
                host=flow.host,
                process_guid=flow.process_guid,
                process_name=name,
                src_ip=flow.src_ip,
                dst_ip=flow.dst_ip,
                dst_port=flow.dst_port,
                domain=flow.server_name,
            ),
            evidence=tuple(eid for _, _, eid in win.items),
            reason=(
                f"{name} ({signature}) from {image} sent {_mb(win.total)} over "
                f"{flow.app_protocol.value.upper()} to {flow.server_name or flow.dst_ip} within "
                f"{minutes:g} min; never used HTTP(S) on this host before, {novelty}"
            ),
        )
