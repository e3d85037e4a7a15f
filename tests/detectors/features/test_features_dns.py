"""Tests for detectors.features.dns: PSL splitting, label statistics, windowed DNS counters."""

from __future__ import annotations

import math
import re
import socket
import zlib
from collections import Counter
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from publicsuffixlist import PublicSuffixList

from detectors.features import dns
from detectors.features.dns import (
    DistinctCounter,
    InformationCounter,
    PublicSuffixMatcher,
    char_class_counts,
    digit_ratio,
    hex_ratio,
    is_hex,
    label_count,
    label_entropy,
    label_stats,
    longest_label,
    registered_domain,
    split_name,
    subdomain,
)
from harness.errors import InvalidParameterError

S = 1_000_000_000
_PSL_TEXT = (
    resources.files("publicsuffixlist").joinpath("public_suffix_list.dat").read_text("utf-8")
)
_RULES = [
    line.split()[0] for line in _PSL_TEXT.splitlines() if line.strip() and not line.startswith("//")
]
_ICANN = PublicSuffixMatcher(include_private=False)
_LIB_ALL = PublicSuffixList()
_LIB_ICANN = PublicSuffixList(only_icann=True)


def _expected(lib: PublicSuffixList, name: str) -> str:
    """The library's answer mapped to our documented convention for "no registrable part"."""
    got = lib.privatesuffix(name)
    return name.lower().rstrip(".") if got is None else got


# ---------------------------------------------------------------------------------------------
# Registered domain: documented edge cases
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected_sub", "expected_rd"),
    [
        ("www.google.co.uk", "www", "google.co.uk"),
        ("a.b.bbc.co.uk", "a.b", "bbc.co.uk"),
        ("co.uk", "", "co.uk"),  # itself a public suffix
        ("uk", "", "uk"),
        ("WWW.Example.COM", "www", "example.com"),  # case folded
        ("www.example.com.", "www", "example.com"),  # fully qualified form
        ("x.github.io", "", "x.github.io"),  # private suffix used by default
        ("a.x.github.io", "a", "x.github.io"),
        ("github.io", "", "github.io"),
        ("d111111abcdef8.cloudfront.net", "", "d111111abcdef8.cloudfront.net"),
        ("t.example", "", "t.example"),  # TLD not in the PSL: last two labels
        ("aGVsbG8.x.t.example", "agvsbg8.x", "t.example"),
        ("host.corp.test", "host", "corp.test"),
        ("printer.local", "", "printer.local"),
        ("wpad", "", "wpad"),  # single label
        ("localhost.", "", "localhost"),
        ("", "", ""),
        (".", "", ""),
        ("a..b.example.com", "a.b", "example.com"),  # empty label dropped
        (".example.com", "", "example.com"),
        ("city.kawasaki.jp", "", "city.kawasaki.jp"),  # exception rule
        ("www.city.kawasaki.jp", "www", "city.kawasaki.jp"),
        ("a.b.kawasaki.jp", "", "a.b.kawasaki.jp"),  # wildcard rule *.kawasaki.jp
        ("c.a.b.kawasaki.jp", "c", "a.b.kawasaki.jp"),
        ("www.xn--85x722f.xn--55qx5d.cn", "www", "xn--85x722f.xn--55qx5d.cn"),  # punycode IDN
        ("www.食狮.公司.cn", "www", "食狮.公司.cn"),  # same name in Unicode
        ("shishi.xn--fiqs8s", "", "shishi.xn--fiqs8s"),
    ],
)
def test_split_edge_cases(name: str, expected_sub: str, expected_rd: str) -> None:
    assert split_name(name) == (expected_sub, expected_rd)
    assert registered_domain(name) == expected_rd
    assert subdomain(name) == expected_sub


def test_icann_only_matching_ignores_private_suffixes() -> None:
    assert _ICANN.registered_domain("a.x.github.io") == "github.io"
    assert _ICANN.subdomain("a.x.github.io") == "a.x"
    assert _ICANN.registered_domain("www.google.co.uk") == "google.co.uk"


def test_subdomain_and_registered_domain_rebuild_the_name() -> None:
    for name in ("a.b.c.example.co.uk", "x.t.example", "mail.google.com"):
        sub, rd = split_name(name)
        assert f"{sub}.{rd}" == name


