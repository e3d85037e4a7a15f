"""The loopback backend: unprivileged start and attribution on 127.0.0.0/8; capture on lo only
with root or CAP_NET_RAW, else a clear LabUnavailableError."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import LabError
from harness.events import NetworkFlow, Transport
from harness.ingest._flows import IngestConfig
from harness.ingest.pcap import read_pcap
from harness.lab.launch import harness_pythonpath
from harness.lab.loopback import LoopbackBackend, plan_addresses
from harness.lab.plan import default_plan

HERE = Path(__file__).parent
CHILD = HERE / "loopback_child.py"
sys.path.insert(0, str(HERE))
from loopback_child import shifted  # noqa: E402 - a helper script next to this test


def _run_id(tag: str) -> str:
    return f"{tag}{os.getpid():x}"[:8]


# Our loopback labs live on 127.77.x.y: other loopback labs on this machine (the default plan's
# 127.0.x.y, fixed ports) may run at the same time.
OCTET = 77


def _check(out: dict, work: Path) -> None:  # type: ignore[type-arg]
    assert out["code"] == 0
    assert out["netns_of"] is None
    report = out["report"]
    assert report["tcp_reply"] == "tcp-ack:hello"
    assert report["udp_reply"] == "udp-ack:hello"
    assert report["tcp_local"][0] == report["udp_local"][0] == f"127.{OCTET}.2.101"
    image = str(work / "bin" / "rundll32.exe")
    assert out["tcp_owner"] == [out["client_pid"], "rundll32.exe", image]
    assert out["udp_owner"] == [out["client_pid"], "rundll32.exe"]
    assert out["images"][str(out["client_pid"])] == image


def test_loopback_plan_is_required(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"127\.0\.0\.0/8"):
        LoopbackBackend(default_plan("x"), tmp_path)


def test_capture_filter_names_every_plan_address() -> None:
    plan = default_plan("x", loopback=True)
    bpf = LoopbackBackend(plan, Path("/nonexistent")).bpf()
    assert bpf.split(" or ") == [f"host {a}" for a in plan_addresses(plan)]
    assert all(a.startswith("127.") for a in plan_addresses(plan))


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="eh-loopback-"))
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


_DROP = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


# What the lab does with the interpreter: run it through a named symlink.
_PROBE = (
    "import os, subprocess, sys, tempfile, harness.lab.loopback\n"
    "d = tempfile.mkdtemp(); os.symlink(sys.executable, d + '/probe')\n"
    "subprocess.run([d + '/probe', '-c', 'import harness'], check=True)\n"
)


def _python_for_nobody(env: dict[str, str]) -> str | None:
    """An interpreter of our Python version that user nobody can run, through a symlink, with
    the harness importable: ours if others may read it, else the system's ``pythonX.Y``."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system = shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")
    for candidate in (os.path.realpath(sys.executable), system):
        if candidate is None:
            continue
        probe = subprocess.run(
            [*_DROP, candidate, "-c", _PROBE],
            capture_output=True,
            env=env,
            cwd="/",
            timeout=30,
        )
        if probe.returncode == 0:
            return candidate
    return None


def test_unprivileged_start_and_attribution(nobody_dir: Path) -> None:
    """Start and attribution work for an unprivileged user (root drops to nobody with setpriv);
    capture then says it needs root or CAP_NET_RAW and names the fallback."""
    env = {**os.environ, "PYTHONPATH": harness_pythonpath(), "HOME": str(nobody_dir)}
    python = sys.executable
    argv_prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv not available to drop privileges")
        found = _python_for_nobody(env)
        if found is None:
            pytest.skip("no Python interpreter that user nobody can run")
        python, argv_prefix = found, _DROP
    argv = [*argv_prefix, python, str(CHILD), _run_id("u"), str(nobody_dir / "w"), str(OCTET)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd="/")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    _check(out, nobody_dir / "w")
    error = out["capture_error"]
    assert "needs root or CAP_NET_RAW" in error
    assert "sinks' own logs" in error
    assert "captured" not in out


@pytest.mark.privileged
def test_capture_on_lo_as_root(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("tcpdump") is None:
        pytest.skip("capturing on lo needs root and tcpdump")
    work = tmp_path / "w"
    # The child's capture block is empty; capture here around a whole child run instead.
    plan = shifted(default_plan(_run_id("l"), clients=1, loopback=True), OCTET)
    lab = LoopbackBackend(plan, tmp_path / "outer")
    with lab, lab.capture(tmp_path / "lo.pcap"):
        done = subprocess.run(
            [sys.executable, str(CHILD), plan.run_id, str(work), str(OCTET)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    _check(out, work)
    assert out["captured"] is True
    config = IngestConfig(internal_networks=plan.internal_networks)
    flows = [
        e for e in read_pcap(tmp_path / "lo.pcap", config=config) if isinstance(e, NetworkFlow)
    ]
    tcp_port, udp_port = out["report"]["tcp_local"][1], out["report"]["udp_local"][1]
    keys = {(f.transport, f.src_ip, f.src_port, f.dst_ip, f.dst_port) for f in flows}
    client, tcp_sink, udp_sink = f"127.{OCTET}.2.101", f"127.{OCTET}.100.20", f"127.{OCTET}.100.21"
    assert (Transport.TCP, client, tcp_port, tcp_sink, 4444) in keys
    assert (Transport.UDP, client, udp_port, udp_sink, 9999) in keys
    # Only plan addresses were captured.
    addresses = set(plan_addresses(plan))
    assert all(f.src_ip in addresses and f.dst_ip in addresses for f in flows)
