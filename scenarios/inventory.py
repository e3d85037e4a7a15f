"""The office's software inventory: which programs exist, who signs them, and on what share of
the eligible hosts each is installed (its prevalence).

The benign actors in :mod:`scenarios.benign` read their install shares from here, so this table
is the one place that says how common each program is; which hosts actually got it is drawn by
the actor from the run's seed (and can be read back from the run's ``ProcessStart`` events).
Prevalence is what rarity rules ("seen on fewer than 10 hosts", "never seen before") key on, so
the catalogue prints this table.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SOFTWARE", "Software", "software"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Software:
    """One installed program. ``image`` may contain ``{user}`` for per-user installs."""

    name: str
    image: str
    signer: str | None
    #: Share of the eligible hosts (those with a role in ``roles``) that have it.
    prevalence: float
    roles: tuple[str, ...]
    #: The benign actor that runs it.
    actor: str
    note: str = ""


_WS = ("workstation",)
_ALL = ("resolver", "server", "workstation")

SOFTWARE: tuple[Software, ...] = (
    Software(
        name="Chrome",
        image=r"C:\Program Files\Google\Chrome\Application\chrome.exe",
        signer="Google LLC",
        prevalence=0.55,
        roles=_WS,
        actor="browsers",
        note="default browser of 55% of users (browsers are exclusive: one per workstation)",
    ),
    Software(
        name="Edge",
        image=r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
        signer="Microsoft Corporation",
        prevalence=0.3,
        roles=_WS,
        actor="browsers",
        note="default browser of 30% of users",
    ),
    Software(
        name="Firefox",
        image=r"C:\Program Files\Mozilla Firefox\firefox.exe",
        signer="Mozilla Corporation",
        prevalence=0.15,
        roles=_WS,
        actor="browsers",
        note="default browser of 15% of users",
    ),
    Software(
        name="OneDrive",
        image=r"C:\Users\{user}\AppData\Local\Microsoft\OneDrive\OneDrive.exe",
        signer="Microsoft Corporation",
        prevalence=0.6,
        roles=_WS,
        actor="onedrive-sync",
    ),
    Software(
        name="Teams",
        image=r"C:\Users\{user}\AppData\Local\Microsoft\Teams\current\Teams.exe",
        signer="Microsoft Corporation",
        prevalence=0.8,
        roles=_WS,
        actor="teams-media",
    ),
    Software(
        name="Contoso Meet",
        image=r"C:\Program Files\Contoso\Meet\ContosoMeet.exe",
        signer="Contoso Ltd",
        prevalence=0.7,
        roles=_WS,
        actor="new-app-rollout",
        note="rolled out during the detection window: absent from the baseline",
    ),
    Software(
        name="Adobe ARM",
        image=r"C:\Program Files (x86)\Common Files\Adobe\ARM\1.0\AdobeARM.exe",
        signer="Adobe Inc",
        prevalence=0.5,
        roles=_WS,
        actor="vendor-updaters",
    ),
    Software(
        name="Vendor Update",
        image=r"C:\Program Files\Vendor\Agent\VendorUpdate.exe",
        signer="Vendor Corp",
        prevalence=0.5,
        roles=_WS,
        actor="vendor-updaters",
    ),
    Software(
        name="Sophos File Scanner",
        image=r"C:\Program Files\Sophos\Sophos File Scanner\SophosFS.exe",
        signer="Sophos Ltd",
        prevalence=1.0,
        roles=_ALL,
        actor="av-reputation",
    ),
    Software(
        name="Backup agent",
        image=r"C:\Program Files\BackupVendor\Agent\bkagent.exe",
        signer="BackupVendor Inc",
        prevalence=1.0,
        roles=("server",),
        actor="backup-agent",
    ),
    Software(
        name="Web proxy",
        image=r"C:\Program Files\Squid\bin\squid.exe",
        signer="Squid Project",
        prevalence=1.0,
        roles=("proxy",),
        actor="web-proxy",
        note="on the proxy host only",
    ),
    Software(
        name="Windows (svchost, notepad, rundll32, robocopy, spoolsv, dns.exe)",
        image=r"C:\Windows\System32\*",
        signer="Microsoft Windows",
        prevalence=1.0,
        roles=_ALL,
        actor="windows-update, cdn-telemetry, quiet-desktop, admin-smb, time-and-printing",
    ),
)


def software(name: str) -> Software:
    """The inventory entry called ``name``."""
    for entry in SOFTWARE:
        if entry.name == name:
            return entry
    raise KeyError(name)
