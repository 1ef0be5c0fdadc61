"""Question -> weighted query terms -> ranked passages, with numpy only.

A question is analysed with the index's own analyzer, expanded with the lexicon (expansion terms
weigh EXPANSION_WEIGHT) and, when it reads as a follow-up, completed with the content words of the
previous question (weighing CARRY_WEIGHT). Scoring walks only the postings of the question's terms:
the cost grows with the number of passages sharing a term with the question, not with the corpus.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from emsqa.arrays import sorted_unique, weighted_postings
from emsqa.datatypes import Hit, Query, _unchecked
from emsqa.errors import QuestionError
from emsqa.fusion import fuse
from emsqa.store import PassageRow, Store
from emsqa.text import LIGHT_WEIGHT, NEGATIONS, STOP_WORDS, Analyzer, Lexicon, tokenize

__all__ = [
    "CARRY_WEIGHT",
    "EXPANSION_WEIGHT",
    "MAX_QUESTION_CHARS",
    "PreparedQuery",
    "explain",
    "prepare",
    "search",
    "search_many",
]

MAX_QUESTION_CHARS = 2000
EXPANSION_WEIGHT = 0.5
CARRY_WEIGHT = 0.6
CARRIED_CONCEPT = 1.0  # how much a carried-over word counts when judging coverage

# Question frames: words that say what kind of answer is wanted, not what it is about ("how long"
# asks for a duration; its "long" is not a topic). Each frame is removed from the topic, names an
# intent the answer composer uses, and may add cue words (weighing CUE_WEIGHT) to the search.
_FRAMES: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = (
    (
        re.compile(r"\bhow (long|many (years|hours|weeks|months|days))\b", re.I),
        "quantity",
        ("length", "duration", "hours", "weeks", "months", "years"),
    ),
    (re.compile(r"\bhow often\b", re.I), "quantity", ("every", "years")),
    (
        re.compile(r"\bhow (many|much|old|far|soon)\b|\bwhat (percentage|number|age)\b", re.I),
        "quantity",
        (),
    ),
    (
        re.compile(
            r"\b(stand|stands) for\b|\bshort for\b|\babbreviation (of|for)\b",
            re.I,
        ),
        "definition",
        (),
    ),
    (
        re.compile(
            r"^\s*(what|who) (is|are) (an? |the )?\S+( \S+)?\s*\??$|\bdefine\b|\bdefinition of\b|\bmeaning of\b|\bwhat does .{1,40}? mean\b"
            r"|^\s*what (does|do) (an? |the )?\S+( \S+)? (do|show|measure|mean)\s*\??$",
            re.I,
        ),
        "definition",
        (),
    ),
    (
        re.compile(
            r"\bdiffer(s|ed|ence|ences|ent|entiate)?\b|\bcompare[ds]?\b|\bcomparison\b|\bvs\.?\b|\bversus\b|\bdistinguish",
            re.I,
        ),
        "comparison",
        ("difference", "whereas", "unlike"),
    ),
    (
        re.compile(
            r"\bwhat (kind|type|sort)s? of\b|\bcan you tell me\b|\bis it true that\b|\bdo you know\b",
            re.I,
        ),
        "",
        (),
    ),
)
# The words of the frames, which a misspelling must not hide ("how offen", "the diference"): a
# question word the index does not know is corrected to one of these as to a corpus word.
_FRAME_SPELLINGS = tuple(
    sorted(
        "long many much often old soon percentage number stand stands short abbreviation define "
        "definition meaning mean means differ differs difference differences different "
        "differentiate compare compared compares comparison versus distinguish".split()
    )
)
_FRAME_SPELLING_SET = frozenset(_FRAME_SPELLINGS)
_FRAME_WORDS = re.compile(
    r"\b(mean|means|meaning|stand|stands|short|abbreviation|define|definition|differ|differs|differed|differences?|different|differentiate|compared?|compares|comparison|vs|versus|distinguish\w*)\b",
    re.I,
)
CUE_WEIGHT = 0.3
CORRECTION_WEIGHT = 0.8
# negations that, closing a question, leave out what they negate (see _QueryTerms.add); a closing
# "without" was not part of what the EMS and XQuAD checks measured, so it keeps its full weight
_CLOSING_NEGATIONS = NEGATIONS - {"without"}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_FOLLOW_START = re.compile(
    r"^\s*(and|also|what about|how about|what else|and what|same for|then)\b", re.I
)
_ANAPHORA = frozenset(
    [
        "they",
        "them",
        "their",
        "theirs",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "he",
        "she",
        "him",
        "his",
        "her",
        "one",
        "ones",
    ]
)
# Who a question is about: a follow-up naming a new role replaces the old one instead of adding to it.
_PERSONS = frozenset("they them their theirs he him his she her hers".split())
_ROLES = frozenset(["emr", "emt", "emts", "aemt", "aemts", "paramedic", "paramedics", "medic", "medics", "nurse", "nurses", "doctor", "doctors", "physician", "physicians", "firefighter", "firefighters", "dispatcher", "dispatchers", "responder", "responders"])  # fmt: skip


@dataclass(frozen=True)
class PreparedQuery:
    """The analysed question: the public Query plus the term numbers and weights to score with."""

    query: Query
    terms: tuple[str, ...]  # every weighted term (question, expansions, carried)
    weights: tuple[float, ...]
    term_ids: np.ndarray  # -1 where the term is not in the index
    concepts: tuple[
        tuple[float, tuple[frozenset[str], ...]], ...
    ]  # (weight, alternative term sets)
    intents: frozenset[str] = frozenset()  # "quantity", "definition", "comparison"
    cues: frozenset[str] = (
        frozenset()
    )  # terms a fitting answer tends to hold ("hour" for "how long")


# Contractions typed without their apostrophe ("whats an AED", "dont"): none is an English word
# of its own ("cant" and "wont" are, rarely, so only "cant" is taken: nobody asks about jargon).
_BARE_CONTRACTION = re.compile(
    r"\b(?:(?:what|who|how|where|when|why|that)s"
    r"|(?:do|does|did|ca|is|are|was|were|should|could|would|has|have|had|must)nt)\b",
    re.I,
)
# The words _BARE_CONTRACTION matches, in lower case: in ASCII text it matches exactly where a
# whole run of word characters ([A-Za-z0-9_]) is one of them, which splitting finds far sooner
# than the pattern (it tries every alternative at every place).
_BARE_WORDS = frozenset(
    [f"{w}s".encode() for w in "what who how where when why that".split()]
    + [
        f"{w}nt".encode()
        for w in "do does did ca is are was were should could would has have had must".split()
    ]
)
_NOT_WORD_BYTES = bytes(b if chr(b).isalnum() or b == ord("_") else 32 for b in range(128)) + bytes(
    range(128, 256)
)  # bytes.translate table: ASCII other than [A-Za-z0-9_] -> space


def _with_apostrophes(text: str) -> str:
    """`text` with bare contractions spelt as usual: "whats" -> "what's", "dont" -> "don't"."""
    if text.isascii():
        words = text.encode("ascii").lower().translate(_NOT_WORD_BYTES).split()
        if _BARE_WORDS.isdisjoint(words):
            return text
    elif not _BARE_CONTRACTION.search(text):
        return text
    return _BARE_CONTRACTION.sub(lambda m: f"{m[0][:-1]}'{m[0][-1]}", text)


def _clean(question: object) -> tuple[str, str]:
    if not isinstance(question, str):
        raise QuestionError(f"a question must be text, not {type(question).__name__}")
    notice = ""
    if question.isascii() and question.isprintable():  # nothing to normalise or blank out
        text = question
    else:
        text = _CONTROL.sub(" ", unicodedata.normalize("NFC", question))
    if len(text) > MAX_QUESTION_CHARS:
        cut = text.rfind(" ", 0, MAX_QUESTION_CHARS)
        text = text[: cut if cut > MAX_QUESTION_CHARS // 2 else MAX_QUESTION_CHARS]
        notice = f"Your question was long; only its first {len(text):,} characters were used."
    return _with_apostrophes(" ".join(text.split())), notice


def is_follow_up(question: str, n_content: int) -> bool:
    """A question leaning on the one before: it starts like "and ..."/"what about ...", points back with a
    pronoun, or is too short to stand alone."""
    words = tokenize(question)
    return (
        bool(_FOLLOW_START.match(question)) or any(w in _ANAPHORA for w in words) or n_content <= 1
    )


# Words without which a frame (in _FRAMES order), or a _FRAME_WORDS word, cannot match: most
# questions hold none, and one scan for them is far cheaper than every pattern. No key may begin
# another (the scan reports the first key found at each place).
_FRAME_KEYS: tuple[tuple[str, ...], ...] = (
    ("how",),
    ("how",),
    ("how", "what"),
    ("stand", "short", "abbreviation", "mean"),
    ("what", "who", "defin", "mean"),
    ("differ", "compar", "vs", "versus", "distinguish"),
    ("what", "tell me", "true", "know"),
)
_FRAME_WORD_KEYS = frozenset(["mean", "stand", "short", "abbreviation", "defin", "differ", "compar", "vs", "versus", "distinguish"])  # fmt: skip
# every key, each found with `in` (one scan of the text each: far cheaper than one alternation)
_FRAME_KEY_LIST = tuple(sorted({k for keys in _FRAME_KEYS for k in keys} | _FRAME_WORD_KEYS))


def _top_level_parts(source: str) -> list[str]:
    """The alternatives of a regular expression's source: split at each "|" outside groups and sets."""
    parts, start, depth, in_set, i = [], 0, 0, False, 0
    while i < len(source):
        c = source[i]
        if c == "\\":
            i += 1  # the next character is escaped
        elif in_set:
            in_set = c != "]"
        elif c == "[":
            in_set = True
        elif c in "()":
            depth += 1 if c == "(" else -1
        elif c == "|" and not depth:
            parts.append(source[start:i])
            start = i + 1
        i += 1
    return [*parts, source[start:]]


