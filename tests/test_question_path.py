"""The single-question path against plain references: hits, prepared queries, spelling, the cut.

The question path takes shortcuts for speed (no field-by-field __init__, a spelling loop skipped
when every word is known, only the best candidates partitioned); each test here recomputes the
same result the slow, obvious way and asks for exact equality.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsqa import retrieve
from emsqa.datasets import load_beir
from emsqa.datatypes import Query
from emsqa.index import Index
from emsqa.retrieve import PreparedQuery, prepare, search
from emsqa.store import Store
from emsqa.text import LIGHT_WEIGHT, STOP_WORDS, load_lexicon, tokenize

REPO = Path(__file__).resolve().parent.parent
SCIFACT = REPO.parent / "shared" / "data" / "scifact" / "beir"
SCIFACT_DOCUMENTS = 1500  # a slice of the corpus: built in a second or two


@pytest.fixture(scope="module")
def shipped() -> tuple[Index, list[str]]:
    lines = (REPO / "tests" / "data" / "ems_questions.jsonl").read_text("utf-8").splitlines()
    questions = [json.loads(line)["question"] for line in lines if line.startswith("{")]
    extra = ["", "zzzz qqqq", "patient", "Can an EMT give asprin?", "What is an AED?"]
    return Index.build(REPO / "corpus"), questions + extra


@pytest.fixture(scope="module")
def scifact() -> tuple[Index, list[str]]:
    if not (SCIFACT / "queries.jsonl").is_file() and not (SCIFACT / "queries.jsonl.gz").is_file():
        pytest.skip(f"SciFact is not in {SCIFACT} (the shared data folder is absent)")
    beir = load_beir(SCIFACT)
    return Index.build(beir.documents[:SCIFACT_DOCUMENTS]), list(beir.queries.values())


def _store(index: Index) -> Store:
    assert index.store_ is not None
    return index.store_


def _reference_scores(store: Store, pq: PreparedQuery) -> dict[int, float]:
    """Each passage's score summed term by term in the question's order, one posting at a time."""
    assert store.settings.weighting == "bm25" and not store.settings.fuses
    scores: dict[int, float] = {}
    postings = 0
    for term_id, weight in zip(pq.term_ids.tolist(), pq.weights, strict=True):
        if term_id < 0:
            continue
        if store.post_scale is not None:
            weight = weight * float(store.post_scale[term_id])
        a, b = int(store.post_ptr[term_id]), int(store.post_ptr[term_id + 1])
        postings += b - a
        for number, step in zip(
            store.post_idx[a:b].tolist(), store.post_w[a:b].tolist(), strict=True
        ):
            scores[number] = scores.get(number, 0.0) + float(step) * weight
    if postings * 16 >= store.n_passages:  # scored over every passage: zero scores are no hits
        scores = {n: s for n, s in scores.items() if s > 0}
    return scores


def _reference_hits(
    store: Store, pq: PreparedQuery, k: int, collapse: bool
) -> list[tuple[str, float]]:
    """(passage id, score) of the top `k`: by score then passage number, among the first
    3k + 8 (k without collapsing), skipping windows that mostly repeat a kept one of their
    document and texts shown already."""
    ranked = sorted(_reference_scores(store, pq).items(), key=lambda ns: (-ns[1], ns[0]))
    ranked = ranked[: 3 * k + 8 if collapse else k]
    kept: list[tuple[int, float]] = []
    for number, score in ranked:
        if collapse:
            doc, s0, e0 = (int(a[number]) for a in (store.p_doc, store.p_start, store.p_end))
            text = store.p_text.raw(number)
            if any(
                int(store.p_doc[n]) == doc
                and min(e0, e1) - max(s0, s1) > 0.5 * min(e0 - s0, e1 - s1)
                for n, _ in kept
                for s1, e1 in [(int(store.p_start[n]), int(store.p_end[n]))]
            ):
                continue
            if any(store.p_text.raw(n) == text for n, _ in kept):
                continue
        kept.append((number, score))
        if len(kept) == k:
            break
    return [(store.passage(n).id, s) for n, s in kept]


@pytest.mark.parametrize("corpus", ["shipped", "scifact"])
def test_hits_equal_a_posting_by_posting_reference(
    corpus: str, request: pytest.FixtureRequest
) -> None:
    index, questions = request.getfixturevalue(corpus)
    store, lexicon = _store(index), load_lexicon()
    found = 0
    for question in questions:
        pq = prepare(store, question, lexicon=lexicon)
        for k, collapse in ((10, True), (1, True), (5, False)):
            hits = search(store, pq, k, collapse=collapse)
            assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
            got = [(h.passage.id, h.score) for h in hits]
            assert got == _reference_hits(store, pq, k, collapse), (question, k, collapse)
            found += len(hits)
    assert found > 5 * len(questions)  # the questions do find passages


def test_prepared_objects_equal_constructed_ones(shipped: tuple[Index, list[str]]) -> None:
    index, questions = shipped
    for question in questions[:40]:
        pq = index.prepare(question)
        query = Query(**{f.name: getattr(pq.query, f.name) for f in dataclasses.fields(Query)})
        fields = {f.name: getattr(pq, f.name) for f in dataclasses.fields(PreparedQuery)}
        made = PreparedQuery(**{**fields, "query": query})
        assert set(vars(pq)) == set(fields) and set(vars(pq.query)) == set(vars(query))
        assert pq.query == query and hash(pq.query) == hash(query) and repr(pq.query) == repr(query)
        assert repr(pq) == repr(made)
        with pytest.raises(dataclasses.FrozenInstanceError):
            pq.query.text = "changed"  # type: ignore[misc]


def test_concepts_weigh_their_rarest_term(shipped: tuple[Index, list[str]]) -> None:
    index, questions = shipped
    store = _store(index)
    light = store.settings.analyzer().light()
    unknown_idf = math.log(1 + store.n_passages) + 1
    seen: Counter[str] = Counter()
    for question in questions:
        pq = index.prepare(question)
        # a closing negation ("... that an EMT cannot?") is light in its question
        light_here = light | {"not"} if tokenize(question)[-1:] == ["not"] else light
        idf = {
            t: float(store.idf[i]) if i >= 0 else unknown_idf
            for t, i in zip(pq.terms, pq.term_ids.tolist(), strict=True)
        }
        for weight, alternatives in pq.concepts:
            rarest = max(idf.get(t, unknown_idf) for alt in alternatives for t in alt)
            if len(alternatives) == 1 and len(alternatives[0]) == 1:  # one of the question's words
                (term,) = alternatives[0]
                kind = "light" if term in light_here else "plain"
                expected = rarest * LIGHT_WEIGHT if term in light_here else rarest
            else:  # a word with its lexicon forms or its correction
                kind, expected = "several", rarest
            assert weight == expected, (question, alternatives)
            seen[kind] += 1
    assert all(seen[kind] > 0 for kind in ("light", "plain", "several")), seen


def _plain_corrections(store: Store, tokens: list[str]) -> list[tuple[str, str]]:
    """Every unknown word of four letters or more against every frame word, then every corpus
    word, with its first letter."""
    analyzer = store.settings.analyzer()
    frames = retrieve._FRAME_SPELLINGS
    out = []
    for tok in dict.fromkeys(tokens):
        if len(tok) < 4 or not tok.isalpha() or tok in STOP_WORDS or tok in frames:
            continue
        if store.lookup(analyzer.content(tok))[0] >= 0:
            continue
        limit = 2 if len(tok) >= 8 else 1
        words = [*frames, *store.words]
        near = [
            (retrieve._edit_distance(tok, w, limit), n)
            for n, w in enumerate(words)
            if w[0] == tok[0] and w != tok
        ]
        best = min(((d, n) for d, n in near if d <= limit), default=None)
        if best is not None:
            out.append((tok, words[best[1]]))
    return out


def test_corrections_equal_a_search_of_every_word(shipped: tuple[Index, list[str]]) -> None:
    index, questions = shipped
    store = _store(index)
    analyzer = store.settings.analyzer()
    typos = ["Can an EMT give asprin for chest pian?", "epinephrin dose for anaphylaxsis"]
    corrected = 0
    for question in questions + typos:
        tokens = tokenize(question)
        got = retrieve._corrections(store, analyzer, tokens)
        assert got == _plain_corrections(store, tokens), question
        corrected += len(got)
    assert corrected >= 3


def _plain_near_words(store: Store, tok: str, limit: int) -> list[str]:
    bins = lambda w: Counter(c if "a" <= c <= "z" else "other" for c in w)  # noqa: E731
    mine = bins(tok)
    out = []
    for word in store.words:
        if word[0] != tok[0] or abs(len(word) - len(tok)) > limit:
            continue
        theirs = bins(word)
        more = sum((theirs - mine).values())
        fewer = sum((mine - theirs).values())
        if max(more, fewer) <= limit:
            out.append(word)
    return out


@pytest.mark.parametrize(
    "tok", ["asprin", "epinephrin", "naloxon", "cardiak", "défibrillator", "oxygén", "pulse"]
)
def test_near_words_equal_plain_letter_bags(shipped: tuple[Index, list[str]], tok: str) -> None:
    store = _store(shipped[0])
    for limit in (1, 2):
        assert retrieve._near_words(store, tok, limit) == _plain_near_words(store, tok, limit)


def test_query_weights_leave_out_the_terms_the_index_lacks(
    shipped: tuple[Index, list[str]],
) -> None:
    index = shipped[0]
    store = _store(index)
    for question in ("zzzz epinephrine qqqq", "epinephrine dose", "zzzz qqqq"):
        pq = index.prepare(question)
        ids, weights = retrieve._query_weights(store, pq)
        expected = [(i, w) for i, w in zip(pq.term_ids.tolist(), pq.weights, strict=True) if i >= 0]
        assert ids.tolist() == [i for i, _ in expected]
        scale = store.post_scale
        assert weights.tolist() == [
            w * (float(scale[i]) if scale is not None else 1.0) for i, w in expected
        ]


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.integers(min_value=-2, max_value=6), min_size=1, max_size=400),
    want=st.integers(min_value=1, max_value=50),
    positive=st.booleans(),
    sample=st.integers(min_value=0, max_value=400),
)
def test_the_cut_keeps_every_score_as_good_as_the_wanted_one(
    values: list[int], want: int, positive: bool, sample: int
) -> None:
    scores = np.asarray(values, dtype=np.float64) / 2  # few distinct values: many ties
    want = min(want, len(scores))
    likely = np.arange(0, len(scores), 1 + sample % 7)[: max(want, sample % len(scores))]
    got = retrieve._at_least_wanted(scores, want, positive=positive, likely=likely)
    ordered = sorted(scores.tolist(), reverse=True)
    floor = ordered[want - 1]
    expected = [i for i, s in enumerate(scores.tolist()) if s >= floor and (s > 0 or not positive)]
    if positive and floor <= 0:
        expected = [i for i, s in enumerate(scores.tolist()) if s > 0]
    assert got.tolist() == expected


@pytest.mark.parametrize("corpus", ["shipped", "scifact"])
def test_a_question_prepared_without_concepts_finds_the_same(
    corpus: str, request: pytest.FixtureRequest
) -> None:
    index, questions = request.getfixturevalue(corpus)
    store, lexicon = _store(index), load_lexicon()
    with_concepts = 0
    for question in questions:
        full = prepare(store, question, lexicon=lexicon)
        lean = prepare(store, question, lexicon=lexicon, concepts=False)
        assert lean.concepts == ()
        assert (lean.terms, lean.weights, lean.term_ids.tolist()) == (
            full.terms,
            full.weights,
            full.term_ids.tolist(),
        )
        assert (lean.query, lean.intents, lean.cues) == (full.query, full.intents, full.cues)
        assert search(store, lean, 10) == search(store, full, 10)
        with_concepts += bool(full.concepts)
    assert with_concepts > len(questions) // 2


def _frames_by_whole_patterns(text: str) -> tuple[str, set[str], list[str]]:
    """retrieve._frames trying every frame's whole pattern (re.I) on every text."""
    topic, intents, cues = text, set(), []
    for pattern, intent, cue_words in retrieve._FRAMES:
        if pattern.search(topic):
            if intent:
                intents.add(intent)
            cues.extend(cue_words)
            if intent != "definition" or "stand" in pattern.pattern:
                topic = pattern.sub(" ", topic)
    return retrieve._FRAME_WORDS.sub(" ", topic), intents, cues


