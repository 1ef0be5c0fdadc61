"""The answer's sentence scorer: each lever leads with the sentence it says it favours.

Every case is a small hand-made corpus where the lever decides: with it, the expected sentence comes
first; with its weight set to zero (monkeypatched), another sentence does. That second half keeps a
test from passing for some unrelated reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emsqa import answer
from emsqa.answer import _longest_run
from emsqa.datatypes import Answer, Document
from emsqa.index import Index


def _ask(docs: list[Document], question: str) -> Answer:
    result = Index.build(docs, abstain_below=0.0).ask(question)
    assert not result.abstained and result.sentences
    return result


def _lead(docs: list[Document], question: str) -> str:
    return _ask(docs, question).sentences[0].text


def _doc(text: str, doc_id: str = "doc", title: str = "Station history") -> Document:
    return Document(id=doc_id, title=title, text=text)


# ----------------------------------------------------------------------------------------- levers

_EXPEDITION = _doc(
    "The expedition reached the Orinoco River with twelve mules. "
    "The expedition reached the plains in spring with twelve mules.",
    title="The 1820 expedition",
)


def test_which_question_leads_with_the_sentence_naming_its_noun(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The which-noun lever and the question-word lever both reward "river" (it follows "which")."""
    question = "Which river did the expedition reach in spring?"
    assert "Orinoco River" in _lead([_EXPEDITION], question)
    monkeypatch.setattr(answer, "HEAD_WEIGHT", 0.0)
    monkeypatch.setattr(answer, "WH_NEAR_WEIGHT", 0.0)
    assert "plains" in _lead([_EXPEDITION], question)


_LIFEBOAT = _doc(
    "Anna Berg trained the volunteers of the lifeboat every winter. "
    "The harbour was dredged in 1970. "
    "Peter Holm joined the crew of the lifeboat in 1975."
)


def test_the_word_next_to_the_question_word_outweighs_one_far_from_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each sentence holds two of the question's three words; "trained" says what the person did."""
    question = "Who trained the crew of the lifeboat?"
    assert _lead([_LIFEBOAT], question).startswith("Anna Berg trained")
    monkeypatch.setattr(answer, "WH_NEAR_WEIGHT", 0.0)
    assert _lead([_LIFEBOAT], question).startswith("Peter Holm joined")


def test_only_questions_asking_what_or_who_weigh_words_by_their_distance_from_it() -> None:
    """After "when did" comes the subject, not what happened: no word gains for being near it."""
    index = Index.build([_LIFEBOAT])
    assert index.store_ is not None
    analyzer = index.store_.settings.analyzer()

    def near(question: str) -> dict[str, float]:
        pq = index.prepare(question)
        weights = answer._near_wh(pq, answer.tokenize(pq.query.text), analyzer)
        if not weights:
            return {}
        return {min(alts[0]): w for w, (_, alts) in zip(weights, pq.concepts, strict=True)}

    assert near("When did the lifeboat crew train?") == {}
    assert near("Lifeboat crew training") == {}
    weights = near("Who trained the crew of the lifeboat?")
    trained, crew, lifeboat = (
        weights[analyzer.content(w)[0]] for w in ("trained", "crew", "lifeboat")
    )
    assert trained > crew > lifeboat > 0


_AWARD = _doc(
    "The county ambulance station opened in 1962 on Harbour Road. "
    "It won a national award for its rescue boat in 1975. "
    "The county ambulance station won praise for its new boat."
)


def test_a_sentence_opening_with_a_pronoun_borrows_the_subject_named_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    question = "Which award did the county ambulance station win for its rescue boat?"
    assert _lead([_AWARD], question).startswith("It won a national award")
    monkeypatch.setattr(answer, "ANAPHOR_WEIGHT", 0.0)
    assert _lead([_AWARD], question).startswith("The county ambulance station won praise")


_EQUIPMENT = _doc(
    "The station added its first ambulance in 1962. "
    "The station added its first radio in 1966. "
    "The station added its first boat in 1970. "
    "The station added its first helmet in 1974. "
    "The station got a stretcher for each ambulance in 1988."
)


