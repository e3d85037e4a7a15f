"""``https-exfil``: the office background plus two HTTPS exfiltration actors.

- ``unseen-uploader``: a never-seen, unsigned executable in the user's temp folder reads
  documents, then uploads them over HTTPS in chunks (T1041 over T1071.001).
- ``disguised-browser``: an unsigned copy named ``chrome.exe`` in ``C:\\Users\\Public`` uploads
  over HTTPS: the name of the most common browser, from a path no browser runs from.

The knobs set volume, chunking, pacing, jitter, padding, port, the uploader's process identity
and whether documents are read first.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from scenarios.knobs import disguise_knob, files_knob, jitter_knob, knob, port_knob, validate
from scenarios.malicious import Disguise, disguise, https_upload
from scenarios.office import AttackScenario, OfficeParams
from scenarios.world import World

__all__ = ["HttpsExfil", "HttpsExfilParams"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpsExfilParams(OfficeParams):
    total_bytes: int = knob(
        40_000_000, "Bytes each actor uploads.", low=1, high=10**11, test_range=(1, 5_000_000)
    )
    chunk_bytes: int = knob(
        2_000_000, "Bytes per POST (one TLS connection each).", low=1, high=10**10,
        test_range=(100_000, 2_000_000),
    )  # fmt: skip
    interval_s: float = knob(
        30.0, "Seconds between POSTs.", low=0.01, high=86_400, test_range=(0.5, 60)
    )
    jitter: float = jitter_knob(0.3)
    padding_bytes: int = knob(
        0, "Junk bytes added to every POST.", low=0, high=10**8, test_range=(0, 10_000)
    )
    port: int = port_knob(443, "Port of the HTTPS uploads.")
    files_read: int = files_knob(60, "the unseen uploader")
    disguised_files_read: int = files_knob(0, "the browser-named impostor")
    disguise: str = disguise_knob("the unseen uploader (the impostor is always chrome.exe)")

    def __post_init__(self) -> None:
        validate(self)


class HttpsExfil(AttackScenario):
    id: ClassVar[str] = "https-exfil"
    description: ClassVar[str] = (
        "HTTPS upload by a never-seen process and by a browser-named impostor, over office traffic"
    )
    Params: ClassVar[type[Any]] = HttpsExfilParams
    victims: ClassVar[int] = 2
    difficulty: ClassVar[Mapping[str, tuple[Any, ...]]] = {
        "total_bytes": (40_000_000, 4_000_000, 400_000),
        "interval_s": (30.0, 300.0, 1_800.0),
    }

    def attack(self, world: World, rng: random.Random, params: Any) -> None:
        victims = rng.sample(world.env.workstations, 2)
        common = {
            "total_bytes": params.total_bytes,
            "chunk_bytes": params.chunk_bytes,
            "interval_s": params.interval_s,
            "jitter": params.jitter,
            "padding_bytes": params.padding_bytes,
            "port": params.port,
        }
        temp = rf"C:\Users\{victims[0].user}\AppData\Local\Temp\wsync32.exe"
        own = Disguise(image=temp, command_line=f"{temp} -q -s")
        https_upload(
            world, rng, actor_id="unseen-uploader",
            description="Never-seen unsigned process reads documents and uploads them over HTTPS"
            if params.files_read
            else "Never-seen unsigned process uploads over HTTPS",
            host=victims[0], start_ns=self.attack_time(world, rng),
            who=disguise(params.disguise, victims[0], own, "wsync32.exe"),
            dst_name="files.cloudstore.example", files_read=params.files_read, **common,
        )  # fmt: skip
        fake = r"C:\Users\Public\chrome.exe"
        https_upload(
            world, rng, actor_id="disguised-browser",
            description="Unsigned chrome.exe from C:\\Users\\Public uploads over HTTPS",
            host=victims[1], start_ns=self.attack_time(world, rng),
            who=Disguise(image=fake, command_line=f'"{fake}" --type=renderer --no-sandbox'),
            dst_name="cdn-upload.assets.example", files_read=params.disguised_files_read,
            **common,
        )  # fmt: skip
