"""Readers for public evaluation sets: BEIR retrieval folders and SQuAD-style JSON.

These are for evaluation and benchmarks only; emsqa's own corpus is read by corpus.py.
Every reader is strict: a malformed line, a duplicate id or a dangling reference raises
CorpusError naming the file and line, because a silently merged or dropped record would
skew every figure computed from the set.
"""

from __future__ import annotations

import gzip
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emsqa.datatypes import Document
from emsqa.errors import CorpusError, EmsqaWarning, TestSetError, UsageError
from emsqa.metrics import read_qrels

__all__ = [
    "BeirSet",
    "SquadQuestion",
    "SquadSet",
    "find_shared_data",
    "load_beir",
    "load_squad",
]


@dataclass(frozen=True)
class BeirSet:
    """A BEIR retrieval set: the corpus, the queries of one split and their relevance judgements.

    `queries` holds only the queries judged in the split; `qrels[query_id][doc_id]` is the grade.
    """

    documents: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


@dataclass(frozen=True)
class SquadQuestion:
    """One SQuAD question with its first gold answer.

    `answer_start` is a character offset into the text of document `doc_id`; `article_index` is the
    0-based position of the question's article in the file (for splitting by article).
    """

    id: str
    question: str
    answer_text: str
    answer_start: int
    doc_id: str
    article_index: int

    @property
    def answer_end(self) -> int:
        """Offset just past the gold answer span."""
        return self.answer_start + len(self.answer_text)


@dataclass(frozen=True)
class SquadSet:
    """A SQuAD-style set: one Document per paragraph and the answerable questions on them."""

    documents: list[Document]
    questions: list[SquadQuestion]


def find_shared_data() -> Path | None:
    """The folder of shared evaluation data: `$EMSQA_DATA`, else `<repo root>/../shared/data`.

    Returns None when neither exists (an installed copy or a fresh clone has no shared data).
    """
    env = os.environ.get("EMSQA_DATA", "")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise CorpusError(f"EMSQA_DATA={env} is not a folder")
        return path
    candidate = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


