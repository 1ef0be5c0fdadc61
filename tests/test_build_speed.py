"""The build's shortcuts change nothing: shared passage text tokenised once, passages read back
from their tables, surface words counted while counting, workers kept for a whole run."""

from __future__ import annotations

import itertools
import multiprocessing
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsqa import store as store_module
from emsqa.counting import _OverlapTokens, count_chunk, count_fields
from emsqa.datatypes import Document, Section
from emsqa.errors import UsageError
from emsqa.passages import split_documents
from emsqa.store import IndexSettings, _passage_tables, build_store
from emsqa.strings import StringTable
from emsqa.text import STOP_WORDS, Analyzer, tokenize

needs_fork = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs fork"
)

# words and separators chosen to sit at passage cuts: compounds, possessives, numbers, letters
# that NFKC changes (ﬁ, ¨, no-break space), combining marks, and look-alike hyphens/apostrophes
WORDS = [
    "The", "patient", "C-spine", "12-lead", "1,200", "2.5", "EMT's", "O’Neil", "x‐ray", "ﬁb",
    "naïve", "e\u0301", "\u0301", "¨", "no", "not", "mg.", "Dr.", "U.S.", "'s", "-", "a-", "'",
]  # fmt: skip
GAPS = [" ", "  ", "\n", "\n\n", "\u00a0", " - ", "\t", ""]
ENDS = [". ", "! ", "? ", ".\n", "\n\n", ". \u00a0"]


@st.composite
def documents(draw: st.DrawFn) -> Document:
    parts: list[str] = []
    for _ in range(draw(st.integers(1, 12))):  # sentences
        n = draw(st.integers(1, 9))
        for w in draw(st.lists(st.sampled_from(WORDS), min_size=n, max_size=n)):
            parts.append(w + draw(st.sampled_from(GAPS)))
        parts.append(draw(st.sampled_from(ENDS)))
    return Document(id="d", title="", text="".join(parts))


@settings(max_examples=300, deadline=None)
@given(docs=st.lists(documents(), min_size=1, max_size=3), overlap=st.integers(0, 2))
def test_shared_text_tokenised_once_gives_each_passages_tokens(
    docs: list[Document], overlap: int
) -> None:
    docs = [Document(id=f"d{i}", title="", text=d.text) for i, d in enumerate(docs)]
    passages = split_documents(
        docs, target_words=4, min_words=2, max_words=6, overlap=overlap, workers=1
    )
    tokens = _OverlapTokens([(p.doc_id, p.start, p.end) for p in passages])
    assert [tokens.tokens(i, p.text) for i, p in enumerate(passages)] == [
        tokenize(p.text) for p in passages
    ]


def test_overlapping_passages_are_counted_as_the_analyzer_counts_them() -> None:
    text = (
        "Check the C-spine first. The 12-lead shows A-fib today. Give 2.5 mg aspirin now. "
        "O'Neil's pulse is weak. Not the x\u2010ray again. Then call the EMT's partner."
    )
    doc = Document(id="d", title="Cardiac care", text=text, sections=(Section(0, 0, "Care"),))
    passages = split_documents([doc], target_words=6, min_words=3, max_words=9, overlap=2)
    assert any(b.start < a.end for a, b in itertools.pairwise(passages))
    analyzer = Analyzer()
    plain = count_fields(
        [p.text for p in passages],
        [p.title for p in passages],
        [p.section for p in passages],
        analyzer,
        1,
        2,
    )
    shared = count_chunk(passages, analyzer, 1, 2)  # with the passages' places
    for name in ("indptr", "indices", "data", "pairs"):
        assert np.array_equal(getattr(plain, name), getattr(shared, name)), name
    assert plain.words == shared.words


@given(st.lists(st.text(max_size=8), max_size=20), st.data())
def test_string_table_decodes_a_range_of_strings(strings: list[str], data: st.DataObject) -> None:
    table = StringTable.of(strings)
    a = data.draw(st.integers(0, len(strings)))
    b = data.draw(st.integers(a, len(strings)))
    assert table.strings(a, b) == strings[a:b]


def _corpus() -> list[Document]:
    rng = np.random.default_rng(11)
    vocab = [
        "cardiac", "arrest", "pulse", "C-spine", "12-lead", "naïve", "Ärzte", "the", "not",
        "aspirin", "O'Neil's", "x\u2010ray", "ﬁbrillation", "2.5", "patient", "EMT",
    ]  # fmt: skip
    docs = []
    for i in range(60):
        sentences = [
            " ".join(rng.choice(vocab, size=int(rng.integers(3, 12)))).capitalize() + "."
            for _ in range(int(rng.integers(2, 14)))
        ]
        text = " ".join(sentences)
        heading = f"Part {i % 4}" if i % 3 else ""
        sections = (Section(0, 0, heading),) if heading else ()
        docs.append(Document(id=f"doc{i}", title=f"Title {i % 7}", text=text, sections=sections))
    return docs


