"""Tests for detectors.features.bigram: the shipped English bigram model and its scoring."""

from __future__ import annotations

import json
import math
import random
import statistics
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.features.bigram import ALPHABET, BigramModel
from harness.errors import InvalidParameterError

MODEL = BigramModel.load_default()
BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
HEX = "0123456789abcdef"
HOSTNAMES = ["mail", "download", "update", "windowsupdate", "outlook", "login", "google"]


def _random_strings(alphabet: str, length: int, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(alphabet) for _ in range(length)) for _ in range(count)]


def test_default_model_is_loaded_once_with_provenance() -> None:
    assert BigramModel.load_default() is MODEL
    assert "wordfreq" in str(MODEL.provenance["source_package"])
    assert "CC BY-SA 4.0" in str(MODEL.provenance["licence"])


@pytest.mark.parametrize("alphabet", [BASE32, HEX], ids=["base32", "hex"])
def test_english_hostnames_outscore_random_encodings_of_the_same_length(alphabet: str) -> None:
    for word in HOSTNAMES:
        randoms = _random_strings(alphabet, len(word), 300, seed=len(word))
        assert MODEL.score(word) > statistics.fmean(map(MODEL.score, randoms)), word


def test_real_service_names_outscore_random_strings_on_average() -> None:
    # Held-out real names: second-level labels of the PSL's private section (service and
    # company names such as "cloudfront", "herokuapp"); the model never saw them.
    text = resources.files("publicsuffixlist").joinpath("public_suffix_list.dat").read_text()
    private = text[text.index("===BEGIN PRIVATE DOMAINS===") :]
    labels = sorted(
        {
            label
            for line in private.splitlines()
            if line and not line.startswith("//")
            for label in line.split()[0].lstrip("!*.").split(".")[:-1]
            if len(label) >= 4 and label.isascii() and label.isalpha()
        }
    )
    assert len(labels) > 500
    real = statistics.fmean(map(MODEL.score, labels))
    rng = random.Random(3)
    for alphabet in (BASE32, HEX):
        fake = statistics.fmean(
            MODEL.score("".join(rng.choice(alphabet) for _ in label)) for label in labels
        )
        assert real > fake


def test_scores_are_mean_log_probabilities() -> None:
    # "ab" is scored as ^a, ab, b$: the mean of three conditional log-probabilities
    expected = (
        MODEL.pair_log_prob("^", "a")
        + MODEL.pair_log_prob("a", "b")
        + MODEL.pair_log_prob("b", "$")
    ) / 3
    assert MODEL.score("ab") == pytest.approx(expected)
    assert MODEL.score("AB") == MODEL.score("ab")  # case-insensitive
    assert MODEL.score("") == 0.0
    # labels of a dotted name are scored separately and their pairs pooled
    pooled = (MODEL.score("mail") * 5 + MODEL.score("google") * 7) / 12
    assert MODEL.score("mail.google") == pytest.approx(pooled)
    assert MODEL.score("mail..") == MODEL.score("mail")


def test_conditional_distributions_sum_to_one() -> None:
    # next symbols: every ALPHABET character, the end marker and one "other" symbol
    for first in "^" + ALPHABET:
        total = sum(math.exp(MODEL.pair_log_prob(first, b)) for b in ALPHABET + "$")
        total += math.exp(MODEL.pair_log_prob(first, "\u00fc"))  # any non-alphabet character
        assert total == pytest.approx(1.0), first


@given(st.text(max_size=80))
def test_any_string_scores_to_a_finite_negative_number(label: str) -> None:
    score = MODEL.score(label)
    assert math.isfinite(score)
    if label.strip("."):
        assert score < 0.0
    uncached = BigramModel.from_json(_DEFAULT_JSON, cache_size=0)
    assert uncached.score(label) == pytest.approx(score)


def test_markers_inside_a_label_are_not_markers() -> None:
    assert MODEL.score("a^b") == MODEL.score("a\u00e9b")  # both: a, other, b


_DEFAULT_JSON = (
    resources.files("detectors.features").joinpath("data", "bigrams_en.json").read_text("utf-8")
)


def test_custom_counts_and_validation() -> None:
    model = BigramModel({"^a": 10, "aa": 10, "a$": 10}, cache_size=0)
    assert model.score("aaaa") > model.score("zzzz")
    with pytest.raises(InvalidParameterError):
        BigramModel({"abc": 1})
    with pytest.raises(InvalidParameterError):
        BigramModel({"a!": 1})
    with pytest.raises(InvalidParameterError):
        BigramModel({"ab": -1})
    with pytest.raises(InvalidParameterError):
        BigramModel({}, alpha=0)
    with pytest.raises(InvalidParameterError):
        BigramModel({}, cache_size=-1)
    with pytest.raises(InvalidParameterError):
        BigramModel.from_json("[]")
    with pytest.raises(InvalidParameterError):
        MODEL.pair_log_prob("ab", "c")


def test_shipped_table_is_small_and_well_formed() -> None:
    doc = json.loads(_DEFAULT_JSON)
    counts = doc["counts"]
    assert 400 < len(counts) < 1_000
    assert all(len(pair) == 2 and n > 0 for pair, n in counts.items())
    # every training word contributes exactly one start pair
    starts = sum(n for pair, n in counts.items() if pair[0] == "^")
    assert starts == doc["provenance"]["words_used"]


def test_shipped_table_is_reproducible_from_its_builder(tmp_path: Path) -> None:
    # Only where the build-time dependency is installed; it is not a runtime dependency.
    pytest.importorskip("wordfreq")
    import importlib.util

    builder = Path(__file__).parents[3] / "detectors" / "features" / "data" / "build_bigrams.py"
    spec = importlib.util.spec_from_file_location("build_bigrams", builder)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "bigrams.json"
    assert module.main([str(out)]) == 0
    assert out.read_text("utf-8") == _DEFAULT_JSON


@pytest.mark.parametrize(
    ("label", "documented"),
    [
        ("mail", -2.57),
        ("login", -2.59),
        ("windowsupdate", -2.87),
        ("google", -2.96),
        ("outlook", -3.08),
        ("update", -3.12),
        ("download", -3.14),
        ("cdn", -3.95),
        ("www", -4.12),
        ("office365", -3.84),
        ("s3", -5.19),
    ],
)
def test_documented_typical_values_are_current(label: str, documented: float) -> None:
    # Keeps the table in the bigram module docstring true if the shipped counts change.
    assert MODEL.score(label) == pytest.approx(documented, abs=0.005)
