"""The ``loopback`` lab backend: the unprivileged fallback, everything on 127.0.0.0/8.

There is no isolation: clients and sinks are processes in the harness's own network namespace,
told apart by address (the loopback plan of :func:`harness.lab.plan.default_plan`: clients
``127.0.2.x``, sinks ``127.0.113.x`` and ``127.0.100.x``). Linux routes all of 127.0.0.0/8 to
``lo``, so no address has to be configured, and nothing can leave the machine. Programs bind
their sockets to their client address (the ``{bind}`` placeholder) so that flows show the
client's address instead of 127.0.0.1.

Capture is tcpdump on ``lo`` filtered to the plan's addresses. Opening a capture needs root or
CAP_NET_RAW; without them :meth:`LoopbackBackend.capture` raises
:class:`~harness.errors.LabUnavailableError` and the sinks' own logs (Zeek-style, written by
:mod:`harness.lab.sinks`) are the fallback source of network events.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from harness.errors import LabError, LabUnavailableError
from harness.lab.backend import LabHost, LabPlan
from harness.lab.local import CaptureTarget, LocalProcessLab
from harness.lab.plan import plan_addresses

# plan_addresses lives in harness.lab.plan; re-exported for the callers that import it from here.
__all__ = ["LoopbackBackend", "can_capture", "plan_addresses"]

_CAP_NET_RAW = 13


def can_capture() -> bool:
    """Whether this process may open a packet capture: root, or CAP_NET_RAW effective."""
    if os.geteuid() == 0:
        return True
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> _CAP_NET_RAW & 1)
    except OSError:
        return False
    return False


class LoopbackBackend(LocalProcessLab):
    """Processes in the harness's own namespace on 127.0.0.0/8 (see the module docstring)."""

    name = "loopback"

    def __init__(self, plan: LabPlan, workdir: Path) -> None:
        super().__init__(plan, workdir)
        for address in plan_addresses(plan):
            if not ipaddress.ip_address(address).is_loopback:
                raise LabError(
                    f"loopback lab needs 127.0.0.0/8 addresses, plan has {address} "
                    "(use default_plan(..., loopback=True))"
                )

    @classmethod
    def available(cls) -> str | None:
        if not os.path.exists("/proc/self/net/tcp"):
            return "the loopback backend needs Linux /proc (for socket attribution)"
        return None

    def up(self) -> None:
        reason = self.available()
        if reason is not None:
            raise LabUnavailableError(reason)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._is_up = True

    def down(self) -> None:
        self._stop_started()
        self._is_up = False

    def _host_prefix(self, host: LabHost) -> Sequence[str]:
        if host != self.plan.sink and host not in self.plan.clients:
            raise LabError(f"host {host.name!r} is not part of lab {self.plan.run_id!r}")
        return ()

    def bpf(self) -> str:
        """The capture filter: packets from or to one of the plan's addresses."""
        return " or ".join(f"host {a}" for a in plan_addresses(self.plan))

    def _capture_target(self) -> CaptureTarget:
        if not can_capture():
            raise LabUnavailableError(
                "loopback capture needs root or CAP_NET_RAW to run tcpdump on lo; without it "
                "use the sinks' own logs (Zeek-style) as the network events"
            )
        return CaptureTarget(interface="lo", bpf=self.bpf())

    def netns_of(self, host: LabHost) -> str | None:
        return None
