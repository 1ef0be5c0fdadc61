"""Hits -> Answer: pick the sentences that answer, cite them, or abstain (extractive, no model).

Every candidate sentence of the top passages is scored by how much of the question it covers
(idf-weighted "concepts": a question word, or an abbreviation together with its long forms; once more
with each concept weighted by how few candidate sentences hold it, and once with each weighted by how
near it stands to the question's "what"/"which"/"who"; a word of the same family, "divisional" for
"division", counts in part), by the score of its passage, and by cues from the question's type (a
number for "how long", a name for "who", the noun of "which river", a definition for "what is").
One to three sentences are chosen; "X vs Y" questions get sentences covering both sides, and lead
with a sentence (or adjacent pair) that sets the two apart when one names both strictly (see
_contrast_lead); when every chosen sentence comes from one passage the last place goes to another
passage's best sentence if it scores nearly as well. The answer text shows each sentence as a
sentence (capital letter, full stop); its quote and offsets stay the source's.

Confidence is the share of the question's idf-weighted concepts that the best retrieved passage
covers. Below ABSTAIN_BELOW the answer abstains. That threshold is not picked by eye: it is the value
`emsqa.evaluate.calibrate_threshold` chooses on the calibration split of tests/data/ems_questions.jsonl
(maximum balanced accuracy of answerable vs unanswerable; midpoint of the widest gap on ties);
`tests/test_calibration.py` recomputes it and fails when the constant drifts from it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from emsqa.datatypes import Answer, AnswerSentence, Citation, Hit, Passage, Query
from emsqa.passages import split_sentences
from emsqa.retrieve import PreparedQuery
from emsqa.text import NEGATIONS, STOP_WORDS, Analyzer, Lexicon, tokenize

__all__ = ["ABSTAIN_BELOW", "NOT_FOUND", "compose", "coverage", "definitions_first", "smalltalk"]

ABSTAIN_BELOW = 0.772  # calibrated: see the module docstring and tests/test_calibration.py
SUBJECT_WEIGHT = 0.15
NOT_FOUND = "I could not find this in the corpus."

# Weights of the sentence scorer (see _candidates). They were fitted together by a conditional logit
# (one softmax over each question's candidate sentences, L2-tied to the earlier hand-set weights) on
# the questions of the first half of XQuAD's articles only, then rounded; benchmarks/quality.py
# shows each lever's effect as an ablation row. EMS questions did not tune them.
COVERAGE_WEIGHT = 0.32  # share of the question's idf-weighted concepts the sentence holds
NEIGHBOUR_WEIGHT = 0.16  # ... counting the sentence before it too
LOCAL_WEIGHT = 0.22  # ... with concepts weighted by their rarity among the candidate sentences
CONTEXT_WEIGHT = 0.3  # share the whole passage holds
PASSAGE_WEIGHT = 0.63  # the passage's retrieval score relative to the best one
NOVELTY_WEIGHT = 0.2  # share of the sentence's words that the question does not say
BIGRAM_WEIGHT = 0.025  # per question word pair the sentence holds (at most three count)
ANAPHOR_WEIGHT = 0.07  # a sentence opening with "It"/"This"/... also gains what the one before adds
PHRASE_WEIGHT = 0.05  # longest run of the question's own words (2-6 in a row), per question word
HEAD_WEIGHT = 0.06  # the sentence names the thing "what/which <noun>" asks for
LONG_PENALTY = 0.02  # sentences over 70 words
# A bibliography names topics in the question's own words ("START triage; JumpSTART pediatric
# triage") and answers none of them: its lines come after any other on-topic sentence.
REFERENCE_PENALTY = 0.6
# Share of the question's concepts the sentence holds, each weighted as well by how close the question
# puts it to its question word ("Who *led* the Panthers in sacks?": the words next to "who" name what
# the answer does; words far from it set the scene). Fitted on the tuning half of XQuAD only.
WH_NEAR_WEIGHT = 0.25
WH_NEAR_DECAY = 3.0  # tokens: a word this far from the question word counts 1/e as much
# Share of the question's concepts the sentence misses as written but holds in another form of the
# same word family: a word of the sentence begins with the same FAMILY_PREFIX letters as the
# question's ("division" / "divisional", "ctenophora" / "ctenophores", which the stemmer keeps apart).
FAMILY_WEIGHT = 0.3
FAMILY_PREFIX = 5
# An item of a list also answers on its own, shown with the list's lead-in ("An EMT may: … splint
# fractures"), and the whole list loses LIST_SPREAD_PENALTY when such an item covers the question
# as well: the item says the answer without the rest of the list.
LIST_ITEM_LEADS = True
LIST_SPREAD_PENALTY = 0.1
OMITTED = "…"  # marks list items left out of a quotation
FILL_SHARE = 0.75  # a further sentence must score this share of the best one
SECOND_SOURCE_SHARE = 0.75  # ... and so must another passage's sentence taking the last place

_NUMBER = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|hundred|thousand)\b",
    re.I,
)
_DEFINITION = re.compile(
    r"^\S+( \S+)? — |^(?:an? |the )?\S+(?: \S+)? (?:is|are) |\b(stands for|refers to|means|is called|is an?|are)\b",
    re.I,
)
_CONTRAST = re.compile(
    r"\b(more|less|greater|fewer|higher|lower|whereas|while|unlike|only|but|than|on the other hand|instead)\b",
    re.I,
)
_COMPARE = (
    re.compile(
        r"\bdifferen\w*\s+(?:between\s+)?(?:an?\s+|the\s+)?(.+?)\s+(?:and|vs\.?|versus)\s+(?:an?\s+|the\s+)?(.+?)[?.!]*$",
        re.I,
    ),
    re.compile(
        r"^(?:.*?\b)?(?:an?\s+|the\s+)?([\w\- ]+?)\s+(?:vs\.?|versus)\s+(?:an?\s+|the\s+)?(.+?)[?.!]*$",
        re.I,
    ),
    re.compile(
        r"\bcompare\s+(?:an?\s+|the\s+)?(.+?)\s+(?:and|with|to)\s+(?:an?\s+|the\s+)?(.+?)[?.!]*$",
        re.I,
    ),
)
# What kind of thing a question asks for, read from its first words ("who" -> a name). A sentence
# holding such a thing that the question does not already name earns ANSWER_TYPE_WEIGHT.
ANSWER_TYPE_WEIGHT = 0.21
FREQUENCY_MISSING = 0.1
_ASKS_PERSON = re.compile(r"^\W*(?:\w+\W+){0,3}?(who|whom|whose)\b", re.I)
_ASKS_TIME = re.compile(
    r"^\W*(?:\w+\W+){0,3}?(when|(what|which) (year|decade|century|date|month|day))\b|\bin what year\b",
    re.I,
)
_ASKS_PLACE = re.compile(r"^\W*(?:\w+\W+){0,3}?where\b", re.I)
_ASKS_FREQUENCY = re.compile(r"\bhow (?:often|frequently)\b", re.I)
_TIME_UNIT = r"(?:years?|months?|weeks?|days?|hours?|minutes?|seconds?)"
# A span of time or a rate: "two years", "every 15 minutes", "120 per minute", "annually".
_DURATION = re.compile(
    r"\b(?:\d+(?:[.,]\d+)*|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
    rf"|fifteen|twenty|thirty|forty|fifty|sixty|hundred)[- ]{_TIME_UNIT}\b"
    rf"|\b(?:every|each|per|a|an|once|twice) (?:\w+ )?{_TIME_UNIT}\b"
    r"|\b(?:annually|yearly|monthly|weekly|daily|hourly|biennially)\b",
    re.I,
)
_YEAR_OR_DATE = re.compile(
    r"\b(1\d{3}|20\d{2})s?\b|\b(january|february|march|april|may|june|july|august|september|october"
    r"|november|december)\b|\b\d{1,2}(st|nd|rd|th)? century\b",
    re.I,
)
_NAME = re.compile(r"\b[A-Z][^\W_]*")
_SPATIAL = re.compile(
    r"\b(?:above|below|beneath|under|over|between|behind|beside|near|inside|outside|across|along)"
    r" (?:the|a|an|its|his|her|their|each|both|one)\b",
    re.I,
)
_ANY_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_REFERENCE_SECTIONS = frozenset(
    ["sources", "references", "bibliography", "further reading", "see also"]
)
# A list item led by a short label: "EMT: about 150 to 190 hours", "Paramedic — ...".
_LABEL = re.compile(r"^([^\W\d_][^\s:—–]*(?: [^\s:—–]+){0,2})(?::| [—–]) ")
_LIST_ITEM_END = re.compile(r"(?<!\.\.)[.;]$")  # not an ellipsis
_BULLET = re.compile(r"^\s*(?:[-*•‣▪]|\d+[.)])\s+")
# A sentence opening with one of these leans on the sentence before it for its subject.
_ANAPHORS = frozenset("it its he she his her they their them this these those such".split())
# "What river ...", "Which battle ...": the word after what/which names the kind of thing asked for
# (unless it is a verb or a frame such as "kind of").
_HEAD = re.compile(
    r"\b(?:what|which)\s+(?!(?:is|are|was|were|did|does|do|has|have|had|can|could|would|will|should"
    r"|kind|type|sort|may|might|must)\b)([^\W\d_]+)",
    re.I,
)
_PHRASE_MAX = 6
# "How many nations ...?" is answered by a count of nations: "nine nations", "two different teams".
COUNT_WEIGHT = 0.1
_COUNT_OF = re.compile(r"\bhow many((?:\s+[^\W\d_]+){1,3})", re.I)
_COUNT_WORDS = frozenset(
    """two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen
    seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred
    hundreds thousand thousands million millions billion dozen dozens none""".split()
)
_COUNT_REACH = 3  # words between a count and the thing counted
_WH_WORDS = frozenset("what which who whom whose when where why how".split())
# The question words that stand for the answer itself, so that the words after them say what it does
# or is ("what caused", "who led", "which river"); after "when did", "where is", "why was" or "how
# does" comes the question's subject instead.
_WH_NEAR = frozenset("what which who whom whose".split())
# A question opening with one of these asks yes or no: a "who" inside it is a relative pronoun ("Can
# the person who answers 911 ...").
_YES_NO = frozenset(
    "can could do does did is are was were will would should shall has have had may might must".split()
)
# The first word after any opening quote or bracket. _as_sentence capitalises it only when it is all
# lower case ("give", not "mRNA") and a space or light punctuation follows it (not "e.g.").
_FIRST_WORD = re.compile(r"^[\"'“‘«(\[]*(?P<word>[^\W\d_]+(?:['’-][^\W\d_]+)*)")
_AFTER_WORD = frozenset(",;:!?)]”’»\"'")
_SENTENCE_END = re.compile(r"[.!?…:][\"'”’»)\]]*$")


@dataclass(frozen=True)
class _Candidate:
    hit: Hit
    start: int  # document offsets
    end: int
    text: str
    terms: frozenset[str]
    score: float
    # holds a question concept (or a word of its family, or the figure or date asked for, or opens
    # with "It"/"This" after a sentence that holds one): only such sentences fill an answer
    on_topic: bool


def coverage(pq: PreparedQuery, terms: frozenset[str] | set[str]) -> float:
    """Share of the question's weighted concepts found in `terms` (0..1)."""
    total = sum(w for w, _ in pq.concepts)
    if total <= 0:
        return 0.0
    got = sum(w for w, alts in pq.concepts if any(alt and alt <= terms for alt in alts))
    return got / total


