"""Shared pieces of the benchmarks: data sets, the bm25s peer, timing, peak memory and tables.

Run the scripts from the repository root (`python benchmarks/quality.py`); this module puts the
source tree first on sys.path so `import emsqa` finds it without installing.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import multiprocessing
import os
import platform
import random
import re
import resource
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from emsqa.datasets import BeirSet, SquadSet, find_shared_data, load_beir, load_squad  # noqa: E402
from emsqa.datatypes import Document, Hit  # noqa: E402
from emsqa.metrics import mean_over, ndcg_at, recall_at  # noqa: E402

__all__ = [
    "CACHE",
    "REPO",
    "RESULTS",
    "SEED",
    "Bm25sPeer",
    "data_root",
    "doc_run_from_hits",
    "environment_note",
    "fmt",
    "load_medquad",
    "load_scifact",
    "load_xquad",
    "markdown_table",
    "mean_metric",
    "median",
    "p95",
    "run_isolated",
    "split_sentences",
    "timed",
]

CACHE = REPO / "benchmarks" / ".cache"
RESULTS = REPO / "benchmarks" / "results"
SEED = 20240611
"""Every random choice in the benchmarks (samples, synthetic corpora) derives from this seed."""


# ------------------------------------------------------------------------------------------- data


def data_root() -> Path:
    """The shared data folder, or exit with a message saying where it was looked for."""
    root = find_shared_data()
    if root is None:
        raise SystemExit(
            f"benchmarks need the shared data sets: set EMSQA_DATA or place them at "
            f"{REPO.parent / 'shared' / 'data'}"
        )
    return root


def load_scifact(split: str = "test") -> BeirSet:
    """BEIR SciFact (5,183 abstracts; 300 test claims)."""
    return load_beir(data_root() / "scifact" / "beir", split=split)


def load_xquad() -> SquadSet:
    """XQuAD English: 240 SQuAD v1.1 dev paragraphs from 48 articles, 1,190 questions."""
    return load_squad(data_root() / "xquad-en-squad11-dev-subset" / "xquad.en.json.gz")


MEDQUAD_TEST_SIZE = 2000


def load_medquad() -> BeirSet:
    """MedQuAD as BEIR: 16,407 answers, 2,000 test questions.

    The shared BEIR files reuse ids across MedQuAD's source folders (16,407 rows, 12,133 distinct
    ids), which makes their qrels ambiguous (load_beir's strict mode refuses them). Until they are
    regenerated, a repaired copy is written once to benchmarks/.cache: ids made unique by line (the
    n-th repeat of an id gets "~n"), and a fresh test split of 2,000 questions sampled with SEED
    whose relevant answers are, as in the shared README, every answer to the same question text
    (compared lower-cased on letters and digits only: for each of the 1,208 shared test questions
    whose id is unambiguous, this gives exactly the document ids the shared qrels list).
    """
    shared = data_root() / "medquad" / "beir"
    try:
        return load_beir(shared, duplicates="error")
    except Exception as exc:  # a CorpusError for the duplicate ids
        if "duplicate _id" not in str(exc):
            raise
    repaired = CACHE / "medquad-beir-repaired-v1"
    if not (repaired / "qrels" / "test.tsv").is_file():
        _repair_medquad(shared, repaired)
    return load_beir(repaired)


def _question_key(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _repair_medquad(shared: Path, target: Path) -> None:
    with gzip.open(shared / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        corpus = [json.loads(line) for line in fh if line.strip()]
    with (shared / "queries.jsonl").open(encoding="utf-8") as fh:
        queries = [json.loads(line) for line in fh if line.strip()]
    if len(corpus) != len(queries) or any(
        c["_id"] != q["_id"] for c, q in zip(corpus, queries, strict=True)
    ):
        raise SystemExit(f"{shared}: corpus and queries are not line-aligned; cannot repair")
    seen: dict[str, int] = defaultdict(int)
    ids: list[str] = []
    for record in corpus:
        seen[record["_id"]] += 1
        n = seen[record["_id"]]
        ids.append(record["_id"] if n == 1 else f"{record['_id']}~{n}")
    by_question: dict[str, list[int]] = defaultdict(list)
    for line, record in enumerate(queries):
        by_question[_question_key(record["text"])].append(line)
    sample = sorted(random.Random(SEED).sample(range(len(queries)), MEDQUAD_TEST_SIZE))

    tmp = target.with_name(target.name + ".tmp")
    (tmp / "qrels").mkdir(parents=True, exist_ok=True)
    with gzip.open(tmp / "corpus.jsonl.gz", "wt", encoding="utf-8") as out:
        for new_id, record in zip(ids, corpus, strict=True):
            out.write(json.dumps({**record, "_id": new_id}) + "\n")
    with (tmp / "queries.jsonl").open("w", encoding="utf-8") as out:
        for new_id, record in zip(ids, queries, strict=True):
            out.write(json.dumps({**record, "_id": new_id}) + "\n")
    with (tmp / "qrels" / "test.tsv").open("w", encoding="utf-8") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        for line in sample:
            for doc_line in by_question[_question_key(queries[line]["text"])]:
                out.write(f"{ids[line]}\t{ids[doc_line]}\t1\n")
    tmp.replace(target)


_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`: a plain punctuation splitter for the peer."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.start()
        if text[start:end].strip():
            spans.append((start, end))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text.rstrip())))
    return spans


# ------------------------------------------------------------------------------------------- peer


class Bm25sPeer:
    """bm25s as the peer: English stemmer and stop words, numpy backend, one thread."""

    name = "bm25s"

    def __init__(self) -> None:
        import bm25s
        import Stemmer

        self._bm25s = bm25s
        self._stemmer = Stemmer.Stemmer("english")
        self.retriever: Any = None
        self.ids: list[str] = []

    def tokens(self, texts: list[str], *, ids: bool) -> Any:
        """bm25s tokens of `texts`: vocabulary ids for indexing, strings for questions."""
        return self._bm25s.tokenize(
            texts, stopwords="en", stemmer=self._stemmer, return_ids=ids, show_progress=False
        )

    def build(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Index `texts` (title and body already joined by the caller)."""
        self.ids = list(ids)
        self.retriever = self._bm25s.BM25(backend="numpy")
        self.retriever.index(self.tokens(list(texts), ids=True), show_progress=False)

    def build_documents(self, documents: Iterable[Document]) -> None:
        """Index documents as BEIR does for BM25: title, a space, then the text."""
        docs = list(documents)
        self.build([d.id for d in docs], [f"{d.title} {d.text}".strip() for d in docs])

    def save(self, folder: Path) -> None:
        self.retriever.save(str(folder), show_progress=False)
        (folder / "ids.json").write_text(json.dumps(self.ids), encoding="utf-8")

    def load(self, folder: Path) -> None:
        self.retriever = self._bm25s.BM25.load(str(folder), show_progress=False)
        self.ids = json.loads((folder / "ids.json").read_text(encoding="utf-8"))

    def search_many(self, questions: Sequence[str], k: int) -> list[list[tuple[str, float]]]:
        """Top `k` (id, score) per question, zero scores dropped (as a search engine would)."""
        if not questions:
            return []
        k = min(k, len(self.ids))
        tokens = self.tokens(list(questions), ids=False)
        found, scores = self.retriever.retrieve(
            tokens, k=k, n_threads=1, backend_selection="numpy", show_progress=False
        )
        return [
            [
                (self.ids[int(i)], float(s))
                for i, s in zip(row_ids, row_scores, strict=True)
                if s > 0
            ]
            for row_ids, row_scores in zip(found, scores, strict=True)
        ]

    def search(self, question: str, k: int) -> list[tuple[str, float]]:
        return self.search_many([question], k)[0]


# ---------------------------------------------------------------------------------------- metrics


def doc_run_from_hits(hits: Iterable[Hit], depth: int) -> dict[str, float]:
    """Document scores of one query: the best passage score per document, top `depth` kept."""
    best: dict[str, float] = {}
    for hit in hits:
        doc = hit.passage.doc_id
        if hit.score > best.get(doc, -math.inf):
            best[doc] = float(hit.score)
    ranked = sorted(best.items(), key=lambda item: item[1], reverse=True)[:depth]
    return dict(ranked)


def mean_metric(
    name: str, run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]], k: int
) -> float:
    """Mean nDCG@k ("ndcg") or Recall@k ("recall") over every judged query (via emsqa.metrics)."""
    measure = {"ndcg": ndcg_at, "recall": recall_at}[name]
    return mean_over(measure(run, qrels, k), qrels)


