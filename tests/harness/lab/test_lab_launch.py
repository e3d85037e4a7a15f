"""Programs start under a chosen executable name, with the harness importable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import InvalidParameterError
from harness.lab.backend import HostRole, LabHost
from harness.lab.launch import COMM_LEN, PopenLabProcess, launch, named_python

HOST = LabHost(name="client-1", role=HostRole.CLIENT, address="127.0.2.101")

# Prints what the child sees of itself, then waits so the parent can read /proc.
REPORT = (
    "import json, os, sys, harness.lab.plan as p\n"
    "print(json.dumps({'file': p.__file__, 'argv0': sys.argv[0], 'exe': sys.executable}))\n"
    "sys.stdout.flush()\n"
    "import time; time.sleep(5)\n"
)


def _wait_for(pred, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def test_named_python_runs_with_the_harness_importable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "child.log"
    # No inherited PYTHONPATH and a cwd outside the repo: only launch's PYTHONPATH helps.
    monkeypatch.delenv("PYTHONPATH", raising=False)
    env = {"HOME": str(tmp_path)}
    popen = launch(
        ["python", "-c", REPORT],
        name="rundll32.exe",
        bin_dir=tmp_path / "bin",
        log=log,
        env=env,
        cwd=tmp_path,
    )
    proc = PopenLabProcess(popen, name="rundll32.exe", host=HOST)
    try:
        _wait_for(lambda: log.exists() and log.read_text().strip())
        assert _comm(proc.pid) == "rundll32.exe"
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0].decode() == str(tmp_path / "bin" / "rundll32.exe")
        assert os.readlink(f"/proc/{proc.pid}/exe") == os.path.realpath(sys.executable)
        seen = json.loads(log.read_text().splitlines()[0])
        assert Path(seen["file"]).resolve() == (
            Path(__file__).resolve().parents[3] / "harness" / "lab" / "plan.py"
        )
        # The session leader of its own group (start_new_session=True).
        assert os.getpgid(proc.pid) == proc.pid
    finally:
        code = proc.stop(grace_s=2.0)
    assert code == -15  # terminated by SIGTERM
    assert proc.poll() is not None


def test_comm_is_truncated_to_15_characters(tmp_path: Path) -> None:
    name = "svchost-updater.exe"
    popen = launch(
        ["python", "-c", "import time; time.sleep(5)"],
        name=name,
        bin_dir=tmp_path / "bin",
        log=tmp_path / "log",
    )
    proc = PopenLabProcess(popen, name=name, host=HOST)
    try:
        _wait_for(lambda: _comm(proc.pid) != "python")
        assert _comm(proc.pid) == name[:COMM_LEN] == "svchost-updater"
    finally:
        proc.stop(grace_s=2.0)


def test_other_programs_run_under_the_name_too(tmp_path: Path) -> None:
    popen = launch(["sleep", "5"], name="notepad.exe", bin_dir=tmp_path / "bin", log=tmp_path / "l")
    proc = PopenLabProcess(popen, name="notepad.exe", host=HOST)
    try:
        _wait_for(lambda: _comm(proc.pid) == "notepad.exe")
        assert os.path.basename(os.readlink(f"/proc/{proc.pid}/exe")) == "sleep"
    finally:
        proc.stop(grace_s=2.0)


def test_stop_takes_the_whole_process_group(tmp_path: Path) -> None:
    log = tmp_path / "log"
    script = (
        "import subprocess, sys, time\n"
        "c = subprocess.Popen(['sleep', '30'])\n"
        "print(c.pid, flush=True)\n"
        "time.sleep(30)\n"
    )
    popen = launch(["python", "-c", script], name="parent.exe", bin_dir=tmp_path / "b", log=log)
    proc = PopenLabProcess(popen, name="parent.exe", host=HOST)
    _wait_for(lambda: log.exists() and log.read_text().strip())
    child = int(log.read_text().split()[0])
    proc.stop(grace_s=2.0)
    # The grandchild is gone too (a zombie until init reaps it counts as gone).
    _wait_for(lambda: not Path(f"/proc/{child}").exists() or _state(child) == "Z")


def _state(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "gone"
    return stat[stat.rfind(")") + 2]


def test_named_python_is_idempotent_and_points_at_the_interpreter(tmp_path: Path) -> None:
    a = named_python(tmp_path, "x.exe")
    b = named_python(tmp_path, "x.exe")
    assert a == b == tmp_path / "x.exe"
    assert os.readlink(a) == sys.executable
    out = subprocess.run([str(a), "-c", "print(1)"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_a_disguised_copy_runs_from_its_own_folder(tmp_path: Path) -> None:
    """A browser's name from an unusual folder: the image path differs from the real
    browser's, the process name is the same."""
    name = "Users/Public/Downloads/chrome.exe"
    popen = launch(["sleep", "5"], name=name, bin_dir=tmp_path / "bin", log=tmp_path / "l")
    proc = PopenLabProcess(popen, name=name, host=HOST)
    try:
        _wait_for(lambda: _comm(proc.pid) == "chrome.exe")
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0].decode() == str(tmp_path / "bin" / name)
    finally:
        proc.stop(grace_s=2.0)


@pytest.mark.parametrize("bad", ["", ".", "..", "/abs", "a/../b", "a//b", "a/", "x\0y"])
def test_bad_names_are_rejected(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidParameterError, match="executable name"):
        launch(["python"], name=bad, bin_dir=tmp_path, log=tmp_path / "l")


def test_unknown_program_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="no-such-program-eh"):
        launch(["no-such-program-eh"], name="a.exe", bin_dir=tmp_path, log=tmp_path / "l")