@needs_fork
@pytest.mark.parametrize(
    ("weighting", "tables_first"), [("bm25", True), ("tfidf", True), ("bm25", False)]
)
def test_forked_counting_gives_the_serial_index(
    weighting: str, tables_first: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_CHUNK", 7)  # many slices per worker
    if not tables_first:  # as on a large corpus: workers read the Passage objects
        monkeypatch.setattr(store_module, "TABLES_FIRST_BELOW", 0)
    monkeypatch.setattr(store_module, "_SURFACE_SAMPLE", 40)  # a sample across several slices
    passages = split_documents(_corpus(), target_words=12, min_words=5, max_words=20)
    assert len(passages) > 100
    settings_ = IndexSettings(weighting=weighting)
    serial = build_store(passages, settings_, workers=1, keep_terms=True)
    forked = build_store(passages, settings_, workers=2, keep_terms=True)
    names = ("term_hash", "idf", "post_ptr", "post_idx", "post_w", "post_scale", "p_doc")
    for name in names:
        assert np.array_equal(getattr(serial, name), getattr(forked, name)), name
    assert serial.terms is not None and forked.terms is not None
    assert serial.terms.blob.tobytes() == forked.terms.blob.tobytes()
    # the surface words: the most frequent plain tokens of the first 40 passages
    counts = Counter(t for p in passages[:40] for t in tokenize(p.text))
    expected = [
        w
        for w, _ in Counter(
            {w: c for w, c in counts.items() if len(w) > 2 and w not in STOP_WORDS}
        ).most_common()
        if not w[0].isdigit()
    ]
    assert list(serial.words) == list(forked.words) == expected[: store_module._SURFACE_LIMIT]


def test_passage_tables_read_back_the_passages() -> None:
    passages = split_documents(_corpus(), target_words=12, min_words=5, max_words=20)
    tables = _passage_tables(passages)
    texts, titles, sections = tables.fields(3, len(passages) - 2)
    assert texts == [p.text for p in passages[3:-2]]
    assert titles == [p.title for p in passages[3:-2]]
    assert sections == [p.section for p in passages[3:-2]]
    docs = [tables.doc_ids[d] for d, _, _ in tables.places(0, len(passages))]
    assert docs == [p.doc_id for p in passages]
    assert tables.places(5, 6) == [(int(tables.p_doc[5]), passages[5].start, passages[5].end)]


@given(st.lists(st.sampled_from([*WORDS, "running", "runs", "als", "abcs", "c-spine", "12-leads"])))
def test_stems_made_in_one_call_are_the_stems_made_one_by_one(words: list[str]) -> None:
    tokens = [t for w in words for t in tokenize(w)]
    for stem in (True, False):
        assert Analyzer(stem=stem).stems_of(tokens) == [
            Analyzer(stem=stem).stem_of(t) for t in tokens
        ]


_STORE_ARRAYS = (
    "term_hash", "post_ptr", "post_idx", "post_w", "post_scale",
    "p_doc", "p_start", "p_end", "p_ordinal", "p_section",
)  # fmt: skip
_STORE_TABLES = ("p_text", "doc_ids", "doc_titles", "doc_sources", "sections")


def _same_store(a: store_module.Store, b: store_module.Store) -> None:
    for name in _STORE_ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    for name in _STORE_TABLES:
        x, y = getattr(a, name), getattr(b, name)
        assert x.blob.tobytes() == y.blob.tobytes(), name
        assert np.array_equal(x.offsets, y.offsets), name
    assert a.words == b.words


@needs_fork
@pytest.mark.parametrize("weighting", ["bm25", "tfidf"])
def test_splitting_and_counting_in_one_round_gives_the_two_step_index(
    weighting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "_CHUNK", 4)  # many slices of documents per worker
    monkeypatch.setattr(store_module, "_SURFACE_SAMPLE", 40)  # a sample across several slices
    docs = _corpus()
    # documents without passages (empty, only whitespace) and ids used twice, in the mix
    docs[5] = Document(id="empty", title="Nothing", text="")
    docs[6] = Document(id="blank", title="", text="  \n\n  ")
    docs[20] = Document(id=docs[3].id, title="Other title", text=docs[20].text, source="x.txt")
    settings_ = IndexSettings(weighting=weighting, target_words=12, min_words=5, max_words=20)
    passages = split_documents(docs, target_words=12, min_words=5, max_words=20, workers=1)
    two_step = build_store(passages, settings_, workers=1)
    one_round = store_module.build_store_from_documents(docs, settings_, workers=2)
    _same_store(two_step, one_round)


@needs_fork
def test_surface_words_are_counted_when_the_first_documents_make_no_passages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # slices starting past the sample's size in documents do not keep their tokens: the words
    # of the passages still within the sample are then counted by the parent
    monkeypatch.setattr(store_module, "_CHUNK", 3)
    monkeypatch.setattr(store_module, "_SURFACE_SAMPLE", 12)
    docs = [Document(id=f"e{i}", title="", text=" ") for i in range(14)] + _corpus()[:20]
    settings_ = IndexSettings(target_words=12, min_words=5, max_words=20)
    passages = split_documents(docs, target_words=12, min_words=5, max_words=20, workers=1)
    two_step = build_store(passages, settings_, workers=1)
    one_round = store_module.build_store_from_documents(docs, settings_, workers=2)
    _same_store(two_step, one_round)
    assert one_round.words


@needs_fork
def test_index_build_splits_and_counts_in_one_round_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from emsqa import index as index_module
    from emsqa.index import Index

    calls: list[str] = []
    real_tables, real_split = store_module._joined_tables, index_module.split_documents

    def tables(*args: object) -> object:
        calls.append("one round")  # the tables made from the workers' slices
        return real_tables(*args)  # type: ignore[arg-type]

    def split(*args: object, **kwargs: object) -> object:
        calls.append("two steps")
        return real_split(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "_joined_tables", tables)
    monkeypatch.setattr(index_module, "split_documents", split)
    monkeypatch.setattr(store_module, "PARALLEL_SPLIT_FROM", 10)
    docs = _corpus()
    settings_ = {"target_words": 12, "min_words": 5, "max_words": 20}
    one_round = Index.build(docs, **settings_).store_
    seen: list[tuple[int, int]] = []  # with a progress callback: the two steps
    two_step = Index.build(docs, progress=lambda d, t: seen.append((d, t)), **settings_).store_
    assert one_round is not None and two_step is not None
    _same_store(two_step, one_round)
    assert seen and seen[-1][0] == seen[-1][1] == two_step.n_passages
    assert calls == ["one round", "two steps"]
    with pytest.raises(UsageError, match="Document"):
        store_module.build_store_from_documents([*docs, "text"], IndexSettings(), workers=2)  # type: ignore[list-item]


# ASCII text of the characters that decide tokens: digits, letters, separators, joiners, "_"
_ASCII_PIECES = [
    "1",
    "2,5",
    "3.5",
    "12",
    "a",
    "B",
    "zz",
    "'",
    "'s",
    "-",
    ".",
    ",",
    "_",
    " ",
    "x-",
    "\n",
]


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from(_ASCII_PIECES), max_size=30),
    st.text(alphabet=st.characters(max_codepoint=127), max_size=30),
)
def test_ascii_tokens_are_the_unicode_patterns_tokens(pieces: list[str], noise: str) -> None:
    import re

    from emsqa import text as text_module

    reference = re.compile(text_module._TOKEN_PATTERN)  # the Unicode pattern, as on any text
    for sample in ("".join(pieces), noise, "".join(pieces) + noise):
        assert text_module._ASCII_TOKEN_RE.findall(sample) == reference.findall(sample)
        # "...n't" splits in two (tested on its own in test_text); then "'s" goes
        found = text_module._negations_split(reference.findall(sample.lower()))
        assert tokenize(sample) == [t[:-2] if t.endswith("'s") else t for t in found]