def _sides(question: str, analyzer: Analyzer, lexicon: Lexicon | None) -> list[set[str]]:
    for pattern in _COMPARE:
        m = pattern.search(question)
        if m:
            sides = []
            for raw in m.group(1), m.group(2):
                terms = set(analyzer.content(raw))
                if lexicon is not None:
                    for _, other in lexicon.expansions(raw):
                        terms.update(analyzer.content(other))
                if terms:
                    sides.append(terms)
            if len(sides) == 2:
                return sides
    return []


def _corrected(query: Query) -> str:
    """The question's text with its misspelt words replaced by their corrections."""
    text = query.text
    for typed, fixed in query.corrections:
        text = re.sub(rf"(?<!\w){re.escape(typed)}(?!\w)", fixed, text, flags=re.I)
    return text


def _answer_kind(question: str, intents: frozenset[str]) -> str:
    """What the question asks for: "person", "time", "place", "frequency", "quantity" or ""
    (anything)."""
    if _ASKS_TIME.search(question):
        return "time"
    if _ASKS_FREQUENCY.search(question):
        return "frequency"
    if _ASKS_PERSON.search(question):
        return "person"
    if _ASKS_PLACE.search(question):
        return "place"
    return "quantity" if "quantity" in intents else ""


def _holds_kind(kind: str, sentence: str, asked: set[str]) -> bool:
    """Whether `sentence` holds a thing of `kind` the question (its words `asked`) does not name."""
    if kind in ("person", "place"):  # a capitalised word past the first
        if any(m.start() and m.group().lower() not in asked for m in _NAME.finditer(sentence)):
            return True
        # ... or, for a place, where one thing sits against another ("above the wound")
        return kind == "place" and _SPATIAL.search(sentence) is not None
    if kind == "time":
        return any(m.group().lower() not in asked for m in _YEAR_OR_DATE.finditer(sentence))
    if kind == "frequency":
        return any(_new_words(m.group(), asked) for m in _DURATION.finditer(sentence))
    if kind == "quantity":  # figures, not number words: "two" is often a side detail
        return any(m.group() not in asked for m in _ANY_NUMBER.finditer(sentence))
    return False