def test_psl_is_the_bundled_offline_list(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the PSL must be loaded without network access")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    matcher = PublicSuffixMatcher()
    assert matcher.registered_domain("www.example.co.uk") == "example.co.uk"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}_UTC", dns.PSL_VERSION)
    assert matcher.version == dns.PSL_VERSION
    assert matcher.rule_count > 9_000


def test_cached_and_uncached_results_agree() -> None:
    uncached = PublicSuffixMatcher(cache_size=0)
    for name in ("www.google.co.uk", "A.B.x.github.io.", "q1.t.example", "wpad"):
        assert uncached.split(name) == split_name(name) == split_name(name)


def test_invalid_cache_size_raises() -> None:
    with pytest.raises(InvalidParameterError):
        PublicSuffixMatcher(cache_size=-1)


def test_custom_source_list() -> None:
    matcher = PublicSuffixMatcher(source="com\n*.ck\n!www.ck\n// comment\n")
    assert matcher.registered_domain("a.b.example.com") == "example.com"
    assert matcher.registered_domain("a.b.ck") == "a.b.ck"
    assert matcher.registered_domain("a.www.ck") == "www.ck"
    assert matcher.version == "unknown"


# ---------------------------------------------------------------------------------------------
# Registered domain: agreement with the PSL test vectors and the reference implementation
# ---------------------------------------------------------------------------------------------


def _psl_test_vectors() -> list[tuple[str, str | None]]:
    text = resources.files("publicsuffixlist").joinpath("test_psl.txt").read_text("utf-8")
    vectors = []
    for m in re.finditer(r"^checkPublicSuffix\('([^']*)', (null|'([^']*)')\);", text, re.M):
        vectors.append((m.group(1), m.group(3)))
    return vectors


def test_official_psl_test_vectors() -> None:
    vectors = _psl_test_vectors()
    assert len(vectors) > 60
    for name, expected in vectors:
        sub, rd = split_name(name)
        if expected is None:
            # No registrable part: our convention is the (cleaned) name itself, empty subdomain.
            assert sub == "", name
            assert rd == ".".join(x for x in name.lower().split(".") if x), name
        else:
            assert rd == expected, name


@pytest.mark.parametrize(
    ("matcher", "lib"),
    [(dns.default_matcher(), _LIB_ALL), (_ICANN, _LIB_ICANN)],
    ids=["with-private", "icann-only"],
)
def test_every_rule_agrees_with_publicsuffixlist(
    matcher: PublicSuffixMatcher, lib: PublicSuffixList
) -> None:
    checked = 0
    for rule in _RULES:
        base = rule.lstrip("!").removeprefix("*.")
        forms = [base] if base.isascii() else [base, base.encode("idna").decode("ascii")]
        for form in forms:
            for prefix in ("", "x.", "y.x.", "q.y.x.", "a.b.c.d.e.f."):
                name = prefix + form
                assert matcher.registered_domain(name) == _expected(lib, name), name
                checked += 1
    assert checked > 50_000


_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)


@given(
    st.lists(_label, max_size=4),
    st.sampled_from(_RULES),
    st.booleans(),
    st.booleans(),
)
@settings(deadline=None)
def test_random_names_agree_with_publicsuffixlist(
    labels: list[str], rule: str, upper: bool, trailing_dot: bool
) -> None:
    base = rule.lstrip("!").removeprefix("*.")
    name = ".".join([*labels, base])
    if upper:
        name = name.upper()
    if trailing_dot:
        name += "."
    assert registered_domain(name) == _expected(_LIB_ALL, name)
    assert _ICANN.registered_domain(name) == _expected(_LIB_ICANN, name)
    sub, rd = split_name(name)
    assert (f"{sub}.{rd}" if sub else rd) == name.lower().rstrip(".")


# ---------------------------------------------------------------------------------------------
# Label statistics
# ---------------------------------------------------------------------------------------------


def _naive_entropy(text: str) -> float:
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values()) if n else 0.0