def test_postings_put_in_term_order_at_once_or_in_slices_are_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passages = split_documents(_corpus(), target_words=12, min_words=5, max_words=20)
    settings_ = IndexSettings()
    at_once = build_store(passages, settings_, workers=1)
    monkeypatch.setattr(store_module, "_AT_ONCE", 0)
    monkeypatch.setattr(store_module, "_SCATTER", 50)  # many slices of rows
    sliced = build_store(passages, settings_, workers=1)
    _same_store(at_once, sliced)


@given(st.lists(st.integers(0, 3000), max_size=60), st.integers(1, 4))
def test_document_slices_cover_every_document_within_the_text_budget(
    lengths: list[int], workers: int
) -> None:
    docs = [Document(id=f"d{i}", title="", text="x" * k) for i, k in enumerate(lengths)]
    old = store_module._SLICE_TEXT, store_module._CHUNK
    store_module._SLICE_TEXT, store_module._CHUNK = 2_500, 7
    try:
        cuts = store_module._document_cuts(docs, workers)
    finally:
        store_module._SLICE_TEXT, store_module._CHUNK = old
    assert cuts[0] == 0 and cuts[-1] == len(docs)
    for a, b in itertools.pairwise(cuts):
        assert 0 < b - a <= 7
        assert b - a == 1 or sum(lengths[a:b]) <= 2_500


@needs_fork
def test_one_round_build_of_nothing_searchable_fails_as_the_two_steps_do() -> None:
    from emsqa.errors import IndexStateError

    blank = [Document(id=f"d{i}", title="", text="  \n ") for i in range(12)]
    with pytest.raises(IndexStateError, match="produced no passages"):
        store_module.build_store_from_documents(blank, IndexSettings(), workers=2)
    stop_words = [Document(id=f"d{i}", title="", text="The of and. A an.") for i in range(12)]
    with pytest.raises(IndexStateError, match="no searchable words"):
        store_module.build_store_from_documents(stop_words, IndexSettings(), workers=2)
