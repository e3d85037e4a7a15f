"""Benign actors: the ordinary activity of an office, including deliberate false-positive traps.

Each function adds one actor to a :class:`~scenarios.world.World` over the whole time span
(baseline and detection windows), drawing every value from the ``rng`` it is given. The
docstring of each names the analytics it is a trap for and why.

The background is most of every scenario's events, so these actors draw a whole span at once:
sessions for every host and day (:func:`scenarios._util.sessions`), then every value of every
session as a NumPy column, recorded with the world's many-at-a-time methods.
"""

from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt

from harness.analytics import analytic_id
from harness.events import NS_PER_S, AppProtocol, Transport
from harness.truth import ActorKind
from scenarios._util import (
    external_ip,
    external_ips,
    generator,
    lognormal_bytes,
    lognormal_many,
    sessions,
    texts,
)
from scenarios.inventory import software
from scenarios.world import NS_PER_DAY, Actor, Host, World, dns_query_bytes

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


_SITE_IPS = external_ips(_SITES)
_SITE_NAMES = np.array(_SITES, dtype=object)
Int64s = npt.NDArray[np.int64]


def _indices(world: World, hosts: tuple[Host, ...]) -> list[int]:
    return [world.host_index(h) for h in hosts]


def _grid(world: World, hosts: list[int]) -> tuple[Int64s, Int64s]:
    """(host index, day) of every cell of the hosts-by-days grid, hosts major (the cell order
    of :func:`scenarios._util.sessions`)."""
    days = np.asarray(world.env.days(), dtype=np.int64)
    return np.repeat(np.asarray(hosts, dtype=np.int64), len(days)), np.tile(days, len(hosts))


def _daily_processes(
    world: World,
    actor: Actor,
    hosts: list[int],
    image: str | list[str],
    cmd: str | list[str],
    signer: str,
) -> Int64s:
    """A logon-started process at 07:00 on every day for each of ``hosts`` (one image and
    command line for all, or one per host); returns process indices in grid cell order."""
    host, day = _grid(world, hosts)
    days = len(world.env.days())

    def per_cell(value: str | list[str]) -> str | list[str]:
        return value if isinstance(value, str) else [x for x in value for _ in range(days)]

    start = world.env.start_ns + day * NS_PER_DAY + 7 * 3600 * NS_PER_S
    return world.spawn_many(actor, host, start, per_cell(image), per_cell(cmd), signer=signer)


