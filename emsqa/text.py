"""Text analysis shared by the index and the questions: normalise, tokenise, stem, expand.

Tokens keep medical meaning: "A-fib", "C-spine" and "12-lead" stay whole (their parts are added as
extra terms, never instead), numbers such as "1,200" or "2.5" stay whole, and the negations
"no", "not", "nor", "never", "without" are never stop words ("don't" reads as "do not").
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from itertools import pairwise

__all__ = [
    "LIGHT_WEIGHT",
    "LIGHT_WORDS",
    "NEGATIONS",
    "STOP_WORDS",
    "TOKEN_RULES",
    "Analyzer",
    "Lexicon",
    "load_lexicon",
    "normalize",
    "tokenize",
]

# Numbers with thousands separators or decimals first, then words joined by hyphens/apostrophes.
_TOKEN_PATTERN = r"\d+(?:[.,]\d+)*(?:-[^\W_]+)*|[^\W_]+(?:[-'][^\W_]+)*"
_TOKEN_RE = re.compile(_TOKEN_PATTERN)
# The same tokens of ASCII text (1.5x faster than the pattern above): under re.ASCII its digit
# and letter-or-digit classes are exactly [0-9] and [0-9A-Za-z], which sre tests as plain byte
# sets; and from Python 3.11 on, possessive repeats (nothing after a repeat is required, so a
# token never gives characters back).
_ASCII_TOKEN_PATTERN = (
    r"[0-9]++(?:[.,][0-9]+)*+(?:-[0-9A-Za-z]++)*+|[0-9A-Za-z]++(?:[-'][0-9A-Za-z]++)*+"
    if sys.version_info >= (3, 11)
    else r"[0-9]+(?:[.,][0-9]+)*(?:-[0-9A-Za-z]+)*|[0-9A-Za-z]+(?:[-'][0-9A-Za-z]+)*"
)
_ASCII_TOKEN_RE = re.compile(_ASCII_TOKEN_PATTERN, re.ASCII)
# Apostrophe and hyphen look-alikes, replaced one str.replace at a time: str.translate looks up
# every character of a non-ASCII text in a dict (0.2 s on SciFact's passages; these, 1 ms).
_APOSTROPHES = (("\u2019", "'"), ("\u2018", "'"), ("\u02bc", "'"), ("\u2010", "-"), ("\u2011", "-"))

# A short English stop list. Negations and quantity words are deliberately absent: "do not give"
# must keep its "not", and "no pulse" its "no".
STOP_WORDS: frozenset[str] = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "let",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "us",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "s",
        "t",
        "d",
        "ll",
        "m",
        "re",
        "ve",
        "y",
        "tell",
        "please",
        "know",
    ]
)


# Light words: common verbs and nouns that carry little topic ("take", "use", "allowed", "times").
# They still count, but a question is not "about" them: their weight is LIGHT_WEIGHT in the search
# and in judging how well a passage covers the question.
LIGHT_WORDS: frozenset[str] = frozenset(
    """able allow allowed allows become becomes came come comes could day days did do done else ever
    get gets getting give given gives go goes going good got happen happens help kind let like long
    look lot lots make makes making many may might much must need needed needs new next one ones
    part people person put really right said say see seem several should show something sort start
    still take taken takes taking thing things think time times try type use used uses using want
    way ways well went work works year""".split()
)
LIGHT_WEIGHT = 0.35
# Negations, none of them a stop word; contractions and "cannot" are split so that "not" stands alone.
NEGATIONS: frozenset[str] = frozenset("no not nor never without".split())


def normalize(text: str) -> str:
    """NFKC-normalise, unify apostrophes and hyphens, and case-fold."""
    if text.isascii():  # the common case: nothing to normalise but case
        return text.lower()
    text = unicodedata.normalize("NFKC", text)
    for odd, plain in _APOSTROPHES:
        if odd in text:
            text = text.replace(odd, plain)
    return text.casefold()


def tokenize(text: str) -> list[str]:
    """Split normalised text into raw tokens (stop words included), possessive 's removed."""
    text = normalize(text)
    found = (_ASCII_TOKEN_RE if text.isascii() else _TOKEN_RE).findall(text)
    if "n't" in text or "cannot" in text:
        found = _negations_split(found)
    if "'s" not in text:
        return found
    # A token starts and ends with a letter or digit (an apostrophe only joins two of them), so
    # removing a final "'s" is all there is to do: the rest stays non-empty, apostrophe-free ends.
    return [t[:-2] if t.endswith("'s") else t for t in found]


# The tokenizer's rules, recorded in an index's manifest: a saved index whose rules differ was made
# by another emsqa (2: "don't" became "do", "not"; 3: irregular verb forms read as their verb;
# 4: "cannot" became "can", "not", and comparatives and superlatives read as their adjective).
TOKEN_RULES = 4

# Contractions whose first part is not the word less its "n't".
_NEGATED_VERBS = {"can't": "can", "won't": "will", "shan't": "shall", "ain't": "is"}


