"""Ranking metrics with trec_eval's semantics, qrels reading and TREC run files.

Conventions (each matches trec_eval 9.x as exposed by pytrec_eval):

* A run is ranked by score, highest first; equal scores are ordered by document id *descending*
  (plain string comparison), which is how trec_eval sorts before it measures anything.
* A judgment counts as relevant when its grade is > 0; grades <= 0 are non-relevant and add no gain.
* nDCG@k uses gain = grade (linear) and a log2(rank + 1) discount; the ideal DCG is computed
  from the query's positive judgments, best first, cut at k.  With no positive judgment it is 0.
* P@k always divides by k, even when fewer than k documents were retrieved.
* Every query of the qrels gets a value.  A query the run does not mention scores 0, as with
  `trec_eval -c`.  BEIR's evaluator averages over the queries pytrec_eval returns, i.e. those
  present in the run; its searchers give every query an entry (an empty one when nothing was found,
  which pytrec_eval scores 0), so on BEIR's own runs the two means agree.  Run queries absent from
  the qrels are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from emsqa.errors import TestSetError, UsageError

__all__ = [
    "Qrels",
    "Run",
    "mean_over",
    "mrr_at",
    "ndcg_at",
    "precision_at",
    "ranking",
    "read_qrels",
    "read_trec_run",
    "recall_at",
    "truncate_run",
    "write_trec_run",
]

Qrels = dict[str, dict[str, int]]
"""query id -> document id -> graded relevance."""

Run = dict[str, dict[str, float]]
"""query id -> document id -> retrieval score."""

_BEIR_HEADER = ("query-id", "corpus-id", "score")


# --------------------------------------------------------------------------------------------------
# ranking


def ranking(scores: Mapping[str, float]) -> list[str]:
    """Document ids of one query in trec_eval's order: score descending, then id descending."""
    ordered = sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)
    return [doc for doc, _ in ordered]


def truncate_run(run: Mapping[str, Mapping[str, float]], k: int) -> Run:
    """The run cut to each query's top `k` documents (in trec_eval's order)."""
    _check_k(k)
    return {
        qid: {doc: float(scores[doc]) for doc in ranking(scores)[:k]} for qid, scores in run.items()
    }


# --------------------------------------------------------------------------------------------------
# metrics


def ndcg_at(run: Mapping[str, Mapping[str, float]], qrels: Qrels, k: int) -> dict[str, float]:
    """nDCG@k of every query of `qrels` (trec_eval's `ndcg_cut_k`)."""

    def measure(top: list[str], judged: dict[str, int]) -> float:
        ideal = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
        if not ideal:
            return 0.0
        dcg = sum(_gain(judged.get(doc, 0)) / math.log2(i + 2) for i, doc in enumerate(top))
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        return dcg / idcg

    return _per_query(run, qrels, k, measure)


def recall_at(run: Mapping[str, Mapping[str, float]], qrels: Qrels, k: int) -> dict[str, float]:
    """Recall@k of every query of `qrels` (trec_eval's `recall_k`): relevant found / relevant."""

    def measure(top: list[str], judged: dict[str, int]) -> float:
        n_relevant = sum(1 for g in judged.values() if g > 0)
        if n_relevant == 0:
            return 0.0
        return sum(1 for doc in top if judged.get(doc, 0) > 0) / n_relevant

    return _per_query(run, qrels, k, measure)


def mrr_at(run: Mapping[str, Mapping[str, float]], qrels: Qrels, k: int) -> dict[str, float]:
    """Reciprocal rank of the first relevant document within the top k (0 when there is none).

    Equals trec_eval's `recip_rank` measured on the run truncated to k documents per query.
    """

    def measure(top: list[str], judged: dict[str, int]) -> float:
        for i, doc in enumerate(top):
            if judged.get(doc, 0) > 0:
                return 1.0 / (i + 1)
        return 0.0

    return _per_query(run, qrels, k, measure)


def precision_at(run: Mapping[str, Mapping[str, float]], qrels: Qrels, k: int) -> dict[str, float]:
    """Precision@k of every query of `qrels` (trec_eval's `P_k`): relevant docs in the top k / k."""

    def measure(top: list[str], judged: dict[str, int]) -> float:
        return sum(1 for doc in top if judged.get(doc, 0) > 0) / k

    return _per_query(run, qrels, k, measure)


def mean_over(per_query: Mapping[str, float], qrels: Qrels) -> float:
    """Mean of a per-query metric over every query of `qrels` (missing ones count 0)."""
    if not qrels:
        return 0.0
    return math.fsum(float(per_query.get(qid, 0.0)) for qid in qrels) / len(qrels)


def _gain(grade: int) -> float:
    return float(grade) if grade > 0 else 0.0


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UsageError(f"the cut-off k must be a whole number >= 1, not {k!r}")


