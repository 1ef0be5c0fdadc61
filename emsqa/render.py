"""Answers as styled text: `(style, text)` fragments, plain strings and ANSI strings.

Pure string work shared by the CLI and the REPL: nothing here prints, reads a terminal or imports
prompt_toolkit. The fragment lists have the same shape as prompt_toolkit's formatted text, and
`to_ansi` maps the few style classes to SGR codes for the CLI, which must stay light.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

from emsqa.datatypes import Answer, Passage
from emsqa.errors import UsageError

__all__ = [
    "ABSTAIN_LINE",
    "DEFAULT_WIDTH",
    "Fragment",
    "answer_fragments",
    "counted",
    "fit_width",
    "passage_fragments",
    "render_answer",
    "render_passage",
    "render_sources",
    "render_why",
    "sources_fragments",
    "to_ansi",
    "to_plain",
    "top_passage",
    "wants_color",
    "why_fragments",
    "wrap_fragments",
]

Fragment = tuple[str, str]
"""One run of text and its style, e.g. ("class:marker", "[1]"); "" is the plain style."""

DEFAULT_WIDTH = 88
ABSTAIN_LINE = "I could not find this in the corpus."

_INDENT = "    "


def wants_color(stream: Any) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR", "") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def fit_width(columns: int) -> int:
    """The wrap width for a terminal `columns` wide: one column spare, kept within 40..100."""
    return max(40, min(100, columns - 1))


def counted(n: int, noun: str) -> str:
    """ "1 passage", "2 passages", "1,234 passages"."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


_EXCERPT_CHARS = 320
_RELATED_CHARS = 200
_KEY = 14  # width of the labels in aligned key/value rows

# SGR parameters per style class; a fragment may carry several classes separated by spaces.
_SGR = {
    "class:marker": "1;36",
    "class:title": "1",
    "class:heading": "1;4",
    "class:source": "36",
    "class:dim": "2",
    "class:abstain": "1;33",
    "class:highlight": "1;4;33",
    "class:notice": "35",
    "class:error": "1;31",
}

_MARKER = re.compile(r"\[\d+\]")
_TOKEN = re.compile(r"\n|[^\S\n]+|\S+")
_BULLET = re.compile(r"[-*•–]|\d{1,3}[.)]")  # a list item's mark: its lines hang under the text
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


# --------------------------------------------------------------------------- converting fragments


def _safe(text: str) -> str:
    """`text` with control characters (a stray ESC in a document) made harmless for a terminal."""
    return _CONTROL.sub("\ufffd", text)


def to_plain(fragments: Iterable[Fragment]) -> str:
    """The text of `fragments` without any styling (control characters replaced by U+FFFD)."""
    return _safe("".join(text for _, text in fragments))


def to_ansi(fragments: Iterable[Fragment]) -> str:
    """The text of `fragments` with SGR colour codes; codes never span a line break."""
    out: list[str] = []
    for style, raw in fragments:
        text = _safe(raw)
        codes = ";".join(_SGR[c] for c in style.split() if c in _SGR)
        if not codes:
            out.append(text)
            continue
        for i, line in enumerate(text.split("\n")):
            if i:
                out.append("\n")
            if line:
                out.append(f"\x1b[{codes}m{line}\x1b[0m")
    return "".join(out)


def _finish(fragments: list[Fragment], color: bool) -> str:
    return to_ansi(fragments) if color else to_plain(fragments)


# --------------------------------------------------------------------------- wrapping


