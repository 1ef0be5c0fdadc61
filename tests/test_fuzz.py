"""Property tests: arbitrary text never breaks the splitter, the analyzer or ask().

Each property runs twice: a fast version (100 examples) in the normal suite, and a fuzz version
(10,000 examples) marked `fuzz`, run on purpose with

    pytest -m fuzz tests/test_fuzz.py

The properties:
- the splitter never loses or invents characters: every passage is the exact slice of its document
  at its offsets, starts and ends on non-whitespace, and every non-whitespace character outside a
  heading lands in some passage;
- the analyzer never crashes, and every term it makes can be hashed into the index;
- ask() on any string returns a well-formed Answer (or raises a documented EmsqaError), and on
  anything that is not a string raises QuestionError;
- any bytes saved as a .txt/.md/.html file load into Documents (or a CorpusError) that split exactly.
"""

from __future__ import annotations

import json
import re
import warnings
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emsqa import api
from emsqa.answer import NOT_FOUND
from emsqa.corpus import load_file
from emsqa.datatypes import Answer, Document, Section
from emsqa.errors import CorpusError, EmsqaError, EmsqaWarning, QuestionError
from emsqa.index import Index
from emsqa.passages import split_document, split_sentences
from emsqa.retrieve import MAX_QUESTION_CHARS
from emsqa.store import hash_terms
from emsqa.text import Analyzer, load_lexicon, normalize, tokenize

FAST = settings(max_examples=100, deadline=None, database=None)
FUZZ = settings(
    max_examples=10_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- strategies -----------------------------------------------------------------------------------

WORDS = (
    "the patient EMT paramedic A-fib C-spine 12-lead 1,200 2.5 mg/kg IV O2 SpO2 don't "
    "Dr. e.g. U.S. No. 5 Fig. mRNA pH café naïve Фельдшер 救急車 🚑 ﬁre ＥＭＴ"
).split()
PUNCTUATION = list(".!?…,;:-–—()[]{}\"'“”‘’«»/\\*#>|•")
SPACES = [" ", "  ", "\t", "\n", "\n\n", "\r\n", "\r", "\u2028", "\x0b", "\x0c", "\x85", "\xa0"]

# Text built of words, punctuation and every kind of line break: finds splitter edge cases fast.
STRUCTURED = st.lists(
    st.one_of(st.sampled_from(WORDS), st.sampled_from(PUNCTUATION), st.sampled_from(SPACES)),
    max_size=400,
).map("".join)
TEXT = st.one_of(st.text(max_size=600), STRUCTURED)


@st.composite
def documents(draw: st.DrawFn) -> Document:
    text = draw(TEXT)
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=6)))
    spans = list(zip(cuts[::2], cuts[1::2], strict=False))
    sections = tuple(Section(a, b, text[a:b].strip()) for a, b in spans)
    return Document(id="doc", title="Fuzz", text=text, sections=sections)


@st.composite
def split_settings(draw: st.DrawFn) -> dict[str, int]:
    min_words = draw(st.integers(1, 20))
    target = draw(st.integers(min_words, 40))
    return {
        "min_words": min_words,
        "target_words": target,
        "max_words": draw(st.integers(target, 60)),
        "overlap": draw(st.integers(0, 4)),
    }


QUESTIONS = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from([*WORDS, "what", "is", "how", "long", "and", "?"]), max_size=30).map(
        " ".join
    ),
    STRUCTURED,
)
NOT_TEXT = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.binary(max_size=20),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


# --- the properties -------------------------------------------------------------------------------