def _new_words(span: str, asked: set[str]) -> bool:
    """Whether `span` holds a word the question (its words `asked`) does not."""
    return any(w not in asked for w in tokenize(span))


def _units(text: str) -> list[tuple[int, int]]:
    """Sentence spans of a passage, where a sentence ending in ':' takes the list items after it."""
    spans = split_sentences(text)
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(spans):
        a, b = spans[i]
        j = i + 1
        if text[a:b].rstrip().endswith(":"):
            while j < len(spans) and j - i <= 6 and _BULLET.match(text[spans[j][0] : spans[j][1]]):
                b = spans[j][1]
                j += 1
        out.append((a, b))
        if j > i + 1:  # the items can also stand alone
            out.extend(spans[i + 1 : j])
        i = j
    return out


def _list_picks(text: str) -> list[tuple[int, int, str, int, str]]:
    """For each list of two items or more in a passage (a sentence ending in ':' and the items
    after it, as _units joins them): each item with the list's lead-in, as (start of the lead-in,
    end of the item, the two as shown, "lead-in: … item", end of the whole list, the lead-in)."""
    out = []
    for a, b in _units(text):
        spans = split_sentences(text[a:b])
        if len(spans) < 3 or not text[a + spans[0][0] : a + spans[0][1]].rstrip().endswith(":"):
            continue
        lead = " ".join(text[a + spans[0][0] : a + spans[0][1]].split())
        for n, (ia, ib) in enumerate(spans[1:]):
            item = _display(text[a + ia : a + ib])
            # items left out between the lead-in and this one are marked, as in any quotation
            shown = f"{lead} {item}" if n == 0 else f"{lead} {OMITTED} {item}"
            out.append((a, a + ib, shown, b, lead))
    return out


