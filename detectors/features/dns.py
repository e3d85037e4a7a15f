"""DNS name features: registered domains, label statistics and windowed per-key aggregates.

Responsibility: turn a query name into the quantities the DNS-tunnelling logic reasons about,
cheaply enough to run on every query in a streaming detector.

Registered domain (eTLD+1)
    Computed offline from the Public Suffix List (PSL) file bundled with the ``publicsuffixlist``
    package (its version is :data:`PSL_VERSION`); nothing is downloaded. The list is parsed once
    and matched right to left by :class:`PublicSuffixMatcher`, which is checked against both the
    ``publicsuffixlist`` implementation and the PSL's own test vectors in the test suite.

    Decisions, all deliberate:

    * **Private suffixes are used by default** (``github.io``, ``cloudfront.net``,
      ``blogspot.com`` ...), so ``d1abc.cloudfront.net`` is its own registered domain. A private
      suffix marks a boundary between different owners, which is what "per registered domain"
      aggregation is for: with ICANN-only matching every CloudFront distribution would fold into
      one ``cloudfront.net`` key with thousands of hashed-looking subdomains, the CDN false
      positive the analytic notes warn about. ``PublicSuffixMatcher(include_private=False)`` gives
      ICANN-only matching.
    * **Names whose TLD is not in the PSL** (``.example``, ``.test``, ``.local``, ``.internal``,
      ``.lan`` ...) follow the PSL's default rule ``*``: the TLD is the public suffix, so the
      registered domain is the **last two labels** (``a.t.example`` -> ``t.example``).
    * **A name that is itself a public suffix** (``co.uk``, ``github.io``, ``com``) and a
      **single-label name** (``wpad``, ``localhost``) have no registrable part; their registered
      domain is the name itself and their subdomain is empty. This keeps every non-empty name a
      stable, non-empty key instead of lumping them all under ``""``.
    * Output is lower case; one trailing dot (fully qualified form) is ignored; the root ``"."``
      and ``""`` give ``""``. Empty labels (``a..b.com``, a leading dot) are not valid DNS names;
      they are dropped rather than raising, so a malformed query still gets a stable key.
    * IDN: rules are held both as Unicode and as punycode (``xn--``), so either form of a name
      matches. Names are not converted between the two forms: a detector sees what the sensor
      logged.

Label statistics
    Computed on the *subdomain* (the part left of the registered domain) by plain ``str`` methods
    and translation tables, no regular expressions. Entropy is Shannon entropy in bits per
    character over the subdomain's characters with the dots removed (dots are separators the
    encoder must insert, not payload).

Windowed aggregates
    :class:`DistinctCounter` (exact distinct subdomains per key in a sliding window) and
    :class:`InformationCounter` (a deflate-based lower bound on the information a key's unique
    query names carry in a sliding window, after Paxson et al., USENIX Security 2013). Both bound
    their memory per key and their number of keys, and document what they drop.

All times are integer nanoseconds (``ts_ns``).
"""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Generic, TypeVar

from detectors.features.stats import CLOG2, keyed_state
from harness.errors import InvalidParameterError

__all__ = [
    "PSL_VERSION",
    "DistinctCounter",
    "InformationCounter",
    "LabelStats",
    "PublicSuffixMatcher",
    "char_class_counts",
    "default_matcher",
    "digit_ratio",
    "hex_ratio",
    "is_hex",
    "label_count",
    "label_entropy",
    "label_stats",
    "longest_label",
    "registered_domain",
    "split_name",
    "subdomain",
]

K = TypeVar("K", bound=Hashable)

_NS_PER_HOUR = 3_600 * 1_000_000_000
_NS_PER_DAY = 24 * _NS_PER_HOUR


# --------------------------------------------------------------------------------------------
# Public Suffix List
# --------------------------------------------------------------------------------------------


def _bundled_psl_text() -> str:
    # The file inside the installed publicsuffixlist package: read as a resource, so no network
    # and no dependence on that package's private parser state.
    return (
        resources.files("publicsuffixlist")
        .joinpath("public_suffix_list.dat")
        .read_text(encoding="utf-8")
    )


