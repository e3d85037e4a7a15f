"""The default cast of the emulation lab: which real programs run on which lab client, in which
phase, under which executable name, and what the scorer should expect of each.

Four clients (``client`` 0-3). Benign actors run in both phases with the same arguments, so the
baseline sees them: a browser-like fetcher and a backup agent on every client, a sync uploader and
quiet desktop programs (the synthetic office's false-positive traps, same ``trap_for``).
Malicious actors run in the attack phase only, each the lab twin of a synthetic actor
(``synthetic``), whose ground truth gives its expected analytics; three are Atomic Red
Team-format tests run by atomic-operator (``atomic``; their ``args`` are ``key=value`` input
arguments, see :func:`harness.lab.atomics.runner_argv`).

Attack-phase timeline (seconds after the phase starts; every malicious actor stops by ~85 s):

====  ===================================================================================
0-3   DNS tunnels start, one per client (iodine, dnscat2, dns2tcp (atomic), rundll32 DNS)
20    protocol misuse: HTTP on 443, TLS on 53, DNS on UDP 5000
40    junk-padded beacons (HTTP 80 constant, HTTP 8080 random), quiet rundll32 over TCP
45    HTTPS uploads: never-seen uploader (after reading documents), browser-named impostor
50    custom-port exfiltration: raw TCP 4444, UDP 9999 (atomic)
====  ===================================================================================

Lab-specific choices, and why: every name is under the one lab zone, so every DNS tunnel writes
under ``<run id>.<zone>`` and no more than four clients query long names there (AN1225 treats a
domain that five hosts query with long names as a service). HTTPS actors share the one HTTPS
sink, so a destination-rarity rule can only see the beacons as uncommon on their own HTTP ports;
the random-padding beacon is therefore plain HTTP on 8080 where its synthetic twin used TLS on
443. The beacons check in every second (a C2 operator's interactive mode) rather than every few
seconds: AN1225 judges a new process's HTTP by volume (about 1 MB), which a 4-second beacon
takes most of an hour to send, far longer than the lab's attack phase (the synthetic twins show
the slow case). Argument templates use :func:`harness.lab.spec.placeholders` (``{ca}`` among
them: the lab CA's PEM file).
"""

from __future__ import annotations

from harness.analytics import AnalyticId, TechniqueId, analytic_id, technique_id
from harness.lab.spec import AtomicRef, LabActor, LabCast, Phase
from harness.truth import ActorKind

__all__ = ["CLIENTS", "DEFAULT_CAST", "LAB_ACTORS", "clients_needed"]

#: Lab clients the default cast runs on.
CLIENTS = 4

_BOTH = frozenset({Phase.BASELINE, Phase.ATTACK})
_ATTACK = frozenset({Phase.ATTACK})


def _program(name: str) -> str:
    """The module of one of this package's actor programs (:mod:`scenarios.programs`)."""
    return f"scenarios.programs.{name}"


def _argv(text: str) -> tuple[str, ...]:
    """Argument templates from one string (split on whitespace before any expansion)."""
    return tuple(text.split())


def _a(*ids: str) -> tuple[AnalyticId, ...]:
    return tuple(analytic_id(i) for i in ids)


def _t(*ids: str) -> tuple[TechniqueId, ...]:
    return tuple(technique_id(i) for i in ids)


def _fetcher(client: int, exe: str, seed: int) -> LabActor:
    return LabActor(
        actor_id=f"browser-{client + 1}",
        kind=ActorKind.BENIGN,
        description=f"{exe} browsing lab sites: names through the resolver, receive-heavy HTTPS",
        program=_program("fetcher"),
        exe_name=exe,
        args=_argv(
            "--bind {bind} --run-id {run_id} --duration {duration} --names "
            "www.{zone},docs.{zone},mail.{zone},cdn.{zone} --resolver {resolver} --ca {ca} "
            f"--port {{https_port}} --interval 5 --seed {seed}"
        ),
        phases=_BOTH,
        client=client,
        trap_for=_a("AN0144", "AN0030"),
        synthetic=("office-baseline", "browsers"),
    )


def _quiet_desktop(actor_id: str, client: int, exe: str, seed: int) -> LabActor:
    return LabActor(
        actor_id=actor_id,
        kind=ActorKind.BENIGN,
        description=f"{exe} reads documents and never uses the network",
        program=_program("quiet_reader"),
        exe_name=exe,
        args=_argv(
            "--bind {bind} --run-id {run_id} --duration {duration} --workdir {workdir} "
            f"--audit {{audit}} --files 15 --read-gap 0.5 --channel none --seed {seed}"
        ),
        phases=_BOTH,
        client=client,
        start_offset_s=5.0,
        trap_for=_a("AN0988"),
        synthetic=("office-baseline", "quiet-desktop"),
    )


