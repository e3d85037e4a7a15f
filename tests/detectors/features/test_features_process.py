from __future__ import annotations

from detectors.features.process import NEVER, DeploymentHold, ProcessTable, image_key
from harness.alerts import Alert, Entity
from harness.analytics import analytic_id
from harness.events import NS_PER_S, ProcessStart

_COUNTER = iter(range(1, 1_000_000))


def _start(host: str, image: str, ts: int, signer: str | None = "Vendor") -> ProcessStart:

    n = next(_COUNTER)
    return ProcessStart(
        event_id=f"e{n}",
        ts_ns=ts,
        host=host,
        process_guid=f"g{n}",
        pid=n,
        image=image,
        name=image.rsplit("\\", 1)[-1],
        command_line=image,
        parent_guid=None,
        user="u",
        signer=signer,
    )


def _alert(ts: int) -> Alert:
    return Alert(
        analytic=analytic_id("AN0144"),
        detector="d",
        ts_ns=ts,
        score=1.0,
        entity=Entity(),
        evidence=("e1",),
        reason="r",
    )


def test_image_key_folds_user_profiles_but_not_shared_ones() -> None:
    a = image_key(r"C:\Users\alice\AppData\Local\Microsoft\OneDrive\OneDrive.exe")
    b = image_key(r"C:\Users\Bob\AppData\Local\Microsoft\OneDrive\OneDrive.exe")
    assert a == b == r"c:\users\*\appdata\local\microsoft\onedrive\onedrive.exe"
    assert image_key(r"C:\Users\Public\chrome.exe") == r"c:\users\public\chrome.exe"


def test_process_table_prevalence_and_establishment() -> None:
    table = ProcessTable()
    old = _start("h1", r"C:\Program Files\Old\old.exe", 1)
    table.learn(old)
    table.learn(_start("h2", r"C:\Program Files\Old\old.exe", 2))
    table.end_baseline()
    new = _start("h1", r"C:\Program Files\New\new.exe", 10)
    table.learn(new)
    assert table.fleet_hosts(image_key(old.image)) == 2
    assert table.is_established(image_key(old.image))
    assert not table.is_established(image_key(new.image))
    assert table.first_start_ns(image_key(new.image)) == 10
    assert table.image(new.process_guid) == image_key(new.image)
    assert table.get(None) is None
    assert table.host_count == 2


def _hold() -> tuple[ProcessTable, DeploymentHold]:
    table = ProcessTable()
    table.learn(_start("h9", r"C:\Program Files\Old\old.exe", 0))
    table.end_baseline()
    return table, DeploymentHold(table, hold_ns=100 * NS_PER_S, min_hosts=3)


def test_hold_applies_only_to_signed_fleet_new_non_os_images() -> None:
    _table, hold = _hold()
    assert hold.applies(_start("h1", r"C:\Program Files\New\new.exe", 5))
    assert not hold.applies(_start("h1", r"C:\Program Files\New\new.exe", 5, signer=None))
    assert not hold.applies(_start("h1", r"C:\Program Files\Old\old.exe", 5))
    assert not hold.applies(_start("h1", r"C:\Windows\System32\curl.exe", 5, "Microsoft"))
    assert not hold.applies(None)


def test_held_alert_is_released_after_the_hold_unless_the_image_spread() -> None:
    table, hold = _hold()
    lone = _start("h1", r"C:\Program Files\Lone\lone.exe", 0)
    spread = _start("h1", r"C:\Program Files\Wide\wide.exe", 0)
    for p in (lone, spread):
        table.learn(p)
    assert hold.submit(lone, _alert(10 * NS_PER_S)) == ()
    assert hold.submit(spread, _alert(10 * NS_PER_S)) == ()
    assert hold.next_due_ns == 100 * NS_PER_S  # the images first started at 0
    assert hold.release(50 * NS_PER_S) == ()  # still within the hold
    for host in ("h2", "h3"):
        table.learn(_start(host, spread.image, 60 * NS_PER_S))
    released = hold.release(100 * NS_PER_S)
    assert [a.ts_ns for a in released] == [10 * NS_PER_S]  # the lone one only
    assert not hold
    assert hold.next_due_ns == NEVER


def test_already_spread_image_is_dropped_at_once_and_flush_releases_the_rest() -> None:
    table, hold = _hold()
    image = r"C:\Program Files\Wide\wide.exe"
    first = _start("h1", image, 0)
    for p in (first, _start("h2", image, 1), _start("h3", image, 2)):
        table.learn(p)
    assert hold.submit(first, _alert(5)) == ()
    assert not hold
    lone = _start("h1", r"C:\Program Files\Lone\lone.exe", 0)
    table.learn(lone)
    hold.submit(lone, _alert(5))
    assert len(hold.release(None)) == 1
