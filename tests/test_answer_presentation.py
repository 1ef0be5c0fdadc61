"""How an answer presents its sentences (issue 5 follow-ups).

1. A lead taken from a list item reads as a sentence (capital letter, full stop) while its quote and
   offsets still name the source exactly as written.
2. A question comparing two things ("X vs Y", "the difference between X and Y", "how does X differ
   from Y") leads with a sentence, or an adjacent pair, that sets the two apart, where the passages
   hold one; sides are matched strictly (their own words, or an exact abbreviation).

Each end-to-end case also runs with the rule switched off (monkeypatched) to show that another
sentence would lead without it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emsqa import answer
from emsqa.answer import _as_sentence, _form_groups, _naming, _set_apart, _strict_sides
from emsqa.datatypes import Answer, AnswerSentence, Document
from emsqa.index import Index
from emsqa.render import passage_fragments
from emsqa.text import Analyzer, load_lexicon

_MARKER = re.compile(r" ?\[\d+\]")


def _shown(result: Answer) -> list[str]:
    """The sentences of `result.text`, as the user reads them (markers dropped)."""
    return [s.strip() for s in _MARKER.split(result.text) if s.strip()]


def _source(result: Answer, s: AnswerSentence) -> str:
    """The document text at the sentence's offsets, read through its cited passage."""
    p = result.citations[s.citation - 1].passage
    return p.text[s.start - p.start : s.end - p.start]


def _words(text: str) -> str:
    return " ".join(text.split())


_ITEM_MARK = re.compile(r"(?m)^\s*- ")
_ITEM_END = re.compile(r"[.;](?=\s|$)")


def _list_words(text: str) -> str:
    """_words() with a list's bullet markers and the '.'/';' that end its items left out: how a
    lead-in and its items shown as one sentence ("An EMT may: a; b.") quote "An EMT may:\n- a\n- b"."""
    return _words(_ITEM_END.sub("", _ITEM_MARK.sub("", text)))


def _without_contrast_lead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(answer, "_contrast_lead", lambda *args, **kwargs: [])


# ----------------------------------------------------------------------- 1. list items as leads

_SKILLS = Document(
    id="skills.md",
    title="What an EMT may do",
    text="The crew checks the kit at the start of every shift.\n\n"
    "An EMT learns a short list of skills.\n\n"
    "- give oral glucose for low blood sugar\n"
    "- splint a broken arm;\n"
    "- help a patient use their own inhaler\n",
)


def test_a_list_item_leads_as_a_sentence_and_is_cited_as_written() -> None:
    result = Index.build([_SKILLS], abstain_below=0.0).ask("Can an EMT give oral glucose?")
    lead = result.sentences[0]
    source = _source(result, lead)
    assert source.lstrip("- ").startswith("give oral glucose")  # written in lower case ...
    assert lead.text == _words(source.lstrip("- "))  # ... and quoted exactly so
    shown = _shown(result)[0]
    assert shown == lead.text[0].upper() + lead.text[1:] + "."  # ... but shown as a sentence
    assert len(_shown(result)) == len(result.sentences)


_KIT = Document(
    id="kit.md",
    title="Station notes",
    text="Crews restock after every call.\n\n"
    "On top of the basics, a crew member may:\n\n"
    "- check the oxygen cylinders and the suction unit\n"
    "- give oral glucose for low blood sugar\n"
    "- splint a broken arm with a vacuum splint\n",
)


def test_a_question_about_one_list_item_gets_that_item_with_the_lead_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = Index.build([_KIT], abstain_below=0.0)
    lead = index.ask("Can a crew member use a vacuum splint?").sentences[0]
    # the lead-in, a mark for the items left out, and the item: not the whole list
    assert lead.text == (
        "On top of the basics, a crew member may: … splint a broken arm with a vacuum splint"
    )
    first = index.ask("Can a crew member check oxygen cylinders?").sentences[0]
    assert first.text.endswith("may: check the oxygen cylinders and the suction unit")
    monkeypatch.setattr(answer, "LIST_ITEM_LEADS", False)
    whole = index.ask("Can a crew member use a vacuum splint?").sentences[0]
    assert "oral glucose" in whole.text and "vacuum splint" in whole.text


def test_a_question_about_the_whole_list_gets_the_whole_list() -> None:
    index = Index.build([_KIT], abstain_below=0.0)
    lead = index.ask("What may a crew member do?").sentences[0]
    assert "oxygen cylinders" in lead.text and "vacuum splint" in lead.text
    assert "…" not in lead.text


def test_the_passage_view_still_highlights_the_source_words() -> None:
    result = Index.build([_SKILLS], abstain_below=0.0).ask("Can an EMT give oral glucose?")
    lead = result.sentences[0]
    fragments = passage_fragments(result, lead.citation, width=70)
    highlighted = _words(" ".join(t for style, t in fragments if style == "class:highlight"))
    cited = sorted(
        (s for s in result.sentences if s.citation == lead.citation), key=lambda s: s.start
    )
    assert highlighted == _words(" ".join(_source(result, s) for s in cited))
    assert "give oral glucose" in highlighted


