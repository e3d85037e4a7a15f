"""The sink process: :class:`Sinks` binds and serves every endpoint of a plan, :func:`main`
is ``python -m harness.lab.sinks``.
"""

from __future__ import annotations

import argparse
import json
import signal
import socketserver
import ssl
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, ClassVar

from harness.errors import InputError
from harness.lab.backend import LabPlan, Service, ServiceEndpoint
from harness.lab.sinks.logs import SinkLog
from harness.lab.sinks.planfile import plan_from_dict
from harness.lab.sinks.raw import DnsTcpHandler, StreamHandler, UdpLoop
from harness.lab.sinks.shared import Shared, TCPServer
from harness.lab.sinks.web import HttpHandler

__all__ = ["Sinks", "main"]


class Sinks:
    """Every sink of a plan in this process: :meth:`start` binds and serves, :meth:`stop`
    closes and flushes (idempotent)."""

    _HANDLERS: ClassVar[dict[Service, type[socketserver.BaseRequestHandler]]] = {
        Service.HTTPS: HttpHandler,
        Service.HTTP: HttpHandler,
        Service.TCP: StreamHandler,
    }

    def __init__(self, plan: LabPlan, certs: Path, log_dir: Path) -> None:
        self.plan = plan
        self.certs = certs
        self.log = SinkLog(log_dir, plan)
        self.shared = Shared(plan, self.log)
        self.tcp: list[TCPServer] = []
        self.udp: list[UdpLoop] = []
        self.threads: list[threading.Thread] = []
        self.bound: list[dict[str, Any]] = []
        self._stopped = False

    def _tls(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.certs / "server.pem", self.certs / "server.key")
        return ctx

    def start(self) -> None:
        """Bind every socket (an :class:`OSError` names the address that failed) and serve."""
        try:
            for e in self.plan.endpoints:
                for port in e.ports:
                    self._bind(e, port)
        except OSError:
            self.stop()
            raise
        for server in self.tcp:
            t = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.2},
                name=f"tcp-{server.server_address}",
                daemon=True,
            )
            self.threads.append(t)
        for loop in self.udp:
            self.threads.append(loop.thread)
        for t in self.threads:
            t.start()

    def _bind(self, e: ServiceEndpoint, port: int) -> None:
        address = (e.address, port)
        try:
            if e.service is Service.DNS:
                self.udp.append(UdpLoop(self.shared, address, e.service.value))
                self.bound.append({"service": "dns", "transport": "udp", "address": e.address,
                                   "port": port})  # fmt: skip
                self.tcp.append(
                    TCPServer(address, DnsTcpHandler, shared=self.shared, service="dns")
                )
                self.bound.append({"service": "dns", "transport": "tcp", "address": e.address,
                                   "port": port})  # fmt: skip
            elif e.service is Service.UDP:
                self.udp.append(UdpLoop(self.shared, address, e.service.value))
                self.bound.append({"service": "udp", "transport": "udp", "address": e.address,
                                   "port": port})  # fmt: skip
            else:
                tls = self._tls() if e.service is Service.HTTPS else None
                self.tcp.append(
                    TCPServer(
                        address, self._HANDLERS[e.service], shared=self.shared,
                        service=e.service.value, tls=tls,
                    )
                )  # fmt: skip
                self.bound.append({"service": e.service.value, "transport": "tcp",
                                   "address": e.address, "port": port})  # fmt: skip
        except OSError as exc:
            raise OSError(
                exc.errno, f"cannot bind the {e.service.value} sink to {e.address}:{port}: "
                f"{exc.strerror or exc}",
            ) from exc  # fmt: skip

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.shared.stopping.set()
        for server in self.tcp:
            if any(t.is_alive() for t in self.threads if t.name == f"tcp-{server.server_address}"):
                server.shutdown()
            server.server_close()
        for t in self.threads:
            t.join(timeout=3.0)
        for loop in self.udp:
            loop.sweep(None)
            loop.sock.close()
        self.shared.end_all()
        self.log.close()


def main(argv: Sequence[str] | None = None) -> int:
    from harness.lab import sinks as package  # its docstring describes the command

    parser = argparse.ArgumentParser(
        prog="python -m harness.lab.sinks", description=package.__doc__
    )
    parser.add_argument("--plan", required=True, type=Path, help="lab plan JSON")
    parser.add_argument("--certs", required=True, type=Path, help="directory of server.pem/key")
    parser.add_argument("--log", required=True, type=Path, help="directory for the logs")
    args = parser.parse_args(argv)
    try:
        plan = plan_from_dict(json.loads(args.plan.read_text(encoding="utf-8")))
    except (OSError, ValueError, InputError) as exc:
        sys.stderr.write(f"sinks: cannot read the plan {args.plan}: {exc}\n")
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sinks = Sinks(plan, args.certs, args.log)
    try:
        sinks.start()
    except (OSError, ssl.SSLError) as exc:
        sys.stderr.write(f"sinks: {exc}\n")
        return 1
    sys.stdout.write("READY " + json.dumps(sinks.bound, sort_keys=True) + "\n")
    sys.stdout.flush()
    while not stop.wait(0.5):
        pass
    sinks.stop()
    sys.stdout.write("STOPPED\n")
    sys.stdout.flush()
    return 0
