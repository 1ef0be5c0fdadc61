"""The shared analyzer: medical tokens survive, negations stay, the lexicon expands questions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from emsqa.text import STOP_WORDS, Analyzer, load_lexicon, normalize, tokenize


def test_medical_compounds_stay_whole() -> None:
    terms = Analyzer().terms("A-fib, C-spine injury and a 12-lead ECG")
    assert "a-fib" in terms
    assert "c-spine" in terms
    assert "12-lead" in terms
    # parts are added beside the compound, never instead of it
    assert terms.index("a-fib") < len(terms)
    assert "fib" in terms and "spine" in terms


def test_negations_are_never_stop_words() -> None:
    assert {"no", "not", "nor", "never", "without"}.isdisjoint(STOP_WORDS)
    assert Analyzer(stem=False).content("Do not give aspirin, no pulse") == [
        "not",
        "give",
        "aspirin",
        "no",
        "pulse",
    ]


def test_contracted_negations_read_as_not() -> None:
    """ "don't give" must find "do not give": the negation becomes a word of its own."""
    plain = Analyzer(stem=False)
    assert plain.content("EMTs don't give injections") == plain.content(
        "EMTs do not give injections"
    )
    assert tokenize("Can’t we? Won't they? It isn't.") == [
        "can", "not", "we", "will", "not", "they", "it", "is", "not",
    ]  # fmt: skip
    # "cannot" is "can not" spelt as one word
    assert tokenize("EMTs cannot intubate") == ["emts", "can", "not", "intubate"]
    assert plain.content("EMTs cannot intubate") == plain.content("EMTs can't intubate")
    # a hyphenated compound stays whole, and so does a bare "n't"
    assert tokenize("a don't-resuscitate order; n't") == ["a", "don't-resuscitate", "order", "n't"]


def test_comparatives_and_superlatives_meet_their_adjective() -> None:
    analyzer = Analyzer()
    for form, adjective in [("higher", "high"), ("highest", "high"), ("oldest", "old")]:
        assert analyzer.stem_of(form) == analyzer.stem_of(adjective), form
    # words of their own are left alone
    assert analyzer.stem_of("lighter") != analyzer.stem_of("light")
    assert analyzer.stem_of("better") != analyzer.stem_of("good")


def test_irregular_verb_forms_meet_their_verb() -> None:
    analyzer = Analyzer()
    for form, verb in [("goes", "go"), ("went", "go"), ("became", "become"), ("written", "write")]:
        assert analyzer.stem_of(form) == analyzer.stem_of(verb), form
        assert Analyzer().stems_of([form, verb]) == [analyzer.stem_of(verb)] * 2
    # forms that are also nouns or abbreviations keep their own term
    for word in ("found", "left", "saw", "ran", "met"):
        assert analyzer.stem_of(word) == word
    assert Analyzer(stem=False).stem_of("went") == "went"


def test_numbers_and_unicode_are_normalised() -> None:
    assert tokenize("1,200 hours at 2.5 mg") == ["1,200", "hours", "at", "2.5", "mg"]
    assert tokenize("ＥＭＴ’s role") == ["emt", "role"]  # NFKC full-width letters, curly apostrophe
    assert normalize("Paramedic") == "paramedic"


def test_stemming_joins_inflections_and_can_be_switched_off() -> None:
    assert Analyzer().content("paramedics trained") == Analyzer().content("paramedic training")
    assert Analyzer(stem=False).content("paramedics") == ["paramedics"]


def test_bigrams_follow_content_words() -> None:
    terms = Analyzer(stem=False).terms("the cardiac arrest")
    assert "cardiac arrest" in terms
    assert "cardiac arrest" not in Analyzer(stem=False, bigrams=False).terms("the cardiac arrest")


def test_shipped_lexicon_expands_both_ways() -> None:
    lexicon = load_lexicon()
    assert ("iv", "intravenous") in lexicon.expansions("Can EMTs start an IV?")
    forms = [
        other.lower()
        for found, other in lexicon.expansions("What is cardiopulmonary resuscitation?")
    ]
    assert "cpr" in forms
    assert lexicon.expansions("What is the capital of France?") == []


def test_custom_lexicon_matches_multiword_forms_once() -> None:
    lexicon = load_lexicon([["MI", "heart attack", "myocardial infarction"]])
    found = lexicon.expansions("Signs of a heart attack? Heart attack again")
    assert found == [("heart attack", "MI"), ("heart attack", "myocardial infarction")]


@given(st.text(max_size=300))
def test_analyzer_never_crashes(text: str) -> None:
    terms = Analyzer().terms(text)
    assert all(isinstance(t, str) and t for t in terms)


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_ascii_text_tokenizes_as_the_unicode_pattern_does(text: str) -> None:
    """ASCII text takes a faster, ASCII-only compile of the token pattern: same tokens."""
    from emsqa.text import _ASCII_TOKEN_RE, _TOKEN_RE

    lowered = text.lower()
    assert _ASCII_TOKEN_RE.findall(lowered) == _TOKEN_RE.findall(lowered)
