"""Speed and memory of emsqa beside bm25s (and rank_bm25 on the smallest real set).

    python benchmarks/speed.py --sizes small     # SciFact and MedQuAD (a few minutes)
    python benchmarks/speed.py --sizes all       # adds synthetic 100,000 and 1,000,000 passages

Each system's build + save + load + query phase runs in its own fresh interpreter, so its peak RSS
is its own. The synthetic corpora are .jsonl files that emsqa indexes from the file itself. Figures (see benchmarks/README.md) go to stdout and benchmarks/results/speed.{md,json};
the latency-versus-size plot to benchmarks/results/latency.png (latency-<sizes>.png for a partial run).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common import (
    CACHE,
    REPO,
    RESULTS,
    SEED,
    Bm25sPeer,
    environment_note,
    load_medquad,
    load_scifact,
    markdown_table,
    median,
    p95,
    run_isolated,
    split_sentences,
    timed,
)

from emsqa.datatypes import Document

SMALL = ("scifact", "medquad")
SYNTHETIC = {"100k": 100_000, "1m": 1_000_000}
LATENCY_QUESTIONS = 300  # questions timed one at a time (after one warm-up)
LATENCY_ROUNDS = 5  # each question is timed this often and keeps its fastest time (less noise)
SERVE_QUESTIONS = 100
SYNTHETIC_QUESTIONS = 500
RANK_BM25_QUESTIONS = 30
COLD_RUNS = 9
COLD_QUESTION = "Can an EMT give aspirin for chest pain?"


# ------------------------------------------------------------------------------------- workloads


def _real(name: str) -> tuple[list[Document], list[str]]:
    beir = load_scifact() if name == "scifact" else load_medquad()
    return beir.documents, list(beir.queries.values())


def _sentence_pool() -> list[str]:
    """Real sentences of SciFact and MedQuAD, 4 to 60 words, in file order."""
    import gzip

    from common import data_root

    pool: list[str] = []
    with gzip.open(
        data_root() / "scifact" / "beir" / "sentences.jsonl.gz", "rt", encoding="utf-8"
    ) as fh:
        for line in fh:
            pool.extend(json.loads(line)["sentences"])
    for doc in load_medquad().documents:
        text = " ".join(doc.text.split())
        pool.extend(text[a:b] for a, b in split_sentences(text))
    return [s for s in pool if 4 <= len(s.split()) <= 60]


def synthetic_corpus(n: int) -> Path:
    """A cached file of `n` passages (one a line) of 40-120 words, resampled from real sentences."""
    import numpy as np

    path = CACHE / f"synthetic-{n}-seed{SEED}.txt"
    if path.is_file():
        return path
    pool = _sentence_pool()
    lengths = np.array([len(s.split()) for s in pool])
    rng = np.random.default_rng(SEED)
    targets = rng.integers(40, 121, size=n)
    draws = rng.integers(0, len(pool), size=n * 8)  # about 3 sentences a passage; 8 is plenty
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    cursor = 0
    with tmp.open("w", encoding="utf-8") as out:
        for target in targets.tolist():
            words = 0
            chosen: list[str] = []
            while words < target:
                s = int(draws[cursor])
                cursor += 1
                chosen.append(pool[s])
                words += int(lengths[s])
            text = " ".join(chosen)
            if words > 120:
                text = " ".join(text.split()[:120])
            out.write(text.replace("\n", " ") + "\n")
    tmp.replace(path)
    return path


def synthetic_jsonl(n: int) -> Path:
    """The cached corpus of synthetic_corpus(n) as a .jsonl file, one record a line:
    {"id": "p<i>", "text": ...} (no title: emsqa reads a record's first line as its title)."""
    text_path = synthetic_corpus(n)
    path = text_path.with_suffix(".jsonl")
    if path.is_file():
        return path
    tmp = path.with_suffix(".jsonl.tmp")
    with text_path.open(encoding="utf-8") as fh, tmp.open("w", encoding="utf-8") as out:
        for i, line in enumerate(fh):
            out.write(json.dumps({"id": f"p{i}", "text": line.rstrip("\n")}) + "\n")
    tmp.replace(path)
    return path


def synthetic_texts(path: Path) -> list[str]:
    """The passages' texts of a synthetic .jsonl corpus, in order (plain strings)."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh]


def _synthetic_questions(texts: Sequence[str]) -> list[str]:
    """SYNTHETIC_QUESTIONS sentences drawn from `texts` (fixed seed), lightly perturbed."""
    import numpy as np

    rng = np.random.default_rng(SEED + 1)
    questions: list[str] = []
    while len(questions) < SYNTHETIC_QUESTIONS:
        text = texts[int(rng.integers(len(texts)))]
        spans = split_sentences(text)
        a, b = spans[int(rng.integers(len(spans)))]
        words = text[a:b].split()[:16]
        kept = [w for w in words if rng.random() > 0.3]  # drop about 30% of the words
        if len(kept) < 3:
            continue
        for _ in range(2):  # and swap two random pairs
            i, j = rng.integers(len(kept), size=2)
            kept[i], kept[j] = kept[j], kept[i]
        questions.append(" ".join(kept))
    return questions


def synthetic_questions(name: str) -> list[str]:
    """The questions of a synthetic workload, cached beside its corpus (they need every text)."""
    path = CACHE / f"synthetic-{SYNTHETIC[name]}-seed{SEED}.questions.json"
    if not path.is_file():
        questions = _synthetic_questions(synthetic_texts(synthetic_jsonl(SYNTHETIC[name])))
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(questions), encoding="utf-8")
        tmp.replace(path)
    return json.loads(path.read_text(encoding="utf-8"))


def _synthetic(name: str) -> tuple[list[Document], list[str]]:
    """A synthetic workload as Documents, read from its .jsonl file as emsqa reads it."""
    from emsqa.corpus import load_documents

    path = synthetic_jsonl(SYNTHETIC[name])
    documents = load_documents(path, max_file_bytes=path.stat().st_size + 1)
    return documents, synthetic_questions(name)


def workload(name: str) -> tuple[list[Document], list[str]]:
    """A workload's Documents (as emsqa reads them) and questions."""
    return _real(name) if name in SMALL else _synthetic(name)


# ------------------------------------------------------------------------ one system, one process


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def measure(system: str, name: str, workdir: str) -> dict[str, Any]:
    """Build, save, load and query one system on one workload (meant to run in its own process).

    A synthetic workload is a .jsonl file: emsqa builds from the file itself (reading and
    parsing it is part of its build time, and it never holds the corpus), bm25s from the texts
    read from that file beforehand as plain strings (untimed: the least memory it can have)."""
    folder = Path(workdir) / system
    if name in SYNTHETIC:
        path = synthetic_jsonl(SYNTHETIC[name])
        questions = synthetic_questions(name)
        documents: list[Document] | None = None
    else:
        documents, questions = workload(name)
    timed_questions = questions[:LATENCY_QUESTIONS]
    out: dict[str, Any] = {"questions": len(questions)}
    if system == "emsqa":
        import scipy.sparse  # noqa: F401  (the build's one heavy import: untimed, as bm25s's is)

        from emsqa.errors import EmsqaWarning
        from emsqa.index import Index

        source: Any = path if documents is None else documents
        with warnings.catch_warnings():  # the synthetic files repeat a few texts: skipped
            warnings.simplefilter("ignore", EmsqaWarning)
            out["build_s"], index = timed(lambda: Index.build(source))
        out["documents"] = index.n_documents
        out["passages"] = index.n_passages
        index.save(folder)
        del index
        gc.collect()
        out["load_s"], index = timed(lambda: Index.load(folder))

        def one(q: str) -> Any:
            return index.search(q, k=10)

        def many(qs: list[str]) -> Any:
            return index.search_many(qs, k=10)

    elif system == "bm25s":
        peer = Bm25sPeer()
        if documents is None:
            texts = synthetic_texts(path)
            ids = [f"p{i}" for i in range(len(texts))]
            out["build_s"], _ = timed(lambda: peer.build(ids, texts))
            del texts, ids
        else:
            out["build_s"], _ = timed(lambda: peer.build_documents(documents))
        out["documents"] = out["passages"] = len(peer.ids)
        folder.mkdir(parents=True, exist_ok=True)
        peer.save(folder)
        del peer
        gc.collect()
        peer = Bm25sPeer()
        out["load_s"], _ = timed(lambda: peer.load(folder))

        def one(q: str) -> Any:
            return peer.search(q, 10)

        def many(qs: list[str]) -> Any:
            return peer.search_many(qs, 10)

    else:
        raise ValueError(system)
    out["disk_mb"] = _folder_mb(folder)
    # what bm25s does not keep: the passages' text and their documents' ids, titles and sources
    texts = ("p_text.", "doc_ids.", "doc_titles.", "doc_sources.", "sections.")
    out["text_mb"] = (
        sum(p.stat().st_size for p in folder.rglob("*.npy") if p.name.startswith(texts)) / 2**20
    )
    (Path(workdir) / "questions.json").write_text(json.dumps(questions), encoding="utf-8")
    one(questions[0])  # warm-up
    latencies, first = _latencies(one, timed_questions)
    out["latency_ms_median"] = median(latencies) * 1000
    out["latency_ms_p95"] = p95(latencies) * 1000
    out["latency_ms_first"] = median(first) * 1000
    batch_s = min(timed(lambda: many(questions))[0] for _ in range(LATENCY_ROUNDS))
    out["batch_qps"] = len(questions) / batch_s
    return out


def _latencies(one: Any, questions: Sequence[str]) -> tuple[list[float], list[float]]:
    """Seconds per question: (the fastest of LATENCY_ROUNDS rounds, the first round alone).

    The first round is each question's first time: caches of words met before (emsqa's term
    numbers and stems) are as warm as the questions before it left them, never by the question
    itself."""
    rounds = [[timed(lambda q=q: one(q))[0] for q in questions] for _ in range(LATENCY_ROUNDS)]
    return [min(times) for times in zip(*rounds, strict=True)], rounds[0]


def measure_serving(system: str, workdir: str) -> dict[str, Any]:
    """Open a saved index and answer questions, nothing else: the memory a server would need."""
    folder = Path(workdir) / system
    questions = json.loads((Path(workdir) / "questions.json").read_text(encoding="utf-8"))
    if system == "emsqa":
        from emsqa.index import Index

        index = Index.load(folder)
        for q in questions[:SERVE_QUESTIONS]:
            index.search(q, k=10)
    else:
        peer = Bm25sPeer()
        peer.load(folder)
        for q in questions[:SERVE_QUESTIONS]:
            peer.search(q, 10)
    return {}


def measure_interleaved(workdir: str) -> dict[str, Any]:
    """Both saved indexes in one process, asked each question in turn (which goes first alternates),
    LATENCY_ROUNDS rounds: a burst of machine noise then falls on both systems, not on one."""
    from emsqa.index import Index

    questions = json.loads((Path(workdir) / "questions.json").read_text(encoding="utf-8"))
    questions = questions[:LATENCY_QUESTIONS]
    index = Index.load(Path(workdir) / "emsqa")
    peer = Bm25sPeer()
    peer.load(Path(workdir) / "bm25s")
    systems = (lambda q: index.search(q, k=10), lambda q: peer.search(q, 10))
    for q in questions[:10]:  # warm-up
        for one in systems:
            one(q)
    best = [[float("inf")] * len(questions) for _ in systems]
    for r in range(LATENCY_ROUNDS):
        for i, q in enumerate(questions):
            order = (0, 1) if (i + r) % 2 == 0 else (1, 0)
            for s in order:
                best[s][i] = min(best[s][i], timed(lambda q=q, s=s: systems[s](q))[0])
    emsqa_ms, peer_ms = (median(times) * 1000 for times in best)
    return {"emsqa_ms": emsqa_ms, "bm25s_ms": peer_ms}


def measure_rank_bm25(name: str) -> dict[str, Any]:
    """rank_bm25's BM25Okapi: query latency only, on a small sample (it scores every document)."""
    import numpy as np
    from rank_bm25 import BM25Okapi

    documents, questions = workload(name)
    tokenizer = Bm25sPeer()  # the same tokens as the bm25s peer
    corpus = tokenizer.tokens([f"{d.title} {d.text}" for d in documents], ids=False)
    build_s, bm25 = timed(lambda: BM25Okapi(corpus))

    def one(q: str) -> Any:
        scores = bm25.get_scores(tokenizer.tokens([q], ids=False)[0])
        top = np.argpartition(-scores, 10)[:10]
        return top[np.argsort(-scores[top])]

    sample = questions[:RANK_BM25_QUESTIONS]
    one(sample[0])
    latencies, first = _latencies(one, sample)
    return {
        "documents": len(documents),
        "passages": len(documents),
        "build_s": build_s,
        "latency_ms_median": median(latencies) * 1000,
        "latency_ms_p95": p95(latencies) * 1000,
        "latency_ms_first": median(first) * 1000,
        "questions": len(sample),
    }


# ------------------------------------------------------------------------------------ cold start


def cold_start() -> list[tuple[str, float, float]]:
    """(what, median s, p95 s) of whole-process runs, each after one untimed warm-up run."""
    python = sys.executable
    commands = [
        ("python -c pass", [python, "-c", "pass"]),
        ("python -c 'import sklearn'", [python, "-c", "import sklearn"]),
        ("python -c 'import emsqa'", [python, "-c", "import emsqa"]),
        (f'emsqa ask "{COLD_QUESTION}"', [python, "-m", "emsqa", "ask", COLD_QUESTION]),
    ]
    # Bytecode caching on, as for any installed package (pip compiles a wheel's modules when it
    # installs them): an environment that sets PYTHONDONTWRITEBYTECODE would otherwise recompile
    # every emsqa module from source on every run of this checkout.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = []
    for label, cmd in commands:
        runs = []
        for i in range(COLD_RUNS + 1):
            start = time.perf_counter()
            done = subprocess.run(
                cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False
            )
            elapsed = time.perf_counter() - start
            if done.returncode != 0:
                raise RuntimeError(f"{label} failed: {done.stderr.strip()[-300:]}")
            if i:  # the first run warms the disk cache, the bytecode and the shipped index cache
                runs.append(elapsed)
        out.append((label, median(runs), p95(runs)))
    return out


# ------------------------------------------------------------------------------------------ plot


def plot(results: dict[str, dict[str, dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for system, marker in (("emsqa", "o"), ("bm25s", "s"), ("rank_bm25", "^")):
        points = sorted(
            (r[system]["documents"], r[system]["latency_ms_median"])
            for r in results.values()
            if system in r
        )
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker=marker, label=system)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("corpus size (documents or synthetic passages)")
    ax.set_ylabel("median latency per question (ms)")
    ax.set_title("Single-question search latency, k=10, one thread")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------------------ main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small", help="small, all, or a list like scifact,100k")
    parser.add_argument(
        "--no-cold", action="store_true", help="skip the whole-process cold start runs"
    )
    args = parser.parse_args(argv)
    known = (*SMALL, *SYNTHETIC)
    if args.sizes == "small":
        names: list[str] = list(SMALL)
    elif args.sizes == "all":
        names = list(known)
    else:
        names = [s.strip() for s in args.sizes.split(",") if s.strip()]
        if not names or set(names) - set(known):
            parser.error(f"--sizes takes small, all or names from {', '.join(known)}")

    started = time.perf_counter()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="emsqa-speed-") as workdir:
        for name in names:
            if name in SYNTHETIC:  # generated once, outside the timed children
                synthetic_jsonl(SYNTHETIC[name])
                synthetic_questions(name)
            results[name] = {}
            for system in ("emsqa", "bm25s"):
                results[name][system] = run_isolated(measure, system, name, workdir)
                serving = run_isolated(measure_serving, system, workdir)
                results[name][system]["serve_rss_mb"] = serving["peak_rss_mb"]
                print(f"  {name} {system}: {json.dumps(results[name][system])}", file=sys.stderr)
            together = run_isolated(measure_interleaved, workdir)
            results[name]["emsqa"]["interleaved_ms"] = together["emsqa_ms"]
            results[name]["bm25s"]["interleaved_ms"] = together["bm25s_ms"]
            print(f"  {name} interleaved: {json.dumps(together)}", file=sys.stderr)
            for system in ("emsqa", "bm25s"):
                shutil.rmtree(Path(workdir) / system, ignore_errors=True)
        # rank_bm25 scores every document in Python: only on the smallest real set requested.
        real = [n for n in SMALL if n in names]
        if real:
            results[real[0]]["rank_bm25"] = run_isolated(measure_rank_bm25, real[0])

    header = [
        "corpus",
        "system",
        "units",
        "build s",
        "disk MB",
        "of which text MB",
        "load s",
        "peak RSS MB",
        "serve RSS MB",
        "latency ms (median)",
        "latency ms (p95)",
        "latency ms (1st round)",
        "batch q/s",
    ]
    rows = []
    for name, per_system in results.items():
        for system, r in per_system.items():
            units = f"{r['documents']:,} docs" + (
                f" → {r['passages']:,} passages" if r["passages"] != r["documents"] else ""
            )
            rows.append(
                [
                    name,
                    system,
                    units,
                    r.get("build_s"),
                    r.get("disk_mb"),
                    r.get("text_mb"),
                    r.get("load_s"),
                    r.get("peak_rss_mb"),
                    r.get("serve_rss_mb"),
                    r.get("latency_ms_median"),
                    r.get("latency_ms_p95"),
                    r.get("latency_ms_first"),
                    r.get("batch_qps"),
                ]
            )
    ratio_rows = []
    for name, per_system in results.items():
        e, b = per_system["emsqa"], per_system["bm25s"]
        ratio_rows.append(
            [
                name,
                f"{e['documents']:,}",
                e["latency_ms_median"],
                b["latency_ms_median"],
                f"{e['latency_ms_median'] / b['latency_ms_median']:.2f}",
                f"{e['interleaved_ms'] / b['interleaved_ms']:.2f}",
                f"{e['latency_ms_first'] / b['latency_ms_first']:.2f}",
                f"{e['build_s'] / b['build_s']:.2f}",
                f"{e['peak_rss_mb'] / b['peak_rss_mb']:.2f}",
                f"{e['disk_mb'] / b['disk_mb']:.2f}",
                f"{(e['disk_mb'] - e['text_mb']) / b['disk_mb']:.2f}",
            ]
        )
    lines = [
        f"# emsqa speed ({', '.join(names)})",
        "",
        markdown_table(header, rows),
        "",
        "## Scaling (ms per question vs corpus size; ratios emsqa / bm25s)",
        "",
        markdown_table(
            [
                "corpus",
                "units",
                "emsqa ms",
                "bm25s ms",
                "latency ratio",
                "latency ratio, interleaved",
                "1st-round latency ratio",
                "build ratio",
                "peak RSS ratio",
                "disk ratio",
                "disk ratio without text",
            ],
            ratio_rows,
        ),
    ]
    if not args.no_cold:
        cold = cold_start()
        lines += [
            "",
            f"## Whole-process cold start (median and p95 of {COLD_RUNS} runs, warm disk cache)",
            "",
            markdown_table(["command", "median s", "p95 s"], [list(c) for c in cold]),
        ]
        results["cold_start"] = {label: {"median_s": m, "p95_s": p} for label, m, p in cold}
    elapsed = time.perf_counter() - started
    lines += [
        "",
        f"- latency: {LATENCY_QUESTIONS} questions max (rank_bm25: {RANK_BM25_QUESTIONS}), "
        "one at a time after one warm-up, k=10, whole search call including analysis; each "
        f"question keeps its fastest of {LATENCY_ROUNDS} rounds (batch: fastest of {LATENCY_ROUNDS}); "
        "'1st round': the median of the first round alone, each question asked for the first time "
        "(emsqa's caches of term numbers and stems hold only earlier questions' words); "
        "'interleaved': both saved indexes loaded in one fresh process and asked each question in "
        "turn (the first to answer alternates), same rounds, so bursts of noise fall on both",
        "- peak RSS: the whole build + save + load + query process; when forked build workers "
        "(emsqa from 10,000 passages or 5,000 documents on) run, the process tree's summed PSS sampled every 0.5 s "
        "counts if higher; serve RSS: a fresh process "
        f"that only opens the saved index and answers {SERVE_QUESTIONS} questions",
        "- synthetic corpora: a cached .jsonl file (ids p0.., one record a line); emsqa builds "
        "from the file (`Index.build(path)`: reading and parsing it are in its build time, and "
        "records repeating an earlier text are skipped as load_documents skips them); bm25s "
        "indexes every text, read from the file as plain strings beforehand (untimed)",
        f"- {environment_note()}",
        f"- total wall time {elapsed:.0f} s",
    ]
    report = "\n".join(lines)
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "speed" if args.sizes == "all" else f"speed-{'-'.join(names)}"
    if args.sizes == "small":
        stem = "speed-small"
    (RESULTS / f"{stem}.md").write_text(report + "\n", encoding="utf-8")
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    # Only a run over every size owns latency.png; a partial run's plot is named by its sizes.
    picture = "latency.png" if stem == "speed" else f"latency{stem.removeprefix('speed')}.png"
    plot({k: v for k, v in results.items() if k != "cold_start"}, RESULTS / picture)
    return 0


if __name__ == "__main__":
    sys.exit(main())