@pytest.mark.parametrize(
    ("text", "bits"),
    [
        ("", 0.0),
        ("a", 0.0),
        ("aaaa", 0.0),
        ("ab", 1.0),
        ("aabb", 1.0),
        ("abcd", 2.0),
        ("a.b.c.d", 2.0),  # dots are separators, not payload
        ("0123456789abcdef", 4.0),
        ("abcdefghijklmnopqrstuvwxyz234567", 5.0),
        ("aab", -(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3)),
    ],
)
def test_label_entropy_known_values(text: str, bits: float) -> None:
    assert label_entropy(text) == pytest.approx(bits, abs=1e-12)


@given(st.text(max_size=300))
def test_label_entropy_matches_definition(text: str) -> None:
    stripped = text.replace(".", "")
    h = label_entropy(text)
    assert h == pytest.approx(_naive_entropy(stripped), abs=1e-9)
    assert 0.0 <= h <= math.log2(max(1, len(set(stripped)))) + 1e-9


def test_label_shape_functions() -> None:
    assert label_count("") == 0
    assert label_count("a") == 1
    assert label_count("a.bb.ccc") == 3
    assert longest_label("") == 0
    assert longest_label("a.bbbb.cc") == 4
    assert longest_label("abc") == 3
    assert digit_ratio("") == 0.0
    assert digit_ratio("a1.b2") == 0.5
    assert hex_ratio("deadbeefzz") == 0.8
    assert hex_ratio("DEAD.beef") == 1.0
    assert is_hex("0f3a9c.77")
    assert not is_hex("")
    assert not is_hex("0f3g")
    assert not is_hex("abc", min_length=4)


def test_char_class_counts() -> None:
    assert char_class_counts("aB3-_.xY9ü") == (2, 2, 2, 1, 1, 1)
    assert char_class_counts("") == (0, 0, 0, 0, 0, 0)


@given(st.text(max_size=100))
def test_label_stats_agree_with_the_single_functions(text: str) -> None:
    stats = label_stats(text)
    lower, upper, digits, hyphens, underscores, other = char_class_counts(text)
    assert (stats.lower, stats.upper, stats.digits) == (lower, upper, digits)
    assert (stats.hyphens, stats.underscores, stats.other) == (hyphens, underscores, other)
    assert lower + upper + digits + hyphens + underscores + other == len(text) - text.count(".")
    assert stats.length == len(text)
    assert stats.labels == label_count(text)
    assert stats.longest_label == longest_label(text)
    assert stats.entropy == label_entropy(text)
    assert stats.digit_ratio == pytest.approx(digit_ratio(text))
    assert stats.hex_ratio == hex_ratio(text)


# ---------------------------------------------------------------------------------------------
# DistinctCounter
# ---------------------------------------------------------------------------------------------

_events = st.lists(
    st.tuples(
        st.sampled_from(["k1", "k2", "k3"]),
        st.sampled_from(["a", "b", "c", "d", "e", "f"]),
        st.integers(min_value=0, max_value=40),
    ),
    max_size=80,
)


@given(_events, st.integers(min_value=1, max_value=100))
def test_distinct_counter_matches_brute_force(
    events: list[tuple[str, str, int]], window: int
) -> None:
    counter: DistinctCounter[str] = DistinctCounter(window_ns=window)
    history: list[tuple[str, str, int]] = []
    ts = 0
    for key, value, step in events:
        ts += step
        history.append((key, value, ts))
        expected = len({v for k, v, t in history if k == key and ts - window < t <= ts})
        assert counter.add(key, value, ts) == expected
        for other in ("k1", "k2", "k3"):
            want = len({v for k, v, t in history if k == other and ts - window < t <= ts})
            assert counter.count(other, ts) == want


def test_distinct_counter_saturates_at_cap_and_evicts_keys() -> None:
    counter: DistinctCounter[str] = DistinctCounter(
        window_ns=10 * S, max_values_per_key=5, max_keys=2
    )
    for i in range(20):
        assert counter.add("a", f"v{i}", i) == min(i + 1, 5)
    counter.add("b", "x", 21)
    counter.add("c", "x", 22)  # "a" is the least recently updated key
    assert len(counter) == 2
    assert counter.count("a", 22) == 0
    assert counter.count("c", 22) == 1


