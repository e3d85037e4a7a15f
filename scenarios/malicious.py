"""Malicious actors. Each function adds one actor with its ATT&CK techniques and the analytics
expected to fire on it, and exposes its difficulty knobs as keyword arguments."""

from __future__ import annotations

import random

from harness.analytics import analytic_id, technique_id
from harness.events import NS_PER_S
from harness.truth import ActorKind
from scenarios._util import external_ip
from scenarios.world import Host, World

__all__ = ["https_upload"]


def https_upload(
    world: World,
    rng: random.Random,
    *,
    actor_id: str,
    description: str,
    host: Host,
    start_ns: int,
    image: str,
    command_line: str,
    signer: str | None,
    total_bytes: int,
    chunk_bytes: int,
    interval_s: float,
    jitter: float,
    dst_name: str,
    files_read: int = 0,
) -> None:
    """Exfiltration over HTTPS by one process: optionally read ``files_read`` documents first,
    then upload ``total_bytes`` in POSTs of ``chunk_bytes`` every ``interval_s`` seconds
    (±``jitter`` as a fraction), each on a fresh TLS connection with a small response."""
    if chunk_bytes < 1 or total_bytes < 1 or interval_s <= 0 or not 0 <= jitter < 1:
        raise ValueError("https_upload needs positive sizes and interval and 0 <= jitter < 1")
    actor = world.actor(
        actor_id,
        ActorKind.MALICIOUS,
        description,
        techniques=(technique_id("T1041"), technique_id("T1071.001")),
        expected=(analytic_id("AN0144"), analytic_id("AN1225")),
    )
    proc = world.spawn(actor, host, start_ns, image, command_line, signer=signer)
    t = start_ns + NS_PER_S
    for i in range(files_read):
        world.read_file(
            actor,
            proc,
            t + i * 20_000_000,
            rf"C:\Users\{host.user}\Documents\project-{i:03d}.docx",
            40_000 + 997 * i,
        )
    t += files_read * 20_000_000 + NS_PER_S
    world.dns(actor, proc, t, dst_name, answers=(external_ip(dst_name),))
    sent = 0
    while sent < total_bytes:
        size = min(chunk_bytes, total_bytes - sent)
        world.flow(
            actor,
            proc,
            t,
            dst_ip=external_ip(dst_name),
            dst_port=443,
            bytes_out=size + 600,
            bytes_in=900 + rng.randint(0, 300),
            duration_ns=max(NS_PER_S, size // 1_500_000 * NS_PER_S),
            server_name=dst_name,
        )
        sent += size
        t += int(interval_s * (1 + rng.uniform(-jitter, jitter)) * NS_PER_S)
