"""Quality levers: each is an index setting or answer rule that changes results the way it says."""

from __future__ import annotations

from pathlib import Path

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


def test_abstain_below_is_the_index_default_threshold(
    small_docs: list[Document], tmp_path: Path
) -> None:
    question = "suction the airway of a drowning swimmer in cold water"
    strict = Index.build(small_docs, abstain_below=1.0)
    lenient = Index.build(small_docs, abstain_below=0.0)
    assert 0 < strict.ask(question).confidence < 1
    assert strict.ask(question).abstained
    assert not lenient.ask(question).abstained
    assert not strict.ask(question, threshold=0.0).abstained  # an explicit threshold wins
    strict.save(tmp_path / "idx")
    assert Index.load(tmp_path / "idx").ask(question).abstained


@pytest.mark.parametrize("bad", [-0.5, 2.0])
def test_abstain_below_outside_0_1_is_refused(small_docs: list[Document], bad: float) -> None:
    with pytest.raises(UsageError, match="abstain_below"):
        Index.build(small_docs, abstain_below=bad)


_HISTORY = Document(
    id="history",
    title="Station history",
    text=(
        "The county ambulance station was opened by a committee of local volunteers and nurses. "
        "The county ambulance station was opened by Mary Okafor. "
        "The county ambulance station was opened after years of public meetings and fundraising. "
        "The county ambulance station was opened in 1962. "
        "Its first crew chief was Daniel Reyes. "
        "He was 27 years old when the station opened."
    ),
)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Who opened the county ambulance station?", "Mary Okafor"),
        ("When was the county ambulance station opened?", "1962"),
        ("How old was Daniel Reyes when the station opened?", "27"),
    ],
)
def test_first_sentence_holds_the_kind_of_thing_asked(question: str, expected: str) -> None:
    answer = Index.build([_HISTORY], abstain_below=0.0).ask(question)
    assert expected in answer.sentences[0].text


def _everywhere_docs() -> list[Document]:
    """Eight short documents that all mention "patient"; one mentions "naloxone"."""
    topics = ["airway", "bleeding", "burns", "fractures", "seizures", "stroke", "asthma"]
    docs = [
        Document(id=t, title="", text=f"The patient with {t} needs a calm crew and a clear plan.")
        for t in topics
    ]
    text = "The patient with an overdose may need naloxone from the crew."
    return [*docs, Document(id="overdose", title="", text=text)]


def test_bm25_idf_all_but_ignores_a_word_in_every_passage() -> None:
    shares = {}
    for idf in ("smooth", "bm25"):
        index = Index.build(_everywhere_docs(), idf=idf, bigrams=False)
        parts = dict(index.explain("naloxone for the patient", "overdose#0"))
        assert set(parts) == {"patient", "naloxon"}  # stemmed
        shares[idf] = parts["patient"] / parts["naloxon"]
    assert shares["smooth"] > 0.3  # the smooth idf never lets a common word fall to nothing
    assert 0 < shares["bm25"] < 0.1


def test_bm25_idf_needs_bm25_weighting(small_docs: list[Document]) -> None:
    with pytest.raises(UsageError, match="idf"):
        Index.build(small_docs, idf="bm25", weighting="tfidf")
    with pytest.raises(UsageError, match="idf"):
        Index.build(small_docs, idf="lucene")


@pytest.mark.parametrize(
    ("question", "subject"),
    [
        ("What does CPR mean?", "cpr"),
        ("what does an AED mean", "aed"),
        ("What does ROSC stand for?", "rosc"),
    ],
)
def test_a_definition_question_keeps_its_subject(
    small_docs: list[Document], question: str, subject: str
) -> None:
    pq = Index.build(small_docs).prepare(question)
    assert "definition" in pq.intents
    assert subject in pq.query.terms
    assert "mean" not in pq.query.terms and "stand" not in pq.query.terms
