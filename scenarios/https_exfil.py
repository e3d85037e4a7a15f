"""``https-exfil``: the office background plus two HTTPS exfiltration actors.

- ``unseen-uploader``: a never-seen, unsigned executable in the user's temp folder reads
  documents, then uploads them over HTTPS in chunks (T1041 over T1071.001).
- ``disguised-browser``: an unsigned copy named ``chrome.exe`` in ``C:\\Users\\Public`` uploads
  over HTTPS: the name of the most common browser, from a path no browser runs from.

The knobs set volume, chunking, pacing, jitter and whether documents are read first.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.errors import InvalidParameterError
from scenarios.malicious import Disguise, https_upload
from scenarios.office import AttackScenario, OfficeParams
from scenarios.world import World

__all__ = ["HttpsExfil", "HttpsExfilParams"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpsExfilParams(OfficeParams):
    total_bytes: int = 40_000_000
    chunk_bytes: int = 2_000_000
    interval_s: float = 30.0
    jitter: float = 0.3
    files_read: int = 60

    def __post_init__(self) -> None:
        OfficeParams.__post_init__(self)
        if self.total_bytes < 1 or self.chunk_bytes < 1:
            raise InvalidParameterError(
                "total_bytes/chunk_bytes", (self.total_bytes, self.chunk_bytes), "positive"
            )
        if self.interval_s <= 0:
            raise InvalidParameterError("interval_s", self.interval_s, "a positive number")
        if not 0 <= self.jitter < 1:
            raise InvalidParameterError("jitter", self.jitter, "a fraction in [0, 1)")
        if self.files_read < 0:
            raise InvalidParameterError("files_read", self.files_read, "an integer >= 0")


class HttpsExfil(AttackScenario):
    id: ClassVar[str] = "https-exfil"
    description: ClassVar[str] = (
        "HTTPS upload by a never-seen process and by a browser-named impostor, over office traffic"
    )
    Params: ClassVar[type[Any]] = HttpsExfilParams

    def attack(self, world: World, rng: random.Random, params: Any) -> None:
        victims = rng.sample(world.env.workstations, 2)
        common = {
            "total_bytes": params.total_bytes,
            "chunk_bytes": params.chunk_bytes,
            "interval_s": params.interval_s,
            "jitter": params.jitter,
        }
        temp = rf"C:\Users\{victims[0].user}\AppData\Local\Temp\wsync32.exe"
        https_upload(
            world, rng, actor_id="unseen-uploader",
            description="Never-seen unsigned process reads documents and uploads them over HTTPS",
            host=victims[0], start_ns=self.attack_time(world, rng),
            who=Disguise(image=temp, command_line=f"{temp} -q -s"),
            dst_name="files.cloudstore.example", files_read=params.files_read, **common,
        )  # fmt: skip
        fake = r"C:\Users\Public\chrome.exe"
        https_upload(
            world, rng, actor_id="disguised-browser",
            description="Unsigned chrome.exe from C:\\Users\\Public uploads over HTTPS",
            host=victims[1], start_ns=self.attack_time(world, rng),
            who=Disguise(image=fake, command_line=f'"{fake}" --type=renderer --no-sandbox'),
            dst_name="cdn-upload.assets.example", **common,
        )  # fmt: skip