def _display(raw: str) -> str:
    lines = [" ".join(_BULLET.sub("", line).split()) for line in raw.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > 1 and lines[0].endswith(":"):
        # the items as one sentence: "...: A; B; C." (an item's own full stop would double up)
        items = "; ".join(_LIST_ITEM_END.sub("", line) for line in lines[1:])
        return f"{lines[0]} {items}" + ("" if items.endswith(("...", "…", "!", "?")) else ".")
    return " ".join(lines)


def _as_sentence(text: str) -> str:
    """`text` as an answer shows it: a capital first letter when its first word is a plain
    lower-case word ("give a short list" -> "Give a short list"; "mRNA", "pH" and "e.g." stay) and a
    full stop when it ends without one (a list item). Only the shown text changes: the sentence's
    quote and offsets still name the source as written."""
    m = _FIRST_WORD.match(text)
    after = text[m.end() : m.end() + 1] if m else ""
    if m and m.group("word").islower() and (not after or after.isspace() or after in _AFTER_WORD):
        i = m.start("word")
        text = text[:i] + text[i].upper() + text[i + 1 :]
    text = text.rstrip().rstrip(",;").rstrip()
    if text and not _SENTENCE_END.search(text):
        text += "."
    return text


def _covered(pq: PreparedQuery, terms: frozenset[str]) -> tuple[bool, ...]:
    """For each of the question's concepts, whether `terms` hold it."""
    return tuple(any(alt and alt <= terms for alt in alts) for _, alts in pq.concepts)


def _share(weights: Sequence[float], covered: Sequence[bool]) -> float:
    total = sum(weights)
    return sum(w for w, c in zip(weights, covered, strict=True) if c) / total if total > 0 else 0.0


def _longest_run(tokens: Sequence[str], where: dict[str, list[int]]) -> int:
    """Length of the longest run of `tokens` found in a row in the question (whose positions of each
    token are `where`), counted up to _PHRASE_MAX; 0 when no two tokens in a row are."""
    best = 0
    ending: dict[int, int] = {}  # question position -> length of the shared run ending there
    for token in tokens:
        places = where.get(token)
        if not places:
            ending = {}
            continue
        ending = {j: min(ending.get(j - 1, 0) + 1, _PHRASE_MAX) for j in places}
        best = max(best, *ending.values())
    return best if best >= 2 else 0


def _near_wh(pq: PreparedQuery, tokens: Sequence[str], analyzer: Analyzer) -> list[float]:
    """Each question concept's weight scaled by exp(-d / WH_NEAR_DECAY), d being how many tokens
    separate its nearest word from the question's first question word (what/who/...) in `tokens`
    (the question's); [] when the question has no question word, when its first is not one of
    _WH_NEAR, or when it asks yes or no. A concept the question does not spell out (a carried or
    expanded term) scales to 0."""
    first = next((i for i, t in enumerate(tokens) if t in _WH_WORDS), -1)
    if first < 0 or tokens[first] not in _WH_NEAR or tokens[0] in _YES_NO:
        return []
    distance: dict[str, int] = {}
    for i, token in enumerate(tokens):
        if token not in STOP_WORDS:
            for term in analyzer.content_of([token]):
                distance.setdefault(term, abs(i - first))
    out = []
    for w, alts in pq.concepts:
        found = [distance[t] for alt in alts for t in alt if t in distance]
        out.append(w * math.exp(-min(found) / WH_NEAR_DECAY) if found else 0.0)
    return out


def _prefixes(terms: frozenset[str] | set[str]) -> set[str]:
    """The first FAMILY_PREFIX letters of each single-word term at least that long."""
    return {t[:FAMILY_PREFIX] for t in terms if len(t) >= FAMILY_PREFIX and " " not in t}


def _kin(alts: tuple[frozenset[str], ...], terms: frozenset[str], prefixes: set[str]) -> bool:
    """Whether `terms` hold some alternative of a concept, each of its words as written or (when
    at least FAMILY_PREFIX letters long) by its first FAMILY_PREFIX letters."""
    return any(
        alt
        and all(
            t in terms
            or (len(t) >= FAMILY_PREFIX and " " not in t and t[:FAMILY_PREFIX] in prefixes)
            for t in alt
        )
        for alt in alts
    )


@dataclass(frozen=True)
class _Unit:
    hit: Hit
    start: int  # offsets in the passage
    end: int
    text: str
    tokens: list[str]  # tokenize(text)
    terms: frozenset[str]
    before: frozenset[str]  # terms of the sentence before it in the passage
    covered: tuple[bool, ...]  # per question concept


def _candidates(
    pq: PreparedQuery,
    hits: Sequence[Hit],
    analyzer: Analyzer,
    term_sets: Sequence[frozenset[str]],
) -> list[_Candidate]:
    """Every sentence of `hits` scored; `term_sets` are the hits' passage terms (title and section
    included), already analysed for the confidence."""
    units: list[_Unit] = []
    negations = [all(alt <= NEGATIONS for alt in alts) for _, alts in pq.concepts]
    spread: set[int] = set()  # positions in `units` of lists one of whose items covers as much
    for hit in hits:
        text = hit.passage.text
        before: frozenset[str] = frozenset()
        lists: dict[tuple[int, int], tuple[int, frozenset[str]]] = {}  # span -> position, before
        for a, b in _units(text):
            display = _display(text[a:b])
            if not display:
                continue
            tokens = tokenize(display)
            terms = frozenset(analyzer.terms_of(analyzer.content_of(tokens)))
            lists[(a, b)] = (len(units), before)
            units.append(_Unit(hit, a, b, display, tokens, terms, before, _covered(pq, terms)))
            before = terms
        if not LIST_ITEM_LEADS:
            continue
        # an item with its list's lead-in ("an EMT may: give ... epinephrine auto-injector ..."),
        # which answers as well as the whole list when it covers as much, and says only that
        for a, b, display, list_end, lead in _list_picks(text):
            whole, before = lists.get((a, list_end), (-1, frozenset()))
            tokens = tokenize(display)
            terms = frozenset(analyzer.terms_of(analyzer.content_of(tokens)))
            covered = _covered(pq, terms)
            by_lead = _covered(pq, frozenset(analyzer.terms(lead)))
            if not any(
                c and not by and not negation
                for c, by, negation in zip(covered, by_lead, negations, strict=True)
            ):
                # the item adds nothing the question asks (a "not" alone does not single an item
                # out): the list answers as a whole
                continue
            if whole >= 0 and all(
                c or not w for c, w in zip(covered, units[whole].covered, strict=True)
            ):
                spread.add(whole)
            units.append(_Unit(hit, a, b, display, tokens, terms, before, covered))
    if not units:
        return []
    # A concept found in most candidate sentences (the topic every sentence names) tells them apart
    # less than one found in few: the "local" weights scale each concept by that rarity.
    weights = [w for w, _ in pq.concepts]
    found = [sum(u.covered[i] for u in units) for i in range(len(weights))]
    local = [
        w * math.log((len(units) + 1) / (f + 0.5)) for w, f in zip(weights, found, strict=True)
    ]
    best = max(h.score for h in hits) or 1.0
    contexts = {h.passage.id: coverage(pq, t) for h, t in zip(hits, term_sets, strict=True)}
    own_bigrams = {t for t in pq.query.terms if " " in t}
    subjects = {t for t in pq.query.terms if " " not in t}
    asked = set(pq.terms)
    asked_text = _corrected(pq.query)  # "how offen" asks how often
    kind = _answer_kind(asked_text, pq.intents)
    question_tokens = tokenize(asked_text)
    question_words = set(question_tokens)
    where: dict[str, list[int]] = {}
    for i, token in enumerate(question_tokens):
        where.setdefault(token, []).append(i)
    near_wh = _near_wh(pq, question_tokens, analyzer)
    counted = _counted(asked_text, analyzer)
    head_match = _HEAD.search(asked_text)
    head_terms = analyzer.content(head_match.group(1)) if head_match else []
    head = head_terms[0] if head_terms else None
    out = []
    for position, u in enumerate(units):
        p, display, terms, tokens = u.hit.passage, u.text, u.terms, u.tokens
        words = len(display.split())
        own = _share(weights, u.covered)
        # A sentence often leans on the one before it ("He is also the oldest ... at age 39"):
        # part of its coverage counts that sentence's words too, more when it opens with "It"/"This".
        joint = coverage(pq, terms | u.before) if u.before else own
        score = COVERAGE_WEIGHT * own + NEIGHBOUR_WEIGHT * joint
        score += LOCAL_WEIGHT * _share(local, u.covered)
        if near_wh:
            score += WH_NEAR_WEIGHT * _share(near_wh, u.covered)
        if FAMILY_WEIGHT and not all(u.covered):
            mine = _prefixes(terms)
            kin = [
                not c and _kin(alts, terms, mine)
                for c, (_, alts) in zip(u.covered, pq.concepts, strict=True)
            ]
            score += FAMILY_WEIGHT * _share(weights, kin)
        else:
            kin = []
        anaphoric = bool(tokens) and tokens[0] in _ANAPHORS
        # a count of the thing asked ("two universities") holds a quantity, number word or not
        counts = bool(counted & terms) and _counts(tokens, counted, analyzer)
        holds_kind = bool(kind) and (
            _holds_kind(kind, display, question_words) or (kind == "quantity" and counts)
        )
        # a figure or a date for "how long"/"when" is on topic too: paraphrases share no words
        on_topic = (
            own > 0
            or any(kin)
            or (anaphoric and joint > 0)
            or (holds_kind and kind in ("quantity", "time", "frequency"))
        )
        if anaphoric:
            score += ANAPHOR_WEIGHT * (joint - own)
        score += CONTEXT_WEIGHT * contexts[p.id] + PASSAGE_WEIGHT * (u.hit.score / best)
        # An answer tells something new: a sentence made only of the question's words
        # ("there is a big difference between EMTs and paramedics") says nothing.
        unigrams = [t for t in terms if " " not in t]
        novelty = sum(t not in asked for t in unigrams) / max(1, len(unigrams))
        score += NOVELTY_WEIGHT * novelty
        score += BIGRAM_WEIGHT * min(3, len(own_bigrams & terms))
        # a question is often worded after the sentence that answers it: a run of its words
        if question_tokens:
            score += PHRASE_WEIGHT * _longest_run(tokens, where) / len(question_tokens)
        if counts:
            score += COUNT_WEIGHT
        if head is not None and head in terms:
            score += HEAD_WEIGHT
        if "quantity" in pq.intents:
            score += 0.2 if _NUMBER.search(display) else -0.1
            score += 0.1 if pq.cues & terms else 0.0
        if holds_kind:
            score += ANSWER_TYPE_WEIGHT
        elif kind == "frequency":  # "how often?" is not answered without a span of time
            score -= FREQUENCY_MISSING
        if "definition" in pq.intents and _DEFINITION.search(display):
            score += 0.1
            # a definition of the thing asked about, not of a neighbour ("AEMT — ..." for "EMT?")
            lead = analyzer.content(" ".join(display.split()[:2]))
            if lead and lead[0] in subjects:
                score += SUBJECT_WEIGHT
        if "comparison" in pq.intents and _CONTRAST.search(display):
            score += 0.1
        if p.section.strip().lower() in _REFERENCE_SECTIONS:
            score -= REFERENCE_PENALTY
        if position in spread:
            score -= LIST_SPREAD_PENALTY
        if display.endswith("?") or words < 4:
            score -= 0.3
        elif words > 70:
            score -= LONG_PENALTY
        out.append(
            _Candidate(u.hit, p.start + u.start, p.start + u.end, display, terms, score, on_topic)
        )
    return out


def _counted(question: str, analyzer: Analyzer) -> frozenset[str]:
    """The terms of the thing a "how many ...?" question counts: its next words, up to three and
    up to the first stop word ("how many continuing education hours does ...")."""
    found = _COUNT_OF.search(question)
    if not found:
        return frozenset()
    words: list[str] = []
    for word in found.group(1).split():
        if words and word.lower() in STOP_WORDS:
            break
        words.append(word)
    return frozenset(analyzer.content(" ".join(words)))


def _counts(tokens: Sequence[str], counted: frozenset[str], analyzer: Analyzer) -> bool:
    """Whether a count (a figure or a number word) comes within _COUNT_REACH words before one of
    the `counted` terms in `tokens`."""
    for i, token in enumerate(tokens):
        if token[0].isdigit() or token in _COUNT_WORDS:
            after = tokens[i + 1 : i + 1 + _COUNT_REACH]
            if any(analyzer.stem_of(t) in counted for t in after):
                return True
    return False


def _defines_subject(hit: Hit, subjects: set[str], analyzer: Analyzer) -> bool:
    """Whether a sentence of the hit's passage defines one of `subjects` ("A paramedic is ...")."""
    text = hit.passage.text
    for a, b in _units(text):
        display = _display(text[a:b])
        if display and _DEFINITION.search(display):
            lead = analyzer.content(" ".join(display.split()[:2]))
            if lead and lead[0] in subjects:
                return True
    return False


def definitions_first(pq: PreparedQuery, hits: Sequence[Hit], analyzer: Analyzer) -> list[Hit]:
    """For a definition question ("What is a paramedic?"), `hits` with the best passage that
    defines its subject moved to the front, scored as the first hit was (a second-stage
    ranking; the other ranks are renumbered); other questions' hits unchanged. A passage that
    mentions the subject often can outscore the one sentence that says what it is; the answer
    should start from that sentence."""
    if "definition" not in pq.intents or not hits:
        return list(hits)
    subjects = {t for t in pq.query.terms if " " not in t}
    for i, hit in enumerate(hits):
        if _defines_subject(hit, subjects, analyzer):
            if i == 0:
                return list(hits)
            first = Hit(passage=hit.passage, score=hits[0].score, rank=1)
            rest = [*hits[:i], *hits[i + 1 :]]
            return [first] + [
                Hit(passage=h.passage, score=h.score, rank=r) for r, h in enumerate(rest, 2)
            ]
    return list(hits)


# --- "X vs Y": a lead that contrasts the two sides ----------------------------------------------
# The sides are matched strictly: by their own stemmed words, or by a lexicon form only when one is
# the initials of the other (EMT = emergency medical technician; not EMT-P for paramedic), and never
# inside a longer lexicon form of something else ("emergency medical technician" within "advanced
# emergency medical technician" is the AEMT).

_DIFFER = re.compile(
    r"^(?:how\s+(?:does|do|did|is|are)\s+)?(?:an?\s+|the\s+)?(.+?)\s+differ\w*\s+from\s+"
    r"(?:an?\s+|the\s+)?(.+?)[?.!]*$",
    re.I,
)
_CONTRAST_WORDS = frozenset("while whereas but however than more less fewer unlike".split())
# A cue this many words before the first side still sets the two apart ("Unlike X, Y").
_CUE_BEFORE = 3
# Words that join two names rather than set them apart ("every EMT and every paramedic").
_JOINING = frozenset(
    "and or nor both either neither every each all any some many most other".split()
)
_LETTERS = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class _Side:
    forms: frozenset[tuple[str, ...]]  # stemmed content words of each way of naming it
    group: int  # its lexicon group, -1 when none


@dataclass(frozen=True)
class _Naming:
    """What a candidate sentence says of the two sides, by token position: where it names each
    side, its contrast cues, its "plain" words (content words that name nothing: no side, no lexicon
    form, no joining word such as "every") and its "and"/"or"/"nor"."""

    spans: tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]
    cues: tuple[int, ...]
    plain: tuple[bool, ...]
    joins: tuple[int, ...]


