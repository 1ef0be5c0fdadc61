"""Frozen result types shared by every stage: Document, Passage, Hit, Query, Citation, Answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "Answer",
    "AnswerSentence",
    "Citation",
    "Document",
    "Hit",
    "Passage",
    "Query",
    "Section",
]


_T = TypeVar("_T")


def _unchecked(cls: type[_T], fields: dict[str, Any]) -> _T:
    """An instance of the frozen dataclass `cls` made from `fields` (every field, right types).

    For hot paths that make many results at once (ten Hits with their Passages per question): a
    frozen dataclass's __init__ sets each field through object.__setattr__, which costs twice as
    much. The instance equals, hashes and prints like one made by `cls(**fields)`.
    """
    obj = object.__new__(cls)
    obj.__dict__.update(fields)
    return obj


@dataclass(frozen=True)
class Section:
    """A heading inside a document: `text[start:end]` is the heading line, `title` its clean text."""

    start: int
    end: int
    title: str


@dataclass(frozen=True)
class Document:
    """One source document. `sections` are its headings in order of appearance."""

    id: str
    title: str
    text: str
    source: str = ""
    sections: tuple[Section, ...] = ()

    def section_at(self, offset: int) -> str:
        """Title of the section holding character `offset` ('' before the first heading)."""
        title = ""
        for section in self.sections:
            if section.start > offset:
                break
            title = section.title
        return title


@dataclass(frozen=True)
class Passage:
    """A span of a document: `document.text[start:end] == text` always holds."""

    id: str
    doc_id: str
    title: str
    section: str
    source: str
    text: str
    start: int
    end: int
    ordinal: int = 0


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its score and 1-based rank."""

    passage: Passage
    score: float
    rank: int


@dataclass(frozen=True)
class Query:
    """A question after analysis: what was actually searched for.

    `terms` are the analysed terms of the question itself, `expansions` the (abbreviation, long form)
    pairs that were added from the lexicon, `corrections` the (misspelt word, corpus word) pairs,
    `carried` the terms taken over from earlier questions of the conversation, `notice` a remark for
    the user (for example that the question was truncated).
    """

    text: str
    terms: tuple[str, ...] = ()
    expansions: tuple[tuple[str, str], ...] = ()
    corrections: tuple[tuple[str, str], ...] = ()
    carried: tuple[str, ...] = ()
    notice: str = ""


@dataclass(frozen=True)
class Citation:
    """A cited passage; `n` is its number in the answer text ([n])."""

    n: int
    passage: Passage
    score: float

    def to_dict(self) -> dict[str, Any]:
        p = self.passage
        return {
            "n": self.n,
            "passage_id": p.id,
            "doc_id": p.doc_id,
            "title": p.title,
            "section": p.section,
            "source": p.source,
            "start": p.start,
            "end": p.end,
            "score": round(float(self.score), 6),
            "text": p.text,
        }


@dataclass(frozen=True)
class AnswerSentence:
    """One sentence of an answer, the citation it carries and its offsets in the source document."""

    text: str
    citation: int
    start: int
    end: int


@dataclass(frozen=True)
class Answer:
    """The result of asking a question.

    `text` is the rendered answer sentences with their [n] markers (or the abstention message);
    `citations` lists only the passages the text cites, numbered in order of first appearance;
    `related` offers the closest passages when the answer abstains.
    """

    question: str
    text: str
    citations: tuple[Citation, ...] = ()
    abstained: bool = False
    confidence: float = 0.0
    reason: str = ""
    sentences: tuple[AnswerSentence, ...] = ()
    related: tuple[Hit, ...] = ()
    query: Query | None = None
    kind: str = "answer"
    hits: tuple[Hit, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape (the CLI's --json prints exactly this)."""
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "confidence": round(float(self.confidence), 4),
            "reason": self.reason,
            "citations": [c.to_dict() for c in self.citations],
        }

    def __str__(self) -> str:
        # Presentation lives in render.py; imported late so the core never depends on it at import.
        from emsqa.render import render_answer

        return render_answer(self, color=False)
