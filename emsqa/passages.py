"""The split stage: Documents -> Passages made of whole sentences, never across a heading.

A passage is an exact span of its document (`doc.text[p.start:p.end] == p.text`) that starts and ends
on a non-whitespace character. Passages are filled with sentences up to about `target_words`, end at a
paragraph break when one falls between `min_words` and `max_words`, and never hold more than
`max_words` words: a longer sentence is first cut at word boundaries. Consecutive passages of one
section share `overlap` sentences. Every non-whitespace character outside the headings lands in at
least one passage. Ids are `"<doc id>#<ordinal>"`, so an unchanged document always gets the same ids.

Everything here is pure and runs in linear time; sentence boundaries are found with compiled regular
expressions, and Python code runs once per candidate boundary or line, never once per character.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from emsqa.datatypes import Document, Passage, _unchecked
from emsqa.errors import CorpusError, UsageError
from emsqa.parallel import can_fork, forked_slices, usable_cores

__all__ = [
    "SplitSettings",
    "passage_spans",
    "require_documents",
    "split_document",
    "split_documents",
    "split_sentences",
]


@dataclass(frozen=True)
class SplitSettings:
    """How documents are cut into passages; `dataclasses.asdict` gives what an index manifest stores.

    Needs 0 < min_words <= target_words <= max_words and 0 <= overlap < 5 (sentences shared by
    consecutive passages of a section); anything else raises UsageError.
    """

    target_words: int = 80
    min_words: int = 40
    max_words: int = 150
    overlap: int = 1

    def __post_init__(self) -> None:
        for name in ("target_words", "min_words", "max_words", "overlap"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise UsageError(f"split setting {name} must be a whole number, not {value!r}")
            object.__setattr__(self, name, int(value))
        if not 0 < self.min_words <= self.target_words <= self.max_words:
            raise UsageError(
                "split settings need 0 < min_words <= target_words <= max_words, got "
                f"min_words={self.min_words}, target_words={self.target_words}, "
                f"max_words={self.max_words}"
            )
        if not 0 <= self.overlap < 5:
            raise UsageError(f"split setting overlap must be between 0 and 4, got {self.overlap}")


# --- sentences -------------------------------------------------------------------------------------

# A line break ("\r\n" counts once) and the whitespace that may sit on an otherwise blank line.
_BREAK_CHARS = "\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_BREAK = rf"(?:\r\n|\r(?!\n)|[{_BREAK_CHARS}])"
_HSPACE = rf"[^\S\r{_BREAK_CHARS}]"
# Line breaks for cutting lines: a "\r" that starts "\r\n" is left to the line (it is whitespace).
_LINE_BREAK = re.compile(rf"[\r{_BREAK_CHARS}](?<!\r(?=\n))")
_ANY_BREAK = re.compile(rf"[\r{_BREAK_CHARS}]")
_BLANK_LINE = re.compile(f"{_BREAK}{_HSPACE}*{_BREAK}")
_BULLET = re.compile(rf"{_HSPACE}*(?:[-*+•‣◦▪▫·●○■□–—]|\d{{1,3}}[.)]){_HSPACE}+(?=\S)")

_OPENERS = "\"'“‘«([{¿¡"
_CLOSERS = "\"'”’»)]}"
# Terminal punctuation, then closing quotes/brackets, then whitespace: a candidate sentence end.
# It starts with a plain class so sre scans fast; the look-behind only admits the first mark of a
# run, which keeps "......" (no whitespace) linear instead of quadratic.
_MARK = "[.!?…]"
_RUN = rf"(?<!{_MARK}.){_MARK}*[\"'”’»)\]}}]*(?=\s)"  # the rest of the run, and the whitespace
_END = re.compile(_MARK + _RUN)
# The whitespace and opening quotes/brackets between a candidate end and the next word.
_GAP = re.compile(r"\s+[\"'“‘«(\[{¿¡]*")
# Lower-case words that still start sentences: mRNA, pH, siRNA, eGFR.
_MIXED_CASE = re.compile(r"[a-z]{1,4}[A-Z]")
# Letters joined by dots (the last dot is the candidate end): U.S., e.g., i.e., a.m.
_DOTTED = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")
_WORD = re.compile(r"\S+")
_SPACE = re.compile(r"\s*")

# Never end a sentence after these (compared lower-cased, without the final dot) ...
_ABBREVIATIONS = frozenset({"vs", "v", "approx", "e.g", "i.e", "cf", "viz", "al"})  # v: Roe v. Wade
# ... nor after these titles when capitalised ("Dr. Smith", "St. Louis"; but "5 ms. Then").
# fmt: off
_TITLES = frozenset({
    "dr", "mr", "mrs", "ms", "mx", "prof", "sr", "jr", "st", "mt", "rev", "hon", "gen", "col", "lt",
    "sgt", "capt", "cpt", "gov", "sen", "rep", "dept", "univ",
})
# ... nor after these when a number follows ("No. 5", "Fig. 3", "pp. 12", "Jan. 5").
_NUMBER_ABBREVIATIONS = frozenset({
    "no", "nos", "nr", "fig", "figs", "eq", "eqs", "vol", "vols", "pp", "p", "ch", "chap", "sec",
    "sect", "art", "ref", "refs", "tab", "ca", "ed", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
    "sep", "sept", "oct", "nov", "dec",
})
# fmt: on
# A sentence end after this many letters in a row is past every abbreviation above: no lookup.
_PLAIN_WORD = 1 + max(map(len, _ABBREVIATIONS | _TITLES | _NUMBER_ABBREVIATIONS))
_NOT_A_START = ",;:.!?)]}%"
_NOT_A_HEADING_END = ",;-–—/&(+.!?…"
_TOKEN_WINDOW = 24


def _token_before(seg: str, pos: int) -> str:
    """The word that ends at `pos` (without opening quotes/brackets); '' when there is none."""
    lo = max(0, pos - _TOKEN_WINDOW)
    window = seg[lo:pos]
    if not window or window[-1].isspace():
        return ""
    parts = window.rsplit(None, 1)
    if len(parts) == 1 and lo > 0 and not seg[lo - 1].isspace() and not window[0].isspace():
        return ""  # longer than any abbreviation: an ordinary word
    return parts[-1].lstrip(_OPENERS)


def _ends_sentence(seg: str, match: re.Match[str]) -> bool:
    """Whether the candidate end `match` (punctuation followed by whitespace) ends a sentence."""
    start = _GAP.match(seg, match.end())
    nxt = start.end() if start else match.end()
    if nxt >= len(seg):
        return False
    first = seg[nxt]
    if first in _NOT_A_START or (first.islower() and not _MIXED_CASE.match(seg, nxt)):
        return False
    run = match.group()
    if "!" in run or "?" in run:
        return True
    end = match.start()
    if end >= _PLAIN_WORD and seg[end - _PLAIN_WORD : end].isalpha():
        return True  # an ordinary word: neither abbreviation, title, initial nor dotted letters
    token = _token_before(seg, end)
    if not token:
        return True
    lowered = token.lower()
    if lowered in _ABBREVIATIONS or (lowered in _TITLES and token[0].isupper()):
        return False
    if len(token) == 1 and token.isupper():  # an initial
        return False
    if _DOTTED.fullmatch(token):
        return False
    return not (first.isdigit() and lowered in _NUMBER_ABBREVIATIONS)


def _fast_ends() -> re.Pattern[str]:
    """_END, plus a mark (group "capital" matched) on candidates that _ends_sentence would accept
    on sight: an upper-case ASCII letter starts the next word, and the mark follows either
    _PLAIN_WORD ASCII letters (an ordinary word) or two lower-case ones that do not end like an
    abbreviation or title (compared without case: "Prof", "al", "vs"; words that merely end so,
    like "normal", are left to _ends_sentence). Such an end is never an initial, dotted letters,
    an abbreviation or a title, nor an abbreviation before a number."""
    words = sorted(w for w in _ABBREVIATIONS | _TITLES if w.isalpha() and len(w) > 1)
    not_after = "".join(
        f"(?<!(?i:{'|'.join(w for w in words if len(w) == size)}).)"
        for size in sorted({len(w) for w in words})
    )
    plain = rf"(?:(?<=[A-Za-z]{{{_PLAIN_WORD}}}.)|(?<=[a-z]{{2}}.){not_after})"
    capital = rf"(?(plain)(?:(?={_GAP.pattern}[A-Z])(?P<capital>))?)"
    return re.compile(rf"{_MARK}(?:{plain}(?P<plain>))?{_RUN}{capital}")


_FAST_END = _fast_ends()


def _sentence_ends(seg: str) -> list[int]:
    """Where sentences end in `seg`: the ends of the candidates (_END) that _ends_sentence
    accepts, the plain cases told by the pattern itself (_FAST_END) without a Python call."""
    ends = _ends_sentence
    return [m.end() for m in _FAST_END.finditer(seg) if m.lastgroup == "capital" or ends(seg, m)]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _looks_like_heading(line: str, following: str) -> bool:
    """A short line without closing punctuation, followed by a line that starts a sentence."""
    if line[-1] in _NOT_A_HEADING_END or line[0].islower() or following[0].islower():
        return False
    return len(line.split()) <= 10


def _line_cuts(seg: str, breaks: list[re.Match[str]]) -> list[int]:
    """Offsets of the line breaks in `seg` that end a sentence whatever the punctuation says.

    That is a blank line, a break before a bullet, a break that ends a bullet item (the next line is
    not indented under it), and a break after a heading-like line that stands on its own.
    """
    starts = [0, *(b.end() for b in breaks)]
    ends = [*(b.start() for b in breaks), len(seg)]
    lines = [seg[a:b] for a, b in zip(starts, ends, strict=True)]
    stripped = [line.strip() for line in lines]
    cuts: list[int] = []
    bullet_indent: int | None = None
    opens = True  # the current line begins a new sentence
    for i, brk in enumerate(breaks):
        line, here, there = lines[i], stripped[i], stripped[i + 1]
        if here and _BULLET.match(line):
            bullet_indent = _indent(line)
        if not here or not there or _BULLET.match(lines[i + 1]):
            cut = True
        elif bullet_indent is not None:
            cut = _indent(lines[i + 1]) <= bullet_indent
        else:
            cut = opens and _looks_like_heading(here, there)
        if cut:
            cuts.append(brk.start())
            bullet_indent = None
        opens = cut or here.rstrip(_CLOSERS)[-1:] in (".", "!", "?", "…", ":")
    return cuts


def _starts_paragraph(seg: str, gap_start: int, start: int) -> bool:
    """Whether the sentence at `start` follows a blank line or is a bullet item on a new line."""
    if _BLANK_LINE.search(seg, gap_start, start):
        return True
    return bool(_BULLET.match(seg, start) and _LINE_BREAK.search(seg, gap_start, start))


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int, bool]]:
    """Sentence spans of `text[start:end]` as (start, end, starts_paragraph), absolute offsets."""
    seg = text[start:end]
    cuts = _sentence_ends(seg)
    breaks = list(_LINE_BREAK.finditer(seg)) if _ANY_BREAK.search(seg) else []
    if breaks:
        cuts = sorted(set(cuts).union(_line_cuts(seg, breaks)))
    spans: list[tuple[int, int, bool]] = []
    if not breaks:
        # One line: every cut sits between punctuation and whitespace, so only the gap is skipped.
        a = _SPACE.match(seg).end()
        for cut in cuts:
            spans.append((start + a, start + cut, not spans))
            a = _SPACE.match(seg, cut).end()
        b = len(seg.rstrip())
        if b > a:
            spans.append((start + a, start + b, not spans))
        return spans
    cuts.append(len(seg))
    prev_cut = 0
    prev_end = -1
    for cut in cuts:
        piece = seg[prev_cut:cut]
        right = len(piece.rstrip())
        if right:
            left = len(piece) - len(piece.lstrip())
            a, b = prev_cut + left, prev_cut + right
            paragraph = prev_end < 0 or _starts_paragraph(seg, prev_end, a)
            spans.append((start + a, start + b, paragraph))
            prev_end = b
        prev_cut = cut
    return spans


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans (absolute offsets into `text`) within `text[start:end]`.

    Spans are in order, never empty, and start and end on non-whitespace; together they hold every
    non-whitespace character of the range. A sentence ends at . ! ? (closing quotes or brackets may
    follow) before whitespace and a plausible sentence start, but not after abbreviations such as
    "Dr.", "e.g.", "vs.", "U.S.", single initials, or "No." before a number. A blank line always
    ends a sentence; so does the end of a bullet item or of a short heading-like line, and a bullet
    marker ("- ", "* ", "• ", "1. ") at the start of a line begins one.
    """
    if not isinstance(text, str):
        raise UsageError(f"split_sentences needs a string, not {type(text).__name__}")
    stop = len(text) if end is None else end
    if not 0 <= start <= stop <= len(text):
        raise UsageError(f"sentence range {start}..{end} lies outside a text of {len(text)} chars")
    return [(a, b) for a, b, _ in _sentences(text, start, stop)]