def _negations_split(tokens: list[str]) -> list[str]:
    """`tokens` with each "...n't" read as two words, "don't" -> "do", "not", and "cannot" as
    "can", "not": the negation is a word of its own, as in "do not", and never a stop word."""
    out: list[str] = []
    for t in tokens:
        if t == "cannot":
            out.append("can")
            out.append("not")
        elif t.endswith("n't") and len(t) > 3:
            out.append(_NEGATED_VERBS.get(t) or t[:-3])
            out.append("not")
        else:
            out.append(t)
    return out


# Irregular verb forms the stemmer cannot join to their verb ("goes" even stems to "goe"), read as
# the verb before stemming: "Where does a tourniquet go?" finds "It goes on the limb". Forms of
# three letters (ran, met, sat: also abbreviations) and forms that are common nouns or other words
# too (found, left, saw, rose, shot, thought, felt, bound, born, ground) are left alone.
_BASE_FORMS: dict[str, str] = {
    form: verb
    for verb, forms in {
        "go": "goes went gone",
        "give": "gave given",
        "take": "took taken",
        "make": "made",
        "come": "came",
        "become": "became",
        "begin": "began begun",
        "write": "wrote written",
        "know": "knew known",
        "grow": "grew grown",
        "choose": "chose chosen",
        "bring": "brought",
        "build": "built",
        "speak": "spoke spoken",
        "teach": "taught",
        "tell": "told",
        "drive": "drove driven",
        "eat": "eaten",
        "fall": "fell fallen",
        "hold": "held",
        "keep": "kept",
        "lose": "lost",
        "mean": "meant",
        "pay": "paid",
        "sell": "sold",
        "send": "sent",
        "stand": "stood",
        "wear": "wore worn",
        "throw": "threw thrown",
        "understand": "understood",
        "break": "broke broken",
        "hide": "hidden",
        "rise": "risen",
        "arise": "arose arisen",
        "seek": "sought",
        "catch": "caught",
        "fly": "flew flown",
        "freeze": "froze frozen",
        "sing": "sang sung",
        "sink": "sank sunk",
        "spend": "spent",
        "steal": "stole stolen",
        "strike": "struck",
        "get": "gotten",
        "buy": "bought",
        "fight": "fought",
        "forget": "forgot forgotten",
        "swim": "swam swum",
        "shake": "shook shaken",
        "wake": "woke woken",
        "draw": "drew drawn",
        "deal": "dealt",
        "sleep": "slept",
    }.items()
    for form in forms.split()
}
# ... and so are the comparatives and superlatives of common adjectives, which Snowball leaves
# alone ("higher", "highest"): "Which level is higher?" finds "the highest national level". Forms
# that are words of their own ("lighter", "later", "longer" in "no longer", "better") are left out.
_BASE_FORMS.update(
    (form, adjective)
    for adjective, forms in {
        "high": "higher highest",
        "low": "lower lowest",
        "large": "larger largest",
        "small": "smaller smallest",
        "big": "bigger biggest",
        "old": "older oldest",
        "young": "younger youngest",
        "great": "greater greatest",
        "fast": "faster fastest",
        "slow": "slower slowest",
        "short": "shorter shortest",
        "strong": "stronger strongest",
        "weak": "weaker weakest",
        "deep": "deeper deepest",
        "wide": "wider widest",
        "heavy": "heavier heaviest",
        "early": "earlier earliest",
        "easy": "easier easiest",
        "hard": "harder hardest",
        "safe": "safer safest",
        "rare": "rarer rarest",
        "quick": "quicker quickest",
        "cheap": "cheaper cheapest",
        "warm": "warmer warmest",
        "cold": "colder coldest",
        "hot": "hotter hottest",
    }.items()
    for form in forms.split()
)


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer  # PyStemmer: Snowball English in C

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=2)
def _light_forms(stem: bool) -> frozenset[str]:
    analyzer = Analyzer(stem=stem, bigrams=False)
    return frozenset(t for w in LIGHT_WORDS for t in analyzer.content(w))