# For each frame of _FRAMES, each alternative of its pattern in order: strings one of which any
# ASCII text it matches holds in lower case, and for an alternative anchored at both ends the most
# whitespace-separated words such a text has (None: any number). A frame key alone lets most
# questions through ("what"); these let through the few that may match, so the patterns (each
# tries every position of the text: a microsecond or more apiece) run on those only.
_FRAME_GATES: tuple[tuple[tuple[tuple[str, ...], int | None], ...], ...] = (
    ((("how long", "how many "), None),),
    ((("how often",), None),),
    (
        (("how many", "how much", "how old", "how far", "how soon"), None),
        (("what percentage", "what number", "what age"), None),
    ),
    (
        (("stand for", "stands for"), None),
        (("short for",), None),
        (("abbreviation of", "abbreviation for"), None),
    ),
    (
        (("what is ", "what are ", "who is ", "who are "), 6),
        (("define",), None),
        (("definition of",), None),
        (("meaning of",), None),
        (("what does ",), None),
        (("what does ", "what do "), 7),
    ),
    (
        (("differ",), None),
        (("compare",), None),
        (("comparison",), None),
        (("vs",), None),
        (("versus",), None),
        (("distinguish",), None),
    ),
    (
        (("what kind", "what type", "what sort"), None),
        (("can you tell me",), None),
        (("is it true that",), None),
        (("do you know",), None),
    ),
)