@pytest.mark.parametrize(
    ("quote", "shown"),
    [
        ("give oral glucose", "Give oral glucose."),
        ("splint a broken arm;", "Splint a broken arm."),
        ("x-ray the arm, then splint it", "X-ray the arm, then splint it."),
        ("“check the scene” first.", "“Check the scene” first."),
        ("élan is a word.", "Élan is a word."),
        ("mRNA vaccines are stored cold.", "mRNA vaccines are stored cold."),  # mixed case stays
        ("pH falls in shock", "pH falls in shock."),
        ("e.g. a splint", "e.g. a splint."),  # not a plain word
        ("5 mg is the dose", "5 mg is the dose."),
        ("An EMT may:", "An EMT may:"),  # a list lead keeps its colon
        ("Is it safe?", "Is it safe?"),
        ('He said "stop."', 'He said "stop."'),
        ("(see the protocol)", "(See the protocol)."),
    ],
)
def test_shown_sentences_start_with_a_capital_and_end_with_a_stop(quote: str, shown: str) -> None:
    assert _as_sentence(quote) == shown


@given(st.text(alphabet="abcXYZ é,;:.!?-'\"()", max_size=40))
def test_showing_only_touches_one_letter_and_the_end(quote: str) -> None:
    shown = _as_sentence(quote)
    core = quote.rstrip().rstrip(",;").rstrip()
    assert shown[len(core) :] in ("", ".")
    changed = [i for i, (a, b) in enumerate(zip(core, shown, strict=False)) if a != b]
    assert len(changed) <= 1  # at most one letter, made a capital
    assert all(shown[i] == core[i].upper() for i in changed)
    assert _as_sentence(shown) == shown  # showing twice changes nothing more


def test_the_shipped_aspirin_answer_leads_with_a_sentence() -> None:
    from emsqa.api import default_index

    result = default_index().ask("Can an EMT give aspirin?")
    assert not result.abstained
    for shown, s in zip(_shown(result), result.sentences, strict=True):
        assert shown[0].isupper() or not shown[0].islower()
        assert shown[-1] in ".!?:"
        assert shown.casefold().startswith(s.text[:20].casefold())
    lead = result.sentences[0]
    # the quote is the source's words (a list shown as one sentence loses only its bullets), in
    # order, where "…" marks the list items left out
    source = _list_words(_source(result, lead))
    at = 0
    for piece in lead.text.split(" … "):
        found = source.find(_list_words(piece), at)
        assert found >= at, (piece, source)
        at = found + len(_list_words(piece))
    assert "aspirin" in lead.text


# ------------------------------------------------------------- 2. comparisons lead with a contrast

_CREWS = [
    Document(
        id="crews.txt",
        title="EMTs and paramedics",
        text="EMTs and paramedics both work on ambulance crews. "
        "EMTs and paramedics answer emergency calls together. "
        "Every EMT and every paramedic wears a uniform.",
    ),
    Document(
        id="skills.txt",
        title="Skills",
        text="Paramedics give drugs through a vein, while EMTs give only oxygen and oral glucose. "
        "Training takes longer for the advanced level.",
    ),
]
_CONTRAST = "Paramedics give drugs through a vein, while EMTs give only oxygen and oral glucose."


