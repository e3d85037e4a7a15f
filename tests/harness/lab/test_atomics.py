"""The project's Atomic Red Team-format tests: they validate, atomic-operator reads them, and one
runs through atomic-operator as a real process tree against a sink on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from harness.errors import InvalidParameterError
from harness.lab.atomics import (
    ATOMICS_DIR,
    AtomicsError,
    executable_names,
    find_test,
    load_atomics,
    main,
)
from harness.lab.launch import child_env
from scenarios.programs import PROGRAMS

REQUIRED = {"T1048.003", "T1071.004", "T1041", "T1567.002", "T1571", "T1001.001"}
LO = "127.0.0.1"


def test_every_file_validates_and_every_technique_has_a_test() -> None:
    atomics = load_atomics()
    assert set(atomics) == REQUIRED
    guids = [t.guid for f in atomics.values() for t in f.tests]
    assert len(guids) == len(set(guids))
    for technique, atomic in atomics.items():
        assert atomic.path == ATOMICS_DIR / technique / f"{technique}.yaml"
        assert atomic.tests
        for test in atomic.tests:
            assert test.technique == technique
            assert "linux" in test.platforms
            assert test.executor == "sh"
            program = test.command.split("-m scenarios.programs.", 1)[1].split()[0]
            assert program in PROGRAMS, test.name
            assert test.command.startswith("#{bin_dir}/#{exe_name} -m scenarios.programs.")
            for name in ("run_id", "bind", "duration"):
                assert f"#{{{name}}}" in test.command, (test.name, name)


def test_atomic_operator_itself_loads_every_test() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # paramiko deprecation warnings on import
        from atomic_operator.atomic.loader import Loader
        from atomic_operator.base import Base
        from atomic_operator.models import Config

    previous = Base.CONFIG
    Base.CONFIG = Config(atomics_path=str(ATOMICS_DIR))
    try:
        loaded = Loader().load_techniques()
    finally:
        Base.CONFIG = previous
    ours = {t: a for t, a in loaded.items() if t in REQUIRED}
    assert set(ours) == REQUIRED
    for technique, atomic in load_atomics().items():
        theirs = ours[technique]
        assert theirs.attack_technique == technique
        assert [t.name for t in theirs.atomic_tests] == [t.name for t in atomic.tests]
        assert [t.auto_generated_guid for t in theirs.atomic_tests] == [
            t.guid for t in atomic.tests
        ]


def _write(root: Path, technique: str, text: str) -> Path:
    folder = root / technique
    folder.mkdir(parents=True)
    path = folder / f"{technique}.yaml"
    path.write_text(text)
    return path


_GOOD = """\
attack_technique: T1571
display_name: Non-Standard Port
atomic_tests:
  - name: one
    auto_generated_guid: 6d1c2f64-0c59-4c2e-9f0e-6f3c2b1a9d11
    description: a test
    supported_platforms: [linux]
    input_arguments:
      bin_dir: {description: d, type: path, default: /tmp/b}
      exe_name: {description: d, type: string, default: x}
    executor:
      name: sh
      command: "#{bin_dir}/#{exe_name} -m scenarios.programs.misuse"
