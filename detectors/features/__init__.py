"""Shared, tested feature code for the reference detectors.

* :mod:`detectors.features.dns` - registered domains (Public Suffix List, offline), label
  statistics, distinct-subdomain and compressed-information counters per key and window.
* :mod:`detectors.features.bigram` - character-bigram likelihood of labels (freq.py-style).
* :mod:`detectors.features.stats` - PCR, robust z-scores, entropy, streaming CV, sliding sums,
  first-seen and prevalence sets.
* :mod:`detectors.features.process` - normalised executable path as a process's identity.

Everything here is written for per-event use in streaming detectors: bounded memory, no
regular expressions in hot paths, integer-nanosecond time.
"""