def test_a_rare_question_word_outweighs_words_most_sentences_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four sentences say "the station added its first"; only one names the stretcher."""
    question = "When did the station add its first stretcher?"
    assert "stretcher" in _lead([_EQUIPMENT], question)
    monkeypatch.setattr(answer, "LOCAL_WEIGHT", 0.0)
    assert "stretcher" not in _lead([_EQUIPMENT], question)


_RACES = [
    _doc(
        "Peter Holm won the race at the harbour in 1982. "
        "The lifeboat was painted red in 1981. "
        "Anna Berg won the divisional race in 1980."
    ),
    # "division" must be a word of the corpus, or the question's spelling check rewrites it
    _doc("The division office keeps the duty rosters.", doc_id="offices", title="Offices"),
]


def test_a_word_of_the_same_family_counts_where_the_stemmer_keeps_them_apart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stemmer makes "division" and "divisional" two words; their first five letters agree."""
    question = "Who won the race in the division?"
    assert _lead(_RACES, question).startswith("Anna Berg won the divisional race")
    monkeypatch.setattr(answer, "FAMILY_WEIGHT", 0.0)
    assert _lead(_RACES, question).startswith("Peter Holm")


def test_a_long_form_counts_by_family_only_when_all_its_words_do() -> None:
    terms = frozenset({"nation", "exam"})
    alts = (frozenset({"nremt"}), frozenset({"registri", "nation"}))
    assert not answer._kin(alts, terms, answer._prefixes(terms))  # "national" alone is not NREMT
    terms = frozenset({"registr", "nation"})
    assert answer._kin(alts, terms, answer._prefixes(terms))
    assert not answer._kin((frozenset({"exam"}),), frozenset({"examin"}), {"examin"[:5]})  # short


_STAIRS = _doc(
    "On narrow stairs a crew carries the patient down in a chair. "
    "Crews carry the patient down the narrow stairs on a stair chair.",
    title="Stair chairs",
)


def test_the_sentence_worded_like_the_question_leads(monkeypatch: pytest.MonkeyPatch) -> None:
    question = "How do crews carry the patient down the narrow stairs?"
    assert _lead([_STAIRS], question).startswith("Crews carry the patient down the narrow stairs")
    monkeypatch.setattr(answer, "PHRASE_WEIGHT", 0.0)
    assert _lead([_STAIRS], question).startswith("On narrow stairs")


# ------------------------------------------------------------------------------- second source

_CYLINDERS = _doc(
    "The ambulance carries oxygen cylinders in a locked cabinet. "
    "Oxygen cylinders on the ambulance are checked every morning by the crew. "
    "Crews replace the ambulance oxygen cylinders when they fall below half.",
    doc_id="ambulance",
    title="Oxygen on the ambulance",
)
_CYLINDER_QUESTION = "When are the oxygen cylinders on the ambulance checked?"


def _assert_cites_exactly_its_sentences(result: Answer) -> None:
    assert sorted({s.citation for s in result.sentences}) == [c.n for c in result.citations]


