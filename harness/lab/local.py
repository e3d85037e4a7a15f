"""What the two backends that run lab programs as the harness's own child processes (``netns``
and ``loopback``) share: the processes and captures they started, the start and capture
lifecycles, and the first half of teardown (captures aborted, processes stopped).

Each subclass adds its network (namespaces, or nothing on loopback), the command prefix that
puts a process on a host (``ip netns exec NS``, or none) and the capture interface.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from harness.errors import LabError
from harness.lab.backend import LabBackend, LabHost, LabPlan, LabProcess
from harness.lab.capture import TcpdumpCapture
from harness.lab.launch import PopenLabProcess, launch

__all__ = ["LocalProcessLab"]


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

    def _start(
        self,
        host: LabHost,
        argv: Sequence[str],
        *,
        name: str,
        log: Path,
        env: Mapping[str, str] | None,
        prefix: Sequence[str] = (),
    ) -> LabProcess:
        popen = launch(argv, name=name, bin_dir=self.bin_dir, log=log, env=env, prefix=prefix)
        proc = PopenLabProcess(popen, name=name, host=host)
        self._processes.append(proc)
        return proc

    @contextmanager
    def _tcpdump(
        self,
        path: Path,
        *,
        interface: str,
        prefix: Sequence[str] = (),
        bpf: str | None = None,
    ) -> Iterator[Path]:
        """Capture on ``interface`` (in the namespace ``prefix`` enters) while the block runs."""
        cap = TcpdumpCapture(
            path,
            interface=interface,
            prefix=prefix,
            bpf=bpf,
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