def _open_text(path: Path) -> Iterator[str]:
    """Lines of a UTF-8 text file, gzip-compressed when the name ends in .gz."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                yield from fh
        else:
            with path.open(encoding="utf-8") as fh:
                yield from fh
    except FileNotFoundError as exc:
        raise CorpusError(f"{path}: file not found") from exc
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise CorpusError(f"{path}: cannot be read ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not valid UTF-8 ({exc.reason})") from exc


def _first_existing(folder: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        path = folder / name
        if path.is_file():
            return path
    raise CorpusError(f"{folder}: no {' or '.join(names)} found")


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON-lines file."""
    for lineno, line in enumerate(_open_text(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{path} line {lineno}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise CorpusError(f"{path} line {lineno}: expected a JSON object")
        yield lineno, record


def _string_field(
    record: dict[str, Any], key: str, path: Path, lineno: int, *, required: bool
) -> str:
    value = record.get(key)
    if value is None and not required:
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and key == "_id":
        return str(value)
    if not isinstance(value, str) or (required and not value):
        raise CorpusError(f"{path} line {lineno}: field {key!r} must be a non-empty string")
    return value


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """The split's judgements through metrics.read_qrels; a malformed file is a CorpusError here."""
    try:
        qrels = read_qrels(path)
    except TestSetError as exc:
        raise CorpusError(exc.message, hint=exc.hint) from None
    if not qrels:
        raise CorpusError(f"{path}: no relevance judgements")
    return qrels


def _records_by_id(path: Path, duplicates: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(line, _id, record) of a JSON Lines file. A repeated _id raises (duplicates="error") or is
    yielded again and reported in one EmsqaWarning once the file is read ("warn")."""
    first_line: dict[str, int] = {}
    repeats: list[tuple[int, str]] = []
    for lineno, record in _jsonl_records(path):
        key = _string_field(record, "_id", path, lineno, required=True)
        if key in first_line:
            if duplicates == "error":
                raise CorpusError(
                    f"{path} line {lineno}: duplicate _id {key!r} (first on line {first_line[key]})"
                )
            repeats.append((lineno, key))
        else:
            first_line[key] = lineno
        yield lineno, key, record
    if repeats:
        lineno, key = repeats[0]
        warnings.warn(
            f"{path}: {len(repeats):,} records reuse an earlier _id (first: {key!r} on line "
            f"{lineno}); the last record of each id is kept, as BEIR's loader does, so judgements "
            "on those ids are ambiguous",
            EmsqaWarning,
            stacklevel=3,
        )


def load_beir(
    folder: str | os.PathLike[str], *, split: str = "test", duplicates: str = "warn"
) -> BeirSet:
    """Read a BEIR folder: corpus.jsonl[.gz], queries.jsonl[.gz] and qrels/{split}.tsv.

    Document ids are the corpus `_id`s; `source` is `"<folder name>:<_id>"`. Raises CorpusError
    for a missing file, a malformed line, or a judged query absent from the queries.

    An `_id` used twice makes its judgements ambiguous. With duplicates="warn" (the default) the
    last record wins, as in BEIR's own loader (a dict keyed by `_id`), and one EmsqaWarning per file
    says how many ids repeat; duplicates="error" raises CorpusError naming both lines instead.
    """
    if duplicates not in ("warn", "error"):
        raise UsageError(f"duplicates must be 'warn' or 'error', not {duplicates!r}")
    root = Path(folder)
    if not root.is_dir():
        raise CorpusError(f"{root}: not a folder")
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        found = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        raise CorpusError(
            f"{qrels_path}: no such split",
            hint=f"splits here: {', '.join(found)}" if found else "",
        )
    qrels = _read_qrels(qrels_path)

    corpus_path = _first_existing(root, ("corpus.jsonl", "corpus.jsonl.gz"))
    by_id: dict[str, Document] = {}
    for lineno, doc_id, record in _records_by_id(corpus_path, duplicates):
        by_id[doc_id] = Document(
            id=doc_id,
            title=_string_field(record, "title", corpus_path, lineno, required=False),
            text=_string_field(record, "text", corpus_path, lineno, required=False),
            source=f"{root.name}:{doc_id}",
        )
    documents = list(by_id.values())
    if not documents:
        raise CorpusError(f"{corpus_path}: no documents")

    queries_path = _first_existing(root, ("queries.jsonl", "queries.jsonl.gz"))
    queries: dict[str, str] = {}
    for lineno, query_id, record in _records_by_id(queries_path, duplicates):
        if query_id in qrels:
            queries[query_id] = _string_field(record, "text", queries_path, lineno, required=True)
    missing = [q for q in qrels if q not in queries]
    if missing:
        raise CorpusError(
            f"{qrels_path}: {len(missing)} judged queries are not in {queries_path.name} "
            f"(first: {missing[0]!r})"
        )
    return BeirSet(documents=documents, queries=queries, qrels=qrels)


def load_squad(path: str | os.PathLike[str]) -> SquadSet:
    """Read SQuAD v1.1-style JSON (.json or .json.gz): one Document per paragraph.

    Document ids are `"<article title>#<paragraph index>"`, titles have underscores turned into
    spaces. Each question keeps its first answer; questions without an answer are left out.
    """
    file = Path(path)
    try:
        payload = json.loads("".join(_open_text(file)))
    except json.JSONDecodeError as exc:
        raise CorpusError(f"{file} line {exc.lineno}: not valid JSON ({exc.msg})") from exc
    articles = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(articles, list):
        raise CorpusError(f"{file}: no 'data' list of articles (not SQuAD JSON)")

    documents: list[Document] = []
    questions: list[SquadQuestion] = []
    seen_docs: set[str] = set()
    seen_questions: set[str] = set()
    for article_index, article in enumerate(articles):
        try:
            raw_title = str(article["title"])
            paragraphs = article["paragraphs"]
            for i, paragraph in enumerate(paragraphs):
                doc_id = f"{raw_title}#{i}"
                if doc_id in seen_docs:
                    raise CorpusError(f"{file}: duplicate paragraph id {doc_id!r}")
                seen_docs.add(doc_id)
                context = paragraph["context"]
                if not isinstance(context, str):
                    raise CorpusError(f"{file}: paragraph {doc_id!r} has no text")
                documents.append(
                    Document(
                        id=doc_id,
                        title=raw_title.replace("_", " "),
                        text=context,
                        source=f"{file.name}:{doc_id}",
                    )
                )
                for qa in paragraph.get("qas", []):
                    question = _squad_question(qa, context, doc_id, article_index, file)
                    if question is None:
                        continue
                    if question.id in seen_questions:
                        raise CorpusError(f"{file}: duplicate question id {question.id!r}")
                    seen_questions.add(question.id)
                    questions.append(question)
        except (KeyError, TypeError, AttributeError) as exc:
            raise CorpusError(
                f"{file}: article {article_index} is not in SQuAD shape (problem at {exc})"
            ) from exc
    if not documents:
        raise CorpusError(f"{file}: no paragraphs")
    return SquadSet(documents=documents, questions=questions)


def _squad_question(
    qa: dict[str, Any], context: str, doc_id: str, article_index: int, file: Path
) -> SquadQuestion | None:
    answers = qa.get("answers") or []
    if qa.get("is_impossible") or not answers:
        return None
    answer = answers[0]
    text, start = answer["text"], answer["answer_start"]
    if not isinstance(text, str) or not isinstance(start, int):
        raise CorpusError(f"{file}: question {qa.get('id')!r} has a malformed answer")
    if context[start : start + len(text)] != text:
        raise CorpusError(
            f"{file}: question {qa['id']!r}: answer {text!r} is not at offset {start} of {doc_id!r}"
        )
    return SquadQuestion(
        id=str(qa["id"]),
        question=str(qa["question"]),
        answer_text=text,
        answer_start=start,
        doc_id=doc_id,
        article_index=article_index,
    )