def test_the_last_place_goes_to_a_second_passage_that_scores_nearly_as_well(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = _doc(
        "Spare oxygen cylinders for the ambulance are kept in the station store. "
        "A pharmacist checks them on Mondays.",
        doc_id="store",
        title="Station stores",
    )
    result = _ask([_CYLINDERS, store], _CYLINDER_QUESTION)
    assert result.sentences[0].text.startswith("Oxygen cylinders on the ambulance are checked")
    assert len(result.sentences) == 3
    assert [c.passage.doc_id for c in result.citations] == ["ambulance", "store"]
    assert result.sentences[-1].text.startswith("Spare oxygen cylinders")
    _assert_cites_exactly_its_sentences(result)

    monkeypatch.setattr(answer, "SECOND_SOURCE_SHARE", 2.0)  # never reached: the rule is off
    alone = _ask([_CYLINDERS, store], _CYLINDER_QUESTION)
    assert [c.passage.doc_id for c in alone.citations] == ["ambulance"]
    assert alone.sentences[:2] == result.sentences[:2]


def test_a_weak_second_passage_does_not_displace_a_sentence() -> None:
    store = _doc(
        "The station store keeps spare oxygen cylinders for each ambulance, and a pharmacist "
        "counts them on Mondays with the drug boxes and the spare linen.",
        doc_id="store",
        title="Station stores",
    )
    result = _ask([_CYLINDERS, store], _CYLINDER_QUESTION)
    assert [c.passage.doc_id for c in result.citations] == ["ambulance"]
    assert len(result.sentences) == 3
    _assert_cites_exactly_its_sentences(result)


# ------------------------------------------------------------------------------ word-run search


def _longest_run_brute(tokens: list[str], question: list[str]) -> int:
    for n in range(answer._PHRASE_MAX, 1, -1):
        runs = {tuple(question[i : i + n]) for i in range(len(question) - n + 1)}
        if any(tuple(tokens[i : i + n]) in runs for i in range(len(tokens) - n + 1)):
            return n
    return 0


_WORDS = st.lists(st.sampled_from("a b c d".split()), max_size=12)


@given(_WORDS, _WORDS)
def test_longest_run_matches_a_brute_force_search(tokens: list[str], question: list[str]) -> None:
    where: dict[str, list[int]] = {}
    for i, token in enumerate(question):
        where.setdefault(token, []).append(i)
    assert _longest_run(tokens, where) == _longest_run_brute(tokens, question)


def _corpus_with_a_buried_definition() -> list[Document]:
    # many passages mention ventilators often; one, later in the ranking, says what one is
    chatter = [
        Document(
            id=f"chatter{i}",
            title="Ventilator notes",
            text=f"Ventilator check {i}: the ventilator alarm, ventilator tubing and ventilator "
            "filters were inspected on the ventilator cart before the shift.",
        )
        for i in range(8)
    ]
    definition = Document(
        id="glossary",
        title="Equipment",
        text="Suction units clear the airway. A ventilator is a machine that moves air into and "
        "out of the lungs of a patient who cannot breathe well enough alone.",
    )
    return [*chatter, definition]


def test_a_definition_question_starts_from_the_passage_that_defines_its_subject() -> None:
    index = Index.build(_corpus_with_a_buried_definition())
    plain = index.search("What is a ventilator?", k=10)
    assert plain[0].passage.doc_id != "glossary"  # retrieval alone ranks the chatter first
    answer = index.ask("What is a ventilator?")
    assert answer.sentences[0].text.startswith("A ventilator is a machine")
    assert answer.citations[0].passage.doc_id == "glossary"


def test_questions_that_ask_for_no_definition_keep_their_ranking() -> None:
    index = Index.build(_corpus_with_a_buried_definition())
    store = index.store_
    assert store is not None
    pq = index.prepare("When were the ventilator filters inspected?")
    hits = index.search("When were the ventilator filters inspected?", k=10)
    assert "definition" not in pq.intents
    assert answer.definitions_first(pq, hits, store.settings.analyzer()) == hits


def test_the_shipped_corpus_says_what_a_paramedic_is_first() -> None:
    from emsqa.api import default_index

    first = default_index().ask("What is a paramedic?").sentences[0]
    assert first.text.startswith("A paramedic is a healthcare professional")


_LEVELS = _doc(
    "Each level has its own course.\n"
    "- Dispatcher: about 40 hours of call-taking practice.\n"
    "- Supervisor: about 60 hours on top of dispatcher call-taking training.\n",
    title="Training",
)


def test_the_list_item_labelled_with_the_subject_leads(monkeypatch: pytest.MonkeyPatch) -> None:
    """ "Supervisor: ... dispatcher call-taking training" holds more of the question's words; the
    item labelled "Dispatcher" is the one about dispatchers."""
    question = "How long is dispatcher call-taking training?"
    assert _lead([_LEVELS], question).startswith("Dispatcher: about 40 hours")
    monkeypatch.setattr(answer, "_label_lead", lambda *args: [])
    assert _lead([_LEVELS], question).startswith("Supervisor:")


def test_a_label_naming_no_subject_leaves_the_ranking_alone() -> None:
    # no item is labelled with a question word: the best-scoring sentence stays first
    assert _lead([_LEVELS], "How long is call-taking training for a supervisor?").startswith(
        "Supervisor:"
    )


def test_the_shipped_corpus_gives_emt_course_hours_for_emt_training() -> None:
    from emsqa.api import default_index

    first = default_index().ask("How long is EMT training?").sentences[0]
    assert first.text.startswith("EMT: about")


_INSPECTIONS = _doc(
    "To inspect the rescue boat, the crew drains the fuel tanks and checks the hull, a practice "
    "the harbour code set in 1998. The boat is inspected every six months.",
    title="Harbour rescue",
)


@pytest.mark.parametrize(
    "question",
    ["How often is the rescue boat inspected?", "how offen is the rescue boat inspected?"],
)
def test_a_how_often_question_leads_with_a_span_of_time(
    monkeypatch: pytest.MonkeyPatch, question: str
) -> None:
    """The first sentence holds more of the question's words and a year; only the second says how
    often. A misspelt "offen" is read as its correction."""
    assert _lead([_INSPECTIONS], question) == "The boat is inspected every six months."
    if "offen" in question:
        monkeypatch.setattr(answer, "_corrected", lambda query: query.text)
    else:
        monkeypatch.setattr(answer, "_ASKS_FREQUENCY", re.compile(r"(?!)"))
    assert _lead([_INSPECTIONS], question).startswith("To inspect the rescue boat")


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("Certification lasts two years.", True),
        ("Vitals are taken every 15 minutes.", True),
        ("The rate is 100 to 120 compressions per minute.", True),
        ("Licences are renewed annually.", True),
        ("Since 2016 the hours are split in three parts.", False),
        ("Two crews staff the station.", False),
    ],
)
def test_what_counts_as_a_span_of_time(text: str, holds: bool) -> None:
    assert answer._holds_kind("frequency", text, {"how", "often"}) is holds