@pytest.mark.parametrize(
    "question",
    [
        "What is the difference between an EMT and a paramedic?",
        "EMT vs paramedic",
        "How does an EMT differ from a paramedic?",
    ],
)
def test_a_comparison_leads_with_the_sentence_that_sets_both_sides_apart(
    question: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = Index.build(_CREWS, abstain_below=0.0)
    result = index.ask(question)
    lead = result.sentences[0]
    assert lead.text == _CONTRAST
    assert _source(result, lead) == _CONTRAST  # offsets name the sentence exactly
    assert result.citations[lead.citation - 1].passage.doc_id == "skills.txt"
    _without_contrast_lead(monkeypatch)
    assert index.ask(question).sentences[0].text != _CONTRAST


def _with_skills(text: str) -> list[Document]:
    """_CREWS with another skills document."""
    return [_CREWS[0], Document(id="skills.txt", title="Skills", text=text)]


def _answer_owes_nothing_to_the_lead(
    monkeypatch: pytest.MonkeyPatch, docs: list[Document], question: str, **build: Any
) -> None:
    index = Index.build(docs, abstain_below=0.0, **build)
    before = index.ask(question)
    _without_contrast_lead(monkeypatch)
    assert index.ask(question) == before


def test_questions_that_compare_nothing_keep_their_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    question = "Do EMTs and paramedics work on ambulance crews?"
    _answer_owes_nothing_to_the_lead(monkeypatch, _CREWS, question)


def test_without_a_sentence_naming_both_sides_apart_the_answer_is_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = _with_skills("Paramedics give drugs through a vein. Oral glucose is given by mouth.")
    question = "What is the difference between an EMT and a paramedic?"
    _answer_owes_nothing_to_the_lead(monkeypatch, docs, question)


_PAIR = _with_skills(
    "Training takes longer for the advanced level. "
    "EMTs give oxygen and oral glucose on every call. "
    "Paramedics, on the other hand, give drugs through a vein."
)


def test_an_adjacent_pair_naming_one_side_each_leads_in_its_own_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = Index.build(_PAIR, abstain_below=0.0)
    result = index.ask("EMT vs paramedic")
    first, second = result.sentences[:2]
    assert first.text == "EMTs give oxygen and oral glucose on every call."
    assert second.text == "Paramedics, on the other hand, give drugs through a vein."
    assert first.citation == second.citation and first.end < second.start
    assert _source(result, second) == second.text
    _without_contrast_lead(monkeypatch)
    assert not index.ask("EMT vs paramedic").sentences[0].text.startswith("EMTs give oxygen")


_OUTRIGHT = _with_skills(
    "Additionally, paramedics give drugs through a vein, while EMTs give only oxygen. "
    "Ambulance crews restock oxygen after every call. "
    "One key difference is that EMTs give oxygen and oral glucose. "
    "Paramedics, on the other hand, give drugs through a vein."
)


def test_a_pair_saying_difference_outright_leads_before_a_sentence_adding_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = Index.build(_OUTRIGHT, abstain_below=0.0)
    question = "What is the difference between an EMT and a paramedic?"
    first, second = index.ask(question).sentences[:2]
    assert first.text == "One key difference is that EMTs give oxygen and oral glucose."
    assert second.text == "Paramedics, on the other hand, give drugs through a vein."
    # without the preference, the "Additionally, ..." sentence (the higher score) would lead
    monkeypatch.setattr(answer, "_says_differ", lambda text: False)
    assert index.ask(question).sentences[0].text.startswith("Additionally")


def test_the_seed_articles_question_leads_with_its_key_difference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shipped corpus' headline question: the seed article's "One key difference ..." pair sits
    in the fifth passage, below the three an answer draws on; comparisons look at COMPARE_POOL."""
    from emsqa.api import shipped_corpus

    index = Index.build(shipped_corpus())
    question = "What is the difference between an EMT and a paramedic?"
    result = index.ask(question)
    assert result.sentences[0].text.startswith("One key difference is that EMTs")
    assert "more advanced training" in result.sentences[1].text
    monkeypatch.setattr(answer, "COMPARE_POOL", 3)
    assert not index.ask(question).sentences[0].text.startswith("One key difference")


# ----------------------------------------------------------------- strict matching of the sides

_LEXICON = load_lexicon(
    [
        ("EMT", "emergency medical technician", "EMT-B"),
        ("AEMT", "advanced EMT", "advanced emergency medical technician"),
        ("EMT-P", "paramedic", "EMT-Paramedic"),
    ]
)
_ANALYZER = Analyzer()
_QUESTION = "What is the difference between an EMT and a paramedic?"


def _judge(sentence: str, question: str = _QUESTION) -> tuple[bool, bool]:
    groups = _form_groups(_LEXICON, _ANALYZER)
    sides = _strict_sides(question, _ANALYZER, _LEXICON, groups)
    assert len(sides) == 2
    return _set_apart(_naming(sentence, sides, _ANALYZER, groups))


def test_sides_gain_only_exact_abbreviations() -> None:
    groups = _form_groups(_LEXICON, _ANALYZER)
    emt, paramedic = _strict_sides(_QUESTION, _ANALYZER, _LEXICON, groups)
    assert emt.forms == {("emt",), tuple(_ANALYZER.content("emergency medical technician"))}
    assert paramedic.forms == {tuple(_ANALYZER.content("paramedic"))}  # EMT-P is no abbreviation
    (aemt, _) = _strict_sides("AEMT vs paramedic", _ANALYZER, _LEXICON, groups)
    assert len(aemt.forms) == 3  # "advanced EMT" = A + EMT counts


@pytest.mark.parametrize(
    ("sentence", "judged"),
    [
        ("Paramedics have more training than EMTs.", (True, True)),
        ("Unlike EMTs, paramedics give drugs through a vein.", (True, True)),
        (
            "An emergency medical technician gives oxygen, while paramedics give drugs.",
            (True, True),
        ),
        ("Many paramedics start as EMTs before moving on to more advanced roles.", (True, False)),
        ("EMTs and paramedics have different skills.", (False, False)),  # named together
        ("EMTs, AEMTs and paramedics ride together.", (False, False)),  # a list of roles
        ("EMT-P crews give drugs, while EMTs give oxygen.", (False, False)),  # EMT-P: a synonym
        (
            "An advanced emergency medical technician starts lines, while paramedics give drugs.",
            (False, False),  # that is the AEMT, not the EMT
        ),
        ("An advanced EMT starts lines, while paramedics give drugs.", (False, False)),
    ],
)
def test_a_sentence_sets_the_sides_apart_only_when_it_names_each_literally(
    sentence: str, judged: tuple[bool, bool]
) -> None:
    assert _judge(sentence) == judged


def test_a_synonym_that_is_no_abbreviation_does_not_promote_a_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = _with_skills(
        "EMT-P crews give drugs through a vein, while EMTs give only oxygen and glucose."
    )
    _answer_owes_nothing_to_the_lead(monkeypatch, docs, _QUESTION, lexicon=_LEXICON)