_Gate = Callable[[str], object]  # a compiled pattern's search() or match()


def _gated_parts(
    pattern: re.Pattern[str], gates: tuple[tuple[tuple[str, ...], int | None], ...]
) -> tuple[tuple[_Gate, int | None, _Gate], ...]:
    """(search for its strings, most words, test) for each alternative of `pattern`: the test is
    match() for an alternative anchored at the start (the same as search() there, without trying
    every place)."""
    out = []
    for part, (strings, most) in zip(_top_level_parts(pattern.pattern), gates, strict=True):
        compiled = re.compile(part, pattern.flags)
        out.append(
            (
                re.compile("|".join(map(re.escape, strings))).search,
                most,
                compiled.match if part.startswith("^") else compiled.search,
            )
        )
    return tuple(out)


_FRAME_PARTS = tuple(
    _gated_parts(pattern, gates)
    for (pattern, _, _), gates in zip(_FRAMES, _FRAME_GATES, strict=True)
)
# One scan per frame for any of its strings: most questions holding a frame key hold none.
_FRAME_STRINGS = tuple(
    re.compile("|".join(re.escape(s) for strings, _ in gates for s in strings))
    for gates in _FRAME_GATES
)


def _frame_found(
    parts: tuple[tuple[_Gate, int | None, _Gate], ...], lowered: str, topic: str
) -> bool:
    """Whether one of a frame's alternatives matches `topic` (ASCII; `lowered`: the question's
    text in lower case, of which `topic` is what earlier frames left)."""
    for holds, most, test in parts:
        if holds(lowered) and (most is None or len(topic.split()) <= most) and test(topic):
            return True
    return False


def _frame_keys(lowered: str) -> set[str]:
    """The frame keys (_FRAME_KEYS, _FRAME_WORD_KEYS) found in `lowered`."""
    return {key for key in _FRAME_KEY_LIST if key in lowered}


def _frames(text: str) -> tuple[str, set[str], list[str]]:
    """(topic words of `text`, its intents, cue words) — see _FRAMES."""
    topic, intents, cues = text, set(), []
    lowered = text.lower()
    present = _frame_keys(lowered)
    if not present:
        return text, intents, cues
    gated = text.isascii()  # re.I also folds a few non-ASCII letters ("ſ" is "s")
    for (pattern, intent, cue_words), keys, strings, parts in zip(
        _FRAMES, _FRAME_KEYS, _FRAME_STRINGS, _FRAME_PARTS, strict=True
    ):
        if present.isdisjoint(keys):
            continue
        if gated:
            found = strings.search(lowered) is not None and _frame_found(parts, lowered, topic)
        else:
            found = pattern.search(topic) is not None
        if found:
            if intent:
                intents.add(intent)
            cues.extend(cue_words)
            if intent != "definition" or "stand" in pattern.pattern:
                topic = pattern.sub(" ", topic)
    if not present.isdisjoint(_FRAME_WORD_KEYS):
        topic = _FRAME_WORDS.sub(" ", topic)
    return topic, intents, cues


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance between a and b, or limit + 1 once it must exceed limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _letter_bins(codes: np.ndarray) -> np.ndarray:
    """Bin of each code point: a-z are 0..25, anything else shares bin 26."""
    return np.where((codes >= 97) & (codes <= 122), codes - 97, 26)