@pytest.mark.parametrize(
    ("text", "holds"),
    [
        ("It goes on the limb 2 to 3 inches above the wound.", True),
        ("Pads go between the shoulder blades.", True),
        ("The station is in Denver.", True),
        ("A tourniquet is used for bleeding that pressure does not stop.", False),
        ("Above all, stay calm.", False),
    ],
)
def test_what_counts_as_a_place(text: str, holds: bool) -> None:
    assert answer._holds_kind("place", text, {"where", "tourniquet"}) is holds


def test_where_a_tourniquet_goes_is_answered_with_a_place() -> None:
    from emsqa.api import default_index

    # "A tourniquet is used for life-threatening bleeding ..." led before: no name in sight, and
    # "above the wound" or "near the top of the limb" did not count as a place
    first = default_index().ask("Where do you put a tourniquet?").sentences[0].text
    assert "above the" in first or "near the top of the limb" in first


def test_the_shipped_corpus_says_how_often_to_recertify() -> None:
    from emsqa.api import default_index

    for question in ("How often do I need to recertify?", "how offen do i need to recertifiy"):
        first = default_index().ask(question).sentences[0]
        assert first.text == "National certification lasts two years."


_UNIVERSITIES = _doc(
    "The city's universities opened in 1901 and 1963. Today the city has two universities.",
    title="Harbour towns",
)


