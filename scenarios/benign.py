"""Benign actors: the ordinary activity of an office, including deliberate false-positive traps.

Each function adds one actor to a :class:`~scenarios.world.World` over the whole time span
(baseline and detection windows), drawing every value from the ``rng`` it is given. The
docstring of each names the analytics it is a trap for and why.
"""

from __future__ import annotations

import random

from harness.analytics import analytic_id
from harness.events import NS_PER_S, AppProtocol, Transport
from harness.truth import ActorKind
from scenarios._util import external_ip, lognormal_bytes, random_text, work_sessions
from scenarios.inventory import software
from scenarios.world import NS_PER_DAY, Actor, Host, Proc, World

__all__ = [
    "admin_smb",
    "av_reputation",
    "backup_agent",
    "browsers",
    "cdn_telemetry",
    "new_app_rollout",
    "onedrive_sync",
    "quiet_desktop",
    "resolver_dnssec",
    "teams_media",
    "time_and_printing",
    "vendor_updaters",
    "web_proxy",
    "windows_update",
]

AN0030, AN0144, AN1225 = analytic_id("AN0030"), analytic_id("AN0144"), analytic_id("AN1225")
AN0988, AN1962 = analytic_id("AN0988"), analytic_id("AN1962")

_BROWSERS = tuple(
    (sw.image, sw.signer or "", sw.prevalence)
    for sw in (software("Chrome"), software("Edge"), software("Firefox"))
)
_SITES = (
    "www.news.example",
    "mail.webmail.example",
    "cdn.static.example",
    "intranet-wiki.example",
    "docs.office.example",
    "video.stream.example",
    "search.engine.example",
    "api.crm.example",
    "fonts.cdn.example",
    "login.sso.example",
    "shop.vendor.example",
    "img.cdn.example",
)


def _daily_process(
    world: World, actor: Actor, host: Host, day: int, image: str, cmd: str, signer: str
) -> Proc:
    """A process started at 07:00 on ``day`` (logon-started agents)."""
    start = world.env.start_ns + day * NS_PER_DAY + 7 * 3600 * NS_PER_S
    return world.spawn(actor, host, start, image, cmd, signer=signer)


