"""Packet capture for the lab: tcpdump writing a pcap, started and confirmed listening before the
traffic it must see, stopped with SIGINT so it flushes, checked afterwards.

tcpdump runs with ``-U -n -s 0 --immediate-mode -B 16384 -w PATH``: every packet is written as
it arrives (no ring-buffer timeout that could drop the last packets at SIGINT), full length, no
name resolution, with a 16 MiB kernel buffer. After the stop, :attr:`TcpdumpCapture.captured`
and :attr:`TcpdumpCapture.dropped` hold tcpdump's own counts ("packets dropped by kernel").
As root it keeps root (``-Z root``) so it can write into the harness's work
directory instead of dropping to the ``tcpdump`` user.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from harness.errors import LabError, LabUnavailableError

__all__ = ["TcpdumpCapture"]

_READY_MARK = "listening on"
_COUNT = re.compile(r"^(\d+) packets? (captured|dropped by kernel)")
_BUFFER_KIB = 16384


class TcpdumpCapture:
    """One tcpdump process capturing ``interface`` (optionally through a ``prefix`` command such
    as ``ip netns exec NS`` that execs it) into the pcap ``path``."""

    def __init__(
        self,
        path: Path,
        *,
        interface: str,
        log: Path,
        prefix: Sequence[str] = (),
        bpf: str | None = None,
        ready_timeout_s: float = 10.0,
        stop_timeout_s: float = 10.0,
        settle_s: float = 0.1,
    ) -> None:
        self.path = path
        self.interface = interface
        self.log = log
        self.prefix = tuple(prefix)
        self.bpf = bpf
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.settle_s = settle_s
        self._proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()
        self._lines: list[str] = []
        self._reader: threading.Thread | None = None
        #: tcpdump's counts after :meth:`stop` (None until then).
        self.captured: int | None = None
        self.dropped: int | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def argv(self) -> list[str]:
        tcpdump = shutil.which("tcpdump")
        if tcpdump is None:
            raise LabUnavailableError("tcpdump not found on PATH: install tcpdump to capture")
        argv = [*self.prefix, tcpdump, "-U", "-n", "-s", "0", "--immediate-mode"]
        argv += ["-B", str(_BUFFER_KIB)]
        if os.geteuid() == 0:
            argv += ["-Z", "root"]
        argv += ["-i", self.interface, "-w", str(self.path)]
        if self.bpf:
            argv.append(self.bpf)
        return argv

    def start(self) -> None:
        """Start tcpdump and return once it is listening (else :class:`LabError`)."""
        if self._proc is not None:
            raise LabError(f"capture to {self.path} already started")
        argv = self.argv()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._proc = subprocess.Popen(  # noqa: S603 - tcpdump with lab arguments
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise LabError(f"cannot start tcpdump on {self.interface}: {exc}") from exc
        self._reader = threading.Thread(
            target=self._read_stderr, name=f"tcpdump-{self.interface}", daemon=True
        )
        self._reader.start()
        if not self._ready.wait(self.ready_timeout_s) or self._proc.poll() is not None:
            self.abort()
            raise LabError(
                f"tcpdump on {self.interface} did not start listening within "
                f"{self.ready_timeout_s:g} s (it said: {self._said()})"
            )

    def _said(self) -> str:
        """tcpdump's last few stderr lines on one line, for an error message."""
        return " | ".join(line.strip() for line in self._lines[-3:]) or "nothing"

    def _read_stderr(self) -> None:
        proc = self._proc
        if proc is None or proc.stderr is None:
            return
        with open(self.log, "a", encoding="utf-8") as log:
            for line in proc.stderr:
                self._lines.append(line)
                log.write(line)
                log.flush()
                if _READY_MARK in line:
                    self._ready.set()
        self._ready.set()

    def stop(self) -> None:
        """SIGINT tcpdump, wait for it to flush and exit; :class:`LabError` if it failed."""
        proc = self._proc
        if proc is None:
            return
        if self.settle_s > 0:
            time.sleep(self.settle_s)
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            self.abort()
            raise LabError(
                f"tcpdump on {self.interface} did not exit within {self.stop_timeout_s:g} s "
                "of SIGINT; the capture may be incomplete"
            ) from None
        self._close(proc)
        for line in self._lines:
            m = _COUNT.match(line.strip())
            if m is not None:
                if m.group(2) == "captured":
                    self.captured = int(m.group(1))
                else:
                    self.dropped = int(m.group(1))
        if code != 0 or not self.path.exists():
            raise LabError(f"tcpdump on {self.interface} exited {code} (it said: {self._said()})")

    def abort(self) -> None:
        """Kill tcpdump without waiting for a flush (teardown after an error)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(2.0)
        self._close(proc)

    def _close(self, proc: subprocess.Popen[str]) -> None:
        if self._reader is not None:
            self._reader.join(2.0)
            self._reader = None
        if proc.stderr is not None:
            proc.stderr.close()
        self._proc = None