# Each alternative of each frame, at and just past the word limits of the anchored ones, in
# several cases and spacings.
FRAME_QUESTIONS = [
    "How long is EMT training?",
    "how many years of school",
    "How often should vitals be checked",
    "how much epinephrine",
    "What percentage survive cardiac arrest?",
    "what age can you become a paramedic",
    "What does ALS stand for?",
    "EMS stands for what",
    "BVM is short for what",
    "the abbreviation of BVM",
    "What is an AED?",
    "what is the a b ?",
    "What is the a b c ?",
    "what are  the X?",
    "Who is   Dr. Who",
    "WHO ARE paramedics",
    "what is\tthis?",
    "What is (are) Leukemia ?",
    "What is (are) Hairy Cell Leukemia ?",
    "Define triage",
    "the definition of shock",
    "the meaning of STEMI",
    "What does CPR mean?",
    "what does it mean to be an EMT",
    "what do the lights show ?",
    "WHAT DOES an   ECG MEASURE",
    "What does a pulse oximeter measure exactly?",
    "What does the pulse oximeter measure ?",
    "how does an EMT differ from a paramedic",
    "compare AEMT and EMT",
    "a comparison of splints",
    "EMT vs. paramedic",
    "EMT versus paramedic",
    "distinguishing croup from epiglottitis",
    "What kind of drugs?",
    "can you tell me the dose",
    "is it true that aspirin helps",
    "do you KNOW the dose",
    "what causes asthma",
    "whatever is the dose",
    "somewhat long",
    "What is é?",
    "What is an EMT?",
    "how many hours does it take",
    "EMT vs paramedic",
    "",
]