# --- passages --------------------------------------------------------------------------------------

# A unit is a sentence, or a piece of a sentence longer than max_words:
# (start, end, paragraph, words, in_list). `in_list`: a bullet item of a list that a line ending in
# ":" introduces ("Training happens in three settings:"), so a passage should not end before it.
_Unit = tuple[int, int, bool, int, bool]


def _units(text: str, start: int, end: int, settings: SplitSettings) -> list[_Unit]:
    units: list[_Unit] = []
    region = text[start:end]
    # When single spaces are the only whitespace, counting spaces counts words without copying.
    spaced = region.isprintable() and "  " not in region
    listing = False  # the units so far are a lead-in ending in ":" and its items
    for a, b, paragraph in _sentences(text, start, end):
        words = text.count(" ", a, b) + 1 if spaced else len(text[a:b].split())
        item = listing and _BULLET.match(text, a) is not None
        listing = item or text[b - 1] == ":"
        if words <= settings.max_words:
            units.append((a, b, paragraph, words, item))
            continue
        # Too long for one passage: cut at word boundaries into even pieces of at most target_words.
        spans = [m.span() for m in _WORD.finditer(text, a, b)]
        pieces = -(-len(spans) // settings.target_words)
        for k in range(pieces):
            lo, hi = len(spans) * k // pieces, len(spans) * (k + 1) // pieces
            units.append((spans[lo][0], spans[hi - 1][1], paragraph and k == 0, hi - lo, False))
    return units


def _pick_end(
    units: list[_Unit], cum: list[int], first: int, new: int, settings: SplitSettings
) -> int:
    """Where the passage holding units[first:] (units before `new` are overlap) should stop."""
    n = len(units)
    limit = cum[first] + settings.max_words
    ends = []
    e = new + 1
    while e <= n and cum[e] <= limit:
        ends.append(e)
        e += 1
    # Avoid leaving a remainder too short to stand as a passage, when there is a choice.
    pool = [e for e in ends if e == n or cum[n] - cum[e] >= settings.min_words] or ends
    long_enough = [e for e in pool if cum[e] - cum[first] >= settings.min_words]
    # at a paragraph break, but not inside a list after its lead-in: the list stays whole
    at_paragraph = [e for e in long_enough if e == n or (units[e][2] and not units[e][4])]
    choices = at_paragraph or long_enough
    if not choices:
        return pool[-1]
    target = settings.target_words
    return min(choices, key=lambda e: (abs(cum[e] - cum[first] - target), -e))


def _pack(units: list[_Unit], settings: SplitSettings) -> list[tuple[int, int]]:
    """Group the units of one section into passages: a list of (first unit, end unit) ranges."""
    n = len(units)
    if n < 2:
        return [(0, n)] if n else []
    cum = [0]
    for unit in units:
        cum.append(cum[-1] + unit[3])
    if cum[n] < settings.min_words:
        return [(0, n)]
    ranges: list[tuple[int, int]] = []
    news: list[int] = []
    first = new = 0
    while new < n:
        e = _pick_end(units, cum, first, new, settings)
        ranges.append((first, e))
        news.append(new)
        if e == n:
            break
        shared = min(settings.overlap, e - max(new, first + 1))
        while shared > 0 and cum[e + 1] - cum[e - shared] > settings.max_words:
            shared -= 1
        first, new = e - shared, e
    # A short remainder joins the passage before it when the result still fits.
    if len(ranges) > 1:
        (prev_first, _), (_, last_end) = ranges[-2], ranges[-1]
        remainder = cum[last_end] - cum[news[-1]]
        fits = cum[last_end] - cum[prev_first] <= settings.max_words
        if remainder * 2 < settings.min_words and fits:
            ranges[-2:] = [(prev_first, last_end)]
    return ranges


def _regions(doc: Document) -> list[tuple[int, int, str]]:
    """The stretches of text between headings, each with the title of the heading before it."""
    size = len(doc.text)
    if not doc.sections:
        return [(0, size, "")]
    regions: list[tuple[int, int, str]] = []
    pos, title = 0, ""
    for section in sorted(doc.sections, key=lambda s: (s.start, s.end)):
        if not 0 <= section.start <= section.end <= size:
            where = doc.source or doc.id
            raise CorpusError(
                f"{where}: heading {section.title!r} spans {section.start}..{section.end}, "
                f"outside the text ({size} characters)"
            )
        if section.start > pos:
            regions.append((pos, section.start, title))
        pos, title = max(pos, section.end), section.title
    regions.append((pos, size, title))
    return regions


def _one_passage(words: int, settings: SplitSettings) -> bool:
    """Whether a stretch of `words` words is one passage whatever its sentences: under max_words,
    and too short to leave min_words on both sides of any cut (see _pack and _pick_end)."""
    return words < 2 * settings.min_words and words <= settings.max_words


def _spans(doc: Document, settings: SplitSettings) -> list[tuple[int, int, str]]:
    """(start, end, section) of each passage of `doc`, in order."""
    out: list[tuple[int, int, str]] = []
    text = doc.text
    for start, end, section in _regions(doc):
        region = text[start:end]
        words = len(region.split())
        if _one_passage(words, settings):  # no need to find its sentences: they all go in
            if words:  # (sentences hold every visible character and start and end on one)
                lead = len(region) - len(region.lstrip())
                out.append((start + lead, start + len(region.rstrip()), section))
            continue
        units = _units(text, start, end, settings)
        for first, last in _pack(units, settings):
            out.append((units[first][0], units[last - 1][1], section))
    return out


def passage_spans(doc: Document, settings: SplitSettings) -> list[tuple[int, int, str]]:
    """(start, end, section) of each passage `split_document(doc, ...)` makes, in order: passage k
    is `doc.text[start:end]`, id f"{doc.id}#{k}" (for builds that never make Passage objects)."""
    return _spans(doc, settings)


def _passages_of(doc: Document, spans: list[tuple[int, int, str]]) -> list[Passage]:
    text = doc.text
    return [
        _unchecked(
            Passage,
            {
                "id": f"{doc.id}#{ordinal}",
                "doc_id": doc.id,
                "title": doc.title,
                "section": section,
                "source": doc.source,
                "text": text[a:b],
                "start": a,
                "end": b,
                "ordinal": ordinal,
            },
        )
        for ordinal, (a, b, section) in enumerate(spans)
    ]


def _require_document(doc: object) -> None:
    if not isinstance(doc, Document):
        raise UsageError(f"split_document needs a Document, not {type(doc).__name__}")


def require_documents(docs: Iterable[object]) -> None:
    """Raise UsageError (as split_document does) unless every item of `docs` is a Document."""
    for doc in docs:
        _require_document(doc)


def _split(doc: Document, settings: SplitSettings) -> list[Passage]:
    _require_document(doc)
    return _passages_of(doc, _spans(doc, settings))


def split_document(
    doc: Document,
    *,
    target_words: int = 80,
    min_words: int = 40,
    max_words: int = 150,
    overlap: int = 1,
) -> list[Passage]:
    """Cut one document into passages of whole sentences (see the module docstring for the rules)."""
    settings = SplitSettings(target_words, min_words, max_words, overlap)
    return _split(doc, settings)


PARALLEL_SPLIT_FROM = 5_000  # documents: from here on, forked workers find the passages
_SPLIT_CHUNK = 5_000  # documents per unit of parallel work at most ...
_SPLIT_SHARES = 4  # ... and fewer on smaller lists: at least this many units per worker


def _split_slice(
    work: tuple[Sequence[Document], SplitSettings], bounds: tuple[int, int]
) -> list[list[tuple[int, int, str]]]:
    """The passage spans of documents [a, b) of `work` (runs in a forked worker)."""
    docs, settings = work
    return [_spans(doc, settings) for doc in docs[bounds[0] : bounds[1]]]


def split_documents(
    docs: Iterable[Document],
    *,
    target_words: int = 80,
    min_words: int = 40,
    max_words: int = 150,
    overlap: int = 1,
    workers: int | None = None,
) -> list[Passage]:
    """The passages of every document, in order; settings as for `split_document`.

    From PARALLEL_SPLIT_FROM documents (a list) on, forked worker processes on every core find
    the passage boundaries (`workers` overrides; the result is the same either way).
    """
    settings = SplitSettings(target_words, min_words, max_words, overlap)
    if not isinstance(docs, Sequence):
        docs = list(docs)
    if workers is None:
        workers = usable_cores() if len(docs) >= PARALLEL_SPLIT_FROM else 1
    if workers > 1 and not can_fork():
        workers = 1
    passages: list[Passage] = []
    if workers <= 1:
        for doc in docs:
            passages.extend(_split(doc, settings))
        return passages
    require_documents(docs)  # one clear error before any work, not a worker's
    work = (docs, settings)
    size = max(1, min(_SPLIT_CHUNK, -(-len(docs) // (_SPLIT_SHARES * workers))))
    for (a, b), spans in forked_slices(_split_slice, work, len(docs), size, workers):
        for doc, doc_spans in zip(docs[a:b], spans, strict=True):
            passages.extend(_passages_of(doc, doc_spans))
    return passages