def wrap_fragments(
    fragments: Iterable[Fragment],
    width: int = DEFAULT_WIDTH,
    *,
    indent: str = "",
    subsequent_indent: str | None = None,
    prefix: Sequence[Fragment] = (),
) -> list[Fragment]:
    """Fill styled text into lines of at most `width` characters, keeping each run's style.

    Line breaks in the text are kept (two or more become one blank line), runs of spaces become one
    space, and text glued across fragments (a word followed by its "[1]") stays on one line. A word
    longer than the line is put on a line of its own rather than cut. The lines of a list item
    ("- ", "• ", "2. ") hang under its text. `prefix` (kept verbatim, e.g. an aligned label)
    replaces `indent` on the first line. No trailing newline.
    """
    later = indent if subsequent_indent is None else subsequent_indent
    # Split into paragraphs of units; a unit is glued non-space text, possibly of several styles.
    paragraphs: list[list[tuple[list[Fragment], Fragment | None]]] = [[]]
    newlines = 0
    gap: Fragment | None = None  # the space before the next unit
    glued = False
    for style, text in fragments:
        for token in _TOKEN.findall(text):
            if token == "\n":
                newlines += 1
                gap, glued = None, False
            elif token.isspace():
                gap, glued = (style, " "), False
            else:
                if newlines:
                    if paragraphs[-1]:
                        paragraphs.append([])
                        if newlines > 1:
                            paragraphs[-1].append(([], None))  # marks a blank line before it
                    newlines = 0
                units = paragraphs[-1]
                if glued and units:
                    units[-1][0].append((style, token))
                else:
                    units.append(([(style, token)], gap))
                gap, glued = None, True
    lines: list[list[Fragment]] = []
    for paragraph in paragraphs:
        if paragraph and not paragraph[0][0]:
            lines.append([])
            paragraph = paragraph[1:]
        if not paragraph:
            continue
        if lines:
            current: list[Fragment] = [("", later)]
        else:
            current = list(prefix) if prefix else [("", indent)]
        used = sum(len(t) for _, t in current)
        fresh = True
        lead = "".join(t for _, t in paragraph[0][0])
        hang = later + " " * (len(lead) + 1) if _BULLET.fullmatch(lead) else later
        for pieces, space in paragraph:
            size = sum(len(t) for _, t in pieces)
            if not fresh and used + 1 + size > width:
                lines.append(current)
                current = [("", hang)]
                used, fresh = len(hang), True
            if not fresh:
                current.append(space or ("", " "))
                used += 1
            current.extend(pieces)
            used += size
            fresh = False
        lines.append(current)
    out: list[Fragment] = []
    for i, line in enumerate(lines):
        if i:
            out.append(("", "\n"))
        out.extend(line)
    return _merge(out)


def _merge(fragments: Iterable[Fragment]) -> list[Fragment]:
    """Join neighbouring runs of the same style and drop empty ones."""
    out: list[Fragment] = []
    for style, text in fragments:
        if not text:
            continue
        if out and out[-1][0] == style:
            out[-1] = (style, out[-1][1] + text)
        else:
            out.append((style, text))
    return out


# --------------------------------------------------------------------------- small pieces


def _file_name(source: str) -> str:
    return os.path.basename(source.rstrip("/\\")) or source


def _label(passage: Passage, n: int | None = None, *, bullet: str = "") -> list[Fragment]:
    """`[n] Title — Section (file)` as fragments."""
    out: list[Fragment] = []
    if n is not None:
        out += [("class:marker", f"[{n}]"), ("", " ")]
    elif bullet:
        out += [("class:dim", bullet), ("", " ")]
    out.append(("class:title", passage.title or passage.doc_id or passage.id))
    if passage.section and passage.section != passage.title:
        out.append(("class:source", f" — {passage.section}"))
    if passage.source:
        out.append(("class:dim", f" ({_file_name(passage.source)})"))
    return out