@dataclass(frozen=True)
class Analyzer:
    """Turns text into index terms: stemmed content words, compound parts, and word bigrams.

    The same settings must serve the index and its questions; they are stored in the index manifest.
    """

    stem: bool = True
    bigrams: bool = True
    _cache: dict[str, str] = field(default_factory=dict, repr=False, compare=False, hash=False)

    def to_dict(self) -> dict[str, object]:
        return {
            "stem": self.stem,
            "bigrams": self.bigrams,
            "stop_words": sorted(STOP_WORDS),
            "tokens": TOKEN_RULES,
        }

    def stem_of(self, token: str) -> str:
        """The index form of one token (cached)."""
        cached = self._cache.get(token)
        if cached is None:
            # Tokens of three letters or fewer are mostly abbreviations: "als" must not become "al".
            if self.stem and len(token) > 3 and "-" not in token and not token[0].isdigit():
                cached = _stemmer().stemWord(_BASE_FORMS.get(token, token))
            else:
                cached = token
            if len(self._cache) < 500_000:
                self._cache[token] = cached
        return cached

    def stems_of(self, tokens: Sequence[str]) -> list[str]:
        """[self.stem_of(t) for t in tokens], the tokens not cached stemmed in one call."""
        cache = self._cache
        fresh = [t for t in dict.fromkeys(tokens) if t not in cache]
        found: dict[str, str] = {}
        if fresh:
            if self.stem:
                # the rule of stem_of: three letters or fewer, compounds and numbers stay as they are
                eligible = [t for t in fresh if len(t) > 3 and "-" not in t and not t[0].isdigit()]
                bases = [_BASE_FORMS.get(t, t) for t in eligible]
                found = dict(zip(eligible, _stemmer().stemWords(bases), strict=True))
            for t in fresh:
                form = found.setdefault(t, t)
                if len(cache) < 500_000:
                    cache[t] = form
        return [found[t] if t in found else cache[t] for t in tokens]

    def parts(self, word: str) -> list[str]:
        """The extra terms of a compound content word ("c-spine" -> "c", "spine"): its stemmed parts
        of two letters or more that are not stop words (the compound itself stays whole)."""
        return [self.stem_of(p) for p in word.split("-") if len(p) > 1 and p not in STOP_WORDS]

    def light(self) -> frozenset[str]:
        """The analysed forms of LIGHT_WORDS."""
        return _light_forms(self.stem)

    def content(self, text: str) -> list[str]:
        """The stemmed content words of `text` in order (no stop words, no compound parts)."""
        return self.content_of(tokenize(text))

    def content_of(self, tokens: Iterable[str]) -> list[str]:
        """content() of text already split by tokenize()."""
        get, stem = self._cache.get, self.stem_of
        return [get(t) or stem(t) for t in tokens if t not in STOP_WORDS]

    def phrase_terms(self, text: str) -> list[str]:
        """Content words and bigrams, without compound parts (for expansions: "EMT-P" must not add "emt")."""
        words = self.content(text)
        if self.bigrams:
            return words + [f"{a} {b}" for a, b in pairwise(words)]
        return words

    def terms(self, text: str) -> list[str]:
        """All index terms of `text`: content words, parts of compounds, and adjacent bigrams."""
        return self.terms_of(self.content(text))

    def terms_of(self, words: list[str]) -> list[str]:
        """terms() of text whose content() is `words`."""
        out = list(words)
        for w in words:
            if "-" in w:
                out.extend(self.parts(w))
        if self.bigrams:
            out.extend(f"{a} {b}" for a, b in pairwise(words))
        return out

    def fields(
        self, title: str, section: str, body: str, title_weight: int, section_weight: int
    ) -> list[str]:
        """Terms of a passage with its title and section repeated by their field weights."""
        terms = self.terms(body)
        if title_weight and title:
            terms.extend(self.terms(title) * title_weight)
        if section_weight and section:
            terms.extend(self.terms(section) * section_weight)
        return terms


@dataclass(frozen=True)
class Lexicon:
    """Groups of equivalent forms ("IV" = "intravenous"); a question naming one gains the others."""

    groups: tuple[tuple[str, ...], ...]
    _by_tokens: dict[tuple[str, ...], int] = field(default_factory=dict, repr=False, compare=False)

    longest: int = field(default=0, repr=False, compare=False)  # words in the longest form
    _firsts: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self) -> None:
        for gi, group in enumerate(self.groups):
            for form in group:
                key = tuple(tokenize(form))
                if key:
                    self._by_tokens.setdefault(key, gi)
        object.__setattr__(self, "longest", max(map(len, self._by_tokens), default=0))
        object.__setattr__(self, "_firsts", frozenset(key[0] for key in self._by_tokens))

    def expansions(self, text: str, tokens: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """(form found in text, equivalent form) pairs, in order of appearance, each group once.

        `tokens`: tokenize(text), when the caller has it already.
        """
        toks = list(tokenize(text) if tokens is None else tokens)
        seen: set[int] = set()
        found: list[tuple[str, str]] = []
        i, longest, firsts = 0, self.longest, self._firsts
        while i < len(toks):
            if toks[i] not in firsts:  # no form starts with this word
                i += 1
                continue
            for n in range(min(longest, len(toks) - i), 0, -1):
                gi = self._by_tokens.get(tuple(toks[i : i + n]))
                if gi is not None:
                    if gi not in seen:
                        seen.add(gi)
                        matched = " ".join(toks[i : i + n])
                        found.extend(
                            (matched, other)
                            for other in self.groups[gi]
                            if tuple(tokenize(other)) != tuple(toks[i : i + n])
                        )
                    i += n
                    break
            else:
                i += 1
        return found


def load_lexicon(groups: Iterable[Sequence[str]] | None = None) -> Lexicon:
    """The shipped EMS lexicon (emsqa/data/lexicon.json), or one made of the `groups` given."""
    if groups is None:
        return _shipped_lexicon()
    return Lexicon(tuple(tuple(g) for g in groups))


@lru_cache(maxsize=1)
def _shipped_lexicon() -> Lexicon:
    try:
        raw = resources.files("emsqa").joinpath("data/lexicon.json").read_text("utf-8")
        data = json.loads(raw)
        return Lexicon(tuple(tuple(str(f) for f in g) for g in data["groups"]))
    except (OSError, ValueError, KeyError, TypeError):  # a damaged install still answers
        return Lexicon(())
