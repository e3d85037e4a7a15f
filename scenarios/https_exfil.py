"""``https-exfil``: the office background plus two HTTPS exfiltration actors.

- ``unseen-uploader``: a never-seen, unsigned executable in the user's temp folder reads
  documents, then uploads them over HTTPS in chunks (T1041 over T1071.001).
- ``disguised-browser``: an unsigned copy named ``chrome.exe`` in ``C:\\Users\\Public`` uploads
  over HTTPS: the name of the most common browser, from a path no browser runs from.

Both are expected to fire AN0144 and AN1225. The knobs set volume, chunking, pacing and jitter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from harness.errors import InvalidParameterError
from harness.events import NS_PER_S
from harness.fields import Profile
from harness.scenario import Scenario, ScenarioRun
from scenarios.malicious import https_upload
from scenarios.office import OfficeParams, add_background, new_world

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


class HttpsExfil(Scenario):
    id: ClassVar[str] = "https-exfil"
    description: ClassVar[str] = (
        "HTTPS upload by a never-seen process and by a browser-named impostor, over office traffic"
    )
    Params: ClassVar[type[Any]] = HttpsExfilParams

    def generate(self, params: Any, seed: int, profile: Profile = Profile.EDR) -> ScenarioRun:
        world, rng = new_world(self.id, seed, params)
        add_background(world, rng, params)
        env = world.env
        victims = rng.sample(env.workstations, 2)
        day = env.baseline_until_ns + 9 * 3600 * NS_PER_S
        common = {
            "total_bytes": params.total_bytes,
            "chunk_bytes": params.chunk_bytes,
            "interval_s": params.interval_s,
            "jitter": params.jitter,
        }
        u = victims[0].user
        https_upload(
            world,
            rng,
            actor_id="unseen-uploader",
            description="Never-seen unsigned process reads documents and uploads them over HTTPS",
            host=victims[0],
            start_ns=day + rng.randint(0, 6 * 3600) * NS_PER_S,
            image=rf"C:\Users\{u}\AppData\Local\Temp\wsync32.exe",
            command_line=rf"C:\Users\{u}\AppData\Local\Temp\wsync32.exe -q -s",
            signer=None,
            dst_name="files.cloudstore.example",
            files_read=params.files_read,
            **common,
        )
        https_upload(
            world,
            rng,
            actor_id="disguised-browser",
            description="Unsigned chrome.exe from C:\\Users\\Public uploads over HTTPS",
            host=victims[1],
            start_ns=day + rng.randint(0, 6 * 3600) * NS_PER_S,
            image=r"C:\Users\Public\chrome.exe",
            command_line=r'"C:\Users\Public\chrome.exe" --type=renderer --no-sandbox',
            signer=None,
            dst_name="cdn-upload.assets.example",
            **common,
        )
        return world.finish(profile)