def _is_initials(short: str, long: str) -> bool:
    """Whether `short` is written as the initials of `long`'s words ("EMT", "emergency medical
    technician"; "AEMT", "advanced EMT": a capitalised abbreviation inside counts whole)."""
    letters = "".join(_LETTERS.findall(short))
    words = _LETTERS.findall(long)
    if " " in short.strip() or len(letters) < 2 or not letters.isupper() or len(words) < 2:
        return False
    return "".join(w if len(w) > 1 and w.isupper() else w[0] for w in words).upper() == letters


@lru_cache(maxsize=4)
def _form_groups(lexicon: Lexicon | None, analyzer: Analyzer) -> dict[tuple[str, ...], int]:
    """Each lexicon form's stemmed words -> its group (the first group when two share a form).
    Callers must not change the dict (it is cached)."""
    out: dict[tuple[str, ...], int] = {}
    for gi, group in enumerate(lexicon.groups if lexicon is not None else ()):
        for form in group:
            key = tuple(analyzer.content(form))
            if key:
                out.setdefault(key, gi)
    return out


def _strict_sides(
    question: str,
    analyzer: Analyzer,
    lexicon: Lexicon | None,
    groups: dict[tuple[str, ...], int],
) -> list[_Side]:
    """The two things an "X vs Y" / "difference between X and Y" / "how does X differ from Y"
    question compares, each with its exact abbreviations; [] for other questions."""
    for pattern in (*_COMPARE, _DIFFER):
        m = pattern.search(question)
        if not m:
            continue
        sides = []
        for raw in re.split(r"[:;,]", m.group(1))[-1], re.split(r"[:;,]", m.group(2))[0]:
            key = tuple(analyzer.content(raw))
            if not key:
                break
            forms = {key}
            gi = groups.get(key, -1)
            if gi >= 0 and lexicon is not None:
                group = lexicon.groups[gi]
                written = next(f for f in group if tuple(analyzer.content(f)) == key)
                for other in group:
                    if _is_initials(other, written) or _is_initials(written, other):
                        forms.add(tuple(analyzer.content(other)))
            sides.append(_Side(frozenset(forms), gi))
        if len(sides) == 2 and not sides[0].forms & sides[1].forms:
            return sides
    return []


