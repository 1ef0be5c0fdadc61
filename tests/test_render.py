"""render.py: pure string tests on hand-built Answers (no index involved)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsqa.datatypes import Answer, AnswerSentence, Citation, Hit, Passage, Query
from emsqa.errors import UsageError
from emsqa.render import (
    ABSTAIN_LINE,
    answer_fragments,
    passage_fragments,
    render_answer,
    render_passage,
    render_sources,
    render_why,
    to_ansi,
    to_plain,
    wrap_fragments,
)

SGR = re.compile(r"\x1b\[[0-9;]*m")

DOC = (
    "Airway management\n\n"
    "Open the airway with a head-tilt chin-lift unless a spinal injury is suspected. "
    "Use a jaw-thrust when the cervical spine may be hurt. "
    "Suction the mouth before ventilating if fluids are present.\n\n"
    "  • Insert an oropharyngeal airway only in unresponsive patients without a gag reflex.\n"
    "Vascular access\n\n"
    "Paramedics may start an IV line to give fluids and drugs. "
    "An intraosseous line is the fallback when no vein can be found."
)
DOC_OFFSET = 1000  # the document text starts at this offset in a larger file


def _passage(pid: str, start_word: str, end_word: str, section: str) -> Passage:
    lo = DOC.index(start_word)
    hi = DOC.index(end_word) + len(end_word)
    return Passage(
        id=pid,
        doc_id="airway",
        title="Basic and advanced airway care",
        section=section,
        source="/courses/ems/02-airway.md",
        text=DOC[lo:hi],
        start=DOC_OFFSET + lo,
        end=DOC_OFFSET + hi,
    )


P1 = _passage("airway#0", "Open the airway", "gag reflex.", "Airway management")
P2 = _passage("airway#1", "Paramedics may", "can be found.", "Vascular access")


def _sentence(text: str, n: int) -> AnswerSentence:
    lo = DOC.index(text)
    return AnswerSentence(
        text=text, citation=n, start=DOC_OFFSET + lo, end=DOC_OFFSET + lo + len(text)
    )


S1 = "Use a jaw-thrust when the cervical spine may be hurt."
S2 = "Paramedics may start an IV line to give fluids and drugs."


def make_answer(**changes: object) -> Answer:
    fields: dict[str, object] = {
        "question": "How do I open the airway if the neck may be injured, and can I use an IV?",
        "text": f"{S1[:-1]} [1]. {S2[:-1]} [2].",
        "citations": (Citation(1, P1, 0.61), Citation(2, P2, 0.27)),
        "sentences": (_sentence(S1, 1), _sentence(S2, 2)),
        "confidence": 0.58,
        "query": Query(
            text="How do I open the airway if the neck may be injured, and can I use an IV?",
            terms=("open", "airway", "neck", "injur", "iv"),
            expansions=(("IV", "intravenous"),),
        ),
        "hits": (Hit(P1, 0.61, 1), Hit(P2, 0.27, 2)),
    }
    fields.update(changes)
    return Answer(**fields)  # type: ignore[arg-type]


def lines(text: str) -> list[str]:
    return text.split("\n")


# --------------------------------------------------------------------------- the answer


def test_answer_lists_sentences_then_sources_with_labels() -> None:
    answer = make_answer()
    text = render_answer(answer)
    flat = " ".join(text.split())
    assert flat.startswith(" ".join(answer.text.split()))
    assert "\nSources\n" in text
    for c in answer.citations:
        label = f"[{c.n}] {c.passage.title} — {c.passage.section} (02-airway.md)"
        assert label in " ".join(text.split())
    # Sources come after the answer, in citation order.
    assert text.index("[1] Basic") < text.index("[2] Basic")
    assert text.index(answer.text.split()[0]) < text.index("Sources")


def test_markers_are_styled_and_text_is_unchanged() -> None:
    answer = make_answer()
    fragments = answer_fragments(answer)
    markers = [t for style, t in fragments if style == "class:marker"]
    assert markers[:2] == ["[1]", "[2]"]  # the two in the answer text come first
    assert to_plain(fragments) == render_answer(answer)


def test_expansions_and_notice_lines() -> None:
    notice = "Your question was cut to its first 300 characters."
    answer = make_answer(
        query=Query(text="q", terms=("iv",), expansions=(("IV", "intravenous"),), notice=notice)
    )
    text = render_answer(answer)
    assert "Expanded: IV → intravenous" in text
    assert "Note: " + notice in " ".join(text.split())
    plain = render_answer(make_answer(query=Query(text="q", terms=("iv",))))
    assert "Expanded" not in plain and "Note:" not in plain


def test_lines_fit_the_width() -> None:
    for width in (40, 60, 88):
        for line in lines(render_answer(make_answer(), width=width)):
            assert len(line) <= width, line


def test_source_excerpt_is_indented_and_from_the_passage() -> None:
    text = render_answer(make_answer(), width=70)
    body = [
        line for line in lines(text) if line.startswith("    ") and "(02-airway.md)" not in line
    ]
    assert body, text
    words = " ".join(" ".join(body).split()).replace("…", "").split()
    passage_words = " ".join(P1.text.split()) + " " + " ".join(P2.text.split())
    assert all(word in passage_words for word in words)


def test_str_of_answer_is_the_plain_rendering() -> None:
    answer = make_answer()
    assert str(answer) == render_answer(answer, color=False)


def test_smalltalk_has_no_sources_or_expansion() -> None:
    answer = Answer(
        question="thanks!",
        text="You're welcome. Ask another question any time.",
        kind="smalltalk",
        query=Query(text="thanks!", expansions=(("X", "y"),)),
    )
    assert render_answer(answer) == answer.text


def test_abstention_gives_reason_and_related_reading() -> None:
    reason = "no passage mentions 'hyperbaric'"
    answer = Answer(
        question="When is hyperbaric oxygen indicated?",
        text=ABSTAIN_LINE,
        abstained=True,
        reason=reason,
        related=(Hit(P2, 0.04, 1), Hit(P1, 0.02, 2)),
    )
    text = render_answer(answer)
    assert lines(text)[0] == ABSTAIN_LINE
    assert lines(text)[1] == reason
    assert "Related reading:" in text
    assert "Sources" not in text
    flat = " ".join(text.split())
    for i, hit in enumerate(answer.related, 1):
        assert f"[{i}] {hit.passage.title} — {hit.passage.section} (02-airway.md)" in flat
    # Each related passage shows only its beginning, about 200 characters.
    tail = flat.split("Related reading:")[1]
    excerpt = tail.split("(02-airway.md)")[2].strip()
    assert excerpt.endswith("…") and len(excerpt) <= 201
    assert " ".join(P1.text.split()).startswith(excerpt[:-1])


# --------------------------------------------------------------------------- ANSI and plain


def test_ansi_strips_back_to_plain_and_never_spans_lines() -> None:
    answer = make_answer()
    coloured = render_answer(answer, color=True)
    assert "\x1b[" in coloured
    assert SGR.sub("", coloured) == render_answer(answer)
    for line in lines(coloured):
        opened = len(re.findall(r"\x1b\[[0-9;]*[1-9][0-9;]*m", line))
        closed = line.count("\x1b[0m")
        assert opened == closed, line
    assert "\x1b" not in render_answer(answer, color=False)


def test_control_characters_cannot_reach_the_terminal() -> None:
    fragments = [("", "bad \x1b[2J news\x9b and a bell\x07"), ("class:dim", "\x1b]0;title\x07")]
    for text in (to_plain(fragments), SGR.sub("", to_ansi(fragments))):
        assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text


def test_unknown_styles_are_plain() -> None:
    assert to_ansi([("class:nonesuch", "x"), ("", "y")]) == "xy"


# --------------------------------------------------------------------------- wrapping

words = st.text(alphabet="abcdefghij-.,[]1", min_size=1, max_size=14)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["", "class:dim", "class:marker"]), words), max_size=40),
    st.lists(st.sampled_from([" ", "  ", "\n", "", "\n\n"]), min_size=40, max_size=40),
    st.integers(min_value=10, max_value=90),
)
def test_wrap_keeps_words_styles_and_width(
    pieces: list[tuple[str, str]], seps: list[str], width: int
) -> None:
    fragments = [(style, text + sep) for (style, text), sep in zip(pieces, seps, strict=False)]
    out = wrap_fragments(fragments, width, indent="  ")
    source = "".join(text for _, text in fragments)
    result = to_plain(out)
    assert result.split() == source.split()
    for line in result.split("\n"):
        assert len(line) <= width or " " not in line.strip(), (line, width)
    # Every styled character keeps its style.
    styled_in = "".join(t for s, t in fragments if s == "class:marker").split()
    styled_out = "".join(t for s, t in out if s == "class:marker").split()
    assert "".join(styled_in) == "".join(styled_out)


def test_wrap_keeps_glued_marker_with_its_word() -> None:
    fragments = [("", "aaaa bbbb cccc"), ("class:marker", "[1]"), ("", ". dddd")]
    out = to_plain(wrap_fragments(fragments, 15))
    assert "cccc[1]." in out.split("\n")[1]


# --------------------------------------------------------------------------- :sources, :open, :why


def test_sources_show_offsets_scores_and_cited_sentences() -> None:
    answer = make_answer()
    text = " ".join(render_sources(answer).split())
    for c in answer.citations:
        assert f"{c.passage.id}, characters {c.passage.start}–{c.passage.end}" in text
        assert f"{c.score:.4f}" in text
        assert c.passage.source in text
    for s in answer.sentences:
        assert f"characters {s.start}–{s.end}" in text
    assert f"confidence {answer.confidence:.2f}" in text


def test_sources_of_an_abstention_list_closest_passages() -> None:
    answer = Answer(
        question="q",
        text=ABSTAIN_LINE,
        abstained=True,
        reason="nothing close",
        related=(Hit(P2, 0.04, 1),),
    )
    text = render_sources(answer)
    assert "Nothing cited: nothing close" in text
    assert f"{P2.id}, characters {P2.start}–{P2.end}" in text


def test_open_highlights_exactly_the_cited_sentence() -> None:
    answer = make_answer()
    for c in answer.citations:
        fragments = passage_fragments(answer, c.n, width=60)
        highlighted = " ".join(t for s, t in fragments if s == "class:highlight")
        cited = [s.text for s in answer.sentences if s.citation == c.n]
        assert " ".join(highlighted.split()) == " ".join(" ".join(cited).split())
        plain = " ".join(to_plain(fragments).split())
        assert " ".join(c.passage.text.split()) in plain  # the whole passage
        assert f"characters {c.passage.start}–{c.passage.end}" in plain
        assert c.passage.source in plain


def test_open_keeps_the_passage_layout() -> None:
    text = render_passage(make_answer(), 1, width=100)
    bullet = [line for line in lines(text) if "oropharyngeal" in line]
    assert bullet and bullet[0].lstrip().startswith("• Insert")


@pytest.mark.parametrize("n", [0, 3, 99])
def test_open_rejects_unknown_citation_numbers(n: int) -> None:
    with pytest.raises(UsageError, match=rf"no citation \[{n}\].*\[1\]–\[2\]"):
        render_passage(make_answer(), n)


def test_open_on_abstention_counts_related_passages() -> None:
    answer = Answer(question="q", text=ABSTAIN_LINE, abstained=True, related=(Hit(P2, 0.04, 1),))
    assert " ".join(P2.text.split()) in " ".join(render_passage(answer, 1).split())
    with pytest.raises(UsageError, match="related passage 2"):
        render_passage(answer, 2)
    with pytest.raises(UsageError, match="cites no passages"):
        render_passage(Answer(question="q", text="hello", kind="smalltalk"), 1)


def test_why_lists_terms_expansions_carried_and_contributions() -> None:
    query = Query(
        text="and the neck?",
        terms=("neck",),
        expansions=(("IV", "intravenous"),),
        carried=("airway", "open"),
    )
    answer = make_answer(query=query)
    contributions = [("neck", 0.3), ("airway", 0.15), ("open", 0.05)]
    text = render_why(answer, contributions)
    assert re.search(r"Searched for\s+neck\n", text)
    assert re.search(r"Expanded\s+IV → intravenous", text)
    assert re.search(r"Carried over\s+airway, open", text)
    assert f"[1] {P1.title}" in text  # the top hit is citation 1
    rows = re.findall(r"^\s+(\w+)\s+([0-9.]+)\s+(\d+)%$", text, flags=re.M)
    assert [r[0] for r in rows] == [t for t, _ in contributions]
    shares = [int(r[2]) for r in rows]
    assert abs(sum(shares) - 100) <= len(rows)
    assert shares == sorted(shares, reverse=True)
    assert re.search(r"total\s+0\.5000", text)


def test_why_without_search_or_matches() -> None:
    smalltalk = Answer(question="hi", text="Hello!", kind="smalltalk")
    assert "nothing to explain" in render_why(smalltalk, [])
    answer = make_answer()
    assert "No query term occurs" in render_why(answer, [])


def test_expansions_of_one_abbreviation_are_grouped() -> None:
    pairs = (("emt", "emergency medical technician"), ("iv", "intravenous"), ("emt", "EMT-B"))
    text = render_answer(make_answer(query=Query(text="q", terms=("emt",), expansions=pairs)))
    assert "Expanded: emt → emergency medical technician, EMT-B; iv → intravenous" in text


def test_list_items_hang_under_their_text() -> None:
    text = "Bring:\n- a bag-valve mask with a reservoir and tubing of the right size\n2. suction"
    out = to_plain(wrap_fragments([("", text)], 30, indent="  "))
    rows = out.split("\n")
    assert rows[1].startswith("  - a bag")
    item_end = rows.index(next(r for r in rows if r.lstrip().startswith("2.")))
    assert item_end > 2  # the long item took more than one line
    assert all(r.startswith("    ") and r[4] != " " for r in rows[2:item_end])


def test_open_marks_the_cited_sentence_when_there_is_no_colour() -> None:
    answer = make_answer()
    plain = " ".join(render_passage(answer, 2).split())
    assert f"»{S2}«" in plain
    coloured = render_passage(answer, 2, color=True)
    assert "»" not in coloured and "\x1b[" in coloured