def test_distinct_counter_late_event_is_clamped() -> None:
    counter: DistinctCounter[str] = DistinctCounter(window_ns=10)
    counter.add("k", "a", 100)
    assert counter.add("k", "b", 50) == 2  # treated as t=100, not as an expired sighting
    assert counter.add("k", "c", 109) == 3
    assert counter.add("k", "c", 110) == 1


@pytest.mark.parametrize("arg", ["window_ns", "max_values_per_key", "max_keys"])
@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_distinct_counter_rejects_bad_arguments(arg: str, bad: object) -> None:
    with pytest.raises(InvalidParameterError):
        DistinctCounter(**{arg: bad})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# InformationCounter
# ---------------------------------------------------------------------------------------------

_names = st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567.", max_size=60), max_size=60)


def _stream_size(data: bytes) -> int:
    """Size of the complete raw-deflate stream with the counter's parameters."""
    comp = zlib.compressobj(6, zlib.DEFLATED, -9, 3)
    return len(comp.compress(data) + comp.flush())


@given(_names, st.integers(min_value=0, max_value=512))
@settings(deadline=None)
def test_information_is_monotone_and_bounded_within_a_window(names: list[str], lazy: int) -> None:
    counter: InformationCounter[str] = InformationCounter(
        window_ns=24 * 3600 * S, buckets=24, lazy_bytes=lazy
    )
    previous = 0
    fed = b""
    counted: set[str] = set()
    for i, name in enumerate(names):
        value = counter.add("k", name, i * 60 * S)  # all within the first hour bucket's day
        if name not in counted:
            counted.add(name)
            fed += name.encode() + b"\n"
        assert value >= previous  # monotone
        previous = value
        # bounded above by the complete deflate stream of what was counted: the value is the
        # part of that stream already emitted
        assert value <= _stream_size(fed)
    assert counter.total("k", len(names) * 60 * S) == previous


def test_information_tracks_deflate_size_for_encoded_names() -> None:
    import random

    rng = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    counter: InformationCounter[tuple[str, str]] = InformationCounter()
    fed = b""
    value = 0
    for i in range(2_000):
        name = "".join(rng.choice(alphabet) for _ in range(40)) + ".x"
        fed += name.encode() + b"\n"
        value = counter.add(("10.0.0.5", "t.example"), name, i * S)
    full = _stream_size(fed)
    # lower bound with a lag of at most one held deflate block (see the class docstring)
    assert full - 1_500 <= value <= full
    # Base32 carries 5 bits per character: deflate gets close to that, well below raw size
    assert value < 0.75 * len(fed)


def test_information_ignores_repeats_and_expires() -> None:
    window = 24 * 3600 * S
    counter: InformationCounter[str] = InformationCounter(window_ns=window, lazy_bytes=0)
    for i in range(300):
        counter.add("k", f"{i:08x}deadbeefcafe{i * 7919:06x}", i * S)
    value = counter.total("k", 300 * S)
    assert value > 0
    for i in range(300):  # the same names again, within the window: no new information
        assert counter.add("k", f"{i:08x}deadbeefcafe{i * 7919:06x}", (300 + i) * S) == value
    assert counter.total("k", window + 3600 * S + 600 * S) == 0
    # a key idle for a whole window starts afresh (no old held-back block is counted)
    assert counter.add("k", "fresh", 3 * window) <= len("fresh\n") + 8


def test_information_memory_bounds() -> None:
    counter: InformationCounter[int] = InformationCounter(max_names_per_key=50, max_keys=3)
    for i in range(500):
        counter.add(1, f"name{i}", i)
    assert len(counter._keys[1].counted) == 50
    for key in (2, 3, 4):
        counter.add(key, "x", 1_000)
    assert len(counter) == 3
    assert counter.total(1, 1_000) == 0  # evicted, least recently updated


def test_information_counter_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidParameterError):
        InformationCounter(window_ns=0)
    with pytest.raises(InvalidParameterError):
        InformationCounter(window_ns=100, buckets=7)
    with pytest.raises(InvalidParameterError):
        InformationCounter(lazy_bytes=-1)
    with pytest.raises(InvalidParameterError):
        InformationCounter(max_keys=0)
