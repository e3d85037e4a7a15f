"""scenarios._util: the fast random_text must draw exactly what random.choice would."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios._util import external_ip, random_text


@given(
    seed=st.integers(0, 2**32),
    alphabet=st.text(min_size=1, max_size=70),
    length=st.integers(0, 60),
)
@settings(max_examples=200)
def test_random_text_equals_choice_draw_for_draw(seed: int, alphabet: str, length: int) -> None:
    fast, slow = random.Random(seed), random.Random(seed)
    expected = "".join(slow.choice(alphabet) for _ in range(length))
    assert random_text(fast, alphabet, length) == expected
    assert fast.random() == slow.random()  # the generators are left in the same state


def test_external_ip_is_a_documentation_address() -> None:
    for name in ("a.example", "files.cloudstore.example", "x" * 60 + ".example"):
        ip = external_ip(name)
        assert ip.startswith(("198.51.100.", "203.0.113."))
        assert external_ip(name) == ip
