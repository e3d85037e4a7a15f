"""SocketMonitor on a fake /proc tree with an injected clock: socket-table parsing, owner look-up
with poll tolerance, exec refresh, descendants, and deterministic ProcessStart events."""

from __future__ import annotations

import os
import pwd
import socket
import struct
from pathlib import Path

import pytest

from harness.events import Transport
from harness.lab.attribution import SocketMonitor, process_guid

MS = 1_000_000
NS_A, NS_B = "net:[4026530001]", "net:[4026530002]"
HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout"
    " inode\n"
)


def _hex4(ip: str) -> str:
    return f"{struct.unpack('<I', socket.inet_aton(ip))[0]:08X}"


def _hex6(ip: str) -> str:
    words = struct.unpack("<4I", socket.inet_pton(socket.AF_INET6, ip))
    return "".join(f"{w:08X}" for w in words)


def _row(local: str, remote: str, state: str, inode: int, v6: bool = False) -> str:
    def ep(text: str) -> str:
        ip, port = text.rsplit(":", 1)
        return f"{(_hex6 if v6 else _hex4)(ip.strip('[]'))}:{int(port):04X}"

    return (
        f"   0: {ep(local)} {ep(remote)} {state} 00000000:00000000 00:00000000 00000000"
        f"     0        0 {inode} 1 0000000000000000 20 4 30 10 -1\n"
    )


