"""The splitter's shortcuts change nothing: sentence ends told by the pattern alone are those the
full check (passages._ends_sentence) finds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from emsqa import passages
from emsqa.datatypes import Document
from emsqa.passages import split_documents

# pieces that sit around candidate sentence ends: abbreviations, titles, initials, dotted letters,
# decimals, numbers after "No.", words merely ending like an abbreviation ("normal", "items"),
# long and short words, quotes, brackets, ellipses, mixed case, non-ASCII letters
WORDS = [
    "Dr", "dr", "Prof", "PROF", "prof", "Mrs", "St", "st", "vs", "Vs", "al", "et", "approx", "cf",
    "viz", "e.g", "i.e", "U.S", "J", "j", "No", "no", "Fig", "Jan", "normal", "items", "first",
    "result", "trial", "cells", "a", "of", "The", "Patients", "mRNA", "pH", "2.5", "3", "x2",
    "breathing", "ABCDEFG", "abcdefgh", "naïve", "ſt", "\u212aelvin", "Ärzte", "élan", "X-ray",
    "and/or", "(cells", "\"Dr", "“quoted", "C-spine", "ms", "Col", "Gen", "gen", "antigen",
]  # fmt: skip
MARKS = [".", "!", "?", "…", "...", ".)", '."', ".”", "?!", ".'", ".]", ". .", ""]
GAPS = [" ", "  ", "\n", "\n\n", "\t", " (", ' "', " “", " ¿", "\u00a0", " - ", ""]


@st.composite
def texts(draw: st.DrawFn) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(1, 25))):
        parts.append(draw(st.sampled_from(WORDS)))
        parts.append(draw(st.sampled_from(MARKS)))
        parts.append(draw(st.sampled_from(GAPS)))
    return "".join(parts)


def _reference_ends(seg: str) -> list[int]:
    """Every candidate end (passages._END) checked by passages._ends_sentence."""
    return [m.end() for m in passages._END.finditer(seg) if passages._ends_sentence(seg, m)]


@settings(max_examples=500, deadline=None)
@given(texts())
def test_sentence_ends_found_by_the_pattern_are_the_checked_ones(text: str) -> None:
    assert passages._sentence_ends(text) == _reference_ends(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("aZ.!?… \n\"'()“”«»¿0-ſKé"), max_size=60))
def test_sentence_ends_on_arbitrary_characters(text: str) -> None:
    assert passages._sentence_ends(text) == _reference_ends(text)


def test_the_shortcut_takes_most_ends_of_ordinary_prose() -> None:
    text = (
        "The patient was stable. Breathing was normal. Dr. Smith checked the pulse. "
        "See Fig. 3 and cf. Jones et al. Then we left. Results were clear. It worked."
    )
    fast = [m.end() for m in passages._FAST_END.finditer(text) if m.lastgroup == "capital"]
    assert len(fast) >= 3  # "stable.", "pulse.", "left.", "clear." need no Python check
    assert passages._sentence_ends(text) == _reference_ends(text)
    ends = [text[:e].rsplit(" ", 1)[-1] for e in passages._sentence_ends(text)]
    assert ends == ["stable.", "normal.", "pulse.", "left.", "clear."]  # not "al." nor "Dr."


@settings(max_examples=100, deadline=None)
@given(st.lists(texts(), min_size=1, max_size=4))
def test_passages_keep_every_character_with_the_shortcut(bodies: list[str]) -> None:
    docs = [Document(id=f"d{i}", title="", text=t) for i, t in enumerate(bodies)]
    for p in split_documents(docs, target_words=5, min_words=2, max_words=9, workers=1):
        doc = docs[int(p.doc_id[1:])]
        assert doc.text[p.start : p.end] == p.text and p.text.strip() == p.text