def check_split(doc: Document, options: dict[str, int]) -> None:
    text = doc.text
    passages = split_document(doc, **options)
    covered = bytearray(len(text))
    for i, p in enumerate(passages):
        assert text[p.start : p.end] == p.text
        assert p.text and not p.text[0].isspace() and not p.text[-1].isspace()
        assert (p.id, p.ordinal, p.doc_id) == (f"doc#{i}", i, "doc")
        assert len(p.text.split()) <= options["max_words"]
        covered[p.start : p.end] = b"\x01" * (p.end - p.start)
    heading = bytearray(len(text))
    for s in doc.sections:
        heading[s.start : s.end] = b"\x01" * (s.end - s.start)
    lost = [
        i for i, ch in enumerate(text) if not ch.isspace() and not covered[i] and not heading[i]
    ]
    assert not lost, f"characters at {lost[:5]} are in no passage"
    spans = split_sentences(text)
    assert all(a < b for a, b in spans)
    assert all(b1 <= a2 for (_, b1), (a2, _) in pairwise(spans))
    in_sentences = "".join(text[a:b] for a, b in spans)
    assert "".join(in_sentences.split()) == "".join(text.split())


ANALYZERS = [Analyzer(stem=s, bigrams=b) for s in (True, False) for b in (True, False)]
LEXICON = load_lexicon()


def check_analyzer(text: str) -> None:
    assert isinstance(normalize(text), str)
    assert all(tok and isinstance(tok, str) for tok in tokenize(text))
    for analyzer in ANALYZERS:
        terms = analyzer.terms(text)
        assert all(t and isinstance(t, str) for t in terms)
        assert len(hash_terms(terms)) == len(terms)  # every term encodes to UTF-8
        assert set(analyzer.content(text)) <= set(terms)
        analyzer.phrase_terms(text)
        analyzer.fields(text, text[:20], text, 2, 1)
    for found, other in LEXICON.expansions(text):
        assert found and other


FUZZ_DOCS = [
    Document(
        id="airway.md",
        title="Airway",
        text=(
            "Open the airway with a head-tilt chin-lift. Use a jaw-thrust when a C-spine injury "
            "is suspected. An EMT may insert an oropharyngeal airway in an unresponsive patient."
        ),
    ),
    Document(
        id="drugs.md",
        title="Drugs",
        text=(
            "A paramedic may give IV drugs such as epinephrine 1 mg every 3 to 5 minutes. "
            "Aspirin 324 mg is chewed for suspected cardiac chest pain. 救急車 🚑 Фельдшер."
        ),
    ),
]


@pytest.fixture(scope="module")
def fuzz_index() -> Index:
    return Index.build(FUZZ_DOCS, name="fuzz")


_MARKER = re.compile(r"\[(\d+)\]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def check_answer(answer: Answer, question: str) -> None:
    assert isinstance(answer, Answer)
    assert answer.question == question
    json.dumps(answer.to_dict())
    assert 0.0 <= answer.confidence <= 1.0
    if answer.kind == "smalltalk":
        return
    assert answer.query is not None
    assert len(answer.query.text) <= MAX_QUESTION_CHARS
    assert not _CONTROL.search(answer.query.text)
    if answer.abstained:
        assert answer.text == NOT_FOUND and not answer.citations and answer.reason
        return
    numbers = [c.n for c in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1))
    assert {int(n) for n in _MARKER.findall(answer.text)} == set(numbers)
    for s in answer.sentences:
        assert s.citation in numbers


def check_ask(index: Index, question: str, history: list[str]) -> None:
    try:
        check_answer(index.ask(question), question)
        conversation = api.Conversation(index)
        for earlier in history:
            check_answer(conversation.ask(earlier), earlier)
        check_answer(conversation.ask(question), question)
    except EmsqaError as exc:  # documented, and one line for a person
        assert str(exc) and "\n" not in str(exc)


def check_not_text(index: Index, value: object) -> None:
    with pytest.raises(QuestionError):
        index.ask(value)  # type: ignore[arg-type]


def check_any_bytes(folder: Path, data: bytes, suffix: str) -> None:
    path = folder / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            docs = load_file(path)
        assert all(issubclass(w.category, EmsqaWarning) for w in caught)
    except CorpusError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    for doc in docs:
        for s in doc.sections:
            assert 0 <= s.start <= s.end <= len(doc.text)
        check_split(
            Document(id="doc", title=doc.title, text=doc.text, sections=doc.sections),
            {"min_words": 3, "target_words": 8, "max_words": 12, "overlap": 1},
        )