def _naming(
    text: str, sides: Sequence[_Side], analyzer: Analyzer, groups: dict[tuple[str, ...], int]
) -> _Naming:
    tokens = tokenize(text)
    stops = tuple(t in STOP_WORDS for t in tokens)
    where = [i for i, stop in enumerate(stops) if not stop]  # token position of each content word
    stems = analyzer.content_of(tokens)
    longest = max(map(len, groups), default=0)

    def inside_other(a: int, b: int, group: int) -> bool:
        """Whether content words a..b-1 lie inside a longer lexicon form of another group."""
        for n in range(min(longest, len(stems)), b - a, -1):
            for lo in range(max(0, b - n), min(a, len(stems) - n) + 1):
                found = groups.get(tuple(stems[lo : lo + n]))
                if found is not None and found != group:
                    return True
        return False

    spans = []
    for side in sides:
        found = []
        for form in side.forms:
            n = len(form)
            for a in range(len(stems) - n + 1):
                if tuple(stems[a : a + n]) == form and not inside_other(a, a + n, side.group):
                    found.append((where[a], where[a + n - 1] + 1))
        spans.append(tuple(sorted(found)))
    cues = tuple(
        i
        for i, t in enumerate(tokens)
        if t in _CONTRAST_WORDS
        or t.startswith("differ")
        or (t == "hand" and i > 0 and tokens[i - 1] == "other")
        or (t == "contrast" and i > 0 and tokens[i - 1] == "in")
    )
    plain = [not stop and t not in _JOINING for t, stop in zip(tokens, stops, strict=True)]
    for n in range(1, min(longest, len(stems)) + 1):  # words of lexicon forms ("AEMT", "BLS")
        for a in range(len(stems) - n + 1):
            if tuple(stems[a : a + n]) in groups:
                for i in range(where[a], where[a + n - 1] + 1):
                    plain[i] = False
    for lo, hi in (*spans[0], *spans[1]):
        plain[lo:hi] = [False] * (hi - lo)
    joins = tuple(i for i, t in enumerate(tokens) if t in ("and", "or", "nor"))
    return _Naming((spans[0], spans[1]), cues, tuple(plain), joins)


def _set_apart(naming: _Naming) -> tuple[bool, bool]:
    """(names both sides apart, with a contrast cue): apart means a cue, or a plain content word,
    stands between the two names, or a cue stands just before the first name with no "and" between
    them ("Unlike EMTs, paramedics ..."). So neither "EMTs and paramedics", "while EMTs and
    paramedics ..." nor "EMTs, AEMTs and paramedics" sets them apart. The cue must come before the
    later name ("paramedics ..., while EMTs"; not "paramedics start as EMTs before more ...")."""
    apart = cued = False
    cues = naming.cues
    for a0, a1 in naming.spans[0]:
        for b0, b1 in naming.spans[1]:
            lo, hi = (a1, b0) if a0 < b0 else (b1, a0)
            if lo > hi:  # overlapping names
                continue
            between = range(lo, hi)
            first = min(a0, b0)
            inside = any(c in between for c in cues)
            leading = any(first - _CUE_BEFORE <= c < first for c in cues)
            joined = any(j in between for j in naming.joins)
            if inside or any(naming.plain[i] for i in between) or (leading and not joined):
                apart = True
                cued = cued or inside or leading
    return apart, cued


def _compares(question: str) -> bool:
    """Whether `question` compares two things ("X vs Y", "difference between", "differ from")."""
    return any(p.search(question) for p in (*_COMPARE, _DIFFER))


