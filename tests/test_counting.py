"""The vectorised term counting gives Analyzer.fields()'s terms and counts; string tables combine exactly."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from emsqa.counting import Vocabulary, count_chunk, merge_chunks
from emsqa.datatypes import Passage
from emsqa.strings import StringTable
from emsqa.text import Analyzer

WORDS = [
    "the", "a", "not", "no", "patient", "patients", "EMT", "EMTs", "paramedic", "C-spine",
    "12-lead", "A-fib", "cardiac", "arrest", "1,200", "2.5", "don't", "O'Neil", "naïve", "Ärzte",
    "ﬁbrillation", "pulse", "of", "and", "IV", "e-mail", "x-ray", "-", "—", "...",
]  # fmt: skip

texts = st.lists(st.sampled_from(WORDS), max_size=25).map(" ".join)


def _passages(rows: list[tuple[str, str, str]]) -> list[Passage]:
    return [
        Passage(id=f"d#{i}", doc_id="d", title=t, section=s, source="", text=b, start=0, end=len(b))
        for i, (b, t, s) in enumerate(rows)
    ]


def _matrix_terms(chunks: list, n: int) -> list[Counter[str]]:
    counts = merge_chunks(chunks)
    names = [counts.names[i] for i in range(len(counts.names))]
    assert len(set(names)) == len(names)  # one column per term
    assert all(" " not in t for t in names[: counts.n_words])
    assert all(" " in t for t in names[counts.n_words :])
    out = []
    for r in range(n):
        a, b = counts.indptr[r], counts.indptr[r + 1]
        out.append(
            Counter(
                {
                    names[j]: float(v)
                    for j, v in zip(counts.indices[a:b], counts.data[a:b], strict=True)
                }
            )
        )
    return out


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(texts, texts, texts), min_size=1, max_size=8),
    title_weight=st.integers(0, 3),
    section_weight=st.integers(0, 2),
    stem=st.booleans(),
    cut=st.integers(0, 8),
)
def test_counts_equal_the_analyzers_terms(
    rows: list[tuple[str, str, str]], title_weight: int, section_weight: int, stem: bool, cut: int
) -> None:
    passages = _passages(rows)
    analyzer = Analyzer(stem=stem)
    expected = [
        Counter(
            {
                t: float(c)
                for t, c in Counter(
                    analyzer.fields(p.title, p.section, p.text, title_weight, section_weight)
                ).items()
            }
        )
        for p in passages
    ]
    whole = [count_chunk(passages, analyzer, title_weight, section_weight)]
    assert _matrix_terms(whole, len(passages)) == expected
    # the same passages counted in two runs, merged
    cut = min(cut, len(passages))
    parts = [
        count_chunk(passages[:cut], analyzer, title_weight, section_weight),
        count_chunk(passages[cut:], analyzer, title_weight, section_weight),
    ]
    assert _matrix_terms(parts, len(passages)) == expected
    # ... and in two runs numbered by one vocabulary
    vocabulary = Vocabulary(analyzer)
    runs = [
        count_chunk(passages[:cut], analyzer, title_weight, section_weight, vocabulary),
        count_chunk(passages[cut:], analyzer, title_weight, section_weight, vocabulary),
    ]
    assert _matrix_terms(runs, len(passages)) == expected


def test_merging_numbers_words_by_first_appearance_and_bigrams_after_them() -> None:
    analyzer = Analyzer()
    passages = _passages([("cardiac arrest", "", ""), ("arrest cardiac pulse", "", "")])
    counts = merge_chunks(
        [count_chunk(passages[:1], analyzer, 1, 0), count_chunk(passages[1:], analyzer, 1, 0)]
    )
    names = [counts.names[i] for i in range(len(counts.names))]
    assert names[: counts.n_words] == ["cardiac", "arrest", "puls"]
    assert sorted(names[counts.n_words :]) == ["arrest cardiac", "cardiac arrest", "cardiac puls"]


strings = st.lists(st.text(max_size=12), max_size=30)


@given(a=strings, b=strings, data=st.data())
def test_string_tables_concatenate_reorder_and_join_like_python(
    a: list[str], b: list[str], data: st.DataObject
) -> None:
    ta, tb = StringTable.of(a), StringTable.of(b)
    both = StringTable.concat([ta, tb])
    assert [both[i] for i in range(len(both))] == a + b
    if not a:
        return
    picks = data.draw(st.lists(st.integers(0, len(a) - 1), max_size=40))
    order = np.array(picks, dtype=np.int64)
    taken = ta.take(order)
    assert [taken[i] for i in range(len(taken))] == [a[i] for i in picks]
    seconds = data.draw(
        st.lists(st.integers(0, len(a) - 1), min_size=len(picks), max_size=len(picks))
    )
    joined = ta.joined(order, np.array(seconds, dtype=np.int64))
    assert [joined[i] for i in range(len(joined))] == [
        f"{a[i]} {a[j]}" for i, j in zip(picks, seconds, strict=True)
    ]


@given(st.lists(st.integers(-(2**62), 2**62), max_size=60))
def test_sorted_unique_equals_numpys_unique(values: list[int]) -> None:
    from emsqa.arrays import sorted_unique

    array = np.array(values, dtype=np.int64)
    assert sorted_unique(array).tolist() == np.unique(array).tolist()
