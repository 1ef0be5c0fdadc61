"""Quality levers: each is an index setting or answer rule that changes results the way it says."""

from __future__ import annotations

import pytest

from emsqa import Index, UsageError
from emsqa.datatypes import Document


def _weights(index: Index, question: str, bigrams: bool) -> dict[str, float]:
    pq = index.prepare(question)
    return {t: w for t, w in zip(pq.terms, pq.weights, strict=True) if (" " in t) == bigrams}


def test_bigram_weight_scales_only_the_question_bigrams(small_docs: list[Document]) -> None:
    question = "suction the upper airway"
    full = Index.build(small_docs)
    light = Index.build(small_docs, bigram_weight=0.25)
    none = Index.build(small_docs, bigram_weight=0)
    pairs = _weights(full, question, bigrams=True)
    assert pairs, "the question should have bigrams"
    assert _weights(light, question, bigrams=True) == pytest.approx(
        {t: 0.25 * w for t, w in pairs.items()}
    )
    assert _weights(none, question, bigrams=True) == {}
    words = _weights(full, question, bigrams=False)
    assert _weights(light, question, bigrams=False) == words
    assert _weights(none, question, bigrams=False) == words


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_bigram_weight_outside_0_1_is_refused(small_docs: list[Document], bad: float) -> None:
    with pytest.raises(UsageError, match="bigram_weight"):
        Index.build(small_docs, bigram_weight=bad)