def _contrast_lead(
    cands: Sequence[_Candidate], question: str, analyzer: Analyzer, lexicon: Lexicon | None
) -> list[_Candidate]:
    """For a question comparing two things, the sentence (or adjacent pair, one side each) that best
    sets them apart, to lead the answer; [] for other questions, when no candidate names both sides
    apart, or when the best such scores under half the best candidate. Sentences with a contrast cue
    come first, then those saying "difference" outright, then by score (a pair by its mean).
    Sentences of the first COMPARE_POOL hits may lead (compose passes them)."""
    if not cands or not _compares(question):
        return []
    groups = _form_groups(lexicon, analyzer)
    sides = _strict_sides(question, analyzer, lexicon, groups)
    if len(sides) != 2:
        return []
    namings = [_naming(c.text, sides, analyzer, groups) for c in cands]
    options: list[tuple[bool, bool, float, list[_Candidate]]] = []
    for c, naming in zip(cands, namings, strict=True):
        apart, cued = _set_apart(naming)
        if apart:
            options.append((cued, _says_differ(c.text), c.score, [c]))
    for i, (c1, n1) in enumerate(zip(cands, namings, strict=True)):
        names1 = [bool(spans) for spans in n1.spans]
        if names1.count(True) != 1:
            continue
        text = c1.hit.passage.text
        for c2, n2 in zip(cands[i + 1 :], namings[i + 1 :], strict=True):
            if c2.hit is not c1.hit:  # a hit's candidates come together, in passage order
                break
            if c2.start < c1.end:  # a list item inside the unit that joins its list
                continue
            gap = text[c1.end - c1.hit.passage.start : c2.start - c1.hit.passage.start]
            if _BULLET.sub("", gap).strip():
                break  # not the next sentence
            if [bool(spans) for spans in n2.spans] == [not x for x in names1]:
                options.append(
                    (
                        bool(n2.cues),
                        _says_differ(c1.text),
                        (c1.score + c2.score) / 2,
                        [c1, c2],
                    )
                )
            break
    if not options:
        return []
    _, _, score, lead = max(options, key=lambda o: (o[0], o[1], o[2]))
    return lead if score >= 0.5 * max(c.score for c in cands) else []


_DIFFER_WORD = re.compile(r"\bdiffer(?:s|ed|ence|ences|ent|ently)?\b", re.I)


def _says_differ(text: str) -> bool:
    """Whether a sentence says outright that it tells a difference ("One key difference is that
    EMTs ..."): among sentences that set the two sides apart, these answer "what is the
    difference?" before those that add one more ("Additionally, paramedics ..., while EMTs ...")."""
    return bool(_DIFFER_WORD.search(text))


def _label_lead(
    cands: Sequence[_Candidate], pq: PreparedQuery, analyzer: Analyzer
) -> list[_Candidate]:
    """When the best sentence is a labelled list item ("AEMT: ... on top of EMT training") and an
    item of the same list is labelled with what the question asks about ("EMT: about 150 to 190
    hours" for "How long is EMT training?"), that item, to lead the answer: the label says what an
    item is about, whatever else it names. It must hold some of the question's words and score at
    least FILL_SHARE of the best; [] otherwise."""
    if not cands:
        return []
    best = max(cands, key=lambda c: (c.score, -c.hit.rank, -c.start))
    subjects = {t for t in pq.query.terms if " " not in t}

    def label(c: _Candidate) -> str | None:
        m = _LABEL.match(c.text)
        lead = analyzer.content(m.group(1)) if m else []
        return lead[0] if len(lead) == 1 else None

    best_label = label(best)
    if best_label is None or best_label in subjects:
        return []
    siblings = [
        c
        for c in cands
        if c.hit is best.hit
        and c.on_topic
        and c.score >= FILL_SHARE * best.score
        and label(c) in subjects
    ]
    return [max(siblings, key=lambda c: c.score)] if len(siblings) == 1 else []


def _choose(
    cands: list[_Candidate],
    sides: list[set[str]],
    limit: int = 3,
    lead: Sequence[_Candidate] = (),
) -> list[_Candidate]:
    ranked = sorted(cands, key=lambda c: (-c.score, c.hit.rank, c.start))
    if not ranked:
        return []
    chosen = list(lead) or [ranked[0]]

    def similar(c: _Candidate) -> bool:
        # most of its words shown already, or part of the text shown already (a list's item with
        # its lead-in, and the whole list)
        return any(
            len(c.terms & o.terms) > 0.6 * max(1, min(len(c.terms), len(o.terms)))
            or (
                c.hit.passage.doc_id == o.hit.passage.doc_id and c.start < o.end and o.start < c.end
            )
            for o in chosen
        )

    for side in sides:  # "X vs Y": each side gets a sentence of its own where the passages have one
        for c in ranked:
            if (
                c not in chosen
                and side & c.terms
                and not similar(c)
                and c.score >= 0.5 * ranked[0].score
            ):
                chosen.append(c)
                break
    top = ranked[0].score
    for c in ranked[1:]:
        if len(chosen) >= limit:
            break
        # a sentence holding none of the question's words does not join an answer to it, however
        # well its passage scores (in a one-passage index every sentence shares that score)
        if c in chosen or c.score < FILL_SHARE * top or not c.on_topic or similar(c):
            continue
        chosen.append(c)
    chosen = chosen[:limit]
    # Sentences all from one passage: the last place goes to the best sentence of another passage
    # when it clears its bar, so the answer shows (and cites) a second source.
    sources = {c.hit.passage.id for c in chosen}
    if len(sources) == 1:
        other = next((c for c in ranked if c.hit.passage.id not in sources), None)
        if (
            other is not None
            and other.score >= SECOND_SOURCE_SHARE * top
            and other.on_topic
            and not similar(other)
        ):
            chosen = [*chosen[: limit - 1], other]
    return chosen


COMPARE_POOL = 5  # hits whose sentences may lead the answer to a comparison question