class FakeProc:
    """A /proc tree of made-up processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()

    def add(
        self,
        pid: int,
        *,
        ppid: int,
        comm: str,
        argv: list[str],
        netns: str,
        start_ticks: int = 1000,
        sockets: tuple[int, ...] = (),
        tables: dict[str, list[str]] | None = None,
    ) -> None:
        d = self.root / str(pid)
        (d / "ns").mkdir(parents=True, exist_ok=True)
        (d / "fd").mkdir(exist_ok=True)
        (d / "net").mkdir(exist_ok=True)
        self.set_stat(pid, ppid=ppid, comm=comm, start_ticks=start_ticks)
        (d / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in argv))
        for name, target in (("exe", "/usr/bin/python3.11"), ("cwd", "/work")):
            if not (d / name).is_symlink():
                os.symlink(target, d / name)
        if (d / "ns" / "net").is_symlink():
            (d / "ns" / "net").unlink()
        os.symlink(netns, d / "ns" / "net")
        for fd in (d / "fd").iterdir():
            fd.unlink()
        os.symlink("/dev/null", d / "fd" / "0")
        for i, inode in enumerate(sockets, start=3):
            os.symlink(f"socket:[{inode}]", d / "fd" / str(i))
        for table in ("tcp", "tcp6", "udp", "udp6"):
            rows = (tables or {}).get(table, [])
            (d / "net" / table).write_text(HEADER + "".join(rows))

    def set_stat(self, pid: int, *, ppid: int, comm: str, start_ticks: int) -> None:
        rest = " ".join(["0"] * 17)
        (self.root / str(pid) / "stat").write_text(
            f"{pid} ({comm}) S {ppid} {rest} {start_ticks} 0 0\n"
        )

    def remove(self, pid: int) -> None:
        d = self.root / str(pid)
        for p in sorted(d.rglob("*"), key=lambda p: -len(p.parts)):
            p.unlink() if p.is_symlink() or p.is_file() else p.rmdir()
        d.rmdir()


class Clock:
    def __init__(self, now: int = 1_000_000 * MS) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


CLIENT_TABLES = {
    "tcp": [
        _row("192.0.2.101:40000", "198.51.100.20:4444", "01", 501),
        _row("192.0.2.101:40001", "203.0.113.10:443", "06", 0),  # TIME_WAIT: no inode
    ],
    "udp": [_row("0.0.0.0:50000", "0.0.0.0:0", "07", 502)],
    "tcp6": [_row("[::ffff:192.0.2.101]:40002", "[::ffff:198.51.100.80]:8080", "01", 503, True)],
    "udp6": [_row("[2001:db8::5]:5353", "[2001:db8::53]:53", "01", 504, True)],
}


@pytest.fixture
def fake(tmp_path: Path) -> FakeProc:
    proc = FakeProc(tmp_path / "proc")
    proc.add(
        100,
        ppid=1,
        comm="rundll32.exe",
        argv=["/lab/bin/rundll32.exe", "-m", "scenarios.programs.x", "--id", "a b"],
        netns=NS_A,
        sockets=(501, 502, 503, 504, 999),
        tables=CLIENT_TABLES,
    )
    proc.add(200, ppid=1, comm="bash", argv=["bash"], netns=NS_B, sockets=(601,))
    return proc


def test_socket_tables_are_parsed(fake: FakeProc) -> None:
    mon = SocketMonitor(netns=[NS_A], proc=fake.root, clock=Clock())
    mon.poll()
    socks = {s.inode: s for s in mon.sockets()}
    assert set(socks) == {501, 502, 503, 504}  # 999 is in no table, 601 is in another netns
    tcp = socks[501]
    assert (tcp.transport, tcp.local_ip, tcp.local_port) == (Transport.TCP, "192.0.2.101", 40000)
    assert (tcp.remote_ip, tcp.remote_port, tcp.listening) == ("198.51.100.20", 4444, False)
    udp = socks[502]
    assert (udp.transport, udp.local_ip, udp.local_port) == (Transport.UDP, "0.0.0.0", 50000)
    assert (udp.remote_ip, udp.remote_port) == ("0.0.0.0", 0)
    mapped = socks[503]
    assert (mapped.local_ip, mapped.remote_ip, mapped.remote_port) == (
        "192.0.2.101",
        "198.51.100.80",
        8080,
    )
    v6 = socks[504]
    assert (v6.transport, v6.local_ip, v6.remote_ip) == (
        Transport.UDP,
        "2001:db8::5",
        "2001:db8::53",
    )
    assert {s.pid for s in socks.values()} == {100}
    assert [p.pid for p in mon.processes()] == [100]


def test_owner_tolerates_poll_granularity(fake: FakeProc) -> None:
    clock = Clock()
    mon = SocketMonitor(netns=[NS_A], proc=fake.root, clock=clock, interval_s=0.02)
    t0 = clock.now
    mon.poll()
    clock.now += 20 * MS
    mon.poll()
    owner = mon.owner(Transport.TCP, "192.0.2.101", 40000, t0 + 10 * MS)
    assert owner is not None
    assert owner.pid == 100
    # The SYN went out a little before the first sighting: within three intervals it counts.
    assert mon.owner("tcp", "192.0.2.101", 40000, t0 - 50 * MS) is not None
    assert mon.owner("tcp", "192.0.2.101", 40000, t0 - 70 * MS) is None
    assert mon.owner("tcp", "192.0.2.101", 40000, t0 + 20 * MS + 70 * MS) is None
    assert mon.owner("tcp", "192.0.2.101", 40000, t0 - 70 * MS, tolerance_ns=100 * MS)
    assert mon.owner("udp", "192.0.2.101", 40000, t0) is None  # wrong transport
    # An unconnected UDP socket on 0.0.0.0 matches the client's own address ...
    udp = mon.owner(Transport.UDP, "192.0.2.101", 50000, t0)
    assert udp is not None
    assert udp.pid == 100
    # ... but not in another namespace.
    assert mon.owner(Transport.UDP, "192.0.2.101", 50000, t0, netns=NS_B) is None


def test_exec_is_followed_and_first_sighting_kept(fake: FakeProc) -> None:
    clock = Clock()
    fake.add(300, ppid=1, comm="ip", argv=["ip", "netns", "exec", "x"], netns=NS_A)
    mon = SocketMonitor(netns=[NS_A], proc=fake.root, clock=clock)
    mon.poll()
    first = clock.now
    clock.now += 20 * MS
    fake.add(300, ppid=1, comm="beacon.exe", argv=["/lab/bin/beacon.exe", "-q"], netns=NS_A)
    mon.poll()
    (p,) = [p for p in mon.processes() if p.pid == 300]
    assert (p.comm, p.cmdline, p.image) == (
        "beacon.exe",
        ("/lab/bin/beacon.exe", "-q"),
        "/lab/bin/beacon.exe",
    )
    assert p.first_seen_ns == first
    assert p.last_seen_ns == clock.now


def test_roots_and_descendants(fake: FakeProc) -> None:
    fake.add(10, ppid=1, comm="atomic", argv=["/lab/bin/atomic"], netns=NS_B, start_ticks=10)
    fake.add(11, ppid=10, comm="sh", argv=["/bin/sh", "-c", "x"], netns=NS_B, start_ticks=11)
    fake.add(12, ppid=11, comm="curl", argv=["curl", "-T", "f"], netns=NS_B, start_ticks=12)
    fake.add(13, ppid=1, comm="other", argv=["other"], netns=NS_B, start_ticks=13)
    clock = Clock()
    mon = SocketMonitor(roots=[10], proc=fake.root, clock=clock, boot_ns=0)
    mon.poll()
    assert {p.pid for p in mon.processes()} == {10, 11, 12}
    assert mon.descendants(10) == {11, 12}
    assert mon.descendants(11) == {12}
    assert mon.descendants(12) == set()
    # A process stays watched after its parent is gone (reparented to init).
    fake.remove(11)
    fake.set_stat(12, ppid=1, comm="curl", start_ticks=12)
    clock.now += 100 * MS  # beyond the three-interval tolerance of 11's last sighting
    mon.poll()
    assert {p.pid for p in mon.alive(clock.now)} == {10, 12}
    assert mon.process(11) is not None  # still known, no longer alive


def test_to_events_are_deterministic_and_linked(fake: FakeProc) -> None:
    fake.add(10, ppid=1, comm="atomic", argv=["/lab/bin/atomic"], netns=NS_B, start_ticks=10)
    fake.add(11, ppid=10, comm="sh", argv=["sh", "-c", "x y"], netns=NS_B, start_ticks=11)
    fake.add(12, ppid=11, comm="up.exe", argv=["./bin/up.exe"], netns=NS_B, start_ticks=12)
    hosts = {10: "client-1", 11: "client-1", 12: "client-1"}
    events = []
    for _ in range(2):
        mon = SocketMonitor(roots=[10], proc=fake.root, clock=Clock())
        mon.poll()
        events.append(mon.to_events(lambda p: hosts[p.pid], "r1"))
    assert events[0] == events[1]
    by_pid = {e.pid: e for e in events[0]}
    assert by_pid[10].process_guid == process_guid("r1", "client-1", 10, 10)
    assert by_pid[10].parent_guid is None
    assert by_pid[11].parent_guid == by_pid[10].process_guid
    assert by_pid[12].parent_guid == by_pid[11].process_guid
    assert by_pid[10].image == "/lab/bin/atomic"
    assert by_pid[11].image == "sh"  # a bare argv[0] that is not the binary's name
    assert by_pid[12].image == "/work/bin/up.exe"  # relative argv[0] against the cwd
    assert by_pid[11].command_line == "sh -c 'x y'"
    assert by_pid[12].name == "up.exe"
    assert by_pid[12].user == pwd.getpwuid(os.getuid()).pw_name
    assert [e.ts_ns for e in events[0]] == sorted(e.ts_ns for e in events[0])
    assert process_guid("r1", "client-2", 10, 10) != by_pid[10].process_guid
    assert process_guid("r2", "client-1", 10, 10) != by_pid[10].process_guid


def test_thread_polls_and_polls_once_more_on_stop(fake: FakeProc) -> None:
    mon = SocketMonitor(netns=[NS_A], proc=fake.root, interval_s=0.005)
    with mon:
        pass
    assert mon.polls >= 2  # at least the thread's first poll and the final one
    assert {s.inode for s in mon.sockets()} == {501, 502, 503, 504}