def _psl_version(text: str) -> str:
    for line in text.splitlines()[:40]:
        if line.startswith("// VERSION:"):
            return line.removeprefix("// VERSION:").strip()
    return "unknown"


def _idna_forms(rule: str) -> Iterable[str]:
    yield rule
    if not rule.isascii():
        try:
            yield rule.encode("idna").decode("ascii")
        except UnicodeError:
            # Python's codec implements IDNA 2003; a rule it cannot encode (none in the bundled
            # list) is kept in its Unicode form only rather than failing the whole load.
            return


_EXACT = 1
_WILDCARD = 2
_EXCEPTION = 4
_TAIL = 8


class PublicSuffixMatcher:
    """Splits names into (subdomain, registered domain) with the Public Suffix List.

    Matching walks the name's labels from the right and stops as soon as the suffix seen so far
    is not the tail of any rule, so a miss costs a few dict look-ups however deep the name is
    (tunnelled names are deep and almost all unique, so they are exactly the cache misses).
    Results are memoised in a bounded LRU keyed by the name as given.

    ``include_private`` selects the PSL's private section too (the default; see the module
    docstring). ``source`` replaces the bundled list with PSL-format text (tests use it).
    """

    __slots__ = ("_rules", "_split", "rule_count", "version")

    def __init__(
        self,
        *,
        include_private: bool = True,
        cache_size: int = 65_536,
        source: str | None = None,
    ) -> None:
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise InvalidParameterError("cache_size", cache_size, "an integer >= 0")
        text = _bundled_psl_text() if source is None else source
        self.version: str = _psl_version(text)
        exact: set[str] = set()
        wildcards: set[str] = set()
        exceptions: set[str] = set()
        in_private = False
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("//"):
                if "===BEGIN PRIVATE DOMAINS===" in line:
                    in_private = True
                elif "===END PRIVATE DOMAINS===" in line:
                    in_private = False
                continue
            if not line or (in_private and not include_private):
                continue
            rule = line.split()[0].lower()
            if rule.startswith("!"):
                exceptions.update(_idna_forms(rule[1:]))
            elif rule.startswith("*."):
                wildcards.update(_idna_forms(rule[2:]))
            else:
                exact.update(_idna_forms(rule))
        # Every proper tail of every rule: while the suffix read so far is one of these, a longer
        # rule may still match; once it is not, the walk can stop.
        tails: set[str] = set()
        for rule in (*exact, *exceptions, *(f"*.{w}" for w in wildcards)):
            dot = rule.find(".")
            while dot >= 0:
                tails.add(rule[dot + 1 :])
                dot = rule.find(".", dot + 1)
        # One dict look-up per label instead of four set look-ups: suffix -> bit flags.
        rules: dict[str, int] = {}
        for group, flag in (
            (exact, _EXACT),
            (wildcards, _WILDCARD),
            (exceptions, _EXCEPTION),
            (tails, _TAIL),
        ):
            for suffix in group:
                rules[suffix] = rules.get(suffix, 0) | flag
        self._rules = rules
        #: Rule strings held, punycode forms of IDN rules included.
        self.rule_count = len(exact) + len(wildcards) + len(exceptions)
        self._split = lru_cache(maxsize=cache_size)(self._split_uncached)

    def split(self, name: str) -> tuple[str, str]:
        """``(subdomain, registered_domain)`` of ``name``, both lower case (see module doc)."""
        return self._split(name)

    def registered_domain(self, name: str) -> str:
        """The eTLD+1 of ``name``, or the name itself when it has no registrable part."""
        return self._split(name)[1]

    def subdomain(self, name: str) -> str:
        """The part of ``name`` left of its registered domain, without the joining dot."""
        return self._split(name)[0]

    def cache_clear(self) -> None:
        """Forget memoised results (benchmarks use it to time the uncached path)."""
        self._split.cache_clear()

    def _split_uncached(self, name: str) -> tuple[str, str]:
        norm = name.lower()
        if norm[-1:] == ".":
            norm = norm[:-1]
        if not norm:
            return ("", "")
        if norm[0] == "." or norm[-1] == "." or ".." in norm:
            norm = ".".join(label for label in norm.split(".") if label)
            if not norm:
                return ("", "")
        rules = self._rules
        # starts[d - 1] is the index where the suffix of d labels begins.
        starts: list[int] = []
        public = 1  # the PSL's implicit default rule "*": an unknown TLD is a public suffix
        end = len(norm)
        while True:
            dot = norm.rfind(".", 0, end)
            starts.append(dot + 1)
            flags = rules.get(norm[dot + 1 :], 0)
            if not flags:
                break
            depth = len(starts)
            if flags & _EXCEPTION:
                # "!city.kobe.jp": the exception's parent is the public suffix.
                public = depth - 1
                break
            if flags & _EXACT and depth > public:
                public = depth
            if flags & _WILDCARD:
                # "*.ck" makes "ck" public and any "x.ck" public; an exception one label further
                # left is checked on the next iteration.
                public = max(public, depth + 1 if dot >= 0 else depth)
            if dot < 0 or not flags & _TAIL:
                break
            end = dot
        want = public + 1
        while len(starts) < want and starts[-1] > 0:
            starts.append(norm.rfind(".", 0, starts[-1] - 1) + 1)
        if len(starts) < want:
            # The whole name is a public suffix or a single label: no registrable part.
            return ("", norm)
        cut = starts[want - 1]
        return (norm[: cut - 1] if cut else "", norm[cut:])


