"""Test sets -> figures: answer accuracy, evidence retrieval, abstention, latency, BEIR runs.

Three entry points, all returning frozen reports with `to_dict()`; `format_report()` turns any of
them into plain-text tables for the terminal:

* `evaluate(index, load_testset(path))` scores emsqa's own question sets (JSON Lines, format below);
* `evaluate_beir(index_or_None, load_beir(folder))` ranks documents for a BEIR set and measures
  nDCG@10, Recall@k and MRR@10 with trec_eval's rules (see emsqa.metrics);
* `calibrate_threshold(index, questions)` picks the abstention threshold from answer confidences.

Test-set format, one JSON object per line (blank lines and lines starting with `#` are skipped)::

    {"id": "scope-01", "question": "Can an EMT start an IV?", "answers": ["not"],
     "evidence": ["EMTs do not start IVs"], "doc": "01-scope-of-practice",
     "unanswerable": false, "history": [], "kind": "scope", "split": "test"}

`id`, `question`, `answers` and `evidence` are required (the lists may be empty only for an
unanswerable question); `doc` (a document id or a list of them), `unanswerable`, `history`, `kind`
and `split` are optional. Matching is case-insensitive on NFKC-normalised text with runs of white
space collapsed, after dropping Markdown emphasis, code ticks and heading/bullet markers; the
answer's [n] citation markers are removed before matching.
"""

from __future__ import annotations

import json
import math
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from emsqa.datatypes import Answer, Hit
from emsqa.errors import TestSetError, UsageError
from emsqa.metrics import Run, mean_over, mrr_at, ndcg_at, recall_at, text_lines

if TYPE_CHECKING:
    from emsqa.datasets import BeirSet

__all__ = [
    "BeirReport",
    "CalibrationResult",
    "EvalReport",
    "Failure",
    "Figures",
    "QuestionResult",
    "Searcher",
    "TestQuestion",
    "calibrate_threshold",
    "choose_threshold",
    "evaluate",
    "evaluate_beir",
    "format_report",
    "load_testset",
]

_FIELDS = (
    "id",
    "question",
    "answers",
    "evidence",
    "doc",
    "unanswerable",
    "history",
    "kind",
    "split",
)
_MARKER = re.compile(r"\s*\[\d+\]")
# Markdown a passage may carry but an evidence string is written without: emphasis, code ticks,
# heading and bullet markers at the start of a line.
_MARKDOWN = re.compile(r"\*\*|__|`|^[ \t]*(?:#{1,6}|[-*+•])[ \t]+", re.M)
_BATCH = 64
NO_KIND = "(no kind)"


class Searcher(Protocol):
    """What evaluation needs of an index (emsqa.index.Index has all of it)."""

    def search(self, question: str, k: int = 10, *, history: Sequence[str] = ()) -> list[Hit]: ...

    def search_many(self, questions: Sequence[str], k: int = 10) -> list[list[Hit]]: ...

    def ask(self, question: str, *, k: int = 3, history: Sequence[str] = ()) -> Answer: ...


# --------------------------------------------------------------------------------------------------
# the test-set file


@dataclass(frozen=True)
class TestQuestion:
    """One question of a test set; `line` is where it was read (0 when built in code)."""

    __test__ = False  # not a pytest test class

    id: str
    question: str
    answers: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    docs: tuple[str, ...] = ()
    unanswerable: bool = False
    history: tuple[str, ...] = ()
    kind: str = ""
    split: str = ""
    line: int = 0