BYTES = st.one_of(
    st.binary(max_size=600),
    STRUCTURED.map(lambda t: t.encode("utf-8")),
    st.lists(
        st.sampled_from(
            [
                "# ",
                "## ",
                "Title\n",
                "===\n",
                "---\n",
                "- item\n",
                "```\n",
                "<h1>",
                "</h1>",
                "<p>",
                "<br>",
                "<script>",
                "&amp;",
                "&#0;",
                "\x00",
                "\r\n",
                "text. ",
                "More text! ",
                "\xe9",
            ]
        ),
        max_size=60,
    ).map(lambda parts: "".join(parts).encode("utf-8", "surrogateescape")),
)
SUFFIXES = st.sampled_from([".txt", ".md", ".html"])


@pytest.fixture(scope="module")
def bytes_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-files")


# --- fast versions (normal suite) -----------------------------------------------------------------


@FAST
@given(doc=documents(), options=split_settings())
def test_split_never_loses_or_invents_characters(doc: Document, options: dict[str, int]) -> None:
    check_split(doc, options)


@FAST
@given(text=TEXT)
def test_analyzer_never_crashes(text: str) -> None:
    check_analyzer(text)


@FAST
@given(question=QUESTIONS, history=st.lists(QUESTIONS, max_size=2))
def test_ask_returns_an_answer_or_a_documented_error(
    fuzz_index: Index, question: str, history: list[str]
) -> None:
    check_ask(fuzz_index, question, history)


@FAST
@given(value=NOT_TEXT)
def test_ask_refuses_what_is_not_text(fuzz_index: Index, value: object) -> None:
    check_not_text(fuzz_index, value)


@FAST
@given(data=BYTES, suffix=SUFFIXES)
def test_any_file_loads_and_splits_exactly_or_is_refused(
    bytes_folder: Path, data: bytes, suffix: str
) -> None:
    check_any_bytes(bytes_folder, data, suffix)


def test_a_known_hard_case_for_each_property(fuzz_index: Index, bytes_folder: Path) -> None:
    """Fixed examples that once needed care: CRLF, U+2028, a lone surrogate, NUL bytes."""
    hard = "Dr. Smith arrived.\r\nU.S. EMS\u2028rules\x85apply. \ud800 Fig. 3 shows it!?"
    check_split(Document(id="doc", title="", text=hard), {"min_words": 1, "target_words": 2,
                                                          "max_words": 3, "overlap": 2})  # fmt: skip
    check_analyzer(hard)
    check_ask(fuzz_index, hard, [hard])
    check_any_bytes(bytes_folder, b"# T\x00itle\n\ntext\xff", ".md")


# --- fuzz versions (pytest -m fuzz) ---------------------------------------------------------------


@pytest.mark.fuzz
@FUZZ
@given(doc=documents(), options=split_settings())
def test_fuzz_split(doc: Document, options: dict[str, int]) -> None:
    check_split(doc, options)


@pytest.mark.fuzz
@FUZZ
@given(text=TEXT)
def test_fuzz_analyzer(text: str) -> None:
    check_analyzer(text)


@pytest.mark.fuzz
@FUZZ
@given(question=QUESTIONS, history=st.lists(QUESTIONS, max_size=2))
def test_fuzz_ask(fuzz_index: Index, question: str, history: list[str]) -> None:
    check_ask(fuzz_index, question, history)


@pytest.mark.fuzz
@FUZZ
@given(value=NOT_TEXT)
def test_fuzz_ask_not_text(fuzz_index: Index, value: object) -> None:
    check_not_text(fuzz_index, value)


@pytest.mark.fuzz
@FUZZ
@given(data=BYTES, suffix=SUFFIXES)
def test_fuzz_any_file(bytes_folder: Path, data: bytes, suffix: str) -> None:
    check_any_bytes(bytes_folder, data, suffix)
