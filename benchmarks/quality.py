"""Answer and retrieval quality of emsqa beside bm25s, plus one ablation row per index setting
and per lever of the answer's sentence scorer.

    python benchmarks/quality.py                       # every set
    python benchmarks/quality.py --quick               # SciFact only
    python benchmarks/quality.py --sets scifact,xquad
    python benchmarks/quality.py --sets xquad --tuning # XQuAD's tuning half (tune on this only)

Figures (see benchmarks/README.md): SciFact test nDCG@10 and Recall@100, MedQuAD test nDCG@10
(document level: a document scores its best passage), XQuAD answer checks on the test half of the
articles, and the shipped EMS test set.
Results go to stdout and to benchmarks/results/quality.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from common import (
    REPO,
    RESULTS,
    Bm25sPeer,
    doc_run_from_hits,
    environment_note,
    load_medquad,
    load_scifact,
    load_xquad,
    markdown_table,
    mean_metric,
    split_sentences,
)

from emsqa.datasets import BeirSet, SquadQuestion
from emsqa.datatypes import Answer, AnswerSentence, Citation, Hit, Passage
from emsqa.index import Index

ALL_SETS = ("scifact", "medquad", "xquad", "ems")
WHOLE_DOCUMENTS: dict[str, Any] = {"target_words": 1000, "min_words": 900, "max_words": 2000}

SCIFACT_TUNED: dict[str, Any] = {
    **WHOLE_DOCUMENTS, "bigram_weight": 0.1, "idf": "bm25", "title_weight": 2, "b": 0.6,
}  # fmt: skip

# One row per lever of IndexSettings, each changing only that lever from the defaults.
ABLATIONS: list[tuple[str, dict[str, Any]]] = [
    ("weighting=tfidf", {"weighting": "tfidf"}),
    ("stem=False", {"stem": False}),
    ("bigrams=False", {"bigrams": False}),
    ("title_weight=0", {"title_weight": 0}),
    ("title_weight=2", {"title_weight": 2}),
    ("overlap=0", {"overlap": 0}),
    ("target_words=40", {"target_words": 40, "min_words": 20}),
    ("k1=0.9,b=0.4", {"k1": 0.9, "b": 0.4}),
    ("bigram_weight=0.25", {"bigram_weight": 0.25}),
    # one unit per document (abstracts are short): a document no longer scores as its best window
    ("whole documents", WHOLE_DOCUMENTS),
    ("whole documents,bigram_weight=0.25", {**WHOLE_DOCUMENTS, "bigram_weight": 0.25}),
    ("idf=bm25", {"idf": "bm25"}),
    (
        "whole documents,bigram_weight=0.25,idf=bm25",
        {**WHOLE_DOCUMENTS, "bigram_weight": 0.25, "idf": "bm25"},
    ),
    # the best of a coordinate search on SciFact's train queries (qrels/train.tsv) around the row
    # above: title_weight 1-3, k1 0.9-1.5, b 0.6-0.9, bigram_weight 0.1-0.4 (train nDCG@10 0.700 -> 0.702)
    (
        "SciFact-tuned: whole documents,bigram_weight=0.1,idf=bm25,title_weight=2,b=0.6",
        SCIFACT_TUNED,
    ),
    # emsqa.fusion on the row above: 0.3 / 0.3 is the pick of a 3x3 grid (0.2-0.4 each) on SciFact's
    # train queries (train nDCG@10 0.702 -> 0.707, R@100 0.932 -> 0.948); each lever alone too
    (
        "SciFact-tuned + subword_weight=0.3",
        {**SCIFACT_TUNED, "subword_weight": 0.3},
    ),
    (
        "SciFact-tuned + neighbour_weight=0.3",
        {**SCIFACT_TUNED, "neighbour_weight": 0.3},
    ),
    (
        "SciFact-tuned + subword_weight=0.3,neighbour_weight=0.3",
        {**SCIFACT_TUNED, "subword_weight": 0.3, "neighbour_weight": 0.3},
    ),
    # MedQuAD titles name the condition each answer is about (title_weight tuned on its tuning questions)
    ("title_weight=5", {"title_weight": 5}),
    ("title_weight=5,bigram_weight=0.25", {"title_weight": 5, "bigram_weight": 0.25}),
    # answer every question (XQuAD has no unanswerable one; the default threshold is EMS-calibrated)
    ("abstain_below=0", {"abstain_below": 0.0}),
    ("whole documents,abstain_below=0", {**WHOLE_DOCUMENTS, "abstain_below": 0.0}),
]

# One row per lever of the answer's sentence scorer (emsqa.answer), each switched off alone, on an
# index that never abstains (as the "abstain_below=0" row): they change which sentences answer, so
# they show on XQuAD and EMS only. "previous scorer" restores the weights before the fitted scorer.
NO_ABSTAIN: dict[str, Any] = {"abstain_below": 0.0}
ANSWER_ABLATIONS: list[tuple[str, dict[str, float]]] = [
    ("answer: no local rarity", {"LOCAL_WEIGHT": 0.0}),
    ("answer: no pronoun neighbour", {"ANAPHOR_WEIGHT": 0.0}),
    ("answer: no question word runs", {"PHRASE_WEIGHT": 0.0}),
    ("answer: no which-noun", {"HEAD_WEIGHT": 0.0}),
    ("answer: no nearness to what/which/who", {"WH_NEAR_WEIGHT": 0.0}),
    ("answer: no word families", {"FAMILY_WEIGHT": 0.0}),
    ("answer: no answer type", {"ANSWER_TYPE_WEIGHT": 0.0}),
    ("answer: no count of the thing asked", {"COUNT_WEIGHT": 0.0}),
    ("answer: no novelty", {"NOVELTY_WEIGHT": 0.0}),
    ("answer: no neighbour sentence", {"NEIGHBOUR_WEIGHT": 0.0}),
    ("answer: no passage score", {"PASSAGE_WEIGHT": 0.0}),
    ("answer: no second source", {"SECOND_SOURCE_SHARE": 2.0}),
    (
        "answer: previous scorer",
        {
            "COVERAGE_WEIGHT": 0.4,
            "NEIGHBOUR_WEIGHT": 0.2,
            "LOCAL_WEIGHT": 0.0,
            "CONTEXT_WEIGHT": 0.15,
            "PASSAGE_WEIGHT": 0.4,
            "NOVELTY_WEIGHT": 0.3,
            "BIGRAM_WEIGHT": 0.05,
            "ANAPHOR_WEIGHT": 0.0,
            "PHRASE_WEIGHT": 0.0,
            "HEAD_WEIGHT": 0.0,
            "WH_NEAR_WEIGHT": 0.0,
            "FAMILY_WEIGHT": 0.0,
            "LONG_PENALTY": 0.1,
            "ANSWER_TYPE_WEIGHT": 0.15,
            "SECOND_SOURCE_SHARE": 2.0,
            "COUNT_WEIGHT": 0.0,
            "FREQUENCY_MISSING": 0.0,
            "REFERENCE_PENALTY": 0.3,
        },
    ),
]
ANSWER_SETS = ("xquad", "ems")

COLUMNS = [
    ("scifact", "ndcg10", "SciFact nDCG@10"),
    ("scifact", "recall100", "SciFact R@100"),
    ("medquad", "ndcg10", "MedQuAD nDCG@10"),
    ("xquad", "first_sentence", "XQuAD (a) 1st sent."),
    ("xquad", "cited", "XQuAD (b) cited"),
    ("xquad", "top1", "XQuAD span@1"),
    ("xquad", "top5", "XQuAD span@5"),
    ("xquad", "abstained", "XQuAD abstain"),
    ("ems", "accuracy", "EMS answer acc."),
    ("ems", "evidence5", "EMS evidence@5"),
    ("ems", "cited_evidence", "EMS cited evid."),
    ("ems", "abstain_f1", "EMS abstain F1"),
]

DOC_DEPTH = 100
PASSAGES_PER_DOC_DEPTH = 3  # passages fetched per wanted document (documents are 1-3 passages)


@dataclass
class Row:
    name: str
    figures: dict[str, dict[str, float]] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ retrieval


def emsqa_doc_run(index: Index, queries: dict[str, str], depth: int) -> dict[str, dict[str, float]]:
    k = depth * PASSAGES_PER_DOC_DEPTH
    return {qid: doc_run_from_hits(index.search(text, k=k), depth) for qid, text in queries.items()}


def peer_doc_run(
    peer: Bm25sPeer, queries: dict[str, str], depth: int
) -> dict[str, dict[str, float]]:
    qids = list(queries)
    results = peer.search_many([queries[q] for q in qids], depth)
    return {qid: dict(found) for qid, found in zip(qids, results, strict=True)}


def beir_figures(run: dict[str, dict[str, float]], beir: BeirSet, recall: bool) -> dict[str, float]:
    out = {"ndcg10": mean_metric("ndcg", run, beir.qrels, 10)}
    if recall:
        out["recall100"] = mean_metric("recall", run, beir.qrels, 100)
    return out


# ---------------------------------------------------------------------------------------- XQuAD


def xquad_split(questions: Sequence[SquadQuestion], tuning: bool) -> list[SquadQuestion]:
    """Test = questions of the second half of the articles (file order); tuning = the first half."""
    n_articles = max(q.article_index for q in questions) + 1
    half = n_articles // 2
    return [q for q in questions if (q.article_index < half) == tuning]


def _span_inside(q: SquadQuestion, doc_id: str, start: int, end: int) -> bool:
    return doc_id == q.doc_id and start <= q.answer_start and q.answer_end <= end


def emsqa_xquad(index: Index, questions: Sequence[SquadQuestion]) -> dict[str, float]:
    first = cited = top1 = top5 = abstained = 0
    for q in questions:
        answer = index.ask(q.question, k=3)
        if answer.abstained or not answer.sentences:
            abstained += 1
        elif q.answer_text.lower() in answer.sentences[0].text.lower():
            first += 1
        if any(
            _span_inside(q, c.passage.doc_id, c.passage.start, c.passage.end)
            for c in answer.citations
        ):
            cited += 1
        hits = index.search(q.question, k=5)
        inside = [_span_inside(q, h.passage.doc_id, h.passage.start, h.passage.end) for h in hits]
        top1 += any(inside[:1])
        top5 += any(inside)
    n = len(questions)
    return {
        "first_sentence": first / n,
        "cited": cited / n,
        "top1": top1 / n,
        "top5": top5 / n,
        "abstained": abstained / n,
    }


def peer_xquad_paragraphs(peer: Bm25sPeer, questions: Sequence[SquadQuestion]) -> dict[str, float]:
    results = peer.search_many([q.question for q in questions], 5)
    top1 = sum(
        any(d == q.doc_id for d, _ in found[:1])
        for q, found in zip(questions, results, strict=True)
    )
    top5 = sum(
        any(d == q.doc_id for d, _ in found) for q, found in zip(questions, results, strict=True)
    )
    return {"top1": top1 / len(questions), "top5": top5 / len(questions)}


def peer_xquad_sentence(
    documents: Sequence[Any], questions: Sequence[SquadQuestion]
) -> dict[str, float]:
    """bm25s over every sentence of the corpus; the top-1 sentence must contain the answer."""
    ids, texts = [], []
    for doc in documents:
        for i, (start, end) in enumerate(split_sentences(doc.text)):
            ids.append(f"{doc.id}@{i}")
            texts.append(doc.text[start:end])
    by_id = dict(zip(ids, texts, strict=True))
    peer = Bm25sPeer()
    peer.build(ids, texts)
    results = peer.search_many([q.question for q in questions], 1)
    hits = sum(
        bool(found) and q.answer_text.lower() in by_id[found[0][0]].lower()
        for q, found in zip(questions, results, strict=True)
    )
    return {"first_sentence": hits / len(questions), "sentences": float(len(ids))}


# ------------------------------------------------------------------------------------------ EMS

EMS_SET = REPO / "tests" / "data" / "ems_questions.jsonl"
EMS_SPLIT = "test"


class Bm25sSearcher:
    """The peer on the EMS set: bm25s over emsqa's own passages; its answer is the best sentence.

    It ranks the same passages emsqa cut (so evidence figures compare ranking alone), answers with
    the single best sentence by bm25s, never abstains and ignores conversation history.
    """

    def __init__(self, passages: Sequence[Passage]) -> None:
        self.passages = list(passages)
        self.by_id = {p.id: p for p in self.passages}
        self.peer = Bm25sPeer()
        self.peer.build(
            [p.id for p in self.passages], [f"{p.title} {p.text}" for p in self.passages]
        )
        self.spans: dict[str, tuple[Passage, int, int]] = {}
        for p in self.passages:
            for i, (a, b) in enumerate(split_sentences(p.text)):
                self.spans[f"{p.id}@{i}"] = (p, a, b)
        self.sentences = Bm25sPeer()
        self.sentences.build(list(self.spans), [p.text[a:b] for p, a, b in self.spans.values()])

    def _hits(self, found: list[tuple[str, float]]) -> list[Hit]:
        return [Hit(self.by_id[pid], s, rank) for rank, (pid, s) in enumerate(found, start=1)]

    def search(self, question: str, k: int = 10, *, history: Sequence[str] = ()) -> list[Hit]:
        return self._hits(self.peer.search(question, k))

    def search_many(self, questions: Sequence[str], k: int = 10) -> list[list[Hit]]:
        return [self._hits(found) for found in self.peer.search_many(questions, k)]

    def ask(self, question: str, *, k: int = 3, history: Sequence[str] = ()) -> Answer:
        found = self.sentences.search(question, 1)
        if not found:
            return Answer(question=question, text="(no match)", abstained=True, reason="no match")
        passage, a, b = self.spans[found[0][0]]
        sentence = passage.text[a:b]
        return Answer(
            question=question,
            text=f"{sentence} [1]",
            citations=(Citation(1, passage, found[0][1]),),
            sentences=(AnswerSentence(sentence, 1, passage.start + a, passage.start + b),),
        )


def ems_figures(searcher: Any) -> dict[str, float]:
    """The EMS test split through emsqa.evaluate: answers, evidence and abstention."""
    from emsqa.evaluate import evaluate, load_testset

    report = evaluate(searcher, load_testset(EMS_SET), split=EMS_SPLIT)
    f = report.overall
    return {
        "accuracy": f.answer_accuracy,
        "evidence5": f.evidence_hit.get(5),
        "cited_evidence": f.cited_evidence_hit,
        "abstain_f1": f.abstention_f1,
        "questions": float(f.questions),
    }


# ----------------------------------------------------------------------------------------- main


@contextmanager
def answer_levers(values: dict[str, float]) -> Iterator[None]:
    """Set weights of emsqa.answer's sentence scorer for the duration (an ablation), then restore."""
    import emsqa.answer as scorer

    saved = {name: getattr(scorer, name) for name in values}  # a wrong name fails here
    try:
        for name, value in values.items():
            setattr(scorer, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(scorer, name, value)


def _progress(set_name: str, system: str, figures: dict[str, float]) -> None:
    shown = ", ".join(f"{k} {v:.3f}" for k, v in figures.items() if v is not None)
    print(f"  {set_name} {system}: {shown}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="SciFact only")
    parser.add_argument(
        "--sets", default=",".join(ALL_SETS), help="comma-separated: " + ",".join(ALL_SETS)
    )
    parser.add_argument(
        "--no-ablations", action="store_true", help="default settings and peers only"
    )
    parser.add_argument(
        "--tuning", action="store_true", help="XQuAD: score the tuning half instead of test"
    )
    args = parser.parse_args(argv)
    sets = ["scifact"] if args.quick else [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = sorted(set(sets) - set(ALL_SETS))
    if unknown:
        parser.error(f"unknown set(s): {', '.join(unknown)}")

    started = time.perf_counter()
    variants: list[tuple[str, dict[str, Any]]] = [("emsqa (defaults)", {})]
    if not args.no_ablations:
        variants += [(f"emsqa {name}", s) for name, s in ABLATIONS]
    answer_variants: list[tuple[str, dict[str, float]]] = []
    if not args.no_ablations and any(s in ANSWER_SETS for s in sets):
        answer_variants = [(f"emsqa abstain_below=0, {n}", v) for n, v in ANSWER_ABLATIONS]
    rows = {name: Row(name) for name, _ in [*variants, *answer_variants]}
    peer_rows = {n: Row(n) for n in ("bm25s", "bm25s best sentence")}
    notes: list[str] = []

    for set_name in sets:
        t0 = time.perf_counter()
        if set_name in ("scifact", "medquad"):
            beir = load_scifact() if set_name == "scifact" else load_medquad()
            recall = set_name == "scifact"
            for name, settings in variants:
                index = Index.build(beir.documents, **settings)
                run = emsqa_doc_run(index, beir.queries, DOC_DEPTH)
                rows[name].figures[set_name] = beir_figures(run, beir, recall)
                _progress(set_name, name, rows[name].figures[set_name])
            peer = Bm25sPeer()
            peer.build_documents(beir.documents)
            run = peer_doc_run(peer, beir.queries, DOC_DEPTH)
            peer_rows["bm25s"].figures[set_name] = beir_figures(run, beir, recall)
            notes.append(
                f"{set_name}: {len(beir.documents):,} documents, {len(beir.queries):,} queries "
                f"({time.perf_counter() - t0:.0f} s)"
            )
        elif set_name == "xquad":
            squad = load_xquad()
            questions = xquad_split(squad.questions, args.tuning)
            for name, settings in variants:
                index = Index.build(squad.documents, **settings)
                rows[name].figures["xquad"] = emsqa_xquad(index, questions)
                _progress("xquad", name, rows[name].figures["xquad"])
            index = Index.build(squad.documents, **NO_ABSTAIN)
            for name, levers in answer_variants:
                with answer_levers(levers):
                    rows[name].figures["xquad"] = emsqa_xquad(index, questions)
                _progress("xquad", name, rows[name].figures["xquad"])
            peer = Bm25sPeer()
            peer.build_documents(squad.documents)
            peer_rows["bm25s"].figures["xquad"] = peer_xquad_paragraphs(peer, questions)
            sentence = peer_xquad_sentence(squad.documents, questions)
            peer_rows["bm25s best sentence"].figures["xquad"] = sentence
            half = "tuning (first)" if args.tuning else "test (second)"
            notes.append(
                f"xquad: {len(squad.documents)} paragraphs as one corpus, "
                f"{len(questions)} questions of the {half} half of the articles; "
                f"peer sentences: {int(sentence['sentences']):,} "
                f"({time.perf_counter() - t0:.0f} s)"
            )
        else:
            if not EMS_SET.is_file():
                notes.append(f"ems: skipped, {EMS_SET.relative_to(REPO)} is not there")
                continue
            from emsqa.api import shipped_corpus

            for name, settings in variants:
                index = Index.build(shipped_corpus(), **settings)
                rows[name].figures["ems"] = ems_figures(index)
                _progress("ems", name, rows[name].figures["ems"])
            index = Index.build(shipped_corpus(), **NO_ABSTAIN)
            for name, levers in answer_variants:
                with answer_levers(levers):
                    rows[name].figures["ems"] = ems_figures(index)
                _progress("ems", name, rows[name].figures["ems"])
            default = Index.build(shipped_corpus())
            peer_rows["bm25s"].figures["ems"] = ems_figures(Bm25sSearcher(list(default.passages())))
            n = int(rows[variants[0][0]].figures["ems"]["questions"])
            notes.append(
                f"ems: {n} questions of the {EMS_SPLIT!r} split of {EMS_SET.relative_to(REPO)}, "
                f"shipped corpus {default.n_documents} documents / {default.n_passages} passages; "
                "bm25s ranks the same passages and answers with its best sentence "
                f"({time.perf_counter() - t0:.0f} s)"
            )

    shown = [c for c in COLUMNS if c[0] in sets]
    all_rows = [
        r for r in (*rows.values(), *peer_rows.values()) if any(s in r.figures for s in sets)
    ]
    table = markdown_table(
        ["system", *(c[2] for c in shown)],
        [[r.name, *(r.figures.get(s, {}).get(m) for s, m, _ in shown)] for r in all_rows],
    )
    elapsed = time.perf_counter() - started
    report = "\n".join(
        [
            f"# emsqa quality ({', '.join(sets)})",
            "",
            table,
            "",
            *(f"- {n}" for n in notes),
            f"- {environment_note()}",
            f"- total wall time {elapsed:.0f} s",
        ]
    )
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.quick:
        stem = "quality-quick"
    elif set(sets) == set(ALL_SETS):
        stem = "quality"
    else:
        stem = "quality-" + "-".join(sets)
    if args.tuning:
        stem += "-tuning"
    (RESULTS / f"{stem}.md").write_text(report + "\n", encoding="utf-8")
    payload = {r.name: r.figures for r in all_rows}
    (RESULTS / f"{stem}.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
