"""The question path's shortcuts against the plain way of doing the same thing (issue 6).

Cleaning a question skips the pattern passes an ASCII question cannot need, the frame keys are
found with substring tests, and ranked passages are read as rows once; each test recomputes the
result the slow, obvious way and asks for exact equality.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsqa import retrieve
from emsqa.datatypes import Passage
from emsqa.index import Index
from emsqa.store import Store

REPO = Path(__file__).resolve().parent.parent

# pieces that make bare contractions, their near misses and word boundaries likely
_PIECES = st.sampled_from(
    [
        "whats", "WHATS", "Whos", "hows", "wheres", "whens", "whys", "thats", "dont", "DOESNT",
        "didnt", "cant", "isnt", "arent", "wasnt", "werent", "shouldnt", "couldnt", "wouldnt",
        "hasnt", "havent", "hadnt", "mustnt", "wont", "somewhats", "whats_", "_dont", "dont2",
        "2dont", "s", "nt", "what", "do", " ", "  ", "-", "'", "?", ".", "\t", "\n", "\x07",
        "\x85", "é", "ſ", "K", "café", "EMT", "x",
    ]
)  # fmt: skip
_TEXTS = st.lists(_PIECES, max_size=12).map("".join)


def _apostrophes_by_pattern(text: str) -> str:
    return retrieve._BARE_CONTRACTION.sub(lambda m: f"{m[0][:-1]}'{m[0][-1]}", text)


@settings(max_examples=400, deadline=None)
@given(text=_TEXTS)
def test_apostrophes_equal_the_pattern(text: str) -> None:
    assert retrieve._with_apostrophes(text) == _apostrophes_by_pattern(text)


def test_bare_words_are_what_the_pattern_matches() -> None:
    for word in retrieve._BARE_WORDS:
        assert retrieve._BARE_CONTRACTION.fullmatch(word.decode())
        assert retrieve._with_apostrophes(f"so {word.decode()}?") != f"so {word.decode()}?"
    assert len(retrieve._BARE_WORDS) == 22


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(_TEXTS, st.text(max_size=40)))
def test_clean_equals_normalising_and_blanking_every_question(text: str) -> None:
    control = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
    plain = control.sub(" ", unicodedata.normalize("NFC", text))
    expected = _apostrophes_by_pattern(" ".join(plain.split()))
    assert retrieve._clean(text) == (expected, "")


_OLD_KEY_SCAN = re.compile(
    "|".join(
        sorted(
            {re.escape(k) for keys in retrieve._FRAME_KEYS for k in keys}
            | retrieve._FRAME_WORD_KEYS
        )
    )
)


@settings(max_examples=400, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(
            [
                *{k for keys in retrieve._FRAME_KEYS for k in keys},
                *retrieve._FRAME_WORD_KEYS,
                "w", "ho", "hat", "t", " ", "?", "somehow", "whow", "vsv", "é",
            ]
        ),
        max_size=10,
    ).map("".join)
)  # fmt: skip
def test_frame_keys_hold_every_key_a_scan_finds(text: str) -> None:
    scanned = set(_OLD_KEY_SCAN.findall(text))
    found = retrieve._frame_keys(text)
    assert scanned <= found and bool(scanned) == bool(found)
    assert found == {k for k in retrieve._FRAME_KEY_LIST if k in text}


@settings(max_examples=150, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(["how", "long", "what", "is", "vs", "whow", "often", "a", "b", "?"]),
        max_size=8,
    ).map(" ".join)
)
def test_frames_do_not_depend_on_the_keys_found_beyond_the_scan(text: str) -> None:
    framed = retrieve._frames(text)
    every = set(retrieve._FRAME_KEY_LIST)  # the prefilter only skips: more keys change nothing
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(retrieve, "_frame_keys", lambda lowered: every if lowered.strip() else set())
        assert retrieve._frames(text) == framed


@pytest.fixture(scope="module")
def store() -> Store:
    index = Index.build(REPO / "corpus")
    assert index.store_ is not None
    return index.store_


def test_passages_made_from_rows_equal_constructed_ones(store: Store) -> None:
    numbers = list(range(store.n_passages))
    made = store.passages(numbers)
    assert len(made) == store.n_passages
    for i, p in enumerate(made):
        fields = {f.name: getattr(p, f.name) for f in dataclasses.fields(Passage)}
        doc = int(store.p_doc[i])
        expected = Passage(
            id=f"{store.doc_ids[doc]}#{int(store.p_ordinal[i])}",
            doc_id=store.doc_ids[doc],
            title=store.doc_titles[doc],
            section=store.sections[int(store.p_section[i])],
            source=store.doc_sources[doc],
            text=store.p_text[i],
            start=int(store.p_start[i]),
            end=int(store.p_end[i]),
            ordinal=int(store.p_ordinal[i]),
        )
        assert p == expected and hash(p) == hash(expected) and repr(p) == repr(expected)
        assert set(vars(p)) == set(fields)
        assert all(type(v) is type(getattr(expected, k)) for k, v in fields.items())
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.text = "changed"  # type: ignore[misc]
    rows = store.passage_rows(np.asarray(numbers[::-3], dtype=np.int64))
    assert store.passages_of(rows) == [made[i] for i in numbers[::-3]]


def test_hits_are_frozen_and_typed(store: Store) -> None:
    pq = retrieve.prepare(store, "How long can a tourniquet stay on?")
    hits = retrieve.search(store, pq, 5)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1)) and hits
    for h in hits:
        assert type(h.score) is float and type(h.rank) is int and isinstance(h.passage, Passage)
        with pytest.raises(dataclasses.FrozenInstanceError):
            h.score = 0.0  # type: ignore[misc]
    assert retrieve.search(store, pq, 5, collapse=False)[0].passage == hits[0].passage


def test_passage_rows_hold_values_beyond_32_bits(store: Store) -> None:
    wide = dataclasses.replace(
        store, p_start=store.p_start + 2**33, p_end=store.p_end + 2**33, cache={}
    )
    at = np.arange(wide.n_passages)[::-1]
    rows = wide.passage_rows(at)
    assert wide.cache["passage_rows"].dtype == np.int64
    assert store.passage_rows(at) == [[r[0], r[1] - 2**33, r[2] - 2**33, *r[3:]] for r in rows]
    offsets = store.p_text.offsets
    columns = (store.p_doc, store.p_start, store.p_end, store.p_section, store.p_ordinal)
    expected = [[int(c[i]) for c in columns] + [int(offsets[i]), int(offsets[i + 1])] for i in at]
    assert store.passage_rows(at) == expected
    assert all(type(v) is int for row in rows for v in row)


def test_collapsing_reads_further_when_the_first_candidates_repeat() -> None:
    from emsqa.datatypes import Document

    body = "Tourniquet time matters. " * 3
    documents = [Document(id=f"copy{i:02d}", title="Tourniquets", text=body) for i in range(30)]
    documents += [
        Document(id=f"other{i:02d}", title=f"Note {i}", text=f"A tourniquet note number {i}.")
        for i in range(20)
    ]
    index = Index.build(documents)
    assert index.store_ is not None
    store = index.store_
    pq = retrieve.prepare(store, "tourniquet time")
    for k in (1, 3, 10, 12):
        hits = retrieve.search(store, pq, k)
        # the plain way: every candidate ranked, the first 3k + 8, copies of a shown text skipped
        scores = np.zeros(store.n_passages)
        for term_id, weight in zip(pq.term_ids.tolist(), pq.weights, strict=True):
            if term_id >= 0:
                numbers, values = store.postings(term_id)
                scale = float(store.post_scale[term_id]) if store.post_scale is not None else 1.0
                scores[numbers.astype(np.int64)] += values / scale * (weight * scale)
        ranked = sorted(
            (n for n in range(store.n_passages) if scores[n] > 0), key=lambda n: (-scores[n], n)
        )[: 3 * k + 8]
        shown: list[int] = []
        for n in ranked:
            if all(store.p_text[n] != store.p_text[m] for m in shown) and len(shown) < k:
                shown.append(n)
        assert [h.passage for h in hits] == store.passages(shown), k
        if k == 10:  # the first candidates read (k + k // 2 + 1) held fewer than k texts
            assert len({store.p_text[n] for n in ranked[:16]}) < k < len(ranked)
