"""The fused-score options: character n-grams and passage neighbours (emsqa.fusion)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsqa import Index, IndexFormatError, UsageError
from emsqa.datatypes import Document
from emsqa.fusion import char_grams
from emsqa.store import MANIFEST, _checksum

DOCS = [
    Document(id="ribo", title="", text="Ribosomopathies are rare inherited disorders."),
    Document(id="ribo2", title="", text="Registries of ribosomopathy cases are small."),
    Document(
        id="cpr", title="", text="Chest compressions keep blood moving during cardiac arrest."
    ),
    Document(id="aed", title="", text="An AED shocks the heart during cardiac arrest in adults."),
    Document(
        id="heart", title="", text="Defibrillation with pads restores a heart rhythm in adults."
    ),
    Document(id="iv", title="", text="Paramedics place intravenous lines for fluids and drugs."),
]


@given(st.text(alphabet=st.sampled_from(list("abcXYZ- \t\n.é")), max_size=40))
@settings(max_examples=200, deadline=None)
def test_char_grams_are_scikit_learns_char_wb_grams(text: str) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    sklearn_grams = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)).build_analyzer()
    assert sorted(char_grams(text)) == sorted(sklearn_grams(text.lower()))


def _ids(index: Index, question: str, k: int = 5) -> list[str]:
    return [h.passage.doc_id for h in index.search(question, k=k)]


def test_subwords_find_a_word_that_only_shares_its_stem_spelling() -> None:
    # "ribosome" and "ribosomopathies" stem differently: no lexical match, but shared n-grams
    assert _ids(Index.build(DOCS), "ribosome") == []
    # (a gram must be in two passages to count: there are two such documents)
    assert set(_ids(Index.build(DOCS, subword_weight=0.3), "ribosome")[:2]) == {"ribo", "ribo2"}


def test_neighbours_lift_a_passage_like_the_ones_that_match() -> None:
    question = "shocks"
    lexical = Index.build(DOCS)
    near = Index.build(DOCS, neighbour_weight=0.3)
    assert "heart" not in _ids(lexical, question)  # no word in common with the question
    assert "heart" in _ids(near, question)  # but like the AED passage, which matches
    assert _ids(near, question)[0] == "aed"


def test_fused_scores_are_within_0_and_1_and_best_first() -> None:
    index = Index.build(DOCS, subword_weight=0.3, neighbour_weight=0.3)
    hits = index.search("cardiac arrest compressions", k=5)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 1 for s in scores)
    assert hits[0].passage.doc_id == "cpr"


def test_a_fused_index_saves_loads_and_answers_the_same(tmp_path: Path) -> None:
    index = Index.build(DOCS, subword_weight=0.3, neighbour_weight=0.3)
    index.save(tmp_path / "idx")
    loaded = Index.load(tmp_path / "idx")
    for q in ("ribosomopathy", "AED shocks", "fluids for paramedics", "zzz"):
        assert loaded.search(q) == index.search(q)
        assert loaded.ask(q).to_dict() == index.ask(q).to_dict()
    assert index.search_many(["AED shocks", "zzz"]) == [
        index.search("AED shocks"),
        index.search("zzz"),
    ]


def test_an_index_missing_its_fusion_arrays_is_refused(tmp_path: Path) -> None:
    Index.build(DOCS, neighbour_weight=0.3).save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / MANIFEST).read_text("utf-8"))
    for name in ("knn_idx", "knn_w"):
        del manifest["files"][name]
    manifest["checksum"] = _checksum(manifest)
    (tmp_path / "idx" / MANIFEST).write_text(json.dumps(manifest), "utf-8")
    with pytest.raises(IndexFormatError, match="neighbour arrays are missing"):
        Index.load(tmp_path / "idx")


@pytest.mark.parametrize("name", ["subword_weight", "neighbour_weight"])
@pytest.mark.parametrize("value", [-0.1, 1.0])
def test_fusion_weights_outside_0_to_1_are_refused(name: str, value: float) -> None:
    with pytest.raises(UsageError, match=name):
        Index(**{name: value})


def test_neighbours_refuse_corpora_too_large_to_compare(monkeypatch: pytest.MonkeyPatch) -> None:
    from emsqa import fusion

    monkeypatch.setattr(fusion, "MAX_NEIGHBOUR_PASSAGES", 3)
    with pytest.raises(UsageError, match="at most 3 passages"):
        Index.build(DOCS, neighbour_weight=0.3)


def test_every_passage_gets_its_most_similar_passages_as_neighbours() -> None:
    index = Index.build(DOCS, neighbour_weight=0.3)
    store = index.store_
    assert store is not None and store.knn_idx is not None and store.knn_w is not None
    n = store.n_passages
    k = len(store.knn_idx) // n
    near = store.knn_idx.reshape(n, k)
    weights = store.knn_w.reshape(n, k)
    assert k == n - 1  # fewer passages than NEIGHBOURS: all the others
    assert all(i not in row for i, row in enumerate(near.tolist()))
    sums = weights.sum(axis=1)
    assert np.all((np.abs(sums - 1) < 1e-5) | (sums == 0))
    aed = next(i for i, p in enumerate(index.passages()) if p.doc_id == "aed")
    cpr = next(i for i, p in enumerate(index.passages()) if p.doc_id == "cpr")
    assert near[aed][np.argmax(weights[aed])] == cpr  # both about cardiac arrest


def test_a_one_passage_fused_index_still_answers() -> None:
    """Scaling a single score (or a tie) must not turn it into nothing."""
    one = [Document(id="n", title="", text="Naloxone reverses an opioid overdose quickly.")]
    index = Index.build(one, subword_weight=0.3, neighbour_weight=0.3, min_words=3)
    assert [h.passage.doc_id for h in index.search("opioid overdoses")] == ["n"]
    assert index.search("zzzz qqqq") == []
    assert not index.ask("What reverses an opioid overdose?").abstained
