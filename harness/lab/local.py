"""What the two backends that run lab programs as the harness's own child processes (``netns``
and ``loopback``) share: the processes and captures they started, the start and capture
lifecycles, and the first half of teardown (captures aborted, processes stopped).

Each subclass adds its network (namespaces, or nothing on loopback), the command prefix that
puts a process on a host (``ip netns exec NS``, or none: :meth:`LocalProcessLab._host_prefix`)
and where the capture runs (:meth:`LocalProcessLab._capture_target`).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.errors import LabError
from harness.lab.backend import LabBackend, LabHost, LabPlan, LabProcess
from harness.lab.capture import TcpdumpCapture
from harness.lab.launch import PopenLabProcess, launch

__all__ = ["CaptureTarget", "LocalProcessLab"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureTarget:
    """Where a local lab's tcpdump captures: ``interface``, in the namespace ``prefix`` enters
    (``ip netns exec NS``, or none), filtered by ``bpf`` (or not at all)."""

    interface: str
    prefix: tuple[str, ...] = ()
    bpf: str | None = None


class LocalProcessLab(LabBackend):
    """A lab whose programs are child processes of the harness, started through
    :func:`harness.lab.launch.launch`, and whose capture is a local tcpdump."""

    def __init__(self, plan: LabPlan, workdir: Path) -> None:
        super().__init__(plan, workdir)
        self.bin_dir = workdir / "bin"
        self._processes: list[PopenLabProcess] = []
        self._captures: list[TcpdumpCapture] = []
        #: Every finished capture of this lab (tcpdump's captured/dropped counts on each).
        self.finished_captures: list[TcpdumpCapture] = []
        self._is_up = False

    def _require_up(self, what: str) -> None:
        if not self._is_up:
            raise LabError(f"{self.name} lab is not up: {what}() needs up() first")

    def _stop_started(self) -> None:
        """Abort running captures and stop every process started (teardown's first half)."""
        for cap in reversed(self._captures):
            cap.abort()
        self._captures.clear()
        for proc in reversed(self._processes):
            with contextlib.suppress(Exception):
                proc.stop(grace_s=1.0)
        self._processes.clear()

    @abc.abstractmethod
    def _host_prefix(self, host: LabHost) -> Sequence[str]:
        """The command that puts a process on ``host`` (it must exec the program, see
        :func:`~harness.lab.launch.launch`); :class:`LabError` if ``host`` is not in the lab."""

    @abc.abstractmethod
    def _capture_target(self) -> CaptureTarget:
        """Where this lab's capture runs; raises when the lab cannot capture here."""

    def start(
        self,
        host: LabHost,
        argv: Sequence[str],
        *,
        name: str,
        log: Path,
        env: Mapping[str, str] | None = None,
    ) -> LabProcess:
        self._require_up("start")
        prefix = self._host_prefix(host)
        popen = launch(argv, name=name, bin_dir=self.bin_dir, log=log, env=env, prefix=prefix)
        proc = PopenLabProcess(popen, name=name, host=host)
        self._processes.append(proc)
        return proc

    @contextmanager
    def capture(self, path: Path) -> Iterator[Path]:
        self._require_up("capture")
        target = self._capture_target()
        cap = TcpdumpCapture(
            path,
            interface=target.interface,
            prefix=target.prefix,
            bpf=target.bpf,
            log=self.workdir / f"tcpdump-{path.stem}.log",
        )
        self._captures.append(cap)
        cap.start()
        try:
            yield path
        finally:
            try:
                cap.stop()
                self.finished_captures.append(cap)
            finally:
                if cap in self._captures:
                    self._captures.remove(cap)