def _backup_agent(client: int, seed: int) -> LabActor:
    """The backup agent, installed fleet-wide as endpoint backup is: every client pushes its
    jobs to the same off-site service. (A single server's nightly backup is normal only by its
    weeks of history, which a minutes-long lab cannot build; the synthetic office covers that
    trap.)"""
    return LabActor(
        actor_id=f"backup-agent-{client + 1}",
        kind=ActorKind.BENIGN,
        description="Backup agent pushing 10 MB jobs to the off-site backup service on TCP/9001",
        program=_program("backup_pusher"),
        exe_name="bkagent.exe",
        args=_argv(
            "--bind {bind} --run-id {run_id} --duration {duration} "
            f"--seed {seed} --host {{tcp}} --port {{tcp_port2}} --bytes 10M --rate 10M "
            f"--every 30 --offset {2 + 5 * client}"
        ),
        phases=_BOTH,
        client=client,
        trap_for=_a("AN0030", "AN1225"),
        synthetic=("office-baseline", "backup-agent"),
    )


_BENIGN: tuple[LabActor, ...] = (
    _fetcher(0, "chrome.exe", 101),
    _fetcher(1, "msedge.exe", 102),
    _fetcher(2, "firefox.exe", 103),
    _fetcher(3, "chrome.exe", 104),
    LabActor(
        actor_id="sync-uploader",
        kind=ActorKind.BENIGN,
        description="OneDrive-style sync client uploading files in small PUTs on one connection",
        program=_program("https_upload"),
        exe_name="OneDrive.exe",
        args=_argv(
            "--bind {bind} --run-id {run_id} --duration {duration} --seed 105 --https "
            "{https} --port {https_port} --server-name sync.{zone} --ca {ca} --bytes 3M "
            "--chunk 256k --interval 2 --keep-alive --method PUT"
        ),
        phases=_BOTH,
        client=2,
        start_offset_s=10.0,
        trap_for=_a("AN0144", "AN0030", "AN1225"),
        synthetic=("office-baseline", "onedrive-sync"),
    ),
    *(_backup_agent(client, 106 + 10 * client) for client in range(4)),
    _quiet_desktop("quiet-notepad", 0, "notepad.exe", 107),
    _quiet_desktop("quiet-rundll32", 3, "rundll32.exe", 108),
)


def _malicious(
    actor_id: str,
    *,
    description: str,
    program: str,
    exe_name: str,
    client: int,
    start: float,
    args: tuple[str, ...],
    techniques: tuple[str, ...],
    expected: tuple[str, ...],
    synthetic: tuple[str, str],
    atomic: AtomicRef | None = None,
) -> LabActor:
    return LabActor(
        actor_id=actor_id,
        kind=ActorKind.MALICIOUS,
        description=description,
        program=program,
        exe_name=exe_name,
        args=args,
        phases=_ATTACK,
        client=client,
        start_offset_s=start,
        techniques=_t(*techniques),
        expected_analytics=_a(*expected),
        synthetic=synthetic,
        atomic=atomic,
    )


_DNS_TUNNEL = ("T1071.004", "T1048.003")

