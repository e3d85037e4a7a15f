"""Process launch features: suspicious command lines, user-writable image folders and risky
parents, the "anomalous process execution and command line arguments" of AN1962.

Responsibility: turn a :class:`~harness.events.ProcessStart` (image, command line, parent image)
into named indicators a detector can weigh and quote in an alert reason. Every indicator is a
plain, documented pattern; nothing is learnt.

Indicators (:func:`command_line_indicators`):

* ``encoded-command``: PowerShell's ``-EncodedCommand`` or any prefix of it (``-e``, ``-en``,
  ``-enc`` ...; PowerShell accepts every unambiguous prefix) followed by a Base64 argument of 16
  or more characters, whatever the executable is called (droppers rename it).
* ``base64-blob``: a run of 60 or more Base64 characters mixing upper case, lower case and
  digits (a GUID or a hex digest is not one: hex has no case mix).
* ``download-cradle``: ``DownloadString``/``DownloadFile``/``Net.WebClient``/``Invoke-WebRequest``
  (``iwr``), ``Invoke-RestMethod`` (``irm``), ``Start-BitsTransfer``, ``bitsadmin /transfer``,
  ``certutil -urlcache``, or ``IEX``/``Invoke-Expression`` (running a string as code).
* ``lolbin-remote``: a living-off-the-land binary (rundll32, regsvr32, mshta, msiexec,
  certutil, bitsadmin, cscript, wscript, installutil, regasm, regsvcs, msbuild, cmstp, hh, wmic)
  given a URL, a UNC path, ``javascript:``/``vbscript:`` or ``scrobj.dll`` (Squiblydoo).
* ``lolbin-user-path``: such a binary given a file under a user-writable folder
  (``rundll32 C:\\Users\\Public\\x.dll,Start``).
* ``hidden-powershell``: PowerShell with a hidden window, ``-NoProfile`` plus an execution
  policy bypass, or ``-NonInteractive`` with a hidden window.

:func:`user_writable_image` flags executables in folders any user can write (Temp, AppData,
Downloads, ``C:\\Users\\Public``, the root of ``C:\\ProgramData``, the recycle bin,
``C:\\PerfLogs``, ``C:\\Windows\\Temp``). Per-user installs of signed software (OneDrive,
Teams, Zoom, Slack) also live in AppData: weigh this together with the signature.

:func:`risky_parent` flags Office applications and script hosts as parents (a document macro
or a script starting a program that then talks to the network).
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = [
    "LOLBINS",
    "command_line_indicators",
    "exe_name",
    "risky_parent",
    "user_writable_image",
]

#: Signed Windows binaries that run code or fetch files on an attacker's behalf.
LOLBINS = frozenset(
    {
        "rundll32.exe",
        "regsvr32.exe",
        "mshta.exe",
        "msiexec.exe",
        "certutil.exe",
        "bitsadmin.exe",
        "cscript.exe",
        "wscript.exe",
        "installutil.exe",
        "regasm.exe",
        "regsvcs.exe",
        "msbuild.exe",
        "cmstp.exe",
        "hh.exe",
        "wmic.exe",
    }
)
_POWERSHELL = frozenset({"powershell.exe", "pwsh.exe", "powershell_ise.exe"})
_RISKY_PARENTS = frozenset(
    {
        "winword.exe",
        "excel.exe",
        "powerpnt.exe",
        "outlook.exe",
        "onenote.exe",
        "msaccess.exe",
        "mspub.exe",
        "visio.exe",
        "wscript.exe",
        "cscript.exe",
        "mshta.exe",
        "hh.exe",
    }
)

_ENCODED = re.compile(
    r"(?:^|\s)[-/]e(?:n(?:c(?:o(?:d(?:e(?:d(?:c(?:o(?:m(?:m(?:a(?:n(?:d)?)?)?)?)?)?)?)?)?)?)?)?)?"
    r"\s+['\"]?[A-Za-z0-9+/]{16,}={0,2}",
    re.IGNORECASE,
)
_B64_RUN = re.compile(r"[A-Za-z0-9+/]{60,}={0,2}")
_CRADLE = re.compile(
    r"downloadstring|downloadfile|downloaddata|net\.webclient|invoke-webrequest|\biwr\b"
    r"|invoke-restmethod|\birm\b|start-bitstransfer|bitsadmin\b.*?/transfer"
    r"|certutil\b.*?-urlcache|\biex\b|invoke-expression",
    re.IGNORECASE,
)
_REMOTE = re.compile(r"https?://|ftp://|\\\\[a-z0-9._-]+\\|javascript:|vbscript:|scrobj\.dll", re.I)
_HIDDEN = re.compile(r"(?:^|\s)[-/]w(?:indowstyle|indow|in|i)?\s+h(?:idden|id|i)?\b", re.I)
_BYPASS = re.compile(r"(?:^|\s)[-/](?:ep|ex|exec|executionpolicy)\s+bypass\b", re.I)
_NOPROFILE = re.compile(r"(?:^|\s)[-/]nop(?:rofile)?\b", re.I)
_WRITABLE = (
    "\\appdata\\",
    "\\temp\\",
    "\\tmp\\",
    "\\downloads\\",
    "\\users\\public\\",
    "\\$recycle.bin\\",
    "\\perflogs\\",
)


def exe_name(image: str) -> str:
    """The case-folded file name of an image path (``C:\\X\\Foo.EXE`` -> ``foo.exe``)."""
    return image.replace("/", "\\").rsplit("\\", 1)[-1].casefold()


@lru_cache(maxsize=65_536)
def user_writable_image(image: str) -> bool:
    """True when the executable sits in a folder any user can write (see the module docstring)."""
    path = image.replace("/", "\\").casefold()
    if any(marker in path for marker in _WRITABLE):
        return True
    # Directly under C:\ProgramData (one level: C:\ProgramData\Intel\x.exe), not deep inside a
    # vendor's tree such as ...\ProgramData\Microsoft\Windows Defender\Platform\4.18\MsMpEng.exe.
    i = path.find("\\programdata\\")
    return i != -1 and path.count("\\", i + len("\\programdata\\")) <= 1


def _has_case_mix(run: str) -> bool:
    return (
        any(c.isupper() for c in run)
        and any(c.islower() for c in run)
        and any(c.isdigit() for c in run)
    )


def command_line_indicators(image: str, command_line: str) -> tuple[str, ...]:
    """Named indicators found in a process's command line (see the module docstring), in a
    fixed order; empty when nothing is suspicious."""
    found: list[str] = []
    name = exe_name(image)
    if _ENCODED.search(command_line):
        found.append("encoded-command")
    elif any(_has_case_mix(m.group(0)) for m in _B64_RUN.finditer(command_line)):
        found.append("base64-blob")
    if _CRADLE.search(command_line):
        found.append("download-cradle")
    if name in LOLBINS:
        if _REMOTE.search(command_line):
            found.append("lolbin-remote")
        elif any(marker in command_line.casefold() for marker in _WRITABLE) or (
            "\\programdata\\" in command_line.casefold()
        ):
            found.append("lolbin-user-path")
    if name in _POWERSHELL and (
        _HIDDEN.search(command_line)
        or (_NOPROFILE.search(command_line) and _BYPASS.search(command_line))
    ):
        found.append("hidden-powershell")
    return tuple(found)


def risky_parent(parent_image: str | None) -> bool:
    """True when the parent is an Office application or a script host."""
    return parent_image is not None and exe_name(parent_image) in _RISKY_PARENTS