def test_frames_equal_their_whole_patterns(
    shipped: tuple[Index, list[str]], request: pytest.FixtureRequest
) -> None:
    questions = FRAME_QUESTIONS + shipped[1]
    if (SCIFACT / "queries.jsonl").is_file() or (SCIFACT / "queries.jsonl.gz").is_file():
        questions += request.getfixturevalue("scifact")[1]
    framed = 0
    for question in questions:
        for text in (question, question.upper(), question.lower()):
            assert retrieve._frames(text) == _frames_by_whole_patterns(text), text
            framed += bool(retrieve._frames(text)[1])
    assert framed > 60
    # no prefilter key begins another (the scan reports the first key found at each place)
    keys = {k for ks in retrieve._FRAME_KEYS for k in ks} | retrieve._FRAME_WORD_KEYS
    assert not [(a, b) for a in keys for b in keys if a != b and b.startswith(a)]
    assert [len(parts) for parts in retrieve._FRAME_PARTS] == [
        len(retrieve._top_level_parts(p.pattern)) for p, _, _ in retrieve._FRAMES
    ]


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 3_000), min_size=1, max_size=8),
    weights=st.lists(st.floats(0.01, 50.0), min_size=8, max_size=8),
)
def test_weighted_postings_scale_each_run_alike_both_ways(
    sizes: list[int], weights: list[float]
) -> None:
    """Long postings are scaled term by term in place, short ones by one repeated array: the
    products are the same bits either way."""
    from emsqa import arrays

    rng = np.random.default_rng(len(sizes))
    ptr = np.zeros(len(sizes) + 1, dtype=np.uint32)
    np.cumsum(sizes, out=ptr[1:])
    rows = rng.integers(0, 60_000, int(ptr[-1]), dtype=np.int32)
    steps = rng.integers(0, 65_536, int(ptr[-1]), dtype=np.uint16)
    terms = rng.permutation(len(sizes)).astype(np.int64)
    w = np.array(weights[: len(sizes)])
    default = arrays._SCALE_IN_PLACE_FROM
    try:
        arrays._SCALE_IN_PLACE_FROM = 0  # every run in place
        spans, at, products = arrays.weighted_postings(ptr, rows, steps, terms, w)
        arrays._SCALE_IN_PLACE_FROM = 10**12  # one repeated array
        spans2, at2, products2 = arrays.weighted_postings(ptr, rows, steps, terms, w)
    finally:
        arrays._SCALE_IN_PLACE_FROM = default
    assert spans == spans2 and at.tobytes() == at2.tobytes()
    assert products.tobytes() == products2.tobytes()
    expected = np.concatenate(
        [steps[a:b].astype(np.float64) * wj for (a, b), wj in zip(spans, w.tolist(), strict=True)]
        + [[]]
    )
    assert products.tobytes() == expected.tobytes()