_MALICIOUS: tuple[LabActor, ...] = (
    # -- DNS tunnels (AN1225) ------------------------------------------------------------------
    _malicious(
        "iodine-tunnel",
        description="iodine-style tunnel: Base32 names, NULL records, pings, raw UDP/53",
        program=_program("dns_tunnel"),
        exe_name="iodine",
        client=0,
        start=2.0,
        args=_argv(
            "--bind {bind} --run-id {run_id} --duration 35 --seed 201 --style iodine "
            "--codec base32 --record NULL --rate 20 --bytes 120k --resolver {resolver} "
            "--zone {zone}"
        ),
        techniques=_DNS_TUNNEL,
        expected=("AN1225",),
        synthetic=("dns-tunnels", "iodine-tunnel"),
    ),
    _malicious(
        "dnscat2-tunnel",
        description="dnscat2-style C2: hex names, TXT records, raw UDP/53",
        program=_program("dns_tunnel"),
        exe_name="igfxsvc.exe",
        client=1,
        start=2.0,
        args=_argv(
            "--bind {bind} --run-id {run_id} --duration 35 --seed 202 --style dnscat2 "
            "--record TXT --rate 10 --bytes 30k --resolver {resolver} --zone {zone}"
        ),
        techniques=_DNS_TUNNEL,
        expected=("AN1225",),
        synthetic=("dns-tunnels", "dnscat2-tunnel"),
    ),
    _malicious(
        "dns2tcp-tunnel",
        description="Atomic T1071.004: dns2tcp-style tunnel, Base64 names in TXT queries",
        program=_program("dns_tunnel"),
        exe_name="dns2tcpc.exe",
        client=2,
        start=3.0,
        args=_argv(
            "exe_name=dns2tcpc.exe run_id={run_id} bind={bind} duration=35 "
            "resolver={resolver} zone={zone} rate=10 bytes=40k"
        ),
        techniques=_DNS_TUNNEL,
        expected=("AN1225",),
        synthetic=("dns-tunnels", "dns2tcp-tunnel"),
        atomic=AtomicRef(
            technique=technique_id("T1071.004"), test_name="DNS tunnel in dns2tcp style"
        ),
    ),
    _malicious(
        "rundll32-dns",
        description="rundll32 reads 60 documents, then sends them in dnscat2-style TXT queries",
        program=_program("quiet_reader"),
        exe_name="rundll32.exe",
        client=3,
        start=3.0,
        args=_argv(
            "--bind {bind} --run-id {run_id} --duration 45 --seed 203 --workdir {workdir} "
            "--audit {audit} --files 60 --channel dns --resolver {resolver} --zone {zone} "
            "--rate 25 --bytes 80k"
        ),
        techniques=("T1041", "T1071.004"),
        expected=("AN0988", "AN1225"),
        synthetic=("quiet-process-exfil", "rundll32-dns"),
    ),
    # -- protocol misuse (AN1962, AN1225) --------------------------------------------------------
    _malicious(
        "http-on-443",
        description="C2 with plain HTTP to TCP 443",
        program=_program("misuse"),
        exe_name="wuauclt64.exe",
        client=0,
        start=20.0,
        args=_argv(
            "--bind {bind} --run-id {run_id} --duration 40 --seed 204 --mode http-on-443 "
            "--host {https} --port {https_port} --sessions 8 --interval 4"
        ),
        techniques=("T1071.001", "T1571"),
        expected=("AN1962", "AN1225"),
        synthetic=("protocol-anomalies", "http-on-443"),
    ),
    _malicious(
        "tls-on-53",
        description="C2 with TLS to TCP 53",
        program=_program("misuse"),
        exe_name="dnsproxy.exe",
        client=1,
        start=20.0,
        args=_argv(
            "--bind {bind} --run-id {run_id} --duration 40 --seed 205 --mode tls-on-53 "
            "--host {dns} --port {dns_port} --zone {zone} --sessions 8 --interval 4"
        ),
        techniques=("T1573", "T1571"),
        expected=("AN1962", "AN1225"),
        synthetic=("protocol-anomalies", "tls-on-53"),
    ),
    _malicious(
        "dns-on-odd-port",
        description="C2 with DNS queries over UDP to port 5000",
        program=_program("misuse"),
        exe_name="mdnsresp.exe",
        client=3,
        start=20.0,
        args=_argv(
            "--bind {bind} --run-id {run_id} --duration 40 --seed 206 --mode dns-odd-port "
            "--host {udp} --port {udp_port1} --zone {zone} --sessions 8 --interval 4"
        ),
        techniques=("T1071.004", "T1571"),
        expected=("AN1962", "AN1225"),
        synthetic=("protocol-anomalies", "dns-on-odd-port"),
    ),
    # -- junk-padded beacons (AN0030, AN1225) ----------------------------------------------------
    _malicious(
        "beacon-constant-padding",
        description="HTTP beacon in interactive mode: 40 kB of constant junk padding on port 80, "
        "every ~1 s",
        program=_program("beacon"),
        exe_name="netsvc.exe",
        client=1,
        start=40.0,
        args=_argv(
            "--bind {bind} --run-id {run_id} --duration 45 --seed 207 --host {http} --port "
            "{http_port} --interval 1 --padding constant --padding-bytes 40k"
        ),
        techniques=("T1071.001", "T1001.001"),
        expected=("AN0030", "AN1225"),
        synthetic=("staging-and-beacons", "beacon-constant-padding"),
    ),
    _malicious(
        "beacon-random-padding",
        description="HTTP beacon in interactive mode: random junk padding (0-80 kB) on port "
        "8080, every ~1 s",
        program=_program("beacon"),
        exe_name="msedgeupd.exe",
        client=3,
        start=40.0,
        args=_argv(
            "--bind {bind} --run-id {run_id} --duration 45 --seed 208 --host {http} --port "
            "{http_port1} --interval 1 --padding random --padding-bytes 40k"
        ),
        techniques=("T1071.001", "T1001.001"),
        expected=("AN0030", "AN1225"),
        synthetic=("staging-and-beacons", "beacon-random-padding"),
    ),
    # -- quiet process after file reads (AN0988) -------------------------------------------------
    _malicious(
        "rundll32-tcp",
        description="Atomic T1041: rundll32 reads 60 documents, then sends them to TCP 8443",
        program=_program("quiet_reader"),
        exe_name="rundll32.exe",
        client=2,
        start=40.0,
        args=_argv(
            "exe_name=rundll32.exe run_id={run_id} bind={bind} duration=40 "
            "workdir={workdir} audit={audit} files=60 host={tcp} port={tcp_port1}"
        ),
        techniques=("T1041", "T1571"),
        expected=("AN0988", "AN1225", "AN0030"),
        synthetic=("quiet-process-exfil", "rundll32-tcp"),
        atomic=AtomicRef(
            technique=technique_id("T1041"),
            test_name="Quiet process reads documents, then sends them over its TCP channel",
        ),
    ),
    # -- HTTPS exfiltration (AN0144) --------------------------------------------------------------
    _malicious(
        "unseen-uploader",
        description="Never-seen process reads 60 documents, then uploads them over HTTPS",
        program=_program("quiet_reader"),
        exe_name="wsync32.exe",
        client=0,
        start=45.0,
        args=_argv(
            "--bind {bind} --run-id {run_id} --duration 35 --seed 209 --workdir {workdir} "
            "--audit {audit} --files 60 --channel tls --https {https} --port {https_port} "
            "--server-name files.{zone} --ca {ca} --chunk 1M --interval 0.5"
        ),
        techniques=("T1567", "T1041", "T1071.001"),
        expected=("AN0144", "AN1225", "AN0988"),
        synthetic=("https-exfil", "unseen-uploader"),
    ),
    _malicious(
        "disguised-browser",
        description="A copy named chrome.exe, from its own folder, uploads 8 MB over HTTPS",
        program=_program("https_upload"),
        # A browser's name from a folder no browser runs from (the fetchers run from bin/).
        exe_name="Users/Public/Downloads/chrome.exe",
        client=2,
        start=45.0,
        args=_argv(
            "--bind {bind} --run-id {run_id} --duration 35 --seed 210 --https {https} "
            "--port {https_port} --server-name cdn-upload.{zone} --ca {ca} --bytes 8M "
            "--chunk 2M --interval 1"
        ),
        techniques=("T1567", "T1041", "T1036.005"),
        expected=("AN0144", "AN1225"),
        synthetic=("https-exfil", "disguised-browser"),
    ),
    # -- custom-port exfiltration (AN0030, AN1225) -----------------------------------------------
    _malicious(
        "raw-tcp-exfil",
        description="Raw TCP exfiltration of 16 MB to port 4444 at 5 MB/s",
        program=_program("raw_exfil"),
        exe_name="svchost.exe",
        client=3,
        start=50.0,
        args=_argv(
            "--bind {bind} --run-id {run_id} --duration 30 --seed 211 --transport tcp "
            "--host {tcp} --port {tcp_port} --bytes 16M --chunk 4M --rate 5M --interval 1"
        ),
        techniques=("T1048", "T1571", "T1095"),
        expected=("AN0030", "AN1225"),
        synthetic=("custom-port-exfil", "raw-tcp-exfil"),
    ),
    _malicious(
        "raw-udp-exfil",
        description="Atomic T1048.003: raw UDP exfiltration of 12 MB to port 9999 at 2 MB/s",
        program=_program("raw_exfil"),
        exe_name="javaw.exe",
        client=1,
        start=50.0,
        args=_argv(
            "exe_name=javaw.exe run_id={run_id} bind={bind} duration=30 host={udp} "
            "port={udp_port} bytes=12M rate=2M"
        ),
        techniques=("T1048.003", "T1571", "T1095"),
        expected=("AN0030", "AN1225"),
        synthetic=("custom-port-exfil", "raw-udp-exfil"),
        atomic=AtomicRef(
            technique=technique_id("T1048.003"),
            test_name="Bulk exfiltration over UDP to a custom port",
        ),
    ),
)

#: The default lab cast: benign actors in both phases, malicious ones in the attack phase.
LAB_ACTORS: tuple[LabActor, ...] = _BENIGN + _MALICIOUS


#: The cast ``egress-harness emulate`` runs (entry point ``egress_harness.lab_casts: default``).
DEFAULT_CAST = LabCast(
    id="default",
    description="Benign fetchers, sync and backup agents and quiet desktop programs on four "
    "clients; DNS tunnels, protocol misuse, padded beacons, quiet-process and HTTPS "
    "exfiltration, custom-port exfiltration (three as Atomic tests)",
    actors=LAB_ACTORS,
)


def clients_needed(actors: tuple[LabActor, ...] = LAB_ACTORS) -> int:
    """How many lab clients a cast runs on (its highest client index plus one)."""
    return max((a.client for a in actors), default=0) + 1