def _word_table(store: Store) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first code point, length, letter counts) of store.words, built once per store."""
    table = store.cache.get("word_table")
    if table is None:
        words = store.words
        lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
        codes = np.frombuffer("".join(words).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        starts = np.zeros(len(words), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        counts = np.zeros((len(words), 27), dtype=np.int16)
        if len(codes):
            np.add.at(counts, (np.repeat(np.arange(len(words)), lengths), _letter_bins(codes)), 1)
        first = codes[starts] if len(codes) else np.zeros(0, dtype=np.int64)
        table = store.cache["word_table"] = (first, lengths, counts)
    return table


def _near_words(store: Store, tok: str, limit: int) -> list[str]:
    """store.words (in order) that share tok's first letter and may lie within `limit` edits of it.

    A cheap lower bound filters them: each edit changes the multiset of letters by at most one, so
    a word whose letter counts differ from tok's by more than `limit` either way is too far.
    """
    if not store.words:
        return []
    first, lengths, counts = _word_table(store)
    mask = (first == ord(tok[0])) & (np.abs(lengths - len(tok)) <= limit)
    rows = np.flatnonzero(mask)
    if not len(rows):
        return []
    mine = [0] * 27
    for c in tok:
        mine[ord(c) - 97 if "a" <= c <= "z" else 26] += 1
    diff = counts[rows] - np.array(mine, dtype=np.int16)
    bag = np.maximum(
        np.where(diff > 0, diff, 0).sum(axis=1), np.where(diff < 0, -diff, 0).sum(axis=1)
    )
    return [store.words[i] for i in rows[bag <= limit].tolist()]


def _corrections(
    store: Store, analyzer: Analyzer, tokens: Sequence[str], *, frames: bool = True
) -> list[tuple[str, str]]:
    """(typo, corpus word) for question words (`tokens`) the index does not know but a corpus word is
    one edit away from (two for words of eight letters or more). The first letter must agree.
    Three-letter plurals of known two-letter words ("ivs" -> "iv") are read as the singular.
    `frames`: a frame word (_FRAME_SPELLINGS) may be the correction too, and wins a tie."""
    unknown = [
        tok
        for tok in dict.fromkeys(tokens)
        if (len(tok) >= 4 or (len(tok) == 3 and tok[2] == "s"))
        and tok not in STOP_WORDS
        and tok.isalpha()
        and tok not in _FRAME_SPELLING_SET
    ]
    if not unknown:
        return []
    ids = store.lookup(analyzer.content_of(unknown)).tolist()
    if -1 not in ids:  # the common case: the index knows every word
        return []
    out = []
    for tok, term_id in zip(unknown, ids, strict=True):
        if term_id >= 0:
            continue
        if len(tok) == 3:
            # the plural of a two-letter abbreviation ("ivs"), which the stemmer leaves alone so
            # that "als" never becomes "al": its singular, when the index knows that
            if store.lookup([analyzer.stem_of(tok[:2])]).tolist() != [-1]:
                out.append((tok, tok[:2]))
            continue
        limit = 2 if len(tok) >= 8 else 1
        best, best_d = "", limit + 1
        frame_words = [w for w in _FRAME_SPELLINGS if w[0] == tok[0]] if frames else []
        # frame words first: on a tie the first word found wins
        for word in [*frame_words, *_near_words(store, tok, limit)]:
            if word != tok:
                d = _edit_distance(tok, word, limit)
                if d < best_d:
                    best, best_d = word, d
        if best:
            out.append((tok, best))
    return out


def _fix_frames(
    text: str, found: tuple[str, set[str], list[str]], corrections: list[tuple[str, str]]
) -> tuple[tuple[str, set[str], list[str]], list[tuple[str, str]]]:
    """The frames of `text` read again with its misspelt frame words corrected ("how offen" asks
    how often), and the corrections that made a frame; `found` and [] when none did."""
    fixes = [(typo, fix) for typo, fix in corrections if fix in _FRAME_SPELLING_SET]
    if not fixes:
        return found, []
    words = dict(fixes)
    fixed = re.sub(r"[^\W\d_]+", lambda m: words.get(m.group().lower(), m.group()), text)
    again = _frames(fixed)
    if (again[1], again[2]) == (found[1], found[2]):
        return found, []
    return again, [(t, f) for t, f in fixes if f not in tokenize(again[0])]


def _carried_text(topic: str, history: Sequence[str]) -> str:
    """The words of the latest earlier question to carry into a follow-up (a newly named role
    replaces the earlier one: after "EMT training?", "and paramedics?" is not about EMTs)."""
    mine = tokenize(topic)
    own_roles = {w for w in mine if w in _ROLES}
    if not own_roles and any(w in _PERSONS for w in mine):
        # "they", "their": the people named last ("What is an AEMT?" -> "How long is their
        # training?" -> "Can they start an IV?" are all about AEMTs)
        for earlier in reversed(history[-3:]):
            roles = [w for w in tokenize(earlier) if w in _ROLES]
            if roles:
                return " ".join(dict.fromkeys(roles))
    for earlier in reversed(history[-2:]):
        words = [
            w
            for w in tokenize(_frames(earlier)[0])
            if w not in STOP_WORDS and w not in _ANAPHORA and not (own_roles and w in _ROLES)
        ]
        if words:
            return " ".join(words)
    return ""


class _QueryTerms:
    """Accumulates weighted terms and coverage concepts from the parts of a question."""

    def __init__(self, analyzer: Analyzer, lexicon: Lexicon | None, concepts: bool = True) -> None:
        self.analyzer = analyzer
        self.lexicon = lexicon
        self.with_concepts = concepts  # False: the terms alone (searching needs no concepts)
        self.weights: Counter[str] = Counter()
        self.concepts: list[tuple[float, tuple[frozenset[str], ...]]] = []
        self.expansions: list[tuple[str, str]] = []
        self.light_concepts: set[int] = set()  # positions in `concepts` of LIGHT_WORDS
        # (a question word's terms, the terms of its lexicon forms): see fill_unknown()
        self.stand_ins: list[tuple[list[str], list[str]]] = []

    def raise_to(self, terms: Sequence[str], weight: float) -> None:
        for term in terms:
            if self.weights[term] < weight:
                self.weights[term] = weight

    def add(
        self,
        text: str,
        weight: float,
        corrections: Sequence[tuple[str, str]] = (),
        tokens: Sequence[str] | None = None,
    ) -> list[str]:
        """Add `text` (`tokens`: its tokenize(), if known) at `weight` (1 = the question's own words,
        counted), with its lexicon expansions. Returns the terms of `text` itself."""
        a = self.analyzer
        light = a.light()
        if tokens is None:
            tokens = tokenize(text)
        words = a.content_of(tokens)
        own = a.terms_of(words)
        if tokens and tokens[-1] in _CLOSING_NEGATIONS and len(words) > 1:
            # a closing negation leaves out what it negates ("What can an AEMT do that an EMT
            # cannot?", "... or not?"): the answer says what can be done, not what cannot
            last = words[-1]
            light = light | {last, *(t for t in own if t.endswith(f" {last}"))}
        scale = 1.0 if weight >= 1 else CARRIED_CONCEPT  # how much its words count for coverage
        if weight >= 1:
            self.weights.update(own)
            for term in light.intersection(self.weights):
                self.weights[term] *= LIGHT_WEIGHT
        else:
            self.raise_to(own, weight)
        grouped: set[str] = set()
        groups: dict[str, list[frozenset[str]]] = {}
        pairs = self.lexicon.expansions(text, tokens) if self.lexicon else []
        forms: dict[str, set[frozenset[str]]] = {}  # each word's forms that analyse differently
        for found, other in pairs:
            forms.setdefault(found, set()).add(frozenset(a.content(other)))
        for found, other in pairs:
            self.expansions.append((found, other))
            alt = frozenset(a.content(other))
            mine = frozenset(a.content(found))
            # All the other forms of a word share one expansion weight, and a long form shares its
            # part among its words: "EMT" -> "emergency medical technician", "EMT-B", "EMT-Basic"
            # together weigh no more than EXPANSION_WEIGHT, not three times the question's word.
            # ("earnings" is "earn" once stemmed: no other form, no share.)
            if alt != mine:
                share = weight * EXPANSION_WEIGHT / (len(forms[found] - {mine}) * max(1, len(alt)))
                phrase = a.phrase_terms(other)
                self.raise_to(phrase, share)
                if weight >= 1:
                    self.stand_ins.append((sorted(mine), phrase))
            groups.setdefault(found, [mine]).append(alt)
        for typo, fix in corrections:
            self.raise_to(a.phrase_terms(fix), weight * CORRECTION_WEIGHT)
            groups.setdefault(typo, [frozenset(a.content(typo))]).append(frozenset(a.content(fix)))
        if not self.with_concepts:
            return own
        concepts = self.concepts
        for alternatives in groups.values():
            concepts.append((scale, tuple(x for x in alternatives if x)))
            grouped.update(alternatives[0])
        known = {t for _, alts in concepts for t in alts[0]} if concepts else grouped
        light_scale = scale * LIGHT_WEIGHT
        for term in dict.fromkeys(words):
            if term not in known and term not in grouped:
                if term in light:
                    self.light_concepts.add(len(concepts))
                concepts.append((light_scale if term in light else scale, (frozenset((term,)),)))
        return own

    def fill_unknown(self, store: Store) -> None:
        """A question word the index does not hold ("earn") cannot match: its lexicon forms
        ("pay", "wage") weigh as much between them as the word would have, not half of it."""
        if not self.stand_ins:
            return
        words = sorted({t for mine, _ in self.stand_ins for t in mine})
        known = dict(zip(words, (store.lookup(words) >= 0).tolist(), strict=True))
        for mine, phrase in self.stand_ins:
            if mine and not any(known[t] for t in mine):
                for t in phrase:
                    w = self.weights[t]
                    if 0 < w < 1:
                        self.weights[t] = min(1.0, w / EXPANSION_WEIGHT)


def prepare(
    store: Store,
    question: str,
    *,
    history: Sequence[str] = (),
    lexicon: Lexicon | None = None,
    carry: Sequence[str] | None = None,
    concepts: bool = True,
) -> PreparedQuery:
    """Analyse `question` (and its conversation) into weighted index terms.

    `carry` replays the words an earlier analysis carried over (so an answer can be explained later).
    `concepts` False leaves PreparedQuery.concepts empty: searching never reads them (answering and
    judging coverage do), and working them out is a fifth of a question's analysis.
    """
    text, notice = _clean(question)
    analyzer = store.settings.analyzer()
    found = _frames(text)
    # misspelt words, found once: none of them is a pronoun a follow-up drops below
    found_tokens = tokenize(found[0])
    corrections = _corrections(store, analyzer, found_tokens)
    (topic, intents, cue_words), framing = _fix_frames(text, found, corrections)
    if any(fix in _FRAME_SPELLING_SET for _, fix in corrections):
        # a frame word that made no frame is no correction: the nearest corpus word instead
        stray = [
            t for t, fix in corrections if fix in _FRAME_SPELLING_SET and (t, fix) not in framing
        ]
        again = dict(_corrections(store, analyzer, stray, frames=False))
        corrections = [
            (t, again[t]) if t in stray else (t, fix)
            for t, fix in corrections
            if (t, fix) not in framing and (t not in stray or t in again)
        ]
    carried = " ".join(carry) if carry is not None else ""
    carry_weight = CARRY_WEIGHT
    # "What is JumpSTART?" names its subject in its one content word: a question of its own
    n_content = len(analyzer.content(topic)) if "definition" not in intents else 2
    if carry is None and history and is_follow_up(text, n_content):
        carried = _carried_text(topic, history)
        # "How long is EMT training?" -> "And paramedics?" still asks how long, and its cue words
        # ("hours", "years", ...) still point at the passages that say how long; "Can they start
        # an IV?" asks a question of its own about the same subject
        own = [w for w in analyzer.content(topic) if w not in _ANAPHORA]
        if not intents and len(own) <= 1:
            _, earlier_intents, earlier_cues = _frames(history[-1])
            intents |= earlier_intents
            cue_words = [*cue_words, *(w for w in earlier_cues if w not in cue_words)]
    if carried:
        pointing = [w for w in tokenize(topic) if w in _ANAPHORA]
        if (
            pointing
        ):  # "Who may use one?": "one" stands for the earlier subject, which counts in full
            topic = " ".join(w for w in tokenize(topic) if w not in _ANAPHORA)
            carry_weight = 1.0
    cues = analyzer.content(" ".join(cue_words)) if cue_words else []
    tokens = found_tokens if topic is found[0] else tokenize(topic)
    acc = _QueryTerms(analyzer, lexicon, concepts)
    topic_terms = acc.add(topic, 1.0, corrections, tokens)
    if carried:
        acc.add(carried, carry_weight if carry_weight < 1 else 0.999)
    acc.raise_to(cues, CUE_WEIGHT)
    acc.fill_unknown(store)
    if store.settings.bigram_weight != 1:  # word pairs as a light bonus, not a second vote
        for t in acc.weights:
            if " " in t:
                acc.weights[t] *= store.settings.bigram_weight
    terms = tuple(t for t, w in acc.weights.items() if w > 0)
    ids = store.lookup(terms)
    id_list = ids.tolist()
    weights = [float(w) for w in map(acc.weights.__getitem__, terms)]
    if store.settings.idf == "bm25":  # the postings carry the smooth idf: trade it for BM25's
        ptr = store.post_ptr
        smooth = store.idf_of(np.maximum(ids, 0)).tolist()
        for j, i in enumerate(id_list):
            if i >= 0:
                df = float(ptr[i + 1]) - float(ptr[i])  # passages holding the term
                bm25_idf = math.log1p((store.n_passages - df + 0.5) / (df + 0.5))
                weights[j] *= bm25_idf / smooth[j]
    weighed = (
        _weigh_concepts(store, acc.concepts, terms, ids, light=acc.light_concepts)
        if acc.concepts
        else []
    )
    # frozen dataclasses made without their field-by-field __init__ (every field given, typed)
    query = _unchecked(
        Query,
        {
            "text": text,
            "terms": tuple(topic_terms),
            "expansions": tuple(acc.expansions),
            "corrections": (*framing, *corrections),
            "carried": tuple(carried.split()),
            "notice": notice,
        },
    )
    return _unchecked(
        PreparedQuery,
        {
            "query": query,
            "terms": terms,
            "weights": tuple(weights),
            "term_ids": ids,
            "concepts": tuple(weighed),
            "intents": frozenset(intents),
            "cues": frozenset(cues),
        },
    )


def _weigh_concepts(
    store: Store,
    concepts: list[tuple[float, tuple[frozenset[str], ...]]],
    terms: tuple[str, ...],
    ids: np.ndarray,
    light: set[int] | frozenset[int] = frozenset(),
) -> list[tuple[float, tuple[frozenset[str], ...]]]:
    """Each concept's scale times the idf of its rarest term (terms outside `terms`, or which the
    index lacks, count as rarer than any); concepts without alternatives are left out, and so are
    the `light` ones (positions) whose word the index lacks: "put" in "Where do I put a
    tourniquet?" says nothing about the topic, and no passage could hold it."""
    idf_max = float(math.log(1 + store.n_passages) + 1)
    found_idf = store.idf_of(np.maximum(ids, 0)).tolist() if len(ids) else []
    idf = {
        t: (v if i >= 0 else idf_max)
        for t, i, v in zip(terms, ids.tolist(), found_idf, strict=True)
    }
    get = idf.get
    out = []
    known = dict(zip(terms, (ids >= 0).tolist(), strict=True)) if light else {}
    for i, (scale, alts) in enumerate(concepts):
        if i in light and not any(known.get(t, False) for alt in alts for t in alt):
            continue
        if len(alts) == 1 and len(alts[0]) == 1:  # most concepts: one word
            for t in alts[0]:
                out.append((get(t, idf_max) * scale, alts))
        elif alts:
            rarest = max([get(t, idf_max) for alt in alts for t in alt])
            out.append((rarest * scale, alts))
    return out