def load_testset(path: str | Path) -> list[TestQuestion]:
    """Read a JSON Lines test set; a malformed line raises TestSetError naming file:line."""
    path = Path(path)
    questions: list[TestQuestion] = []
    first_line: dict[str, int] = {}
    for lineno, line in text_lines(path):
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise TestSetError(
                f"{where}: not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
        question = _parse_question(record, where, lineno)
        if question.id in first_line:
            raise TestSetError(
                f"{where}: duplicate id {question.id!r} (first on line {first_line[question.id]})"
            )
        first_line[question.id] = lineno
        questions.append(question)
    if not questions:
        raise TestSetError(f"{path}: no questions in the file")
    return questions


def _parse_question(record: Any, where: str, lineno: int) -> TestQuestion:
    if not isinstance(record, dict):
        raise TestSetError(f"{where}: expected a JSON object, found {type(record).__name__}")
    unknown = sorted(set(record) - set(_FIELDS))
    if unknown:
        raise TestSetError(
            f"{where}: unknown field {unknown[0]!r} (fields are: {', '.join(_FIELDS)})"
        )
    for key in ("id", "question", "answers", "evidence"):
        if key not in record:
            raise TestSetError(f"{where}: missing field {key!r}")
    qid = _text(record, "id", where, required=True)
    question = _text(record, "question", where, required=True)
    answers = _texts(record, "answers", where)
    evidence = _texts(record, "evidence", where)
    doc = record.get("doc")
    docs = (doc,) if isinstance(doc, str) else _texts(record, "doc", where)
    if any(not d.strip() for d in docs):
        raise TestSetError(f"{where}: field 'doc' holds an empty document id")
    unanswerable = record.get("unanswerable", False)
    if not isinstance(unanswerable, bool):
        raise TestSetError(f"{where}: field 'unanswerable' must be true or false")
    if unanswerable and answers:
        raise TestSetError(f"{where}: an unanswerable question cannot list answers")
    if not unanswerable and not answers:
        raise TestSetError(f"{where}: 'answers' is empty (mark the question \"unanswerable\")")
    return TestQuestion(
        id=qid,
        question=question,
        answers=answers,
        evidence=evidence,
        docs=docs,
        unanswerable=unanswerable,
        history=_texts(record, "history", where),
        kind=_text(record, "kind", where, required=False),
        split=_text(record, "split", where, required=False),
        line=lineno,
    )


def _text(record: dict[str, Any], key: str, where: str, *, required: bool) -> str:
    value = record.get(key, "")
    if not isinstance(value, str):
        raise TestSetError(f"{where}: field {key!r} must be a string")
    if required and not value.strip():
        raise TestSetError(f"{where}: field {key!r} is empty")
    return value


def _texts(record: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = record.get(key, [])
    if value is None:
        value = []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TestSetError(f"{where}: field {key!r} must be a list of strings")
    if any(not v.strip() for v in value):
        raise TestSetError(f"{where}: field {key!r} holds an empty string")
    return tuple(value)


def _norm(text: str) -> str:
    """Text for matching: Markdown markers dropped, NFKC, case-folded, white space collapsed."""
    text = _MARKDOWN.sub("", unicodedata.normalize("NFKC", text))
    return " ".join(text.casefold().split())


# --------------------------------------------------------------------------------------------------
# evaluate(): emsqa's own test sets


@dataclass(frozen=True)
class QuestionResult:
    """What happened to one question.

    `evidence_rank` is the 1-based rank of the first retrieved passage holding an evidence string
    (None: not retrieved, or the question lists no evidence); `cited_evidence` whether a cited
    passage holds one (None without evidence); the doc_* figures are None without gold documents.
    """

    id: str
    question: str
    kind: str
    unanswerable: bool
    correct: bool
    abstained: bool
    confidence: float
    answer: str
    cited: tuple[str, ...]
    has_evidence: bool
    evidence_rank: int | None
    cited_evidence: bool | None
    doc_recall: Mapping[int, float] | None
    doc_mrr: float | None
    doc_ndcg: float | None
    latency_ms: float


@dataclass(frozen=True)
class Failure:
    """A question answered wrongly: what was expected, what came back, which passages were cited."""

    id: str
    question: str
    kind: str
    reason: str
    expected: tuple[str, ...]
    got: str
    cited: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "kind": self.kind,
            "reason": self.reason,
            "expected": list(self.expected),
            "got": self.got,
            "cited": list(self.cited),
        }


@dataclass(frozen=True)
class Figures:
    """The figures of a group of questions. A rate is None when its group is empty.

    Answer accuracy counts an unanswerable question as correct when the answer abstained. Evidence
    hit@k and cited-evidence hit are over questions listing evidence; doc Recall@k / MRR@10 /
    nDCG@10 over questions naming gold documents. Abstention precision/recall/F1 treat
    "abstained" as the prediction and "unanswerable" as the truth; the false-abstention rate is
    the share of answerable questions that abstained.
    """

    questions: int
    answerable: int
    unanswerable: int
    answer_accuracy: float | None
    evidence_questions: int
    evidence_hit: Mapping[int, float | None]
    cited_evidence_hit: float | None
    doc_questions: int
    doc_recall: Mapping[int, float | None]
    mrr_at_10: float | None
    ndcg_at_10: float | None
    abstention_precision: float | None
    abstention_recall: float | None
    abstention_f1: float | None
    false_abstention_rate: float | None
    latency_median_ms: float | None
    latency_p95_ms: float | None

    @classmethod
    def of(cls, results: Sequence[QuestionResult], ks: Sequence[int]) -> Figures:
        """Aggregate per-question results."""
        unans = [r for r in results if r.unanswerable]
        ans = [r for r in results if not r.unanswerable]
        with_ev = [r for r in results if r.has_evidence]
        with_docs = [r for r in results if r.doc_recall is not None]
        abstained = [r for r in results if r.abstained]
        true_abst = sum(1 for r in unans if r.abstained)
        precision = _rate(true_abst, len(abstained))
        recall = _rate(true_abst, len(unans))
        f1 = None
        if precision is not None and recall is not None:
            f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
        latencies = np.array([r.latency_ms for r in results], dtype=float)
        return cls(
            questions=len(results),
            answerable=len(ans),
            unanswerable=len(unans),
            answer_accuracy=_rate(sum(r.correct for r in results), len(results)),
            evidence_questions=len(with_ev),
            evidence_hit={
                k: _rate(
                    sum(1 for r in with_ev if r.evidence_rank is not None and r.evidence_rank <= k),
                    len(with_ev),
                )
                for k in ks
            },
            cited_evidence_hit=_rate(sum(1 for r in with_ev if r.cited_evidence), len(with_ev)),
            doc_questions=len(with_docs),
            doc_recall={
                k: _mean([r.doc_recall[k] for r in with_docs if r.doc_recall is not None])
                for k in ks
            },
            mrr_at_10=_mean([r.doc_mrr for r in with_docs if r.doc_mrr is not None]),
            ndcg_at_10=_mean([r.doc_ndcg for r in with_docs if r.doc_ndcg is not None]),
            abstention_precision=precision,
            abstention_recall=recall,
            abstention_f1=f1,
            false_abstention_rate=_rate(sum(1 for r in ans if r.abstained), len(ans)),
            latency_median_ms=float(np.median(latencies)) if len(latencies) else None,
            latency_p95_ms=float(np.percentile(latencies, 95)) if len(latencies) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "questions": self.questions,
            "answerable": self.answerable,
            "unanswerable": self.unanswerable,
            "answer_accuracy": _round(self.answer_accuracy),
            "evidence_questions": self.evidence_questions,
            "evidence_hit": {str(k): _round(v) for k, v in self.evidence_hit.items()},
            "cited_evidence_hit": _round(self.cited_evidence_hit),
            "doc_questions": self.doc_questions,
            "doc_recall": {str(k): _round(v) for k, v in self.doc_recall.items()},
            "mrr_at_10": _round(self.mrr_at_10),
            "ndcg_at_10": _round(self.ndcg_at_10),
            "abstention": {
                "precision": _round(self.abstention_precision),
                "recall": _round(self.abstention_recall),
                "f1": _round(self.abstention_f1),
                "false_abstention_rate": _round(self.false_abstention_rate),
            },
            "latency_ms": {
                "median": _round(self.latency_median_ms, 3),
                "p95": _round(self.latency_p95_ms, 3),
            },
        }


@dataclass(frozen=True)
class EvalReport:
    """The result of `evaluate()`: overall figures, the same by kind, and the failures."""

    overall: Figures
    by_kind: Mapping[str, Figures]
    failures: tuple[Failure, ...]
    ks: tuple[int, ...]
    k_answer: int
    split: str | None = None
    results: tuple[QuestionResult, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: {"split", "ks", "k_answer", "overall", "by_kind", "failures"}."""
        return {
            "split": self.split,
            "ks": list(self.ks),
            "k_answer": self.k_answer,
            "overall": self.overall.to_dict(),
            "by_kind": {kind: figures.to_dict() for kind, figures in self.by_kind.items()},
            "failures": [f.to_dict() for f in self.failures],
        }


def evaluate(
    index: Searcher,
    questions: Iterable[TestQuestion],
    *,
    ks: Sequence[int] = (1, 3, 5, 10),
    k_answer: int = 3,
    split: str | None = None,
) -> EvalReport:
    """Ask every question (of `split`, when given) and measure answers, retrieval and abstention.

    Each question is searched (top max(ks, 10) passages, with its history) and asked (`k_answer`
    passages); the latency is the time of both together.
    """
    ks = _check_ks(ks)
    chosen = [q for q in questions if split is None or q.split == split]
    if not chosen:
        where = f" in split {split!r}" if split is not None else ""
        raise UsageError(f"no questions to evaluate{where}")
    depth = max((*ks, 10))
    results: list[QuestionResult] = []
    for q in chosen:
        started = time.perf_counter()
        hits = index.search(q.question, k=depth, history=q.history)
        answer = index.ask(q.question, k=k_answer, history=q.history)
        latency_ms = (time.perf_counter() - started) * 1000.0
        results.append(_judge(q, hits, answer, latency_ms, ks))

    kinds = sorted({r.kind for r in results})
    by_kind = {kind: Figures.of([r for r in results if r.kind == kind], ks) for kind in kinds}
    failures = tuple(_failure(r, q) for r, q in zip(results, chosen, strict=True) if not r.correct)
    return EvalReport(
        overall=Figures.of(results, ks),
        by_kind=by_kind,
        failures=failures,
        ks=ks,
        k_answer=k_answer,
        split=split,
        results=tuple(results),
    )


def _judge(
    q: TestQuestion, hits: Sequence[Hit], answer: Answer, latency_ms: float, ks: Sequence[int]
) -> QuestionResult:
    got = _norm(_MARKER.sub("", answer.text))
    if q.unanswerable:
        correct = answer.abstained
    else:
        correct = not answer.abstained and any(_norm(a) in got for a in q.answers)
    evidence = [_norm(e) for e in q.evidence]
    evidence_rank = None
    cited_evidence = None
    if evidence:
        for i, hit in enumerate(hits, start=1):
            if _holds(hit.passage.text, evidence):
                evidence_rank = i
                break
        cited_evidence = any(_holds(c.passage.text, evidence) for c in answer.citations)
    doc_recall = doc_mrr = doc_ndcg = None
    if q.docs:
        run = {q.id: _doc_scores(hits)}
        qrels = {q.id: dict.fromkeys(q.docs, 1)}
        doc_recall = {k: recall_at(run, qrels, k)[q.id] for k in ks}
        doc_mrr = mrr_at(run, qrels, 10)[q.id]
        doc_ndcg = ndcg_at(run, qrels, 10)[q.id]
    return QuestionResult(
        id=q.id,
        question=q.question,
        kind=q.kind or NO_KIND,
        unanswerable=q.unanswerable,
        correct=correct,
        abstained=answer.abstained,
        confidence=float(answer.confidence),
        answer=answer.text,
        cited=tuple(c.passage.id for c in answer.citations),
        has_evidence=bool(evidence),
        evidence_rank=evidence_rank,
        cited_evidence=cited_evidence,
        doc_recall=doc_recall,
        doc_mrr=doc_mrr,
        doc_ndcg=doc_ndcg,
        latency_ms=latency_ms,
    )


def _failure(result: QuestionResult, q: TestQuestion) -> Failure:
    if q.unanswerable:
        reason = "answered a question the corpus cannot answer"
    elif result.abstained:
        reason = "abstained on an answerable question"
    else:
        reason = "the answer contains none of the expected strings"
    return Failure(
        id=q.id,
        question=q.question,
        kind=result.kind,
        reason=reason,
        expected=q.answers,
        got=result.answer,
        cited=result.cited,
    )


def _holds(text: str, normalised_needles: Sequence[str]) -> bool:
    hay = _norm(text)
    return any(n in hay for n in normalised_needles)


def _doc_scores(hits: Sequence[Hit]) -> dict[str, float]:
    """Passages -> documents: each document keeps the score of its first (best) passage."""
    scores: dict[str, float] = {}
    for hit in hits:
        scores.setdefault(hit.passage.doc_id, float(hit.score))
    return scores


# --------------------------------------------------------------------------------------------------
# evaluate_beir(): BEIR retrieval sets


@dataclass(frozen=True)
class BeirReport:
    """Document-ranking figures on a BEIR set (trec_eval's rules; see emsqa.metrics)."""

    queries: int
    documents: int
    ndcg_at_10: float
    recall_at_k: float
    mrr_at_10: float
    k: int
    seconds: float
    run: Run = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures (the run is left out: write it with metrics.write_trec_run)."""
        return {
            "queries": self.queries,
            "documents": self.documents,
            "ndcg_at_10": _round(self.ndcg_at_10),
            f"recall_at_{self.k}": _round(self.recall_at_k),
            "mrr_at_10": _round(self.mrr_at_10),
            "k": self.k,
            "seconds": _round(self.seconds, 3),
        }


def evaluate_beir(
    index: Searcher | None,
    beir_set: BeirSet,
    *,
    k: int = 100,
    progress: Callable[[int, int], None] | None = None,
) -> BeirReport:
    """Rank documents for every judged query of `beir_set` and measure them.

    With `index=None` the set's own documents are indexed first (default settings). Passages are
    mapped to their documents (a document keeps its best passage's score) and the top `k`
    documents of each query form the run. `progress(done, total)` is called after each batch.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UsageError(f"k must be a whole number of at least 1, not {k!r}")
    if index is None:
        from emsqa.index import Index

        index = Index.build(beir_set.documents, name="beir")
    query_ids = list(beir_set.queries)
    total = len(query_ids)
    # A document may be cut into several passages: search deeper so k documents remain.
    depth = 3 * k
    run: Run = {}
    started = time.perf_counter()
    for start in range(0, total, _BATCH):
        batch = query_ids[start : start + _BATCH]
        ranked = index.search_many([beir_set.queries[qid] for qid in batch], k=depth)
        for qid, hits in zip(batch, ranked, strict=True):
            scores = _doc_scores(hits)
            run[qid] = dict(list(scores.items())[:k])
        if progress is not None:
            progress(min(start + _BATCH, total), total)
    seconds = time.perf_counter() - started
    qrels = beir_set.qrels
    return BeirReport(
        queries=len(qrels),
        documents=len(beir_set.documents),
        ndcg_at_10=mean_over(ndcg_at(run, qrels, 10), qrels),
        recall_at_k=mean_over(recall_at(run, qrels, k), qrels),
        mrr_at_10=mean_over(mrr_at(run, qrels, 10), qrels),
        k=k,
        seconds=seconds,
        run=run,
    )


# --------------------------------------------------------------------------------------------------
# calibrate_threshold(): where to abstain


@dataclass(frozen=True)
class CalibrationResult:
    """The chosen threshold (answer when confidence >= threshold) and how it separates the set.

    Positives are answerable questions: `answered` / `abstained` count answerable questions above /
    below the threshold, `rejected` / `accepted` unanswerable ones below / above it.
    """

    threshold: float
    balanced_accuracy: float
    answered: int
    abstained: int
    rejected: int
    accepted: int

    @property
    def answerable(self) -> int:
        return self.answered + self.abstained

    @property
    def unanswerable(self) -> int:
        return self.rejected + self.accepted

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "balanced_accuracy": _round(self.balanced_accuracy),
            "answerable": {"answered": self.answered, "abstained": self.abstained},
            "unanswerable": {"abstained": self.rejected, "answered": self.accepted},
        }


def choose_threshold(confidences: Sequence[float], answerable: Sequence[bool]) -> CalibrationResult:
    """The threshold that best separates answerable from unanswerable questions by confidence.

    A question is predicted answerable when its confidence >= threshold. The threshold maximises
    balanced accuracy (mean of the true-positive and true-negative rates). Equally good thresholds
    lie in gaps between consecutive distinct confidences; the widest such gap wins (the lowest on
    a further tie) and the threshold is its midpoint. Answering everything (threshold = the lowest
    confidence) or nothing (just above the highest) counts as a gap of width 0.
    """
    values = np.asarray(confidences, dtype=float)
    truth = np.asarray(answerable, dtype=bool)
    if values.shape != truth.shape or values.ndim != 1:
        raise UsageError("confidences and answerable flags must be two lists of the same length")
    if not np.all(np.isfinite(values)):
        raise UsageError("confidences must be finite numbers")
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        raise UsageError("calibration needs both answerable and unanswerable questions")
    distinct = np.unique(values)
    # Cut c puts distinct[:c] below the threshold and distinct[c:] at or above it.
    best: tuple[float, float, float] | None = None  # (balanced accuracy, gap width, threshold)
    for c in range(len(distinct) + 1):
        if c == 0:
            threshold, width = float(distinct[0]), 0.0
        elif c == len(distinct):
            threshold, width = float(np.nextafter(distinct[-1], math.inf)), 0.0
        else:
            low, high = float(distinct[c - 1]), float(distinct[c])
            threshold, width = (low + high) / 2, high - low
            if not low < threshold <= high:  # adjacent floats: no midpoint between them
                threshold = high
        above = values >= threshold
        tpr = float((above & truth).sum()) / n_pos
        tnr = float((~above & ~truth).sum()) / n_neg
        balanced = (tpr + tnr) / 2
        if best is None or (balanced, width) > (best[0], best[1]):
            best = (balanced, width, threshold)
    assert best is not None
    balanced, _, threshold = best
    above = values >= threshold
    return CalibrationResult(
        threshold=threshold,
        balanced_accuracy=balanced,
        answered=int((above & truth).sum()),
        abstained=int((~above & truth).sum()),
        rejected=int((~above & ~truth).sum()),
        accepted=int((above & ~truth).sum()),
    )


def calibrate_threshold(
    index: Searcher, questions: Iterable[TestQuestion], *, split: str | None = None
) -> CalibrationResult:
    """Ask each question (of `split`, when given) and choose the abstention threshold.

    Uses each Answer's `confidence`, which the core computes whether or not it abstains.
    """
    chosen = [q for q in questions if split is None or q.split == split]
    if not chosen:
        where = f" in split {split!r}" if split is not None else ""
        raise UsageError(f"no questions to calibrate on{where}")
    confidences = [float(index.ask(q.question, history=q.history).confidence) for q in chosen]
    return choose_threshold(confidences, [not q.unanswerable for q in chosen])


# --------------------------------------------------------------------------------------------------
# text


def format_report(
    report: EvalReport | BeirReport | CalibrationResult, *, failures: bool = True
) -> str:
    """Plain-text tables of a report, for the terminal (no colour, no trailing newline).

    `failures=False` leaves out the list of failed questions of an EvalReport.
    """
    if isinstance(report, EvalReport):
        return _format_eval(report, failures=failures)
    if isinstance(report, BeirReport):
        rows = [
            ("queries", str(report.queries)),
            ("documents", str(report.documents)),
            ("nDCG@10", _fmt(report.ndcg_at_10)),
            (f"Recall@{report.k}", _fmt(report.recall_at_k)),
            ("MRR@10", _fmt(report.mrr_at_10)),
            ("time", f"{report.seconds:.1f} s"),
        ]
        return _table(("measure", "value"), rows)
    if isinstance(report, CalibrationResult):
        rows = [
            ("threshold", f"{report.threshold:.4f}"),
            ("balanced accuracy", _fmt(report.balanced_accuracy)),
            ("answerable: answered", str(report.answered)),
            ("answerable: abstained", str(report.abstained)),
            ("unanswerable: abstained", str(report.rejected)),
            ("unanswerable: answered", str(report.accepted)),
        ]
        return _table(("calibration", "value"), rows)
    raise UsageError(f"cannot format a {type(report).__name__}")


def _format_eval(report: EvalReport, *, failures: bool) -> str:
    columns: list[tuple[str, Figures]] = [("all", report.overall)]
    if len(report.by_kind) > 1 or (report.by_kind and NO_KIND not in report.by_kind):
        columns += list(report.by_kind.items())
    measures: list[tuple[str, Callable[[Figures], str]]] = [
        ("questions", lambda f: str(f.questions)),
        ("  unanswerable", lambda f: str(f.unanswerable)),
        ("answer accuracy", lambda f: _fmt(f.answer_accuracy)),
    ]
    for k in report.ks:
        measures.append((f"evidence hit@{k}", lambda f, k=k: _fmt(f.evidence_hit.get(k))))
    measures.append(("cited evidence hit", lambda f: _fmt(f.cited_evidence_hit)))
    for k in report.ks:
        measures.append((f"doc Recall@{k}", lambda f, k=k: _fmt(f.doc_recall.get(k))))
    measures += [
        ("doc MRR@10", lambda f: _fmt(f.mrr_at_10)),
        ("doc nDCG@10", lambda f: _fmt(f.ndcg_at_10)),
        ("abstention precision", lambda f: _fmt(f.abstention_precision)),
        ("abstention recall", lambda f: _fmt(f.abstention_recall)),
        ("abstention F1", lambda f: _fmt(f.abstention_f1)),
        ("false abstentions", lambda f: _fmt(f.false_abstention_rate)),
        ("latency median ms", lambda f: _fmt(f.latency_median_ms, 1)),
        ("latency p95 ms", lambda f: _fmt(f.latency_p95_ms, 1)),
    ]
    rows = [(name, *(get(fig) for _, fig in columns)) for name, get in measures]
    title = f"emsqa evaluation ({report.overall.questions} questions"
    title += f", split {report.split!r})" if report.split is not None else ")"
    parts = [title, "", _table(("measure", *(name for name, _ in columns)), rows)]
    if report.failures and not failures:
        parts += ["", f"{len(report.failures)} questions failed (list them with --failures)."]
    elif report.failures:
        parts += ["", f"failures ({len(report.failures)}):"]
        for f in report.failures:
            expected = " | ".join(f.expected) if f.expected else "(abstain)"
            parts.append(f"- {f.id} [{f.kind}] {f.reason}")
            parts.append(f"    question: {_clip(f.question)}")
            parts.append(f"    expected: {_clip(expected)}")
            parts.append(f"    got:      {_clip(f.got)}")
            parts.append(f"    cited:    {', '.join(f.cited) if f.cited else '-'}")
    return "\n".join(parts)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in (headers, *rows)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        rest = [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _rate(count: int, total: int) -> float | None:
    return count / total if total else None


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    out = tuple(ks)
    if not out or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in out):
        raise UsageError(f"ks must be whole numbers >= 1, not {ks!r}")
    return tuple(sorted(set(out)))
