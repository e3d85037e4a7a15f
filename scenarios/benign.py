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
from scenarios._util import external_ip, lognormal_bytes, work_sessions
from scenarios.world import NS_PER_DAY, Actor, Host, Proc, World

__all__ = ["backup_agent", "browsers", "new_app_rollout", "onedrive_sync", "windows_update"]

AN0030, AN0144, AN1225 = analytic_id("AN0030"), analytic_id("AN0144"), analytic_id("AN1225")

_BROWSERS = (
    (r"C:\Program Files\Google\Chrome\Application\chrome.exe", "Google LLC", 0.55),
    (r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe", "Microsoft Corporation", 0.3),
    (r"C:\Program Files\Mozilla Firefox\firefox.exe", "Mozilla Corporation", 0.15),
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


def onedrive_sync(world: World, rng: random.Random, *, share: float = 0.6) -> None:
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


def new_app_rollout(world: World, rng: random.Random, *, share: float = 0.7) -> None:
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
        trap_for=(AN0144,),
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