def _repeat_rank(counts: Int64s) -> tuple[Int64s, Int64s]:
    """For items repeated ``counts`` times: each copy's item index and its rank (0-based)."""
    item = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    rank = np.arange(len(item), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return item, rank


def _pick(gen: np.random.Generator, shares: npt.ArrayLike, size: int) -> Int64s:
    """``size`` indices drawn with probabilities ``shares`` (the remainder goes to index 0)."""
    cum = np.cumsum(np.asarray(shares, dtype=np.float64))
    return np.searchsorted(cum, gen.random(size), side="right") % len(cum)


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
    gen = generator(rng)
    env = world.env
    hosts = _indices(world, env.workstations)
    choice = _pick(gen, [share for _, _, share in _BROWSERS], len(hosts))
    image_of = dict(zip(hosts, (_BROWSERS[c][0] for c in choice.tolist()), strict=True))
    signer_of = dict(zip(hosts, (_BROWSERS[c][1] for c in choice.tolist()), strict=True))
    s = sessions(gen, env, hosts, env.days(), sessions_per_day)
    # One browser process per host and day, started a second before the day's first session.
    first = s.first_in_cell()
    starters = s.host[first].tolist()
    # Spawned in signer order (stable), the order the office's processes have always had.
    order = np.array(sorted(range(len(starters)), key=lambda i: signer_of[starters[i]]), int)
    images = [image_of[starters[i]] for i in order.tolist()]
    procs = np.empty(len(starters), dtype=np.int64)
    procs[order] = world.spawn_many(
        actor, s.host[first][order], s.ts[first][order] - NS_PER_S, images,
        [f'"{i}"' for i in images], signer=[signer_of[starters[i]] for i in order.tolist()],
    )  # fmt: skip
    proc = procs[np.cumsum(first) - 1]
    site = gen.integers(0, len(_SITES), len(s))
    names = _SITE_NAMES[site]
    world.dns_many(actor, proc, s.ts, names.tolist(), answers=[(ip,) for ip in _SITE_IPS[site]])
    item, rank = _repeat_rank(gen.integers(1, 5, len(s)))
    m = len(item)
    world.flows(
        actor, proc[item], s.ts[item] + (rank + 1) * gen.integers(5, 401, m) * 1_000_000,
        dst_ip=_SITE_IPS[site][item], dst_port=443,
        bytes_out=lognormal_many(gen, 2_500, 0.8, 200_000, m),
        bytes_in=lognormal_many(gen, 60_000, 1.4, 30_000_000, m),
        duration_ns=gen.integers(1, 91, m) * NS_PER_S, server_name=names[item],
    )  # fmt: skip
    up = np.flatnonzero(gen.random(len(s)) < 0.01)  # a webmail attachment or a form upload
    size = lognormal_many(gen, 3_000_000, 0.9, 25_000_000, len(up))
    mail = "mail.webmail.example"
    world.flows(
        actor, proc[up], s.ts[up] + 2 * NS_PER_S, dst_ip=external_ip(mail), dst_port=443,
        bytes_out=size, bytes_in=lognormal_many(gen, 20_000, 0.5, 200_000, len(up)),
        duration_ns=np.maximum(NS_PER_S, size // 1_000_000 * NS_PER_S), server_name=mail,
    )  # fmt: skip


def windows_update(world: World, rng: random.Random) -> None:
    """Windows Update and Defender signature downloads: download-heavy HTTPS from svchost and
    MpCmdRun on every host, once a day at a random hour. Trap for volume-only rules."""
    actor = world.actor(
        "windows-update",
        ActorKind.BENIGN,
        "Windows Update and Defender signature downloads",
        trap_for=(AN1225,),
    )
    gen = generator(rng)
    env = world.env
    host, day = _grid(world, _indices(world, env.hosts))
    m = len(host)
    ts = env.start_ns + day * NS_PER_DAY + gen.integers(0, 86_400, m) * NS_PER_S
    proc = world.spawn_many(
        actor, host, ts, r"C:\Windows\System32\svchost.exe",
        r"C:\Windows\system32\svchost.exe -k netsvcs -p -s wuauserv", user="SYSTEM",
        signer="Microsoft Windows",
    )  # fmt: skip
    name = "update.windows.example"
    world.dns_many(actor, proc, ts, [name] * m, answers=(external_ip(name),))
    world.flows(
        actor, proc, ts + NS_PER_S, dst_ip=external_ip(name), dst_port=443,
        bytes_out=lognormal_many(gen, 40_000, 0.5, 400_000, m),
        bytes_in=lognormal_many(gen, 30_000_000, 1.0, 900_000_000, m),
        duration_ns=gen.integers(20, 601, m) * NS_PER_S, server_name=name,
    )  # fmt: skip


def _with_share(gen: np.random.Generator, hosts: list[int], share: float) -> list[int]:
    """The hosts that have a piece of software installed on ``share`` of machines."""
    keep = gen.random(len(hosts)) < share
    return [h for h, k in zip(hosts, keep.tolist(), strict=True) if k]


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
    gen = generator(rng)
    env = world.env
    image = r"C:\Users\{user}\AppData\Local\Microsoft\OneDrive\OneDrive.exe"
    name = "sync.onedrive.example"
    hosts = _with_share(gen, _indices(world, env.workstations), share)
    paths = [image.format(user=world.hosts[h].user) for h in hosts]
    daily = _daily_processes(
        world, actor, hosts, paths, [f'"{p}" /background' for p in paths], "Microsoft Corporation"
    )
    s = sessions(gen, env, hosts, env.days(), 12)
    m = len(s)
    proc = daily[s.cell]
    world.flows(
        actor, proc, s.ts, dst_ip=external_ip(name), dst_port=443,
        bytes_out=lognormal_many(gen, 3_000, 0.6, 50_000, m),
        bytes_in=lognormal_many(gen, 5_000, 0.6, 80_000, m), duration_ns=NS_PER_S,
        server_name=name,
    )  # fmt: skip
    up = np.flatnonzero(gen.random(m) < 0.08)
    size = lognormal_many(gen, 15_000_000, 1.0, 400_000_000, len(up))
    world.flows(
        actor, proc[up], s.ts[up] + 3 * NS_PER_S, dst_ip=external_ip(name), dst_port=443,
        bytes_out=size, bytes_in=size // 200 + 2_000,
        duration_ns=np.maximum(2 * NS_PER_S, size // 2_000_000 * NS_PER_S), server_name=name,
    )  # fmt: skip


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
    gen = generator(rng)
    env = world.env
    image = r"C:\Program Files\Contoso\Meet\ContosoMeet.exe"
    name = "api.meet.contoso.example"
    rollout = env.baseline_until_ns + 9 * 3600 * NS_PER_S
    hosts = _with_share(gen, _indices(world, env.workstations), share)
    ts = rollout + gen.integers(0, 7_201, len(hosts)) * NS_PER_S
    proc = world.spawn_many(actor, hosts, ts, image, f'"{image}" --autostart', signer="Contoso Ltd")
    world.dns_many(actor, proc, ts + NS_PER_S, [name] * len(hosts), answers=(external_ip(name),))
    # Syncs every 2 to 15 minutes for eight hours (or until the recording ends).
    gaps = gen.integers(120, 901, (len(hosts), 8 * 3600 // 120 + 1)) * NS_PER_S
    t = (ts + 2 * NS_PER_S)[:, None] + np.cumsum(gaps, axis=1) - gaps
    limit = np.minimum(env.end_ns, ts + 8 * 3600 * NS_PER_S)[:, None]
    keep = t < limit
    host_pos = np.nonzero(keep)[0]
    t = t[keep]
    m = len(t)
    world.flows(
        actor, proc[host_pos], t, dst_ip=external_ip(name), dst_port=443,
        bytes_out=lognormal_many(gen, 8_000, 0.8, 200_000, m),
        bytes_in=lognormal_many(gen, 40_000, 1.0, 2_000_000, m),
        duration_ns=gen.integers(1, 31, m) * NS_PER_S, server_name=name,
    )  # fmt: skip
    up = np.flatnonzero(gen.random(m) < 0.02)
    diag = "diag." + name
    world.flows(
        actor, proc[host_pos[up]], t[up] + NS_PER_S, dst_ip=external_ip(diag), dst_port=443,
        bytes_out=lognormal_many(gen, 1_500_000, 0.7, 12_000_000, len(up)), bytes_in=4_000,
        duration_ns=20 * NS_PER_S, server_name=diag,
    )  # fmt: skip


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
    gen = generator(rng)
    env = world.env
    image = r"C:\Users\{user}\AppData\Local\Microsoft\Teams\current\Teams.exe"
    relay = "relay.teams.example"
    hosts = _with_share(gen, _indices(world, env.workstations), share)
    paths = [image.format(user=world.hosts[h].user) for h in hosts]
    daily = _daily_processes(
        world, actor, hosts, paths, [f'"{p}" --system-initiated' for p in paths],
        "Microsoft Corporation",
    )  # fmt: skip
    s = sessions(gen, env, hosts, env.days(), 2.5)
    m = len(s)
    minutes = gen.integers(15, 61, m)
    rate = gen.integers(120_000, 250_001, m)  # bytes per second each way
    sent = rate * 60 * minutes
    world.flows(
        actor, daily[s.cell], s.ts, dst_ip=external_ip(relay),
        dst_port=gen.integers(3478, 3482, m), bytes_out=sent,
        bytes_in=(sent * gen.uniform(0.6, 1.6, m)).astype(np.int64),
        duration_ns=minutes * 60 * NS_PER_S, transport=Transport.UDP, app=AppProtocol.RTP,
    )  # fmt: skip


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
    gen = generator(rng)
    env = world.env
    image = r"C:\Program Files\Sophos\Sophos File Scanner\SophosFS.exe"
    hosts = _indices(world, env.hosts)
    daily = _daily_processes(world, actor, hosts, image, f'"{image}"', "Sophos Ltd")
    rate = [60 if world.hosts[h].role == "workstation" else 20 for h in hosts]
    s = sessions(gen, env, hosts, env.days(), rate)
    digests = gen.bytes(16 * len(s)).hex()
    version = gen.integers(1, 10, len(s)).tolist()
    names = [
        f"0.{v}.{digests[32 * i : 32 * i + 32]}.f.sxl.sophosxl.example"
        for i, v in enumerate(version)
    ]
    world.dns_many(actor, daily[s.cell], s.ts, names, answers=("127.0.0.1",))


_CDN_PROVIDERS = ("telemetry.example", "akamaiedge.example", "azurefd.example")


def cdn_telemetry(world: World, rng: random.Random) -> None:
    """Software telemetry and CDN names with long, machine-generated labels (region and
    deployment ids, base32-ish tokens) looked up by signed system processes every few minutes;
    thousands of names, but a handful of CDN edge addresses behind them.

    Trap for AN1225: long labels and varied subdomains are not a tunnel.
    """
    actor = world.actor(
        "cdn-telemetry",
        ActorKind.BENIGN,
        "Telemetry and CDN names with long generated labels",
        trap_for=(AN1225,),
    )
    gen = generator(rng)
    env = world.env
    hosts = _indices(world, env.hosts)
    daily = _daily_processes(
        world, actor, hosts, r"C:\Windows\System32\svchost.exe",
        r"C:\Windows\system32\svchost.exe -k utcsvc -p", "Microsoft Windows",
    )  # fmt: skip
    s = sessions(gen, env, hosts, env.days(), 40)
    m = len(s)
    tokens = texts(gen, "abcdefghijklmnopqrstuvwxyz0123456789", gen.integers(20, 41, m))
    kind = gen.integers(0, 3, m).tolist()
    number = gen.integers(1000, 10_000, m).tolist()
    region = gen.integers(1, 100, m).tolist()
    names = [
        f"{tok}.events.telemetry.example" if k == 0
        else f"e{num}.dscb.akamaiedge.example" if k == 1
        else f"{tok[:16]}-{reg}.z01.azurefd.example"
        for tok, k, num, reg in zip(tokens, kind, number, region, strict=True)
    ]  # fmt: skip
    # Many names, few addresses: each provider's names resolve to one of its four edge
    # addresses, as CDN names do (and none of them is another service's address).
    edges = external_ips([f"edge{e}.{p}" for p in _CDN_PROVIDERS for e in range(4)])
    ips = edges[np.asarray(kind) * 4 + gen.integers(0, 4, m)]
    proc = daily[s.cell]
    world.dns_many(actor, proc, s.ts, names, answers=[(ip,) for ip in ips.tolist()])
    world.flows(
        actor, proc, s.ts + 50_000_000, dst_ip=ips, dst_port=443,
        bytes_out=lognormal_many(gen, 4_000, 0.6, 60_000, m),
        bytes_in=lognormal_many(gen, 2_000, 0.6, 40_000, m), server_name=names,
    )  # fmt: skip


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
    gen = generator(rng)
    s = sessions(gen, env, _indices(world, env.workstations[:2]), env.days(), 1.5)
    m = len(s)
    proc = world.spawn_many(
        actor, s.host, s.ts, r"C:\Windows\System32\Robocopy.exe",
        rf"robocopy C:\Deploy \\{servers[0].name}\deploy /MIR", signer="Microsoft Windows",
    )  # fmt: skip
    item, rank = _repeat_rank(gen.integers(20, 81, m))
    world.reads(
        actor, proc[item], s.ts[item] + rank * 10_000_000,
        [rf"C:\Deploy\pkg-{i:03d}.msi" for i in rank.tolist()], np.full(len(item), 4_000_000),
    )  # fmt: skip
    size = lognormal_many(gen, 200_000_000, 0.7, 2_000_000_000, m)
    world.flows(
        actor, proc, s.ts + NS_PER_S, dst_ip=servers[0].ip, dst_port=445, bytes_out=size,
        bytes_in=size // 40, duration_ns=np.maximum(NS_PER_S, size // 50_000_000 * NS_PER_S),
        app=AppProtocol.SMB,
    )  # fmt: skip


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
    gen = generator(rng)
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
    workstations = _indices(world, env.workstations)
    for image, signer, name, port in updaters:
        hosts = _with_share(gen, workstations, _UPDATER_SHARE[image])
        s = sessions(gen, env, hosts, env.days(), 3)
        m = len(s)
        proc = world.spawn_many(actor, s.host, s.ts, image, f'"{image}" /check', signer=signer)
        world.dns_many(actor, proc, s.ts, [name] * m, answers=(external_ip(name),))
        download = gen.random(m) < 0.1
        world.flows(
            actor, proc, s.ts + NS_PER_S, dst_ip=external_ip(name), dst_port=port,
            bytes_out=gen.integers(1_500, 6_001, m),
            bytes_in=np.where(
                download, lognormal_many(gen, 40_000_000, 0.5, 300_000_000, m),
                gen.integers(2_000, 20_001, m),
            ),
            duration_ns=np.where(download, 30, 1) * NS_PER_S, server_name=name,
        )  # fmt: skip


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
    gen = generator(rng)
    env = world.env
    resolver = next(h for h in env.hosts if h.role == "resolver")
    image = r"C:\Windows\System32\dns.exe"
    proc = world.spawn(
        actor, resolver, env.start_ns, image, image, user="SYSTEM", signer="Microsoft Windows"
    )
    zones = ("example", "news.example", "cdn.example", "vendor.example", "telemetry.example")
    qtypes = ("A", "AAAA", "DNSKEY", "DS", "A", "A")
    s = sessions(gen, env, [world.host_index(resolver)], env.days(), 400)
    m = len(s)
    zone = gen.integers(0, len(zones), m).tolist()
    qtype = [qtypes[i] for i in gen.integers(0, len(qtypes), m).tolist()]
    queries = [
        zones[z] if q in ("DNSKEY", "DS") else f"www.{zones[z]}"
        for z, q in zip(zone, qtype, strict=True)
    ]
    # Signed answers are large; a plain A answer is the query plus its one record.
    plain = np.fromiter((dns_query_bytes(q) + 16 + 5 for q in queries), dtype=np.int64, count=m)
    signed = gen.integers(600, 1_801, m)
    world.dns_many(
        actor, np.full(m, proc.index), s.ts, queries, qtype=qtype, answers=("rrsig",),
        response_bytes=np.where(np.asarray(qtype) == "A", plain, signed), via_api=False,
        resolver_ip=[external_ip(f"ns.{zones[z]}") for z in zone],
    )  # fmt: skip


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
    gen = generator(rng)
    env = world.env
    programs = (
        (r"C:\Windows\System32\notepad.exe", "notepad.exe {doc}"),
        (r"C:\Windows\System32\rundll32.exe", "rundll32.exe shell32.dll,Control_RunDLL"),
        (r"C:\Windows\System32\calc.exe", "calc.exe"),
    )
    s = sessions(gen, env, _indices(world, env.workstations), env.days(), 6)
    m = len(s)
    program = gen.integers(0, len(programs), m).tolist()
    docs = [
        rf"C:\Users\{world.hosts[h].user}\Documents\notes-{n}.txt"
        for h, n in zip(s.host.tolist(), gen.integers(1, 41, m).tolist(), strict=True)
    ]
    proc = world.spawn_many(
        actor, s.host, s.ts, [programs[p][0] for p in program],
        [programs[p][1].format(doc=d) for p, d in zip(program, docs, strict=True)],
        signer="Microsoft Windows",
    )  # fmt: skip
    item, rank = _repeat_rank(gen.integers(1, 26, m))
    world.reads(
        actor, proc[item], s.ts[item] + (rank + 1) * 300_000_000,
        [docs[i] for i in item.tolist()], gen.integers(200, 80_001, len(item)),
    )  # fmt: skip


def time_and_printing(world: World, rng: random.Random) -> None:
    """Background noise: Windows time sync (UDP/123 outward) and print jobs to the internal
    printer over TCP/9100."""
    actor = world.actor("time-and-printing", ActorKind.BENIGN, "NTP sync and print jobs")
    gen = generator(rng)
    env = world.env
    printer = "192.0.2.250"
    hosts = _indices(world, env.hosts)
    w32time = world.spawn_many(
        actor, hosts, np.full(len(hosts), env.start_ns), r"C:\Windows\System32\svchost.exe",
        r"C:\Windows\system32\svchost.exe -k LocalService -s W32Time", user="LOCAL SERVICE",
        signer="Microsoft Windows",
    )  # fmt: skip
    every = 8 * 3600 * NS_PER_S
    first = env.start_ns + gen.integers(0, 3_601, len(hosts)) * NS_PER_S
    syncs = -(-(env.end_ns - first) // every)
    item, rank = _repeat_rank(syncs)
    world.flows(
        actor, w32time[item], first[item] + rank * every,
        dst_ip=external_ip("time.windows.example"), dst_port=123, bytes_out=48, bytes_in=48,
        transport=Transport.UDP, app=AppProtocol.UNKNOWN, duration_ns=50_000_000,
    )  # fmt: skip
    s = sessions(gen, env, _indices(world, env.workstations), env.days(), 1.5)
    m = len(s)
    spool = world.spawn_many(
        actor, s.host, s.ts, r"C:\Windows\System32\spoolsv.exe",
        r"C:\Windows\System32\spoolsv.exe", user="SYSTEM", signer="Microsoft Windows",
    )  # fmt: skip
    world.flows(
        actor, spool, s.ts + NS_PER_S, dst_ip=printer, dst_port=9100,
        bytes_out=lognormal_many(gen, 500_000, 0.8, 30_000_000, m), bytes_in=200,
        app=AppProtocol.UNKNOWN, duration_ns=5 * NS_PER_S,
    )  # fmt: skip


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
    gen = generator(rng)
    env = world.env
    entry = software("Web proxy")
    hosts = _indices(world, proxies)
    procs = world.spawn_many(
        actor, hosts, np.full(len(hosts), env.start_ns), entry.image,
        rf'"{entry.image}" -N -f C:\Squid\etc\squid.conf', user="SYSTEM", signer=entry.signer,
    )  # fmt: skip
    s = sessions(gen, env, hosts, env.days(), sessions_per_day)
    m = len(s)
    proc = procs[s.cell // len(env.days())]
    site = gen.integers(0, len(_SITES), m)
    names = _SITE_NAMES[site]
    world.dns_many(
        actor, proc, s.ts, names.tolist(), answers=[(ip,) for ip in _SITE_IPS[site]],
        via_api=False,
    )  # fmt: skip
    upload = gen.random(m) < 0.02
    world.flows(
        actor, proc, s.ts + 20_000_000, dst_ip=_SITE_IPS[site], dst_port=443,
        bytes_out=np.where(
            upload, lognormal_many(gen, 5_000_000, 0.8, 60_000_000, m),
            lognormal_many(gen, 3_000, 0.8, 200_000, m),
        ),
        bytes_in=lognormal_many(gen, 80_000, 1.2, 50_000_000, m),
        duration_ns=gen.integers(1, 61, m) * NS_PER_S, server_name=names,
    )  # fmt: skip
