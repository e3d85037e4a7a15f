"""The lab's actor programs: real processes that send real traffic to the lab's sinks.

One module per program, each with ``main(argv: list[str] | None = None) -> int`` and runnable as
``python -m scenarios.programs.<name>``. The lab starts them under chosen executable names
(:mod:`harness.lab.launch`), so ``rundll32.exe`` or ``chrome.exe`` is really one of these.

Shared conventions (:mod:`scenarios.programs._common`): every program binds its sockets to
``--bind`` (the client's own lab address), embeds ``--run-id`` in what it sends (a DNS label, an
HTTP header ``X-Lab-Run``, a payload prefix), stops after ``--duration`` seconds or when its data
is sent (SIGTERM is a normal stop), writes one JSON summary line to stdout, and exits 0 on
success or non-zero with a one-line message on stderr (e.g. the sink is unreachable).

Malicious: :mod:`.dns_tunnel` (iodine, dnscat2, dns2tcp, DET styles), :mod:`.https_upload`,
:mod:`.beacon` (junk-padded C2), :mod:`.raw_exfil` (custom TCP/UDP port), :mod:`.misuse`
(protocols on ports that belong to others), :mod:`.quiet_reader` (a quiet process that reads
documents, then sends them). Benign: :mod:`.fetcher` (browser-like), :mod:`.backup_pusher`, and
:mod:`.https_upload` again as the sync uploader.
"""

from __future__ import annotations

__all__ = ["PROGRAMS"]

#: Every program module under this package.
PROGRAMS = (
    "backup_pusher",
    "beacon",
    "dns_tunnel",
    "fetcher",
    "https_upload",
    "misuse",
    "quiet_reader",
    "raw_exfil",
)