# ----------------------------------------------------------------------------------------- timing


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: Sequence[float]) -> float:
    """95th percentile by linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = 0.95 * (len(ordered) - 1)
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 1024 / 1024


class TreePeak:
    """The peak memory of this process and its descendants together while it has any (forked
    build workers, which RUSAGE_SELF leaves out), sampled every `every` seconds on a thread.
    Each process counts its proportional set size (PSS): pages a worker shares with its parent
    after the fork are split between them, not counted twice. PSS is costly to read from a large
    process, so it is read only while children exist; RUSAGE_SELF covers the rest."""

    def __init__(self, every: float = 0.5) -> None:
        import threading

        self.every = every
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            children = me.children(recursive=True)
            if children:
                total = 0
                for proc in [me, *children]:
                    with contextlib.suppress(psutil.Error):  # a worker that ended meanwhile
                        total += proc.memory_full_info().pss
                self.peak_mb = max(self.peak_mb, total / 2**20)
            self._stop.wait(self.every)

    def __enter__(self) -> TreePeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _child(fn: Callable[..., dict[str, Any]], args: tuple[Any, ...], queue: Any) -> None:
    try:
        with TreePeak() as tree:
            result = fn(*args)
        # the process's own peak, or its process tree's when forked workers made that higher
        result["peak_rss_mb"] = max(peak_rss_mb(), tree.peak_mb)
        result["own_peak_rss_mb"] = peak_rss_mb()
        queue.put(("ok", result))
    except BaseException as exc:  # report anything to the parent rather than hang it
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def run_isolated(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run `fn(*args)` in a fresh spawned interpreter; its dict result gains `peak_rss_mb`.

    The child starts from nothing, so its peak RSS is that of one system's whole phase (imports,
    data, build, save, load, queries) and no other system's memory is counted.
    """
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, args, queue))
    proc.start()
    status, payload = queue.get()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"{getattr(fn, '__name__', fn)}{args!r} failed: {payload}")
    return payload


# ----------------------------------------------------------------------------------------- tables


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: floats rounded, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain Markdown table; cells formatted with fmt() unless already strings."""
    body = [[c if isinstance(c, str) else fmt(c) for c in row] for row in rows]
    widths = [
        max(len(str(h)), *(len(r[i]) for r in body)) if body else len(str(h))
        for i, h in enumerate(header)
    ]
    lines = [
        "| " + " | ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in body
    ]
    return "\n".join(lines)


def _source_state() -> str:
    """The commit the measured emsqa code is at, and whether emsqa/ differs from it."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--", "emsqa")
    return f"{commit}{' + uncommitted changes in emsqa/' if dirty else ''}"


def environment_note() -> str:
    """One line naming the machine and the library versions the figures were measured with."""
    import numpy
    import sklearn

    try:
        import bm25s

        bm25s_version = bm25s.__version__
    except Exception:  # the peer is optional for some runs
        bm25s_version = "absent"
    return (
        f"emsqa at {_source_state()}; "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"numpy {numpy.__version__}, scikit-learn {sklearn.__version__}, bm25s {bm25s_version}"
    )
