"""Character-bigram likelihood of DNS labels under a model of ordinary English words.

Responsibility: score how "word-like" a label is, in the manner of Mark Baggett's freq.py: a
first-order Markov model over characters, trained on benign text, gives each label the average
log-probability of its character transitions. Encoded payloads (hex, Base32, Base64) are
sequences English almost never produces, so they score low.

Model
    Symbols are ``a``-``z``, ``0``-``9``, ``-``, ``_``, the end marker ``$`` and one shared
    symbol for anything else (after lower-casing). A label is scored as ``^label$``, so the
    first and last characters count too and one-character labels are defined. For each pair
    ``(a, b)``, ``P(b | a) = (count(a, b) + alpha) / (count(a, .) + alpha * V)`` with additive
    smoothing (``alpha = 1``, ``V = 40`` possible next symbols), and
    ``score = mean over pairs of ln P(b | a)`` in **nats per bigram** (always < 0; higher means
    more word-like). A dotted name is scored label by label, pairs pooled; the empty string
    scores 0.0, "no evidence".

Default table
    :meth:`BigramModel.load_default` loads ``data/bigrams_en.json``: counts over the 29 152
    purely alphabetic words among wordfreq's 30 000 most frequent English words, each counted
    once. Provenance, licence (CC BY-SA 4.0, derived from wordfreq's data) and the exact
    recipe are in ``data/build_bigrams.py``. Digits, ``-`` and ``_`` never occur in the
    training words, so every transition into them gets only the smoothing mass: digits are
    strongly "unlikely" to this model, which is a reason hex scores low and also why benign
    names with digits (``s3``, ``office365``, CDN node names) score lower than their letters
    alone would. Combine with other features rather than thresholding this alone.

Typical values with the default table (nats per bigram; measured on this table, with 2 000
random strings per row, 5th to 95th percentile in brackets):

    ===============================  ==================================================
    English-like host labels         ``mail`` -2.57, ``login`` -2.59, ``windowsupdate``
                                     -2.87, ``google`` -2.96, ``outlook`` -3.08,
                                     ``update`` -3.12, ``download`` -3.14
    short abbreviations              ``cdn`` -3.95, ``www`` -4.12 (consonant runs)
    with digits                      ``office365`` -3.84, ``s3`` -5.19
    random Base32, 16 characters     mean -5.06 [-5.74, -4.30]
    random Base32, 63 characters     mean -5.18 [-5.53, -4.80]
    random hex, 16 characters        mean -5.07 [-5.69, -4.43]
    random hex, 63 characters        mean -5.03 [-5.34, -4.71]
    ===============================  ==================================================

Longer random strings concentrate around their mean, so the score separates encoded payloads
best in long labels; short labels (under about 8 characters) overlap a lot either way.

Per call the score is one ``str.lower``, one concatenation and a pass of C-level ``map`` over
a precomputed pair table: no regular expression, no per-character Python loop.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from operator import add

from harness.errors import InvalidParameterError

__all__ = ["ALPHABET", "BigramModel"]

#: Characters the model distinguishes (after lower-casing); anything else is one "other" symbol.
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-_"
# Markers as written in the JSON table, and the control characters used internally, which no
# DNS label contains (so a "^" or "$" inside a label is scored as "other", not as a marker).
_JSON_START = "^"
_JSON_END = "$"
_START = "\x02"
_END = "\x03"
_NEXT_SYMBOLS = len(ALPHABET) + 2  # every ALPHABET character, the end marker, "other"
_DEFAULT_RESOURCE = "bigrams_en.json"


class _PairTable(dict[str, float]):
    """Pair -> log-probability; pairs with a character outside the alphabet are computed on
    demand by ``__missing__`` (so the common path stays a C-level ``dict`` look-up)."""

    __slots__ = ("_other_from", "_other_pair")

    def __init__(self, table: dict[str, float], other_from: dict[str, float], other: float):
        super().__init__(table)
        # ln P(other | a) for each known first symbol a, and for a pair starting with "other".
        self._other_from = other_from
        self._other_pair = other

    def __missing__(self, pair: str) -> float:
        first = pair[0]
        if first in self._other_from:
            return self._other_from[first]
        # The first character is unknown: a symbol with no counts has a uniform next symbol.
        return self._other_pair


class BigramModel:
    """Character-bigram log-likelihood model; see the module docstring for the exact formula."""

    __slots__ = ("_cached", "_table", "provenance")

    def __init__(
        self,
        counts: Mapping[str, int],
        *,
        alpha: float = 1.0,
        cache_size: int = 65_536,
        provenance: Mapping[str, object] | None = None,
    ) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not alpha > 0:
            raise InvalidParameterError("alpha", alpha, "a number > 0")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise InvalidParameterError("cache_size", cache_size, "an integer >= 0")
        firsts = _START + ALPHABET
        seconds = ALPHABET + _END
        internal: dict[str, int] = {}
        for pair, n in counts.items():
            key = pair.replace(_JSON_START, _START).replace(_JSON_END, _END)
            if (
                len(key) != 2
                or key[0] not in firsts
                or key[1] not in seconds
                or isinstance(n, bool)
                or not isinstance(n, int)
                or n < 0
            ):
                raise InvalidParameterError(
                    f"bigram count {pair!r}",
                    n,
                    f"a count >= 0 for a pair of [^{ALPHABET}] then [{ALPHABET}$]",
                )
            internal[key] = n
        totals: dict[str, int] = dict.fromkeys(firsts, 0)
        for key, n in internal.items():
            totals[key[0]] += n
        table: dict[str, float] = {}
        other_from: dict[str, float] = {}
        for a in firsts:
            denominator = totals[a] + alpha * _NEXT_SYMBOLS
            for b in seconds:
                table[a + b] = math.log((internal.get(a + b, 0) + alpha) / denominator)
            other_from[a] = math.log(alpha / denominator)
        self._table = _PairTable(table, other_from, -math.log(_NEXT_SYMBOLS))
        self.provenance: dict[str, object] = dict(provenance or {})
        # Benign labels (www, mail, cdn names) recur constantly; encoded ones almost never do,
        # so a bounded LRU pays for itself on the former and costs ~0.1 us on the latter.
        self._cached = lru_cache(maxsize=cache_size)(self._score)

    @classmethod
    def from_json(cls, text: str, *, alpha: float = 1.0, cache_size: int = 65_536) -> BigramModel:
        """A model from a JSON document ``{"counts": {pair: n}, "provenance": {...}}``."""
        doc = json.loads(text)
        if not isinstance(doc, dict) or not isinstance(doc.get("counts"), dict):
            raise InvalidParameterError(
                "bigram table", type(doc).__name__, 'an object with "counts"'
            )
        provenance = doc.get("provenance")
        return cls(
            doc["counts"],
            alpha=alpha,
            cache_size=cache_size,
            provenance=provenance if isinstance(provenance, dict) else None,
        )

    @staticmethod
    @lru_cache(maxsize=1)
    def load_default() -> BigramModel:
        """The shipped English model (loaded once per process, then shared)."""
        text = (
            resources.files("detectors.features")
            .joinpath("data", _DEFAULT_RESOURCE)
            .read_text(encoding="utf-8")
        )
        return BigramModel.from_json(text)

    def score(self, label: str) -> float:
        """Mean ln-probability per bigram of ``label`` (nats; higher = more word-like).

        Case-insensitive. Dots separate labels, each scored with its own start/end markers and
        all pairs pooled. ``""`` scores 0.0. Memoised in a bounded LRU (``cache_size``).
        """
        return self._cached(label)

    def _score(self, label: str) -> float:
        if not label:
            return 0.0
        lookup = self._table.__getitem__
        if "." not in label:
            s = _START + label.lower() + _END
            # map(add, s, s[1:]) yields each adjacent pair as a 2-character string, in C.
            return sum(map(lookup, map(add, s, s[1:]))) / (len(s) - 1)
        total = 0.0
        pairs = 0
        for part in label.lower().split("."):
            if part:
                s = _START + part + _END
                total += sum(map(lookup, map(add, s, s[1:])))
                pairs += len(s) - 1
        return total / pairs if pairs else 0.0

    def pair_log_prob(self, first: str, second: str) -> float:
        """ln P(second | first) for single characters (``^`` = start, ``$`` = end)."""
        if len(first) != 1 or len(second) != 1:
            raise InvalidParameterError("bigram", first + second, "two single characters")
        pair = (first.lower() + second.lower()).replace(_JSON_START, _START)
        return self._table[pair[0] + pair[1].replace(_JSON_END, _END)]