def _per_query(
    run: Mapping[str, Mapping[str, float]],
    qrels: Qrels,
    k: int,
    measure: Callable[[list[str], dict[str, int]], float],
) -> dict[str, float]:
    _check_k(k)
    return {qid: measure(ranking(run.get(qid, {}))[:k], judged) for qid, judged in qrels.items()}


# --------------------------------------------------------------------------------------------------
# files


def read_qrels(path: str | Path) -> Qrels:
    """Read relevance judgments from a BEIR tsv or a TREC qrels file.

    BEIR: a header `query-id<TAB>corpus-id<TAB>score`, then one tab-separated triple per line.
    TREC: `qid iteration docid relevance` separated by white space (the iteration is ignored).
    CRLF line ends, blank lines, a missing BEIR header and space-separated triples are tolerated.
    A line that fits neither shape, a grade that is not a whole number, or one pair judged twice
    with different grades raises TestSetError naming the file and line.
    """
    path = Path(path)
    qrels: Qrels = {}
    first = True
    for lineno, line in text_lines(path):
        if first:
            first = False
            if tuple(f.strip().lower() for f in line.split("\t")) == _BEIR_HEADER:
                continue
        if "\t" in line and len(line.split("\t")) == 3:
            qid, doc, grade_text = (f.strip() for f in line.split("\t"))
        else:
            fields_ws = line.split()
            if len(fields_ws) == 4:
                qid, _, doc, grade_text = fields_ws
            elif len(fields_ws) == 3:
                qid, doc, grade_text = fields_ws
            else:
                raise TestSetError(
                    f"{path}:{lineno}: expected 'query-id<TAB>corpus-id<TAB>score' or "
                    f"'qid 0 docid relevance', found {len(fields_ws)} fields"
                )
        if not qid or not doc:
            raise TestSetError(f"{path}:{lineno}: empty query or document id")
        grade = _parse_grade(grade_text, path, lineno)
        judged = qrels.setdefault(qid, {})
        if doc in judged and judged[doc] != grade:
            raise TestSetError(
                f"{path}:{lineno}: query {qid!r} judges document {doc!r} twice "
                f"({judged[doc]} and {grade})"
            )
        judged[doc] = grade
    return qrels


def write_trec_run(
    run: Mapping[str, Mapping[str, float]],
    path: str | Path,
    *,
    tag: str = "emsqa",
    depth: int = 1000,
) -> None:
    """Write `run` as a TREC run file: `qid Q0 docid rank score tag`, ranks from 1.

    Queries are written in sorted order; each query's documents in trec_eval's order (score
    descending, ties by document id descending), at most `depth` of them.  Scores are written with
    full precision (repr), so reading the file back reproduces the ranking exactly.
    """
    _check_k(depth)
    if not tag or any(c.isspace() for c in tag):
        raise UsageError(f"run tag must be a non-empty word without spaces, not {tag!r}")
    lines: list[str] = []
    for qid in sorted(run):
        _check_id(qid, "query")
        scores = run[qid]
        for rank, doc in enumerate(ranking(scores)[:depth], start=1):
            _check_id(doc, "document")
            score = float(scores[doc])
            if math.isnan(score):
                raise UsageError(f"score of document {doc!r} for query {qid!r} is NaN")
            lines.append(f"{qid} Q0 {doc} {rank} {score!r} {tag}\n")
    path = Path(path)
    try:
        with path.open("w", encoding="utf-8", newline="\n") as handle:
            handle.writelines(lines)
    except OSError as exc:
        raise UsageError(f"cannot write run file {path}: {exc.strerror or exc}") from exc


def read_trec_run(path: str | Path) -> Run:
    """Read a TREC run file (`qid Q0 docid rank score tag`) into a Run; ranks are ignored."""
    path = Path(path)
    run: Run = {}
    for lineno, line in text_lines(path):
        fields = line.split()
        if len(fields) != 6:
            raise TestSetError(
                f"{path}:{lineno}: expected 'qid Q0 docid rank score tag', "
                f"found {len(fields)} fields"
            )
        qid, _, doc, _, score_text, _ = fields
        try:
            score = float(score_text)
        except ValueError:
            raise TestSetError(f"{path}:{lineno}: score {score_text!r} is not a number") from None
        scores = run.setdefault(qid, {})
        if doc in scores:
            raise TestSetError(f"{path}:{lineno}: document {doc!r} appears twice for query {qid!r}")
        scores[doc] = score
    return run


def text_lines(path: Path) -> Iterable[tuple[int, str]]:
    """Non-blank lines of a text file with their 1-based numbers, line ends stripped.

    A missing or unreadable file raises TestSetError naming it (qrels, runs and test sets share this).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise TestSetError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TestSetError(f"{path}: cannot be read ({exc})") from None
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            yield lineno, line


def _parse_grade(text: str, path: Path, lineno: int) -> int:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value.is_integer():
        raise TestSetError(f"{path}:{lineno}: relevance {text!r} is not a whole number")
    return int(value)


def _check_id(value: str, what: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise UsageError(f"{what} id {value!r} cannot go into a run file (empty or has spaces)")