_DEFAULT_MATCHER = PublicSuffixMatcher()
#: Version line of the Public Suffix List in use (from the bundled file).
PSL_VERSION: str = _DEFAULT_MATCHER.version


def default_matcher() -> PublicSuffixMatcher:
    """The shared matcher behind the module-level functions (private suffixes included)."""
    return _DEFAULT_MATCHER


# Bound methods looked up once: these are called per event.
#: ``(subdomain, registered_domain)`` of a name with the bundled list: the memoised function
#: itself, so a cache hit is one C-level call (see :meth:`PublicSuffixMatcher.split`).
split_name: Callable[[str], tuple[str, str]] = _DEFAULT_MATCHER._split
registered_domain = _DEFAULT_MATCHER.registered_domain
subdomain = _DEFAULT_MATCHER.subdomain


# --------------------------------------------------------------------------------------------
# Label statistics
# --------------------------------------------------------------------------------------------

_HEX_CHARS = "0123456789abcdefABCDEF"
# Class map for char_class_counts: one translate, then one count per class.
_CLASS_TABLE = str.maketrans(
    {
        **dict.fromkeys("abcdefghijklmnopqrstuvwxyz", "a"),
        **dict.fromkeys("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "A"),
        **dict.fromkeys("0123456789", "0"),
    }
)
_DROP_DIGITS = str.maketrans("", "", "0123456789")
_DROP_HEX = str.maketrans("", "", _HEX_CHARS)


@dataclass(frozen=True, slots=True, kw_only=True)
class LabelStats:
    """Lexical statistics of a subdomain (or any dotted name); lengths in characters."""

    #: Characters including dots.
    length: int
    #: Number of dot-separated labels (0 for the empty string).
    labels: int
    #: Length of the longest label (DNS allows 63).
    longest_label: int
    #: Shannon entropy in bits per character of the characters other than dots.
    entropy: float
    #: Digits / characters other than dots (0.0 when there are none).
    digit_ratio: float
    #: Hexadecimal digits / characters other than dots (0.0 when there are none).
    hex_ratio: float
    lower: int
    upper: int
    digits: int
    hyphens: int
    underscores: int
    #: Anything else: non-ASCII, other punctuation (dots are not counted anywhere).
    other: int


def label_count(name: str) -> int:
    """Number of dot-separated labels; 0 for ``""``."""
    return name.count(".") + 1 if name else 0


def longest_label(name: str) -> int:
    """Length of the longest dot-separated label; 0 for ``""``."""
    if "." not in name:
        return len(name)
    return max(map(len, name.split(".")))


def label_entropy(name: str) -> float:
    """Shannon entropy (bits per character) of ``name`` with dots removed; 0.0 when empty."""
    text = name.replace(".", "")
    n = len(text)
    if n < 2:
        return 0.0
    # H = log2(n) - (1/n) * sum(c log2 c), counts by str.count per distinct character (C speed;
    # labels have at most a few dozen distinct characters) and c log2 c from a table.
    clog = CLOG2
    if n < len(clog):
        acc = sum(map(clog.__getitem__, map(text.count, set(text))))
    else:
        acc = sum(c * math.log2(c) for c in map(text.count, set(text)) if c > 1)
    return max(0.0, math.log2(n) - acc / n)


def digit_ratio(name: str) -> float:
    """Fraction of the non-dot characters that are ASCII digits; 0.0 when there are none."""
    n = len(name) - name.count(".")
    if n <= 0:
        return 0.0
    return (len(name) - len(name.translate(_DROP_DIGITS))) / n


def hex_ratio(name: str) -> float:
    """Fraction of the non-dot characters that are hexadecimal digits (either case)."""
    n = len(name) - name.count(".")
    if n <= 0:
        return 0.0
    return (len(name) - len(name.translate(_DROP_HEX))) / n


def is_hex(name: str, *, min_length: int = 1) -> bool:
    """True when every non-dot character is a hex digit and there are at least ``min_length``.

    All-hex labels of 16+ characters are typical of dnscat2 and DET but also of AV reputation
    look-ups and CDN names, so this is a feature, not a verdict.
    """
    n = len(name) - name.count(".")
    return n >= min_length and n > 0 and not name.strip(_HEX_CHARS + ".")


def char_class_counts(name: str) -> tuple[int, int, int, int, int, int]:
    """``(lower, upper, digits, hyphens, underscores, other)`` over the non-dot characters.

    Call it on the query as logged when case matters (Base64-style encodings use both cases;
    :func:`subdomain` returns lower case).
    """
    mapped = name.translate(_CLASS_TABLE)
    lower = mapped.count("a")
    upper = mapped.count("A")
    digits = mapped.count("0")
    hyphens = mapped.count("-")
    underscores = mapped.count("_")
    other = len(name) - name.count(".") - lower - upper - digits - hyphens - underscores
    return (lower, upper, digits, hyphens, underscores, other)


def label_stats(name: str) -> LabelStats:
    """All lexical statistics of ``name`` at once (one allocation; use the functions in loops
    that need only one or two of them)."""
    lower, upper, digits, hyphens, underscores, other = char_class_counts(name)
    n = len(name) - name.count(".")
    return LabelStats(
        length=len(name),
        labels=label_count(name),
        longest_label=longest_label(name),
        entropy=label_entropy(name),
        digit_ratio=digits / n if n > 0 else 0.0,
        hex_ratio=hex_ratio(name),
        lower=lower,
        upper=upper,
        digits=digits,
        hyphens=hyphens,
        underscores=underscores,
        other=other,
    )


# --------------------------------------------------------------------------------------------
# Windowed per-key aggregates
# --------------------------------------------------------------------------------------------


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidParameterError(name, value, "an integer > 0")
    return value


class DistinctCounter(Generic[K]):
    """Exact count of distinct values per key within a sliding time window.

    ``add(key, value, ts_ns)`` returns the number of distinct values seen for ``key`` in the
    half-open window ``(ts_ns - window_ns, ts_ns]``, the current value included. Typical use:
    key = (client, registered domain), value = subdomain; RITA starts flagging at 100 per
    domain, Zeek's AnomalousDNS at more than 8 per hour.

    Memory bounds: at most ``max_values_per_key`` values are remembered per key; past that the
    least recently seen value is forgotten, so the count **saturates** at the cap (exact below
    it; set the cap above any threshold you use). At most ``max_keys`` keys are kept; the least
    recently updated key is dropped first. Per key state is one insertion-ordered dict, kept in
    last-seen order so expiry only ever looks at its front.

    Timestamps should be non-decreasing per key; an earlier one is treated as the key's latest
    time (a late event cannot make older values expire or un-expire).
    """

    __slots__ = ("_keys", "_max_keys", "_max_values", "_window")

    def __init__(
        self,
        *,
        window_ns: int = _NS_PER_HOUR,
        max_values_per_key: int = 10_000,
        max_keys: int = 100_000,
    ) -> None:
        self._window = _positive_int("window_ns", window_ns)
        self._max_values = _positive_int("max_values_per_key", max_values_per_key)
        self._max_keys = _positive_int("max_keys", max_keys)
        self._keys: OrderedDict[K, _DistinctState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: K, value: str, ts_ns: int) -> int:
        """Record ``value`` for ``key`` at ``ts_ns``; return the distinct count in the window."""
        state, ts_ns = keyed_state(self._keys, key, ts_ns, _DistinctState, self._max_keys)
        seen = state.seen
        if value in seen:
            seen.move_to_end(value)
        seen[value] = ts_ns
        horizon = ts_ns - self._window
        # Values are in last-seen order, so expired ones are all at the front; the value just
        # added is newer than the horizon, so the loop stops before the dict is empty.
        while next(iter(seen.values())) <= horizon:
            seen.popitem(last=False)
        if len(seen) > self._max_values:
            seen.popitem(last=False)
        return len(seen)

    def count(self, key: K, now_ns: int) -> int:
        """Distinct values for ``key`` in ``(now_ns - window_ns, now_ns]`` (0 for unknown keys).

        Read-only: expired values are skipped, not removed. O(values of the key).
        """
        state = self._keys.get(key)
        if state is None:
            return 0
        horizon = now_ns - self._window
        return sum(1 for ts in state.seen.values() if horizon < ts <= now_ns)


class _DistinctState:
    """Mutable per-key state of :class:`DistinctCounter` (slotted: one per key)."""

    __slots__ = ("latest", "seen")

    def __init__(self, ts_ns: int) -> None:
        self.latest = ts_ns
        # value -> last-seen ts, in last-seen order. An OrderedDict, not a dict: popping the
        # front of a plain dict leaves holes that every later front look-up scans (O(n)).
        self.seen: OrderedDict[str, int] = OrderedDict()


class InformationCounter(Generic[K]):
    """Compressed information in a key's unique query names over a sliding window, in bytes.

    After Paxson et al., "Practical Comprehensive Bounds on Surreptitious Communication Over
    DNS" (USENIX Security 2013), who bound what a client can move to one registered domain by
    compressing its query names per (client, domain) per day, with a 4 kB/day budget. Their
    figure is computed offline over a day of queries; this is a streaming approximation.
    What is computed, exactly:

    1. ``add(key, data, ts_ns)``: ``data`` (normally the subdomain) is counted only if the same
       string was not already counted for ``key`` within the last ``window_ns`` (repeats carry
       no new information; a name repeated after a full window counts again).
    2. A counted string, plus a newline separator, is appended to the key's byte stream. The
       first ``lazy_bytes`` bytes of a key's stream are buffered raw; when the buffer exceeds
       that, a raw-deflate compressor (zlib level 6, 512-byte LZ77 window, 512-symbol blocks)
       is created for the key and fed the buffer and everything after it. Most benign keys never
       get there, so they never pay for a compressor (about 12 kB).
    3. The value is the number of **compressed bytes the compressor has emitted**, attributed
       to the time bucket of the add that made deflate emit them, summed over the buckets
       inside the window. The window is ``buckets`` buckets of ``window_ns / buckets``: the sum
       covers between ``window_ns - bucket`` and ``window_ns`` of history.
    4. A key that was fed nothing for a whole window drops its compressor and raw buffer, so
       data held back by deflate or the buffer is never counted after it has left the window.

    Consequences: the value **lags** the deflate size of the window's unique names by at most
    ``lazy_bytes`` of raw input plus one deflate block still held by the compressor (512
    symbols; about 330 bytes of output for random Base32), and it can include at most one such
    block emitted late for data slightly older than the window. Within a window it never
    decreases as data is added (monotone), and it decreases only as buckets expire. The
    alternative, a sync flush per name, removes the lag but costs about 14 us per add and, as
    every flush ends a deflate block, gave 1.11 output bytes per input byte on random Base32
    names where one continuous stream gives 0.68, so it is not used: the lag is small next to
    a 4 kB budget. Query types and timing (which Paxson et
    al. also count) are not included.

    Memory bounds: at most ``max_names_per_key`` counted strings are remembered for the
    de-duplication of step 1 (oldest forgotten first; a forgotten string that recurs is counted
    again, which can only over-estimate); at most ``max_keys`` keys, least recently updated
    dropped first. A key costs a few hundred bytes plus its remembered strings, and about 12 kB
    more once it has a compressor.
    """

    __slots__ = ("_bucket", "_buckets", "_keys", "_lazy", "_max_keys", "_max_names", "_window")

    def __init__(
        self,
        *,
        window_ns: int = _NS_PER_DAY,
        buckets: int = 24,
        lazy_bytes: int = 256,
        max_names_per_key: int = 2_048,
        max_keys: int = 100_000,
    ) -> None:
        self._window = _positive_int("window_ns", window_ns)
        self._buckets = _positive_int("buckets", buckets)
        if window_ns % buckets:
            raise InvalidParameterError("buckets", buckets, f"a divisor of window_ns ({window_ns})")
        self._bucket = window_ns // buckets
        if isinstance(lazy_bytes, bool) or not isinstance(lazy_bytes, int) or lazy_bytes < 0:
            raise InvalidParameterError("lazy_bytes", lazy_bytes, "an integer >= 0")
        self._lazy = lazy_bytes
        self._max_names = _positive_int("max_names_per_key", max_names_per_key)
        self._max_keys = _positive_int("max_keys", max_keys)
        self._keys: OrderedDict[K, _InfoState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: K, data: str, ts_ns: int) -> int:
        """Count ``data`` for ``key`` at ``ts_ns``; return the key's value (bytes) in the window."""
        state, ts_ns = keyed_state(self._keys, key, ts_ns, _InfoState, self._max_keys)
        bucket = ts_ns // self._bucket
        self._expire(state, bucket)
        counted = state.counted
        last = counted.get(data)
        if last is not None:
            if ts_ns - last < self._window:
                return state.total
            counted.move_to_end(data)
        counted[data] = ts_ns
        horizon = ts_ns - self._window
        # Kept in counting order: expired strings are at the front.
        while next(iter(counted.values())) <= horizon:
            counted.popitem(last=False)
        if len(counted) > self._max_names:
            counted.popitem(last=False)
        payload = data.encode("utf-8", "surrogateescape") + b"\n"
        if ts_ns - state.fed_ns >= self._window:
            # Nothing fed for a whole window: whatever deflate or the raw buffer still holds is
            # older than the window and must never be counted; this also frees quiet keys.
            state.compressor = None
            state.pending = bytearray()
        state.fed_ns = ts_ns
        comp = state.compressor
        if comp is None:
            state.pending += payload
            if len(state.pending) <= self._lazy:
                return state.total
            # Small window and block size keep the per-key state near 12 kB (see class doc).
            comp = zlib.compressobj(6, zlib.DEFLATED, -9, 3)
            state.compressor = comp
            payload = bytes(state.pending)
            state.pending = bytearray()
        emitted = len(comp.compress(payload))
        if emitted:
            buckets = state.buckets
            if buckets and buckets[-1][0] == bucket:
                buckets[-1][1] += emitted
            else:
                buckets.append([bucket, emitted])
            state.total += emitted
        return state.total

    def total(self, key: K, now_ns: int) -> int:
        """The key's value (bytes) for the window ending at ``now_ns``; 0 for unknown keys."""
        state = self._keys.get(key)
        if state is None:
            return 0
        first_live = now_ns // self._bucket - self._buckets + 1
        return sum(b for idx, b in state.buckets if idx >= first_live)

    def _expire(self, state: _InfoState, bucket: int) -> None:
        first_live = bucket - self._buckets + 1
        buckets = state.buckets
        while buckets and buckets[0][0] < first_live:
            state.total -= buckets.popleft()[1]


class _InfoState:
    """Mutable per-key state of :class:`InformationCounter` (slotted: one per key)."""

    __slots__ = ("buckets", "compressor", "counted", "fed_ns", "latest", "pending", "total")

    def __init__(self, ts_ns: int) -> None:
        self.latest = ts_ns
        self.fed_ns = ts_ns
        self.total = 0
        self.buckets: deque[list[int]] = deque()
        # string -> ts it was counted, in counting order (OrderedDict: O(1) pops at the front)
        self.counted: OrderedDict[str, int] = OrderedDict()
        self.pending = bytearray()
        self.compressor: zlib._Compress | None = None
