"""The Python front door: ask(), Conversation and follow-ups, small talk, abstention, the cache."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

import emsqa
from emsqa import Conversation, Document, Index
from emsqa.api import shipped_corpus


@pytest.fixture(scope="module")
def shipped() -> Index:
    return Index.build(shipped_corpus())


def test_public_names_resolve() -> None:
    for name in emsqa.__all__:
        assert getattr(emsqa, name) is not None


def test_answer_cites_in_order_and_only_what_it_cites(shipped: Index) -> None:
    answer = emsqa.ask("Can an EMT start an IV?", corpus=shipped)
    assert not answer.abstained and answer.citations
    markers = [int(n) for n in re.findall(r"\[(\d+)\]", answer.text)]
    first_seen = list(dict.fromkeys(markers))
    assert first_seen == list(range(1, len(first_seen) + 1))  # numbered by first appearance
    assert [c.n for c in answer.citations] == first_seen  # every citation is cited, none extra
    for s in answer.sentences:  # each sentence lies inside the passage it cites
        p = answer.citations[s.citation - 1].passage
        assert p.start <= s.start < s.end <= p.end
    assert "IV" in answer.text


def test_comparison_covers_both_sides(shipped: Index) -> None:
    answer = shipped.ask("BLS vs ALS")
    text = answer.text.lower()
    assert "basic life support" in text or "bls is" in text
    assert "als adds" in text or "advanced life support" in text
    assert len(answer.sentences) >= 2


@pytest.mark.parametrize("verb", ["differ from", "differs from"])
def test_differ_from_is_a_comparison_not_a_topic_word(shipped: Index, verb: str) -> None:
    """'How does X differ from Y' asks the comparison frame; 'differ' is not searched for."""
    pq = shipped.prepare(f"How does an AEMT {verb} a paramedic?")
    assert "comparison" in pq.intents
    assert not any(t.startswith("differ") for t in pq.query.terms)
    answer = shipped.ask(f"How does an AEMT {verb} a paramedic?")
    assert not answer.abstained and "aemt" in answer.text.lower()


def test_unanswerable_question_abstains_with_reason_and_reading(shipped: Index) -> None:
    answer = shipped.ask("How much do paramedics earn in Texas?")
    assert answer.abstained and answer.kind == "abstain"
    assert answer.text == "I could not find this in the corpus."
    assert "texas" in answer.reason.lower()
    assert answer.related and not answer.citations
    assert answer.to_dict()["citations"] == []


def test_follow_up_with_a_pronoun_takes_the_earlier_subject(shipped: Index) -> None:
    chat = Conversation(shipped)
    chat.ask("What is an EMT?")
    answer = chat.ask("What training do they need?")
    assert "emt" in [w.lower() for w in answer.query.carried]
    assert not answer.abstained
    assert any(
        "train" in c.passage.text.lower() or "course" in c.passage.text.lower()
        for c in answer.citations
    )


def test_follow_up_naming_a_new_role_replaces_the_old_one(shipped: Index) -> None:
    chat = Conversation(shipped)
    chat.ask("How long is an EMT course?")
    answer = chat.ask("And what about paramedics?")
    carried = [w.lower() for w in answer.query.carried]
    assert "emt" not in carried and "course" in carried
    assert "1,200" in answer.text  # the paramedic course length, not the EMT one
    # the same through the function API with an explicit history
    again = emsqa.ask(
        "And what about paramedics?", corpus=shipped, history=["How long is an EMT course?"]
    )
    assert again.to_dict() == answer.to_dict()


def test_follow_up_keeps_asking_how_long(shipped: Index) -> None:
    # "training" alone would rank the seed article's paramedic passages first; the earlier
    # question's cue words (hours, weeks, years) find the course lengths
    answer = shipped.ask("And paramedics?", history=["How long is EMT training?"])
    assert (
        "quantity"
        in shipped.prepare("And paramedics?", history=["How long is EMT training?"]).intents
    )
    assert answer.sentences[0].text.startswith("Paramedic: about 1,200 to 1,800 hours")
    plain = shipped.ask("And paramedics?", history=["What does EMT training cover?"])
    assert "1,200" not in plain.text  # not asking how long: no course lengths


def test_a_misspelt_frame_word_still_says_what_is_asked(shipped: Index) -> None:
    typo = shipped.prepare("how offen do i need to recertifiy")
    plain = shipped.prepare("How often do I need to recertify?")
    assert typo.intents == plain.intents == {"quantity"}
    assert typo.cues == plain.cues and typo.cues
    assert typo.query.corrections == (("offen", "often"), ("recertifiy", "recertify"))
    assert not {"offen", "often"} & set(typo.terms)  # a frame, not something to search for
    assert not shipped.ask("how offen do i need to recertifiy").abstained
    assert shipped.ask("How lnog is EMT training?").sentences[0].text.startswith("EMT: about")
    assert shipped.prepare("What does GCS stnad for?").intents == {"definition"}
    # a corpus word one edit from a frame word is not a typo
    assert shipped.prepare("How long do lung sounds last?").query.corrections == ()


def test_a_frame_word_that_makes_no_frame_is_not_the_correction() -> None:
    index = Index.build(
        [
            Document(id="a", title="Stents", text="A stent holds a narrowed artery open."),
            Document(id="b", title="CPR", text="CPR stands for cardiopulmonary resuscitation."),
        ]
    )
    # "stant" is one edit from the frame word "stand" and from the corpus word "stent"
    assert index.prepare("What is a stant?").query.corrections == (("stant", "stent"),)
    framed = index.prepare("What does CPR stnad for?")
    assert framed.query.corrections == (("stnad", "stand"),) and "definition" in framed.intents


@pytest.mark.parametrize(
    ("typed", "usual"),
    [
        ("whats an AED", "what's an AED"),
        (
            "Whats the difference between an EMT and a paramedic",
            "What's the difference between an EMT and a paramedic",
        ),
        ("why cant an EMT start an IV", "why can't an EMT start an IV"),
        ("dont EMTs give injections", "don't EMTs give injections"),
    ],
)
def test_a_contraction_typed_without_its_apostrophe_reads_as_usual(
    shipped: Index, typed: str, usual: str
) -> None:
    a, b = shipped.prepare(typed), shipped.prepare(usual)
    assert (a.terms, a.weights, a.intents, a.cues) == (b.terms, b.weights, b.intents, b.cues)
    assert a.query.text == usual
    if typed.lower().startswith("whats"):
        assert not shipped.ask(typed).abstained  # "what" is no longer a word to cover


def test_the_plural_of_a_two_letter_abbreviation_reads_as_its_singular(shipped: Index) -> None:
    assert shipped.prepare("Why can't EMTs start IVs?").query.corrections == (("ivs", "iv"),)
    # "ALS" is a word of its own, and nothing in the corpus is spelt "ga" or "ox"
    for question in ("What is ALS?", "Is gas given?", "What are oxs?"):
        assert shipped.prepare(question).query.corrections == ()
    answer = shipped.ask("Why can't EMTs start IVs?")
    assert not answer.abstained and "do not start IV lines" in answer.sentences[0].text


@pytest.mark.parametrize("question", ["don't EMTs give injections", "Can't an EMT start an IV?"])
def test_a_contracted_negation_finds_the_passage_that_says_not(
    shipped: Index, question: str
) -> None:
    # the corpus says "EMTs do not start IV lines and ... do not give injections"
    answer = shipped.ask(question)
    assert not answer.abstained
    assert "do not" in answer.sentences[0].text


def test_cannot_in_a_question_is_no_word_the_corpus_must_hold(shipped: Index) -> None:
    # "cannot" once counted as a rare word of its own: no passage held it, so the question abstained
    # ("nothing on: cannot") while "can't" and "can not" answered
    answers = [
        shipped.ask(f"What can a paramedic do that an EMT {negation}?")
        for negation in ("cannot", "can't", "can not")
    ]
    assert not answers[0].abstained
    assert answers[0].text == answers[1].text == answers[2].text


@pytest.mark.parametrize("negation", ["cannot", "can't", "doesn't"])
def test_a_closing_negation_asks_what_can_be_done(shipped: Index, negation: str) -> None:
    # "... that an EMT cannot?" leaves out what it negates: the answer is what the AEMT adds, not
    # whichever passage says "not" most often
    answer = shipped.ask(f"What can an AEMT do that an EMT {negation}?")
    assert not answer.abstained
    assert any("AEMT adds" in s.text or "IV access" in s.text for s in answer.sentences)


def test_a_comparative_finds_the_superlative(shipped: Index) -> None:
    # "higher" once abstained ("nothing on: higher"); the corpus says "the highest national level"
    answer = shipped.ask("Which is higher, AEMT or EMT?")
    assert not answer.abstained
    assert "highest" in shipped.ask("What is the highest EMS level?").sentences[0].text


@pytest.mark.parametrize("word", ["its", "wont", "whatsoever", "cantor", "shell"])
def test_real_words_are_not_read_as_contractions(shipped: Index, word: str) -> None:
    assert shipped.prepare(f"a {word} b").query.text == f"a {word} b"


def test_without_history_a_follow_up_is_just_a_question(shipped: Index) -> None:
    answer = shipped.ask("And what about paramedics?")
    assert answer.query.carried == ()


def test_small_talk_needs_no_search_and_is_not_history(shipped: Index) -> None:
    chat = Conversation(shipped)
    for text in ("hello", "Thanks!", "help"):
        reply = chat.ask(text)
        assert reply.kind == "smalltalk" and not reply.citations and not reply.abstained
    assert chat.history == ()
    chat.ask("What is ROSC?")
    assert chat.history == ("What is ROSC?",)
    chat.reset()
    assert chat.history == () and chat.last is None


def test_k_is_validated(shipped: Index) -> None:
    with pytest.raises(emsqa.UsageError):
        shipped.ask("What is an EMT?", k=0)


def _run(code: str, cache: str) -> str:
    env = {**os.environ, "XDG_CACHE_HOME": cache}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.strip()


def test_shipped_index_is_cached_and_reused_without_sklearn(tmp_path) -> None:
    code = (
        "import sys, emsqa\n"
        "a = emsqa.ask('What does ROSC stand for?')\n"
        "assert a.citations\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy'}))\n"
    )
    assert (
        _run(
            "import sys, emsqa; print(any(m.split('.')[0] in ('sklearn', 'scipy', 'prompt_toolkit') for m in sys.modules))",
            str(tmp_path),
        )
        == "False"
    )
    assert _run(code, str(tmp_path)) == "['scipy']"  # first use builds (scipy's sparse) and caches
    assert _run(code, str(tmp_path)) == "[]"  # later starts load the cached arrays
    assert list((tmp_path / "emsqa").glob("shipped-*/manifest.json"))


def test_a_definition_question_is_answered_about_its_own_subject(shipped: Index) -> None:
    """'What is an EMT?' must not open with the definition of a neighbour such as the AEMT."""
    first = shipped.ask("What is an EMT?").sentences[0].text
    assert first.split()[0].strip(",—") in {"EMT", "EMTs", "An", "An EMT"}
    assert not first.startswith("AEMT")


def _weights(index: Index, question: str) -> dict[str, float]:
    pq = index.prepare(question)
    return dict(zip(pq.terms, pq.weights, strict=True))


def test_lexicon_forms_stand_in_for_a_word_the_index_lacks() -> None:
    from emsqa.text import load_lexicon

    lexicon = load_lexicon([["earn", "earnings", "wage", "salary"]])
    says_wage = Index.build(
        [Document(id="pay", title="", text="Medics are paid an hourly wage or a salary.")],
        lexicon=lexicon,
    )
    says_earn = Index.build(
        [Document(id="pay", title="", text="Medics earn an hourly wage or a salary.")],
        lexicon=lexicon,
    )
    # "earnings" is "earn" once stemmed, so "wage" and "salary" share the expansion weight
    # (0.5) between them; where the index lacks "earn", they carry its whole weight
    assert _weights(says_earn, "What do medics earn?")["wage"] == pytest.approx(0.25)
    assert _weights(says_wage, "What do medics earn?")["wage"] == pytest.approx(0.5)
    assert _weights(says_wage, "What do medics earn?")["salari"] == pytest.approx(0.5)


def test_the_shipped_corpus_says_what_paramedics_earn(shipped: Index) -> None:
    answer = shipped.ask("How much do paramedics earn?")
    assert not answer.abstained and "$53,180" in answer.sentences[0].text
    assert shipped.ask("How much do paramedics earn in Texas?").abstained


def test_a_light_word_the_corpus_never_uses_does_not_count_against_an_answer(
    shipped: Index,
) -> None:
    # the corpus never says "put"; "sourdough" is a topic word the corpus lacks, and still counts
    pq = shipped.prepare("Where do I put a tourniquet?")
    assert [sorted(alts[0]) for _, alts in pq.concepts] == [["tourniquet"]]
    assert not shipped.ask("Where do I put a tourniquet?").abstained
    concepts = shipped.prepare("Where do I put sourdough?").concepts
    assert [sorted(alts[0]) for _, alts in concepts] == [["sourdough"]]
    assert shipped.ask("Where do I put sourdough?").abstained


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Do I need a high school diploma to become an EMT?", "a high school diploma"),
        ("How many attempts do I get at the NREMT?", "six attempts"),
    ],
)
def test_an_answer_may_lean_on_the_passage_next_to_it(
    shipped: Index, question: str, expected: str
) -> None:
    # the passage that answers names neither the EMT nor the NREMT; the one before it does
    answer = shipped.ask(question)
    assert not answer.abstained and expected in answer.text


def test_they_and_their_point_at_the_people_named_last(shipped: Index) -> None:
    history = ("What is an AEMT?", "How long is their training?")
    pq = shipped.prepare("Can they start an IV?", history=history)
    assert pq.query.carried == ("aemt",)
    assert "quantity" not in pq.intents  # a question of its own, not "how long" again
    answer = shipped.ask("Can they start an IV?", history=history)
    assert not answer.abstained and "AEMT" in answer.sentences[0].text
    assert "hours" not in answer.sentences[0].text


def test_a_what_is_question_naming_a_new_subject_is_not_a_follow_up(shipped: Index) -> None:
    history = ("What is START triage?",)
    assert shipped.prepare("What is JumpSTART?", history=history).query.carried == ()
    answer = shipped.ask("What is JumpSTART?", history=history)
    assert answer.sentences[0].text.startswith("JumpSTART adapts START for children")
    # a pronoun still points back
    assert shipped.prepare("What is it for?", history=history).query.carried


def test_a_lexicon_group_whose_forms_stem_alike_is_harmless() -> None:
    from emsqa.text import load_lexicon

    index = Index.build(
        [Document(id="d", title="", text="Every test is graded by hand.")],
        lexicon=load_lexicon([["test", "tests"]]),
    )
    answer = index.ask("How are tests graded?")
    assert not answer.abstained and "graded" in answer.text