def browsers(world: World, rng: random.Random, *, sessions_per_day: float = 30) -> None:
    """Web browsing on every workstation: receive-heavy HTTPS to many sites, names resolved
    through the resolver API, and now and then a webmail attachment upload of several MB.

    Trap for AN0144 and AN0030: browsers do upload (attachments, forms, video calls), so "large
    upload over HTTPS" alone is not suspicious for a process seen on the host every day.
    """
    actor = world.actor(
        "browsers",
        ActorKind.BENIGN,
        "Chrome, Edge and Firefox browsing and webmail uploads",
        trap_for=(AN0144, AN0030),
    )
    env = world.env
    for host in env.workstations:
        roll, cum = rng.random(), 0.0
        image, signer = _BROWSERS[0][0], _BROWSERS[0][1]
        for path, sign, share in _BROWSERS:
            cum += share
            if roll < cum:
                image, signer = path, sign
                break
        for day in env.days():
            proc: Proc | None = None
            for ts in work_sessions(rng, env, day, sessions_per_day):
                if proc is None:
                    proc = world.spawn(
                        actor, host, ts - NS_PER_S, image, f'"{image}"', signer=signer
                    )
                site = rng.choice(_SITES)
                world.dns(actor, proc, ts, site, answers=(external_ip(site),))
                for k in range(rng.randint(1, 4)):
                    t = ts + (k + 1) * rng.randint(5, 400) * 1_000_000
                    world.flow(
                        actor,
                        proc,
                        t,
                        dst_ip=external_ip(site),
                        dst_port=443,
                        bytes_out=lognormal_bytes(rng, 2_500, 0.8, 200_000),
                        bytes_in=lognormal_bytes(rng, 60_000, 1.4, 30_000_000),
                        duration_ns=rng.randint(1, 90) * NS_PER_S,
                        server_name=site,
                    )
                if rng.random() < 0.01:  # a webmail attachment or a form upload
                    size = lognormal_bytes(rng, 3_000_000, 0.9, 25_000_000)
                    world.flow(
                        actor,
                        proc,
                        ts + 2 * NS_PER_S,
                        dst_ip=external_ip("mail.webmail.example"),
                        dst_port=443,
                        bytes_out=size,
                        bytes_in=lognormal_bytes(rng, 20_000, 0.5, 200_000),
                        duration_ns=max(NS_PER_S, size // 1_000_000 * NS_PER_S),
                        server_name="mail.webmail.example",
                    )


def windows_update(world: World, rng: random.Random) -> None:
    """Windows Update and Defender signature downloads: download-heavy HTTPS from svchost and
    MpCmdRun on every host, once a day at a random hour. Trap for volume-only rules."""
    actor = world.actor(
        "windows-update",
        ActorKind.BENIGN,
        "Windows Update and Defender signature downloads",
        trap_for=(AN1225,),
    )
    env = world.env
    for host in env.hosts:
        for day in env.days():
            ts = env.start_ns + day * NS_PER_DAY + rng.randint(0, 86_399) * NS_PER_S
            proc = world.spawn(
                actor,
                host,
                ts,
                r"C:\Windows\System32\svchost.exe",
                r"C:\Windows\system32\svchost.exe -k netsvcs -p -s wuauserv",
                user="SYSTEM",
                signer="Microsoft Windows",
            )
            name = "update.windows.example"
            world.dns(actor, proc, ts, name, answers=(external_ip(name),))
            world.flow(
                actor,
                proc,
                ts + NS_PER_S,
                dst_ip=external_ip(name),
                dst_port=443,
                bytes_out=lognormal_bytes(rng, 40_000, 0.5, 400_000),
                bytes_in=lognormal_bytes(rng, 30_000_000, 1.0, 900_000_000),
                duration_ns=rng.randint(20, 600) * NS_PER_S,
                server_name=name,
            )


def onedrive_sync(
    world: World, rng: random.Random, *, share: float = software("OneDrive").prevalence
) -> None:
    """OneDrive-style file sync on most workstations: small change polls all day and, now and
    then, large uploads of tens of MB when a user saves big files.

    Trap for AN0144, AN0030 and AN1225: a common, signed process uploading a lot over HTTPS
    with a producer-consumer ratio near +1.
    """
    actor = world.actor(
        "onedrive-sync",
        ActorKind.BENIGN,
        "OneDrive-style sync client with large uploads",
        trap_for=(AN0144, AN0030, AN1225),
    )
    env = world.env
    image = r"C:\Users\{user}\AppData\Local\Microsoft\OneDrive\OneDrive.exe"
    name = "sync.onedrive.example"
    for host in env.workstations:
        if rng.random() >= share:
            continue
        path = image.format(user=host.user)
        for day in env.days():
            proc = _daily_process(
                world, actor, host, day, path, f'"{path}" /background', "Microsoft Corporation"
            )
            for ts in work_sessions(rng, env, day, 12):
                world.flow(
                    actor,
                    proc,
                    ts,
                    dst_ip=external_ip(name),
                    dst_port=443,
                    bytes_out=lognormal_bytes(rng, 3_000, 0.6, 50_000),
                    bytes_in=lognormal_bytes(rng, 5_000, 0.6, 80_000),
                    duration_ns=NS_PER_S,
                    server_name=name,
                )
                if rng.random() < 0.08:
                    size = lognormal_bytes(rng, 15_000_000, 1.0, 400_000_000)
                    world.flow(
                        actor,
                        proc,
                        ts + 3 * NS_PER_S,
                        dst_ip=external_ip(name),
                        dst_port=443,
                        bytes_out=size,
                        bytes_in=size // 200 + 2_000,
                        duration_ns=max(2 * NS_PER_S, size // 2_000_000 * NS_PER_S),
                        server_name=name,
                    )


def new_app_rollout(
    world: World, rng: random.Random, *, share: float = software("Contoso Meet").prevalence
) -> None:
    """A newly rolled-out, signed collaboration app: never seen in the baseline, then installed
    on most workstations within two hours of the detection window starting. It signs in,
    syncs, and some instances upload a diagnostics bundle of a few MB.

    Trap for AN0144 and AN1962 ("previously unseen process"): unseen, yes, but on many hosts at
    once and signed by a vendor.
    """
    actor = world.actor(
        "new-app-rollout",
        ActorKind.BENIGN,
        "Software rollout of a new signed app (unseen)",
        trap_for=(AN0144, AN1962),
    )
    env = world.env
    image = r"C:\Program Files\Contoso\Meet\ContosoMeet.exe"
    name = "api.meet.contoso.example"
    rollout = env.baseline_until_ns + 9 * 3600 * NS_PER_S
    for host in env.workstations:
        if rng.random() >= share:
            continue
        ts = rollout + rng.randint(0, 7_200) * NS_PER_S
        proc = world.spawn(actor, host, ts, image, f'"{image}" --autostart', signer="Contoso Ltd")
        world.dns(actor, proc, ts + NS_PER_S, name, answers=(external_ip(name),))
        t = ts + 2 * NS_PER_S
        while t < env.end_ns and t < ts + 8 * 3600 * NS_PER_S:
            world.flow(
                actor,
                proc,
                t,
                dst_ip=external_ip(name),
                dst_port=443,
                bytes_out=lognormal_bytes(rng, 8_000, 0.8, 200_000),
                bytes_in=lognormal_bytes(rng, 40_000, 1.0, 2_000_000),
                duration_ns=rng.randint(1, 30) * NS_PER_S,
                server_name=name,
            )
            if rng.random() < 0.02:
                size = lognormal_bytes(rng, 1_500_000, 0.7, 12_000_000)
                world.flow(
                    actor,
                    proc,
                    t + NS_PER_S,
                    dst_ip=external_ip("diag." + name),
                    dst_port=443,
                    bytes_out=size,
                    bytes_in=4_000,
                    duration_ns=20 * NS_PER_S,
                    server_name="diag." + name,
                )
            t += rng.randint(120, 900) * NS_PER_S


def backup_agent(world: World, rng: random.Random) -> None:
    """A backup agent on the servers pushing hundreds of MB nightly to an off-site service on a
    custom TCP port (8400) with an unidentified protocol.

    Trap for AN0030 and AN1225: a huge, one-way upload on an uncommon port, every night.
    """
    actor = world.actor(
        "backup-agent",
        ActorKind.BENIGN,
        "Nightly off-site backup on TCP/8400",
        trap_for=(AN0030, AN1225),
    )
    env = world.env
    dst = external_ip("offsite.backup.example")
    for host in env.hosts:
        if host.role != "server":
            continue
        image = r"C:\Program Files\BackupVendor\Agent\bkagent.exe"
        for day in env.days():
            ts = env.start_ns + day * NS_PER_DAY + (1 * 3600 + rng.randint(0, 1800)) * NS_PER_S
            proc = world.spawn(
                actor,
                host,
                ts,
                image,
                f'"{image}" --job nightly',
                user="SYSTEM",
                signer="BackupVendor Inc",
            )
            size = lognormal_bytes(rng, 600_000_000, 0.4, 4_000_000_000)
            world.flow(
                actor,
                proc,
                ts + NS_PER_S,
                dst_ip=dst,
                dst_port=8400,
                bytes_out=size,
                bytes_in=size // 1000,
                duration_ns=max(60, size // 20_000_000) * NS_PER_S,
                transport=Transport.TCP,
                app=AppProtocol.UNKNOWN,
            )


def teams_media(
    world: World, rng: random.Random, *, share: float = software("Teams").prevalence
) -> None:
    """Teams/Zoom-style meetings: UDP media to relay ports 3478-3481 at about 1.5 Mbit/s each
    way for 15-60 minutes, a few times a day.

    Trap for AN0030 and AN1225: large UDP volumes on non-web ports from a user application.
    """
    actor = world.actor(
        "teams-media",
        ActorKind.BENIGN,
        "Meeting client UDP media to relay servers",
        trap_for=(AN0030, AN1225),
    )
    env = world.env
    image = r"C:\Users\{user}\AppData\Local\Microsoft\Teams\current\Teams.exe"
    relay = "relay.teams.example"
    for host in env.workstations:
        if rng.random() >= share:
            continue
        path = image.format(user=host.user)
        for day in env.days():
            proc = _daily_process(
                world,
                actor,
                host,
                day,
                path,
                f'"{path}" --system-initiated',
                "Microsoft Corporation",
            )
            for ts in work_sessions(rng, env, day, 2.5):
                minutes = rng.randint(15, 60)
                rate = rng.randint(120_000, 250_000)  # bytes per second each way
                world.flow(
                    actor,
                    proc,
                    ts,
                    dst_ip=external_ip(relay),
                    dst_port=rng.choice((3478, 3479, 3480, 3481)),
                    bytes_out=rate * 60 * minutes,
                    bytes_in=int(rate * 60 * minutes * rng.uniform(0.6, 1.6)),
                    duration_ns=minutes * 60 * NS_PER_S,
                    transport=Transport.UDP,
                    app=AppProtocol.RTP,
                )


def av_reputation(world: World, rng: random.Random) -> None:
    """Antivirus cloud reputation lookups, Sophos/McAfee-style: file hashes encoded in long,
    high-entropy DNS labels under one vendor domain, hundreds of distinct names a day per host,
    through the resolver API.

    Trap for AN1225 (and any DNS-tunnel logic): many unique, random-looking subdomains of one
    registered domain, which is exactly what a tunnel looks like to a lexical detector.
    """
    actor = world.actor(
        "av-reputation",
        ActorKind.BENIGN,
        "AV reputation lookups with hashed DNS labels",
        trap_for=(AN1225,),
    )
    env = world.env
    image = r"C:\Program Files\Sophos\Sophos File Scanner\SophosFS.exe"
    for host in env.hosts:
        for day in env.days():
            proc = _daily_process(world, actor, host, day, image, f'"{image}"', "Sophos Ltd")
            for ts in work_sessions(rng, env, day, 60 if host.role == "workstation" else 20):
                digest = rng.randbytes(16).hex()
                name = f"0.{rng.randint(1, 9)}.{digest}.f.sxl.sophosxl.example"
                world.dns(actor, proc, ts, name, answers=("127.0.0.1",))


def cdn_telemetry(world: World, rng: random.Random) -> None:
    """Software telemetry and CDN names with long, machine-generated labels (region and
    deployment ids, base32-ish tokens) looked up by signed system processes every few minutes.

    Trap for AN1225: long labels and varied subdomains are not a tunnel.
    """
    actor = world.actor(
        "cdn-telemetry",
        ActorKind.BENIGN,
        "Telemetry and CDN names with long generated labels",
        trap_for=(AN1225,),
    )
    env = world.env
    image = r"C:\Windows\System32\svchost.exe"
    chars = "abcdefghijklmnopqrstuvwxyz0123456789"
    for host in env.hosts:
        for day in env.days():
            proc = _daily_process(
                world,
                actor,
                host,
                day,
                image,
                r"C:\Windows\system32\svchost.exe -k utcsvc -p",
                "Microsoft Windows",
            )
            for ts in work_sessions(rng, env, day, 40):
                token = random_text(rng, chars, rng.randint(20, 40))
                name = rng.choice(
                    (
                        f"{token}.events.telemetry.example",
                        f"e{rng.randint(1000, 9999)}.dscb.akamaiedge.example",
                        f"{token[:16]}-{rng.randint(1, 99)}.z01.azurefd.example",
                    )
                )
                world.dns(actor, proc, ts, name, qtype="A", answers=(external_ip(name),))
                world.flow(
                    actor,
                    proc,
                    ts + 50_000_000,
                    dst_ip=external_ip(name),
                    dst_port=443,
                    bytes_out=lognormal_bytes(rng, 4_000, 0.6, 60_000),
                    bytes_in=lognormal_bytes(rng, 2_000, 0.6, 40_000),
                    server_name=name,
                )


def admin_smb(world: World, rng: random.Random) -> None:
    """IT administration: robocopy and Explorer moving hundreds of MB over SMB to the internal
    file server. Trap for AN1225 (SMB with high byte counts) and AN0988 (reads, then sends)."""
    actor = world.actor(
        "admin-smb",
        ActorKind.BENIGN,
        "Admin file copies to the internal file server over SMB",
        trap_for=(AN1225, AN0988),
    )
    env = world.env
    servers = [h for h in env.hosts if h.role == "server"]
    if not servers:
        return
    admins = env.workstations[:2]
    for host in admins:
        for day in env.days():
            for ts in work_sessions(rng, env, day, 1.5):
                proc = world.spawn(
                    actor,
                    host,
                    ts,
                    r"C:\Windows\System32\Robocopy.exe",
                    rf"robocopy C:\Deploy \\{servers[0].name}\deploy /MIR",
                    signer="Microsoft Windows",
                )
                for i in range(rng.randint(20, 80)):
                    world.read_file(
                        actor, proc, ts + i * 10_000_000, rf"C:\Deploy\pkg-{i:03d}.msi", 4_000_000
                    )
                size = lognormal_bytes(rng, 200_000_000, 0.7, 2_000_000_000)
                world.flow(
                    actor,
                    proc,
                    ts + NS_PER_S,
                    dst_ip=servers[0].ip,
                    dst_port=445,
                    bytes_out=size,
                    bytes_in=size // 40,
                    duration_ns=max(NS_PER_S, size // 50_000_000 * NS_PER_S),
                    app=AppProtocol.SMB,
                )


_UPDATER_SHARE = {software(n).image: software(n).prevalence for n in ("Adobe ARM", "Vendor Update")}


def vendor_updaters(world: World, rng: random.Random) -> None:
    """Third-party updaters checking in over TLS on high ports (8443, 8531) a few times a day
    and now and then downloading a package.

    Trap for AN1962 and AN1225: TLS on a port that is not 443 is not by itself misuse.
    """
    actor = world.actor(
        "vendor-updaters",
        ActorKind.BENIGN,
        "Vendor updaters using TLS on high ports",
        trap_for=(AN1962, AN1225),
    )
    env = world.env
    updaters = (
        (
            r"C:\Program Files (x86)\Common Files\Adobe\ARM\1.0\AdobeARM.exe",
            "Adobe Inc",
            "armmf.adobe.example",
            8443,
        ),
        (
            r"C:\Program Files\Vendor\Agent\VendorUpdate.exe",
            "Vendor Corp",
            "updates.vendor.example",
            8531,
        ),
    )
    for host in env.workstations:
        for image, signer, name, port in updaters:
            if rng.random() < 1 - _UPDATER_SHARE[image]:
                continue
            for day in env.days():
                for ts in work_sessions(rng, env, day, 3):
                    proc = world.spawn(actor, host, ts, image, f'"{image}" /check', signer=signer)
                    world.dns(actor, proc, ts, name, answers=(external_ip(name),))
                    download = rng.random() < 0.1
                    world.flow(
                        actor,
                        proc,
                        ts + NS_PER_S,
                        dst_ip=external_ip(name),
                        dst_port=port,
                        bytes_out=rng.randint(1_500, 6_000),
                        bytes_in=lognormal_bytes(rng, 40_000_000, 0.5, 300_000_000)
                        if download
                        else rng.randint(2_000, 20_000),
                        duration_ns=(30 if download else 1) * NS_PER_S,
                        server_name=name,
                    )


def resolver_dnssec(world: World, rng: random.Random) -> None:
    """The internal resolver's own recursion: dns.exe on the domain controller querying outside
    servers directly on UDP/53, with DNSSEC (DNSKEY, DS) and large signed responses.

    Trap for AN1225 and AN1962: a process sending its own DNS packets to outside servers is what
    raw-socket tunnel tools do, and a resolver does it all day.
    """
    actor = world.actor(
        "resolver-dnssec",
        ActorKind.BENIGN,
        "Internal resolver recursion with DNSSEC",
        trap_for=(AN1225, AN1962),
    )
    env = world.env
    resolver = next(h for h in env.hosts if h.role == "resolver")
    image = r"C:\Windows\System32\dns.exe"
    proc = world.spawn(
        actor, resolver, env.start_ns, image, image, user="SYSTEM", signer="Microsoft Windows"
    )
    zones = ("example", "news.example", "cdn.example", "vendor.example", "telemetry.example")
    for day in env.days():
        for ts in work_sessions(rng, env, day, 400):
            zone = rng.choice(zones)
            qtype = rng.choice(("A", "AAAA", "DNSKEY", "DS", "A", "A"))
            world.dns(
                actor,
                proc,
                ts,
                zone if qtype in ("DNSKEY", "DS") else f"www.{zone}",
                qtype=qtype,
                answers=("rrsig",),
                via_api=False,
                resolver_ip=external_ip(f"ns.{zone}"),
                response_bytes=rng.randint(600, 1_800) if qtype != "A" else None,
            )


def quiet_desktop(world: World, rng: random.Random) -> None:
    """Ordinary desktop programs that read files and never use the network: Notepad opening
    documents, rundll32 running Control Panel applets, Calculator.

    Trap for AN0988: reading files is normal for these processes; only sending would not be.
    """
    actor = world.actor(
        "quiet-desktop",
        ActorKind.BENIGN,
        "Notepad, rundll32 and Calculator reading files",
        trap_for=(AN0988,),
    )
    env = world.env
    programs = (
        (r"C:\Windows\System32\notepad.exe", "notepad.exe {doc}"),
        (r"C:\Windows\System32\rundll32.exe", "rundll32.exe shell32.dll,Control_RunDLL"),
        (r"C:\Windows\System32\calc.exe", "calc.exe"),
    )
    for host in env.workstations:
        for day in env.days():
            for ts in work_sessions(rng, env, day, 6):
                image, cmd = rng.choice(programs)
                doc = rf"C:\Users\{host.user}\Documents\notes-{rng.randint(1, 40)}.txt"
                proc = world.spawn(
                    actor, host, ts, image, cmd.format(doc=doc), signer="Microsoft Windows"
                )
                for i in range(rng.randint(1, 25)):
                    world.read_file(
                        actor, proc, ts + (i + 1) * 300_000_000, doc, rng.randint(200, 80_000)
                    )


def time_and_printing(world: World, rng: random.Random) -> None:
    """Background noise: Windows time sync (UDP/123 outward) and print jobs to the internal
    printer over TCP/9100."""
    actor = world.actor("time-and-printing", ActorKind.BENIGN, "NTP sync and print jobs")
    env = world.env
    printer = "192.0.2.250"
    for host in env.hosts:
        proc = world.spawn(
            actor,
            host,
            env.start_ns,
            r"C:\Windows\System32\svchost.exe",
            r"C:\Windows\system32\svchost.exe -k LocalService -s W32Time",
            user="LOCAL SERVICE",
            signer="Microsoft Windows",
        )
        t = env.start_ns + rng.randint(0, 3600) * NS_PER_S
        while t < env.end_ns:
            world.flow(
                actor,
                proc,
                t,
                dst_ip=external_ip("time.windows.example"),
                dst_port=123,
                bytes_out=48,
                bytes_in=48,
                transport=Transport.UDP,
                app=AppProtocol.UNKNOWN,
                duration_ns=50_000_000,
            )
            t += 8 * 3600 * NS_PER_S
        if host.role != "workstation":
            continue
        for day in env.days():
            for ts in work_sessions(rng, env, day, 1.5):
                spool = world.spawn(
                    actor,
                    host,
                    ts,
                    r"C:\Windows\System32\spoolsv.exe",
                    r"C:\Windows\System32\spoolsv.exe",
                    user="SYSTEM",
                    signer="Microsoft Windows",
                )
                world.flow(
                    actor,
                    spool,
                    ts + NS_PER_S,
                    dst_ip=printer,
                    dst_port=9100,
                    bytes_out=lognormal_bytes(rng, 500_000, 0.8, 30_000_000),
                    bytes_in=200,
                    app=AppProtocol.UNKNOWN,
                    duration_ns=5 * NS_PER_S,
                )


def web_proxy(world: World, rng: random.Random, *, sessions_per_day: float = 150) -> None:
    """The explicit web proxy (squid-style) on the proxy server: one long-running service
    process that resolves names itself (raw UDP/53 to the internal resolver) and opens outbound
    HTTPS connections for the servers and line-of-business apps configured to use it, hundreds a
    day to many sites, now and then relaying a large upload.

    Trap for AN0144 and AN0030: a single process with a huge aggregate volume and uploads with a
    producer-consumer ratio near +1 to many destinations, seen every day; and for AN1225's
    raw-socket DNS logic.
    """
    proxies = world.env.with_service("proxy")
    if not proxies:  # an office with a single server has no proxy
        return
    actor = world.actor(
        "web-proxy",
        ActorKind.BENIGN,
        "Explicit web proxy relaying HTTPS for servers and apps",
        trap_for=(AN0144, AN0030, AN1225),
    )
    env = world.env
    entry = software("Web proxy")
    for host in proxies:
        proc = world.spawn(
            actor,
            host,
            env.start_ns,
            entry.image,
            rf'"{entry.image}" -N -f C:\Squid\etc\squid.conf',
            user="SYSTEM",
            signer=entry.signer,
        )
        for day in env.days():
            for ts in work_sessions(rng, env, day, sessions_per_day):
                site = rng.choice(_SITES)
                world.dns(actor, proc, ts, site, answers=(external_ip(site),), via_api=False)
                upload = rng.random() < 0.02
                size = lognormal_bytes(rng, 5_000_000, 0.8, 60_000_000) if upload else 0
                world.flow(
                    actor,
                    proc,
                    ts + 20_000_000,
                    dst_ip=external_ip(site),
                    dst_port=443,
                    bytes_out=size or lognormal_bytes(rng, 3_000, 0.8, 200_000),
                    bytes_in=lognormal_bytes(rng, 80_000, 1.2, 50_000_000),
                    duration_ns=rng.randint(1, 60) * NS_PER_S,
                    server_name=site,
                )