def _query_weights(store: Store, pq: PreparedQuery) -> tuple[np.ndarray, np.ndarray]:
    ids = pq.term_ids
    w = np.asarray(pq.weights, dtype=np.float64)
    if -1 in ids.tolist():  # terms the index lacks
        mask = ids >= 0
        ids, w = ids[mask], w[mask]
    if store.settings.weighting == "tfidf" and len(ids):
        # sublinear tf like the passages (1 + ln tf for whole counts; fractional weights stay linear)
        w = np.where(w >= 1, 1 + np.log(np.maximum(w, 1.0)), w) * store.idf_of(ids)
        norm = float(np.sqrt((w * w).sum())) or 1.0
        w = w / norm
    if store.post_scale is not None:  # postings hold steps of each term's scale
        w = w * store.post_scale[ids]
    return ids, w


def score_candidates(store: Store, pq: PreparedQuery) -> tuple[np.ndarray, np.ndarray]:
    """(passage numbers, scores) of every passage sharing a term with the question."""
    cands, scores, _ = _scores(store, pq)
    if cands is None:
        cands = np.flatnonzero(scores != 0)  # on booleans: numpy's nonzero of floats is far slower
        scores = scores[cands]
    return cands.astype(np.int64), scores


def _scores(
    store: Store, pq: PreparedQuery, likely: int = 0
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """(passage numbers, their scores, None) for the passages sharing a term with the question, or
    (None, a score for every passage, likely) when the question's postings are many: then sorting
    them would cost more than one pass over the passages. `likely`: the passages of the rarest
    question term found in at least that many (where the best usually are), for _at_least_wanted."""
    ids, w = _query_weights(store, pq)
    if not len(ids):
        return np.empty(0, dtype=np.int64), np.empty(0), None
    # float64 products summed in term order: the batch path (a sparse product) gives the same bits
    spans, idx, vals = weighted_postings(
        store.post_ptr, store.post_idx, store.post_w, ids, w, store.post_runs
    )
    sizes = [b - a for a, b in spans]
    n = store.n_passages
    if len(idx) * 16 < n:  # few postings: sort them instead of touching every passage
        cands, inverse = np.unique(idx, return_inverse=True)
        return cands.astype(np.int64), np.bincount(inverse, weights=vals), None
    found: np.ndarray | None = None
    if likely:
        # the rarest term holding enough passages (one term's passages are distinct), else the
        # most common one
        enough = [j for j, size in enumerate(sizes) if size >= likely]
        j = (
            min(enough, key=sizes.__getitem__)
            if enough
            else max(range(len(sizes)), key=sizes.__getitem__)
        )
        found = store.post_idx[spans[j][0] : spans[j][1]]
    return None, np.bincount(idx, weights=vals, minlength=n), found


def search(
    store: Store,
    pq: PreparedQuery,
    k: int = 10,
    *,
    collapse: bool = True,
    numbers: list[int] | None = None,
) -> list[Hit]:
    """The top `k` passages for a prepared question, best first; overlapping windows collapsed.
    `numbers`, when given, receives the hits' passage numbers in the store, in order."""
    if k <= 0:
        return []
    if store.settings.fuses:  # every passage's lexical score, mixed with the other opinions
        cands, scores, _ = _scores(store, pq)
        if cands is not None:
            dense = np.zeros(store.n_passages)
            dense[cands] = scores
            scores = dense
        return _rank(store, None, fuse(store, scores, pq.query.text), k, collapse, numbers=numbers)
    cands, scores, likely = _scores(store, pq, likely=4 * _wanted(k, collapse))
    return _rank(store, cands, scores, k, collapse, likely, ascending=True, numbers=numbers)


BATCH_POSTINGS = 1_000_000  # postings gathered per chunk of a batch (bounds its memory)


def search_many(
    store: Store, pqs: Sequence[PreparedQuery], k: int = 10, *, collapse: bool = True
) -> list[list[Hit]]:
    """search() for many prepared questions: one sparse product per chunk of questions.

    Each chunk gathers the postings of the terms its questions use and multiplies them by the
    questions' weights (scipy, imported here only: the single-question path stays numpy). Products
    are float64 and each passage sums its terms in question order, as in score_candidates, so
    the hits equal search()'s exactly.
    """
    if store.settings.fuses:  # fused scores are per question
        return [search(store, pq, k, collapse=collapse) for pq in pqs]
    from scipy import sparse

    weights = [_query_weights(store, pq) for pq in pqs]
    ptr = store.post_ptr
    out: list[list[Hit]] = []
    begin = 0
    while begin < len(pqs):
        # a chunk: questions until their postings (counted with repeats) reach BATCH_POSTINGS
        end, load = begin, 0
        while end < len(pqs) and (end == begin or load < BATCH_POSTINGS):
            ids = weights[end][0]
            load += int((ptr[ids + 1] - ptr[ids]).sum())
            end += 1
        chunk = weights[begin:end]
        terms = sorted_unique(np.concatenate([ids for ids, _ in chunk] + [np.empty(0, np.int64)]))
        starts, ends = ptr[terms], ptr[terms + 1]
        counts = ends - starts
        sub_ptr = np.zeros(len(terms) + 1, dtype=np.int64)
        np.cumsum(counts, out=sub_ptr[1:])
        spans = list(zip(starts.tolist(), ends.tolist(), strict=True))
        empty_i, empty_w = np.empty(0, store.post_idx.dtype), np.empty(0, store.post_w.dtype)
        postings = sparse.csr_matrix(
            (
                np.concatenate([store.post_w[a:b] for a, b in spans] + [empty_w]).astype(
                    np.float64
                ),
                np.concatenate([store.post_idx[a:b] for a, b in spans] + [empty_i]).astype(
                    np.int64
                ),
                sub_ptr,
            ),
            shape=(len(terms), store.n_passages),
        )
        q_ptr = np.zeros(len(chunk) + 1, dtype=np.int64)
        np.cumsum([len(ids) for ids, _ in chunk], out=q_ptr[1:])
        questions = sparse.csr_matrix(
            (
                np.concatenate([w for _, w in chunk] + [np.empty(0)]),
                np.searchsorted(
                    terms, np.concatenate([ids for ids, _ in chunk] + [np.empty(0, np.int64)])
                ),
                q_ptr,
            ),
            shape=(len(chunk), len(terms)),
        )
        scores = (questions @ postings).tocsr()
        bounds = scores.indptr.tolist()
        for r in range(len(chunk)):
            a, b = bounds[r], bounds[r + 1]
            out.append(_rank(store, scores.indices[a:b], scores.data[a:b], k, collapse))
        begin = end
    return out


def _wanted(k: int, collapse: bool) -> int:
    """Candidates ranked for `k` hits (collapsing overlapping windows drops some)."""
    return k * 3 + 8 if collapse else k


def _rank(
    store: Store,
    cands: np.ndarray | None,
    scores: np.ndarray,
    k: int,
    collapse: bool = True,
    likely: np.ndarray | None = None,
    ascending: bool = False,
    numbers: list[int] | None = None,
) -> list[Hit]:
    """Hits for the best `k` of (cands, scores): by score, then passage number; windows collapsed.
    `numbers`, when given, receives the hits' passage numbers.

    `cands` None: `scores` holds every passage's score, and passages scoring 0 are not candidates;
    `likely` then names distinct passages expected to score high (see _at_least_wanted).
    `ascending`: `cands` are in passage order (then a stable sort by score breaks ties alone).
    """
    if k <= 0 or not len(scores):
        return []
    want = min(len(scores), _wanted(k, collapse))
    if want < len(scores):
        # every candidate scoring at least the want-th best, so ties are broken by passage number
        # whatever order the candidates come in (the batch path gives them unsorted)
        top = _at_least_wanted(scores, want, positive=cands is None, likely=likely)
    else:
        top = np.arange(len(scores)) if cands is not None else np.flatnonzero(scores > 0)
    kept = scores[top]
    if cands is None or ascending:  # positions come in order, so passage numbers do too
        order = np.argsort(-kept, kind="stable")[:want]
    else:
        order = np.lexsort((cands[top], -kept))[:want]
    top_scores = kept[order].tolist()
    at = top[order] if cands is None else cands[top[order]]
    if not collapse:
        rows = read = store.passage_rows(at[:k])
    else:
        # the first few candidates nearly always give the k hits: read the rest only if not
        head = k + k // 2 + 1
        read = store.passage_rows(at[:head])
        rows, shown = _collapsed(store, read, top_scores[:head], k)
        if len(rows) < k and len(at) > head:
            read = store.passage_rows(at)
            rows, shown = _collapsed(store, read, top_scores, k)
        top_scores = shown
    if numbers is not None:  # the rows kept are the very lists read: find them by identity
        position = {id(row): i for i, row in enumerate(read)}
        numbers.extend(int(at[position[id(row)]]) for row in rows)
    new = object.__new__  # every field set at once: see datatypes._unchecked
    hits = []
    for r, (p, score) in enumerate(zip(store.passages_of(rows), top_scores, strict=True), 1):
        hit = new(Hit)
        hit.__dict__.update({"passage": p, "score": score, "rank": r})
        hits.append(hit)
    return hits


def _collapsed(
    store: Store, rows: list[PassageRow], scores: list[float], k: int
) -> tuple[list[PassageRow], list[float]]:
    """The first `k` of ranked `rows` (Store.passage_rows) and their scores, leaving out each
    window that mostly repeats a kept one of its document (more than half of the shorter; neighbours
    sharing their one overlap sentence are both worth showing) and each copy of a kept text."""
    picked: list[PassageRow] = []
    picked_scores: list[float] = []
    kept_spans: dict[int, list[tuple[int, int]]] = {}  # document -> spans shown
    kept_texts: dict[
        int, list[bytes | PassageRow]
    ] = {}  # text size -> texts shown (rows until read)
    text = store.p_text.bytes_at
    for row, score in zip(rows, scores, strict=True):
        d, s0, e0 = row[0], row[1], row[2]
        same_doc = kept_spans.get(d)
        if same_doc is not None:
            repeats = False
            for s1, e1 in same_doc:  # a plain loop: any() of a generator costs more than the test
                if min(e0, e1) - max(s0, s1) > 0.5 * min(e0 - s0, e1 - s1):
                    repeats = True
                    break
            if repeats:
                continue
        # a copy of a text shown already (copies of a document): texts are only read when their
        # sizes agree
        a, b = row[5], row[6]
        twins = kept_texts.get(b - a)
        if twins is None:
            kept_texts[b - a] = [row]
        else:
            twins[:] = [t if isinstance(t, bytes) else text(t[5], t[6]) for t in twins]
            raw = text(a, b)
            if raw in twins:
                continue
            twins.append(raw)
        if same_doc is None:
            kept_spans[d] = [(s0, e0)]
        else:
            same_doc.append((s0, e0))
        picked.append(row)
        picked_scores.append(score)
        if len(picked) == k:
            break
    return picked, picked_scores


_SAMPLE_PER_WANTED = 32  # sampled scores per wanted hit when bounding the want-th best score


def _at_least_wanted(
    scores: np.ndarray, want: int, *, positive: bool, likely: np.ndarray | None = None
) -> np.ndarray:
    """Positions of the scores at least as high as the `want`-th highest (and above 0 if
    `positive`), in position order.

    The want-th highest score of any `want` or more distinct positions cannot exceed the want-th
    highest of all, so one comparison pass keeps a few candidates and only those are partitioned:
    on a million scores this is several times faster than partitioning them all. The positions
    are `likely` (distinct, expected to score high) when given, else an evenly spaced sample.
    """
    pool = None
    if likely is not None and len(likely) >= want:
        sample = scores[likely]  # a copy, partitioned in place below
    else:
        step = len(scores) // (want * _SAMPLE_PER_WANTED)
        sample = scores[::step].copy() if step >= 2 else None
    if sample is not None:
        sample.partition(len(sample) - want)
        bound = sample[len(sample) - want]
        if bound > 0:
            pool = (scores >= bound).nonzero()[0]  # flatnonzero's ravel costs more than the call
    if pool is None:
        pool = np.flatnonzero(scores > 0) if positive else np.arange(len(scores))
    if len(pool) <= want:
        return pool
    kept = scores[pool]
    floor = np.partition(kept, len(kept) - want)[len(kept) - want]
    if positive and floor <= 0:
        return pool[kept > 0]
    return pool[kept >= floor]


def explain(store: Store, pq: PreparedQuery, passage_number: int) -> list[tuple[str, float]]:
    """Each question term's contribution to the score of passage `passage_number`, largest first."""
    ids, w = _query_weights(store, pq)
    found = [t for t, i in zip(pq.terms, pq.term_ids, strict=True) if i >= 0]
    out = []
    for term, t, qw in zip(found, ids.tolist(), w.tolist(), strict=True):
        a, b = int(store.post_ptr[t]), int(store.post_ptr[t + 1])
        seg = store.post_idx[a:b]
        pos = int(np.searchsorted(seg, passage_number))
        if pos < len(seg) and seg[pos] == passage_number:
            out.append((term, float(store.post_w[a + pos]) * qw))
    return sorted(out, key=lambda tc: -tc[1])