def test_a_how_many_question_leads_with_a_count_of_what_it_asks_about(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both sentences name the city's universities; the years are figures, "two" is the count."""
    question = "How many universities does the city have?"
    assert _lead([_UNIVERSITIES], question) == "Today the city has two universities."
    monkeypatch.setattr(answer, "_counts", lambda *args: False)
    assert _lead([_UNIVERSITIES], question).startswith("The city's universities opened")


@pytest.mark.parametrize(
    ("sentence", "counts"),
    [
        ("The city has two universities.", True),
        ("Nine nations share the basin, and 2 of its universities", True),
        ("Two different universities", True),
        ("The universities opened in 1901.", False),
        ("The universities of the two cities.", False),  # two cities, not two universities
    ],
)
def test_what_counts_as_a_count(sentence: str, counts: bool) -> None:
    from emsqa.text import Analyzer, tokenize

    analyzer = Analyzer()
    counted = answer._counted("How many universities are there?", analyzer)
    assert answer._counts(tokenize(sentence), counted, analyzer) is counts


@pytest.mark.parametrize(
    ("question", "counted"),
    [
        ("How many universities are there?", {"universiti"}),
        ("How many different species are there?", {"differ", "speci"}),
        # the counted noun may come third; a stop word ends the phrase
        ("How many continuing education hours does a paramedic need?", {"continu", "educ", "hour"}),
        ("How many nations are within the Amazon basin?", {"nation"}),
    ],
)
def test_the_thing_a_how_many_question_counts(question: str, counted: set[str]) -> None:
    from emsqa.text import Analyzer

    assert answer._counted(question, Analyzer()) == counted


def test_a_sentence_opening_with_its_subject_and_is_defines_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ "Frostbite is freezing of ..." defines without "is a"; the care sentence names frostbite too."""
    cold = _doc(
        "Care for a sailor with frostbite is to warm the hands slowly in water. "
        "Frostbite is freezing of the skin and the tissue under it.",
        title="Cold injuries",
    )
    assert _lead([cold], "what is frostbite").startswith("Frostbite is freezing")
    only_is_a = r"^\S+( \S+)? — |\b(stands for|refers to|means|is called|is an?|are)\b"
    monkeypatch.setattr(answer, "_DEFINITION", re.compile(only_is_a, re.I))
    assert _lead([cold], "what is frostbite").startswith("Care for a sailor")


def test_a_bibliography_line_does_not_lead_the_answer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The Sources line repeats the question's words; the body sentence says what the method is."""
    guide = tmp_path / "boats.md"
    guide.write_text(
        "# Harbour Sorting\n\n## The Method\n\nThe Hartley method, worked out in 1990 by the "
        "harbour school, sorts incoming boats by their size and cargo before they dock.\n\n"
        "## Sources\n\n- Harbour school, Hartley sorting method; Hartley method for boats.\n",
        encoding="utf-8",
    )
    question = "What is the Hartley sorting method?"
    lead = Index.build(guide, abstain_below=0.0).ask(question).sentences[0].text
    assert lead.startswith("The Hartley method, worked out")
    monkeypatch.setattr(answer, "REFERENCE_PENALTY", 0.3)  # the weight it had
    lead = Index.build(guide, abstain_below=0.0).ask(question).sentences[0].text
    assert lead.startswith("Harbour school")


@pytest.mark.parametrize(
    ("question", "lead"),
    [
        ("What is triage?", "At a mass casualty incident"),
        ("When should I use a tourniquet?", "A tourniquet is used for life-threatening bleeding"),
        ("What is the golden hour?", "The golden hour is the idea"),
        ("What is START triage?", "The START method"),
        ("Where does a tourniquet go?", "If the wound cannot be seen, the tourniquet goes"),
    ],
)
def test_the_shipped_corpus_answers_bleeding_and_triage_questions(question: str, lead: str) -> None:
    from emsqa.api import default_index

    assert default_index().ask(question).sentences[0].text.startswith(lead)


# ------------------------------------------------------------------------------- further sentences


def test_a_sentence_holding_no_question_word_does_not_join_the_answer() -> None:
    # one passage: every sentence shares its retrieval score, so only the words tell them apart
    notes = _doc(
        "Roe v. Wade was decided in 1973. The ruling was later overturned. "
        "A tourniquet stops severe limb bleeding. Apply it two inches above the wound.",
        title="Notes",
    )
    texts = [s.text for s in _ask([notes], "Where do I apply a tourniquet?").sentences]
    assert "Apply it two inches above the wound." in texts
    assert not any("Roe" in t or "ruling" in t for t in texts)


def test_a_figure_for_a_how_long_question_may_join_without_its_words() -> None:
    # the figure shares no word with the question and follows the sentence that does
    shifts = _doc(
        "A typical ambulance crew has two members, and crews work for several hours. "
        "Many services use 12-hour or 24-hour shifts.",
        title="Crews",
    )
    answer = _ask([shifts], "How long is a typical work stretch for ambulance crews?")
    assert answer.sentences[0].text.startswith("A typical ambulance crew")
    assert any("24-hour" in s.text for s in answer.sentences[1:])


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (
            "Settings:\n- Class work, on manikins.\n- Clinics.\n",
            "Settings: Class work, on manikins; Clinics.",
        ),
        ("Settings:\n- Class work;\n- Clinics\n", "Settings: Class work; Clinics."),
        ("Steps:\n- Check the scene...\n", "Steps: Check the scene..."),
        ("Ask:\n- Is it safe?\n", "Ask: Is it safe?"),
    ],
)
def test_a_list_shows_as_one_sentence_with_one_full_stop(raw: str, shown: str) -> None:
    assert answer._display(raw) == shown