def _shorten(text: str, limit: int) -> str:
    """`text` with its whitespace collapsed, cut at a word boundary to about `limit` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] if " " in flat[:limit] else flat[:limit]
    return cut.rstrip(" ,;:.") + "…"


def _expansions(pairs: Iterable[tuple[str, str]]) -> str:
    """Expansion pairs grouped by abbreviation: "iv → intravenous; emt → EMT-B, EMT-Basic"."""
    grouped: dict[str, list[str]] = {}
    for short, long in pairs:
        grouped.setdefault(short, []).append(long)
    return "; ".join(f"{short} → {', '.join(longs)}" for short, longs in grouped.items())


def _cited_spans(answer: Answer, n: int, passage: Passage) -> list[tuple[int, int]]:
    """Where the sentences carrying [n] sit inside `passage` (offsets local to its text)."""
    spans = []
    for s in answer.sentences:
        if s.citation != n:
            continue
        lo = max(0, s.start - passage.start)
        hi = min(len(passage.text), s.end - passage.start)
        if lo < hi:
            spans.append((lo, hi))
    return sorted(spans)


def _excerpt(text: str, spans: Sequence[tuple[int, int]], limit: int) -> str:
    """About `limit` characters of `text` around the first cited span, with … where cut.

    Line breaks are kept (list items stay one per line); blank lines and runs of spaces are not.
    """
    lo = spans[0][0] if spans else 0
    start = 0 if len(text) <= limit or lo < limit // 3 else max(0, lo - limit // 6)
    if start:
        space = min(
            (i for i in (text.find(" ", start), text.find("\n", start)) if i >= 0), default=-1
        )
        start = space + 1 if 0 <= space < lo else start
    rows = (" ".join(row.split()) for row in text[start:].split("\n"))
    flat = "\n".join(row for row in rows if row)
    if len(flat) > limit:
        cut = flat[:limit]
        edge = max(cut.rfind(" "), cut.rfind("\n"))
        flat = (cut[:edge] if edge > 0 else cut).rstrip(" ,;:.-—\n") + "…"
    return ("…" + flat) if start else flat


def _find_citation(answer: Answer, n: int) -> Passage:
    if answer.citations:
        for c in answer.citations:
            if c.n == n:
                return c.passage
        numbers = [c.n for c in answer.citations]
        have = f"[{numbers[0]}]" if len(numbers) == 1 else f"[{min(numbers)}]–[{max(numbers)}]"
        raise UsageError(f"no citation [{n}] in the last answer (it has {have})")
    if answer.related:
        if 1 <= n <= len(answer.related):
            return answer.related[n - 1].passage
        raise UsageError(
            f"no related passage {n} in the last answer (it offers 1–{len(answer.related)})"
        )
    raise UsageError("the last answer cites no passages")


def top_passage(answer: Answer) -> Passage | None:
    """The best-ranked passage behind `answer` (what `:why` explains), or None."""
    if answer.hits:
        return min(answer.hits, key=lambda h: h.rank).passage
    if answer.citations:
        return max(answer.citations, key=lambda c: c.score).passage
    if answer.related:
        return answer.related[0].passage
    return None


# --------------------------------------------------------------------------- the answer


def answer_fragments(answer: Answer, *, width: int = DEFAULT_WIDTH) -> list[Fragment]:
    """The full answer: sentences with [n] markers, expansions, notice, then its sources."""
    out: list[Fragment] = []
    query = answer.query
    if answer.abstained:
        out += [("class:abstain", ABSTAIN_LINE)]
        reason = answer.reason or ("" if answer.text == ABSTAIN_LINE else answer.text)
        if reason:
            out += [("", "\n"), *wrap_fragments([("class:dim", reason)], width)]
    else:
        body: list[Fragment] = []
        pos = 0
        for m in _MARKER.finditer(answer.text):
            body += [("", answer.text[pos : m.start()]), ("class:marker", m.group())]
            pos = m.end()
        body.append(("", answer.text[pos:]))
        out += wrap_fragments(body, width)
    if query is not None and answer.kind != "smalltalk":
        if query.expansions:
            pairs = _expansions(query.expansions)
            line = wrap_fragments(
                [("class:dim", f"Expanded: {pairs}")], width, subsequent_indent="  "
            )
            out += [("", "\n\n"), *line]
        if query.notice:
            line = wrap_fragments([("class:notice", f"Note: {query.notice}")], width)
            out += [("", "\n" if query.expansions else "\n\n"), *line]
    if answer.citations:
        out += [("", "\n\n"), ("class:heading", "Sources")]
        for c in answer.citations:
            spans = _cited_spans(answer, c.n, c.passage)
            head = wrap_fragments(_label(c.passage, c.n), width, subsequent_indent=_INDENT)
            text = _excerpt(c.passage.text, spans, _EXCERPT_CHARS)
            body = wrap_fragments([("class:dim", text)], width, indent=_INDENT)
            out += [("", "\n"), *head, ("", "\n"), *body]
    elif answer.related:
        out += [("", "\n\n"), ("class:heading", "Related reading:")]
        for i, hit in enumerate(answer.related, 1):
            head = wrap_fragments(_label(hit.passage, i), width, subsequent_indent=_INDENT)
            text = _shorten(hit.passage.text, _RELATED_CHARS)
            body = wrap_fragments([("class:dim", text)], width, indent=_INDENT)
            out += [("", "\n"), *head, ("", "\n"), *body]
    return _merge(out)


def render_answer(answer: Answer, *, color: bool = False, width: int = DEFAULT_WIDTH) -> str:
    """`answer` as text for a terminal (SGR colours when `color`), without a final newline."""
    return _finish(answer_fragments(answer, width=width), color)


# --------------------------------------------------------------------------- :sources


def _row(key: str, value: Sequence[Fragment], width: int, *, indent: str = "") -> list[Fragment]:
    """`key` as an aligned dim label, then `value` wrapped under itself."""
    label = f"{indent}{key:<{_KEY}}"
    prefix = [("", indent), ("class:dim", label[len(indent) :])]
    return wrap_fragments(value, width, prefix=prefix, subsequent_indent=" " * len(label))


def _hit_details(passage: Passage, score: float, width: int) -> list[Fragment]:
    rows = [
        ("section", passage.section or "—"),
        ("file", passage.source or "—"),
        ("passage", f"{passage.id}, characters {passage.start}–{passage.end}"),
        ("score", f"{score:.4f}"),
    ]
    out: list[Fragment] = []
    for key, value in rows:
        out += [("", "\n"), *_row(key, [("", value)], width, indent=_INDENT)]
    return out


def sources_fragments(answer: Answer, *, width: int = DEFAULT_WIDTH) -> list[Fragment]:
    """Each cited passage in full: file, section, passage id, offsets, score and cited spans."""
    out: list[Fragment] = [
        ("class:heading", "Sources"),
        ("class:dim", f"  for “{answer.question}”"),
    ]
    if answer.citations:
        out.append(("class:dim", f"  (confidence {answer.confidence:.2f})"))
        for c in answer.citations:
            head = wrap_fragments(_label(c.passage, c.n), width, subsequent_indent=_INDENT)
            out += [("", "\n"), *head, *_hit_details(c.passage, c.score, width)]
            for s in answer.sentences:
                if s.citation == c.n:
                    value = [
                        ("", f"characters {s.start}–{s.end}: "),
                        ("class:highlight", _shorten(s.text, 160)),
                    ]
                    out += [("", "\n"), *_row("cited", value, width, indent=_INDENT)]
        return _merge(out)
    if answer.related:
        note = answer.reason or "the answer abstained"
        out += [("", "\n"), *wrap_fragments([("class:abstain", f"Nothing cited: {note}")], width)]
        out += [("", "\n"), ("class:dim", "Closest passages (open one with :open N):")]
        for i, hit in enumerate(answer.related, 1):
            head = wrap_fragments(_label(hit.passage, i), width, subsequent_indent=_INDENT)
            out += [("", "\n"), *head, *_hit_details(hit.passage, hit.score, width)]
        return _merge(out)
    out += [("", "\n"), ("class:dim", "This answer cites no passages.")]
    return _merge(out)


def render_sources(answer: Answer, *, color: bool = False, width: int = DEFAULT_WIDTH) -> str:
    """Full citation details of `answer` (for `:sources`)."""
    return _finish(sources_fragments(answer, width=width), color)


# --------------------------------------------------------------------------- :open N


def passage_fragments(
    answer: Answer, n: int, *, width: int = DEFAULT_WIDTH, marks: bool = False
) -> list[Fragment]:
    """The whole passage behind citation `n`, its cited sentences highlighted, and where it is.

    With `marks` the highlighted sentences are also set between » and «, for output without
    colour. Without citations (an abstention) `n` counts the related passages instead.
    Raises UsageError when there is no such passage.
    """
    passage = _find_citation(answer, n)
    spans = _cited_spans(answer, n, passage) if answer.citations else []
    out: list[Fragment] = wrap_fragments(_label(passage, n), width, subsequent_indent=_INDENT)
    where = f"{passage.source or passage.doc_id}"
    if passage.section:
        where += f" · section “{passage.section}”"
    where += f" · characters {passage.start}–{passage.end}"
    out += [("", "\n"), *wrap_fragments([("class:dim", where)], width, indent=_INDENT)]
    body: list[Fragment] = []
    pos = 0
    for lo, hi in spans:
        lo = max(lo, pos)
        if lo >= hi:
            continue
        cited = f"»{passage.text[lo:hi]}«" if marks else passage.text[lo:hi]
        body += [("", passage.text[pos:lo]), ("class:highlight", cited)]
        pos = hi
    body.append(("", passage.text[pos:]))
    out += [("", "\n\n"), *wrap_fragments(body, width, indent=_INDENT)]
    return _merge(out)


def render_passage(
    answer: Answer, n: int, *, color: bool = False, width: int = DEFAULT_WIDTH
) -> str:
    """The passage of citation `n` in full, cited sentence(s) highlighted (for `:open N`).

    Without colour the cited sentences are set between » and «.
    """
    return _finish(passage_fragments(answer, n, width=width, marks=not color), color)


# --------------------------------------------------------------------------- :why


def why_fragments(
    answer: Answer,
    contributions: Sequence[tuple[str, float]],
    *,
    width: int = DEFAULT_WIDTH,
) -> list[Fragment]:
    """What was searched for and how each term scored in the top passage."""
    query = answer.query
    if query is None or answer.kind == "smalltalk":
        return [
            ("class:dim", "This reply did not search the corpus, so there is nothing to explain.")
        ]

    def row(key: str, value: str) -> list[Fragment]:
        return [*_row(key, [("", value)], width), ("", "\n")]

    out: list[Fragment] = row("Question", answer.question)
    out += row("Searched for", ", ".join(query.terms) if query.terms else "(no usable terms)")
    if query.expansions:
        out += row("Expanded", _expansions(query.expansions))
    if query.carried:
        out += row("Carried over", ", ".join(query.carried) + " (from earlier questions)")
    if query.notice:
        out += row("Note", query.notice)
    top = top_passage(answer)
    if top is None:
        out.append(("class:dim", "No passage matched any of these terms."))
        return _merge(out)
    n = next((c.n for c in answer.citations if c.passage.id == top.id), None)
    out += [*_row("Top passage", _label(top, n), width), ("", "\n")]
    scored = [(term, float(value)) for term, value in contributions]
    if not scored:
        out.append(("class:dim", "No query term occurs in this passage."))
        return _merge(out)
    total = sum(value for _, value in scored)
    size = max(4, max(len(term) for term, _ in scored))
    out.append(("class:dim", f"  {'term':<{size}}  {'score':>8}  {'share':>5}"))
    for term, value in scored:
        share = f"{100 * value / total:4.0f}%" if total > 0 else "    –"
        out += [("", "\n  "), ("class:marker", f"{term:<{size}}"), ("", f"  {value:8.4f}  {share}")]
    out += [("", "\n  "), ("class:dim", f"{'total':<{size}}  {total:8.4f}")]
    return _merge(out)


def render_why(
    answer: Answer,
    contributions: Sequence[tuple[str, float]],
    *,
    color: bool = False,
    width: int = DEFAULT_WIDTH,
) -> str:
    """Terms searched (after analysis and expansion), carried-over terms and per-term scores."""
    return _finish(why_fragments(answer, contributions, width=width), color)
