"""Rebuild ``bigrams_en.json``, the character-bigram counts behind ``BigramModel.load_default``.

Provenance of the shipped table (re-run this script to reproduce it byte for byte)::

    pip install wordfreq==3.1.1
    python detectors/features/data/build_bigrams.py [OUTPUT.json]

Corpus: the English word list of the ``wordfreq`` package (Robyn Speer; code Apache-2.0, data
CC BY-SA 4.0). For English, wordfreq combines seven sources: Wikipedia, subtitles (OPUS
OpenSubtitles 2018, SUBTLEX), news (NewsCrawl 2014, GlobalVoices), Google Books Ngrams 2012, web
text (OSCAR), Twitter and Reddit. It is read offline from the data the package ships.
It is a frequency list of real English text, not of this project's synthetic traffic, so the
model knows nothing about the generators it is evaluated against.

Derivation: the ``TOP_N`` most frequent English words (``wordfreq.top_n_list('en', TOP_N)``,
the "best" = large list), keeping only words made of the letters a-z (drops contractions,
numbers and non-ASCII words). Each kept word counts once (type counting, not weighted by
frequency): host names are built from content words and product names, and frequency weighting
lets a handful of function words ("the", "and") dominate. Every word is wrapped in start and end
markers (``^word$``) and each adjacent character pair counted. On the second-level labels of the
Public Suffix List's private section (real service names held out from training) type counting
over 30 000 words separated real labels from same-length random Base32 with AUC 0.96 and from
hex with AUC 0.99; frequency weighting and 10 000 or 100 000 words were within 0.01 of that.

Only the counts (a few hundred pairs) are shipped, never the word list. The counts are
derived from CC BY-SA 4.0 data and are distributed under the same licence, with the
attribution above.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

TOP_N = 30_000
LETTERS = frozenset("abcdefghijklmnopqrstuvwxyz")
OUT = Path(__file__).with_name("bigrams_en.json")


def main(argv: list[str] | None = None) -> int:
    # Build-time only, not a runtime dependency: the ignore keeps mypy quiet where it is absent.
    import wordfreq  # type: ignore[import-not-found, unused-ignore]

    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else OUT
    words = [w for w in wordfreq.top_n_list("en", TOP_N) if w and set(w) <= LETTERS]
    counts: dict[str, int] = {}
    for word in words:
        s = f"^{word}$"
        for a, b in itertools.pairwise(s):
            counts[a + b] = counts.get(a + b, 0) + 1
    version = getattr(wordfreq, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version("wordfreq")
    doc = {
        "provenance": {
            "source": "wordfreq English word list (top_n_list('en', N), wordlist 'best')",
            "source_package": f"wordfreq {version}",
            "source_licence": "wordfreq data: CC BY-SA 4.0 (sources listed in its README)",
            "licence": "CC BY-SA 4.0 (derived counts), attribution: wordfreq by Robyn Speer",
            "top_n": TOP_N,
            "filter": "words of letters a-z only",
            "weighting": "each word type counted once",
            "words_used": len(words),
            "markers": "^ = start of label, $ = end of label",
            "builder": "detectors/features/data/build_bigrams.py",
        },
        "counts": dict(sorted(counts.items())),
    }
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")
    sys.stderr.write(f"wrote {out} ({len(counts)} bigrams from {len(words)} words)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