"""


@pytest.mark.parametrize(
    ("technique", "text", "field"),
    [
        ("T1571", _GOOD.replace("auto_generated_guid: 6d1c", "auto_generated_guid: zz1c"),
         "auto_generated_guid"),
        ("T1571", _GOOD.replace("    description: a test\n", ""), "description"),
        ("T1571", _GOOD.replace("#{exe_name}", "#{exe}"), "executor.command"),
        ("T1571", _GOOD.replace("type: string", "type: str"), "exe_name.type"),
        ("T1571", _GOOD.replace("supported_platforms: [linux]", "supported_platforms: [windows]"),
         "supported_platforms"),
        ("T1571", _GOOD.replace("    executor:", "    colour: blue\n    executor:"),
         "unknown field"),
        ("T1572", _GOOD, "attack_technique"),
        ("T1571", _GOOD.replace("name: sh", "name: powershell"), "executor.name"),
    ],
)  # fmt: skip
def test_schema_errors_name_the_file_and_the_field(
    tmp_path: Path, technique: str, text: str, field: str
) -> None:
    path = _write(tmp_path, technique, text)
    with pytest.raises(AtomicsError) as caught:
        load_atomics(tmp_path)
    message = str(caught.value)
    assert str(path) in message
    assert field in message


def test_the_good_file_loads_and_lookups_suggest(tmp_path: Path) -> None:
    _write(tmp_path, "T1571", _GOOD)
    atomics = load_atomics(tmp_path)
    test = find_test(atomics, "T1571", "one")
    assert executable_names(test, {"bin_dir": "/b", "exe_name": "svc.exe"}) == ("svc.exe",)
    with pytest.raises(InvalidParameterError, match="did you mean 'one'"):
        find_test(atomics, "T1571", "onee")
    with pytest.raises(InvalidParameterError, match="T1571"):
        find_test(atomics, "T1570", "one")


def test_runner_rejects_unknown_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["--technique", "T1571", "--test", "TLS to a non-standard port",
         "--bin-dir", str(tmp_path), "--arg", "colour=blue"]
    )  # fmt: skip
    assert code == 2
    assert "colour=blue" in capsys.readouterr().err


@dataclass
class AttributingSink:
    """A TCP sink that, for every connection, asks the kernel (through psutil) which process
    owns the client's socket, and records it with the bytes received."""

    sock: socket.socket
    seen: list[tuple[str, list[int], bytes]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, peer = self.sock.accept()
            except TimeoutError:
                continue
            owner = next(
                (
                    c.pid
                    for c in psutil.net_connections(kind="tcp")
                    if c.laddr and tuple(c.laddr) == tuple(peer) and c.pid
                ),
                None,
            )
            name, ancestors = "?", []
            if owner is not None:
                process = psutil.Process(owner)
                name = process.name()
                ancestors = [p.pid for p in process.parents()]
            with conn:
                conn.settimeout(2)
                data = b""
                while True:
                    try:
                        chunk = conn.recv(65_536)
                    except OSError:
                        break
                    if not chunk:
                        break
                    data += chunk
            self.seen.append((name, ancestors, data))


@pytest.fixture
def attributing_sink() -> Iterator[AttributingSink]:
    sock = socket.socket()
    sock.bind((LO, 0))
    sock.listen(8)
    sink = AttributingSink(sock=sock)
    thread = threading.Thread(target=sink.serve, daemon=True)
    thread.start()
    yield sink
    sink.stop.set()
    thread.join(5)
    sock.close()


def test_an_atomic_runs_through_atomic_operator_as_a_named_descendant(
    tmp_path: Path, attributing_sink: AttributingSink
) -> None:
    run_id = "at7run"
    bin_dir = tmp_path / "bin"
    port = attributing_sink.sock.getsockname()[1]
    started = time.monotonic()
    runner = subprocess.Popen(
        [
            sys.executable, "-m", "harness.lab.atomics", "--technique", "T1571",
            "--test", "TLS to a non-standard port", "--bin-dir", str(bin_dir),
            "--arg", "exe_name=updsvc.exe", "--arg", f"run_id={run_id}", "--arg", f"bind={LO}",
            "--arg", f"host={LO}", "--arg", f"port={port}", "--arg", "sessions=3",
            "--arg", "duration=20", "--timeout", "60",
        ],
        cwd=tmp_path, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = runner.communicate(timeout=120)
    elapsed = time.monotonic() - started
    assert runner.returncode == 0, err.decode()[-2000:]
    assert b'"technique": "T1571"' in out
    # Three sessions 3 s apart: longer than atomic-operator's built-in 5-second kill.
    assert elapsed > 6
    assert (bin_dir / "updsvc.exe").resolve() == Path(sys.executable).resolve()
    assert len(attributing_sink.seen) == 3
    for name, ancestors, data in attributing_sink.seen:
        assert name == "updsvc.exe"
        assert runner.pid in ancestors  # the program is a descendant of the runner
        assert data.startswith(b"\x16\x03")  # a TLS ClientHello
        assert f"{run_id}.lab.example".encode() in data  # the run id in the SNI
    # Nothing the runner started outlives it.
    assert not [p for p in psutil.process_iter(["name"]) if p.info["name"] == "updsvc.exe"]
    shutil.rmtree(bin_dir)