def compose(
    question: str,
    pq: PreparedQuery,
    hits: Sequence[Hit],
    *,
    analyzer: Analyzer,
    lexicon: Lexicon | None = None,
    k: int = 3,
    threshold: float = ABSTAIN_BELOW,
    neighbours: Callable[[Passage], Sequence[Passage]] | None = None,
) -> Answer:
    """Build the Answer for `question` from its ranked `hits` (cited sentences, or an abstention).

    `neighbours(passage)`: the passages next to it in its document, whose words also count when
    judging how much of the question a passage covers (an answer may lean on the text around it).
    """
    if not pq.concepts:
        return Answer(
            question=question, text=NOT_FOUND, abstained=True, confidence=0.0,
            reason="the question has no words to search for", query=pq.query, kind="abstain",
        )  # fmt: skip
    if not hits:
        return Answer(
            question=question, text=NOT_FOUND, abstained=True, confidence=0.0,
            reason="no passage shares a word with the question", query=pq.query, kind="abstain",
        )  # fmt: skip
    top = list(hits[:k])
    term_sets = [
        frozenset(analyzer.fields(h.passage.title, h.passage.section, h.passage.text, 1, 1))
        for h in top
    ]
    around = (
        [
            [
                frozenset(analyzer.fields(n.title, n.section, n.text, 1, 1))
                for n in neighbours(h.passage)
            ]
            for h in top
        ]
        if neighbours is not None
        else []
    )
    confidence, covering = _confidence(pq, top, term_sets, around)
    if confidence < threshold:
        missing = _missing_words(pq, covering, analyzer)
        reason = f"the best passages cover only {confidence:.0%} of what the question asks about"
        if missing:
            reason += f" (nothing on: {', '.join(missing[:5])})"
        return Answer(
            question=question, text=NOT_FOUND, abstained=True, confidence=confidence, reason=reason,
            related=tuple(hits[:3]), query=pq.query, kind="abstain", hits=tuple(hits),
        )  # fmt: skip
    cands = _candidates(pq, top, analyzer, term_sets)
    lead: list[_Candidate] = []
    if _compares(pq.query.text):
        # the sentence that sets two things apart may sit in a passage ranked just below the k
        wide = list(hits[:COMPARE_POOL])
        wide_sets = term_sets + [
            frozenset(analyzer.fields(h.passage.title, h.passage.section, h.passage.text, 1, 1))
            for h in wide[len(top) :]
        ]
        wide_cands = _candidates(pq, wide, analyzer, wide_sets) if len(wide) > len(top) else cands
        lead = _contrast_lead(wide_cands, pq.query.text, analyzer, lexicon)
    chosen = _choose(
        cands,
        _sides(pq.query.text, analyzer, lexicon),
        lead=lead or _label_lead(cands, pq, analyzer),
    )
    numbers: dict[str, int] = {}
    citations: list[Citation] = []
    sentences: list[AnswerSentence] = []
    for c in chosen:
        pid = c.hit.passage.id
        if pid not in numbers:
            numbers[pid] = len(numbers) + 1
            citations.append(Citation(n=numbers[pid], passage=c.hit.passage, score=c.hit.score))
        sentences.append(
            AnswerSentence(text=c.text, citation=numbers[pid], start=c.start, end=c.end)
        )
    text = " ".join(f"{_as_sentence(s.text)} [{s.citation}]" for s in sentences)
    return Answer(
        question=question, text=text, citations=tuple(citations), abstained=False, confidence=confidence,
        sentences=tuple(sentences), query=pq.query, kind="answer", hits=tuple(hits),
    )  # fmt: skip


def _confidence(
    pq: PreparedQuery,
    top: Sequence[Hit],
    term_sets: Sequence[frozenset[str]],
    around: Sequence[Sequence[frozenset[str]]] = (),
) -> tuple[float, frozenset[str]]:
    """Coverage of the question by its best-covering passage, or by it and a neighbouring passage
    of its document together (an answer may straddle a passage boundary, or lean on the passage
    before it for its subject); and the terms that covered it. `around[i]`: the terms of hit i's
    neighbours; without them, only neighbours among the hits count."""
    best, covering = -1.0, frozenset[str]()
    for i, terms in enumerate(term_sets):
        options = [terms]
        if around:
            options.extend(terms | near for near in around[i])
        else:
            for j in range(len(term_sets)):
                a, b = top[i].passage, top[j].passage
                if j != i and a.doc_id == b.doc_id and abs(a.ordinal - b.ordinal) == 1:
                    options.append(terms | term_sets[j])
        for option in options:
            c = coverage(pq, option)
            if c > best:
                best, covering = c, option
    return max(best, 0.0), covering


def _missing_words(pq: PreparedQuery, terms: frozenset[str], analyzer: Analyzer) -> list[str]:
    """The question's own words (as typed) whose concepts `terms` do not cover, weightiest first."""
    surface: dict[str, str] = {}
    for word in tokenize(pq.query.text):
        for term in analyzer.content(word):
            surface.setdefault(term, word)
    missing = []
    for _, alts in sorted(pq.concepts, key=lambda c: -c[0]):
        if not any(alt and alt <= terms for alt in alts):
            missing.append(" ".join(surface.get(t, t) for t in sorted(alts[0])))
    return missing


_GREETING = re.compile(
    r"^(hi|hello|hey|hiya|howdy|good (morning|afternoon|evening)|greetings)\b[\s!.,]*(there|emsqa)?[\s!.]*$",
    re.I,
)
_THANKS = re.compile(
    r"^(thanks?( you)?( so much| a lot)?|thx|ty|cheers|great,? thanks?|ok(ay)?,? thanks?)[\s!.]*$",
    re.I,
)
_HELP = re.compile(
    r"^(help|\?|what can you do\??|how do i use (this|you)\??|what do you know( about)?\??)[\s!.]*$",
    re.I,
)
_SMALLTALK_REPLIES = (
    (
        _GREETING,
        "Hello! Ask me a question about the documents, for example: What is the difference between an EMT and a paramedic?",
    ),
    (_THANKS, "You're welcome. Ask another question any time."),
    (
        _HELP,
        "Ask a question in plain words and I will answer from the documents, citing the passages [n] I used.",
    ),
)


def smalltalk(question: object) -> Answer | None:
    """A short friendly reply to greetings, thanks and requests for help; None for real questions."""
    if not isinstance(question, str):
        return None
    text = " ".join(question.split())
    for pattern, reply in _SMALLTALK_REPLIES:
        if pattern.match(text):
            return Answer(question=question, text=reply, confidence=1.0, kind="smalltalk")
    return None
