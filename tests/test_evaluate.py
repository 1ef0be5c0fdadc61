"""emsqa.evaluate: the test-set loader, the figures of evaluate(), calibration and BEIR runs."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsqa.datatypes import Answer, Citation, Document, Hit, Passage
from emsqa.errors import TestSetError, UsageError
from emsqa.evaluate import (
    BeirReport,
    CalibrationResult,
    EvalReport,
    TestQuestion,
    calibrate_threshold,
    choose_threshold,
    evaluate,
    evaluate_beir,
    format_report,
    load_testset,
)
from emsqa.metrics import mean_over, mrr_at, ndcg_at, read_trec_run, recall_at, write_trec_run

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# --- the loader ----------------------------------------------------------------------------------


def _write(tmp_path: Path, lines: Sequence[str], newline: str = "\n") -> Path:
    path = tmp_path / "set.jsonl"
    path.write_text(newline.join(lines) + newline, encoding="utf-8", newline="")
    return path


GOOD = {"id": "a1", "question": "What is an AED?", "answers": ["defibrillator"], "evidence": []}


def test_loader_reads_every_field_and_skips_comments(tmp_path):
    full = {
        "id": "f1",
        "question": "And for a paramedic?",
        "answers": ["1,200 hours", "1200 hours"],
        "evidence": ["1,200 to 1,800 hours"],
        "doc": ["01-scope", "02-education"],
        "history": ["How long is EMT training?"],
        "kind": "follow-up",
        "split": "test",
    }
    unanswerable = {
        "id": "u1",
        "question": "What is the capital of Peru?",
        "answers": [],
        "evidence": [],
        "doc": "none",
        "unanswerable": True,
    }
    lines = ["# a comment", "", json.dumps(GOOD), "   ", json.dumps(full), json.dumps(unanswerable)]
    questions = load_testset(_write(tmp_path, lines, newline="\r\n"))
    assert [q.id for q in questions] == ["a1", "f1", "u1"]
    assert [q.line for q in questions] == [3, 5, 6]
    assert questions[0] == TestQuestion(
        id="a1", question="What is an AED?", answers=("defibrillator",), line=3
    )
    f = questions[1]
    assert f.answers == ("1,200 hours", "1200 hours")
    assert f.docs == ("01-scope", "02-education")
    assert f.history == ("How long is EMT training?",)
    assert (f.kind, f.split, f.unanswerable) == ("follow-up", "test", False)
    assert questions[2].unanswerable and questions[2].docs == ("none",)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"id": "x", "question": "q", "answers": ["a"]', "not valid JSON"),
        ('["id", "question"]', "expected a JSON object"),
        ('{"id": "x", "question": "q", "answers": ["a"]}', "missing field 'evidence'"),
        (
            '{"id": "x", "question": "q", "answers": "a", "evidence": []}',
            "'answers' must be a list",
        ),
        (
            '{"id": "x", "question": "q", "answers": [1], "evidence": []}',
            "'answers' must be a list",
        ),
        ('{"id": 7, "question": "q", "answers": ["a"], "evidence": []}', "'id' must be a string"),
        ('{"id": "x", "question": " ", "answers": ["a"], "evidence": []}', "'question' is empty"),
        ('{"id": "x", "question": "q", "answer": ["a"], "evidence": []}', "unknown field 'answer'"),
        ('{"id": "x", "question": "q", "answers": [], "evidence": []}', "'answers' is empty"),
        (
            '{"id": "x", "question": "q", "answers": ["a"], "evidence": [], "unanswerable": true}',
            "cannot list answers",
        ),
        (
            '{"id": "x", "question": "q", "answers": ["a"], "evidence": [], "unanswerable": "no"}',
            "true or false",
        ),
        ('{"id": "x", "question": "q", "answers": ["a"], "evidence": [], "doc": 3}', "'doc'"),
        ('{"id": "x", "question": "q", "answers": ["a"], "evidence": [""]}', "empty string"),
        ('{"id": "x", "question": "q", "answers": ["a"], "evidence": [], "kind": 1}', "'kind'"),
    ],
)
def test_loader_errors_name_file_and_line(tmp_path, bad, message):
    path = _write(tmp_path, ["# header", json.dumps(GOOD), "", bad])
    with pytest.raises(TestSetError) as caught:
        load_testset(path)
    text = str(caught.value)
    assert text.startswith(f"{path}:4: ")
    assert message in text
    assert "\n" not in text


def test_loader_duplicate_ids_name_both_lines(tmp_path):
    path = _write(tmp_path, [json.dumps(GOOD), json.dumps({**GOOD, "question": "again"})])
    with pytest.raises(TestSetError, match=r"set\.jsonl:2: duplicate id 'a1' \(first on line 1\)"):
        load_testset(path)


def test_loader_empty_and_missing_files(tmp_path):
    with pytest.raises(TestSetError, match="no questions"):
        load_testset(_write(tmp_path, ["# only a comment", ""]))
    with pytest.raises(TestSetError, match="no such file"):
        load_testset(tmp_path / "absent.jsonl")


# --- evaluate() on a scripted index: every figure derived by hand --------------------------------


def _passage(doc: str, ordinal: int, text: str) -> Passage:
    return Passage(
        id=f"{doc}#{ordinal}",
        doc_id=doc,
        title=doc,
        section="",
        source="",
        text=text,
        start=0,
        end=len(text),
        ordinal=ordinal,
    )


# Markdown in the passage: the evidence "ASPIRIN  324 mg" still matches once ** is dropped.
ASPIRIN_0 = _passage(
    "aspirin", 0, "- **Aspirin** 324 mg is chewed for suspected cardiac chest pain."
)
ASPIRIN_1 = _passage("aspirin", 1, "Chew the tablet slowly; do not give it with an allergy.")
GLUCOSE_0 = _passage("glucose", 0, "Oral glucose is given to a conscious diabetic patient.")
SCOPE_0 = _passage("scope", 0, "An EMR provides basic care until an ambulance arrives.")


def _hits(*passages: Passage) -> list[Hit]:
    return [Hit(p, score=10.0 - i, rank=i + 1) for i, p in enumerate(passages)]


def _answer(question: str, text: str, cited: Sequence[Passage] = (), **extra) -> Answer:
    citations = tuple(Citation(n=i + 1, passage=p, score=1.0) for i, p in enumerate(cited))
    return Answer(question=question, text=text, citations=citations, **extra)


class ScriptedIndex:
    """Returns fixed hits and answers per question; records how it was called."""

    def __init__(self, script: dict[str, tuple[list[Hit], Answer]]) -> None:
        self.script = script
        self.calls: list[tuple[str, str, int, tuple[str, ...]]] = []

    def search(self, question: str, k: int = 10, *, history: Sequence[str] = ()) -> list[Hit]:
        self.calls.append(("search", question, k, tuple(history)))
        return self.script[question][0][:k]

    def search_many(self, questions: Sequence[str], k: int = 10) -> list[list[Hit]]:
        return [self.search(q, k) for q in questions]

    def ask(self, question: str, *, k: int = 3, history: Sequence[str] = ()) -> Answer:
        self.calls.append(("ask", question, k, tuple(history)))
        return self.script[question][1]


Q1 = TestQuestion(
    id="q1",
    question="How much aspirin?",
    answers=("324 mg",),
    evidence=("ASPIRIN  324 mg",),
    docs=("aspirin",),
    kind="dose",
    split="test",
)
Q2 = TestQuestion(
    id="q2",
    question="Glucose for whom?",
    answers=("conscious",),
    evidence=("not in any passage",),
    kind="dose",
    split="test",
)
Q3 = TestQuestion(
    id="q3", question="Capital of Peru?", unanswerable=True, kind="scope", split="dev"
)
Q4 = TestQuestion(
    id="q4", question="Who won in 1998?", unanswerable=True, kind="scope", split="test"
)
Q5 = TestQuestion(
    id="q5",
    question="How is it taken?",
    answers=("  TABLET   slowly",),
    evidence=("chew the tablet",),
    docs=("aspirin", "glucose"),
    history=("How much aspirin?",),
    split="test",
)
QUESTIONS = [Q1, Q2, Q3, Q4, Q5]
ABSTAIN = {"abstained": True, "kind": "abstain"}
SCRIPT = {
    # evidence at rank 2, gold doc at rank 2; correct answer citing the evidence passage
    Q1.question: (
        _hits(GLUCOSE_0, ASPIRIN_0, SCOPE_0),
        _answer(Q1.question, "Aspirin 324 MG is chewed. [1]", [ASPIRIN_0], confidence=0.9),
    ),
    # an answerable question that abstains: a false abstention
    Q2.question: (_hits(SCOPE_0), _answer(Q2.question, "I could not find this.", **ABSTAIN)),
    # unanswerable and abstained: correct
    Q3.question: (_hits(SCOPE_0), _answer(Q3.question, "I could not find this.", **ABSTAIN)),
    # unanswerable but answered: wrong
    Q4.question: (_hits(SCOPE_0), _answer(Q4.question, "An EMR provides care. [1]", [SCOPE_0])),
    # the expected words are split by a citation marker; two passages of one gold doc, then another
    Q5.question: (
        _hits(ASPIRIN_1, ASPIRIN_0, GLUCOSE_0),
        _answer(Q5.question, "Chew the tablet [1] slowly.", [ASPIRIN_1], confidence=0.7),
    ),
}


def test_evaluate_figures_on_a_scripted_index():
    index = ScriptedIndex(SCRIPT)
    report = evaluate(index, QUESTIONS, ks=(3, 1), k_answer=2)
    assert report.ks == (1, 3)
    o = report.overall
    assert (o.questions, o.answerable, o.unanswerable) == (5, 3, 2)
    assert o.answer_accuracy == pytest.approx(3 / 5)  # q1, q3, q5
    assert o.evidence_questions == 3  # q1, q2, q5
    assert o.evidence_hit == pytest.approx({1: 1 / 3, 3: 2 / 3})
    assert o.cited_evidence_hit == pytest.approx(2 / 3)
    assert o.doc_questions == 2  # q1, q5
    # q1: gold "aspirin" at rank 2; q5: both gold docs at ranks 1 and 2
    assert o.doc_recall == pytest.approx({1: (0 + 1 / 2) / 2, 3: 1.0})
    assert o.mrr_at_10 == pytest.approx((1 / 2 + 1) / 2)
    assert o.ndcg_at_10 == pytest.approx((1 / math.log2(3) + 1) / 2)
    # abstained: q2 (answerable), q3 (unanswerable); unanswerable: q3, q4
    assert o.abstention_precision == pytest.approx(1 / 2)
    assert o.abstention_recall == pytest.approx(1 / 2)
    assert o.abstention_f1 == pytest.approx(1 / 2)
    assert o.false_abstention_rate == pytest.approx(1 / 3)
    assert 0 <= o.latency_median_ms <= o.latency_p95_ms

    assert set(report.by_kind) == {"dose", "scope", "(no kind)"}
    dose, scope = report.by_kind["dose"], report.by_kind["scope"]
    assert (dose.questions, dose.answer_accuracy, dose.false_abstention_rate) == (2, 0.5, 0.5)
    assert dose.abstention_recall is None  # no unanswerable question of this kind
    assert (scope.questions, scope.answer_accuracy, scope.abstention_recall) == (2, 0.5, 0.5)
    assert scope.evidence_hit == {1: None, 3: None}

    assert [(f.id, f.reason) for f in report.failures] == [
        ("q2", "abstained on an answerable question"),
        ("q4", "answered a question the corpus cannot answer"),
    ]
    assert report.failures[1].cited == ("scope#0",)
    assert report.failures[1].got == "An EMR provides care. [1]"
    assert report.failures[0].expected == ("conscious",)

    # Each question is searched deep enough for every k and for the doc metrics, then asked with
    # k_answer passages, both with its history.
    assert ("search", Q5.question, 10, Q5.history) in index.calls
    assert ("ask", Q5.question, 2, Q5.history) in index.calls


def test_evaluate_one_split_only():
    report = evaluate(ScriptedIndex(SCRIPT), QUESTIONS, split="dev")
    assert report.split == "dev"
    assert [r.id for r in report.results] == ["q3"]
    assert report.overall.answer_accuracy == 1.0
    with pytest.raises(UsageError, match="split 'train'"):
        evaluate(ScriptedIndex(SCRIPT), QUESTIONS, split="train")
    with pytest.raises(UsageError, match="ks"):
        evaluate(ScriptedIndex(SCRIPT), QUESTIONS, ks=(0, 3))


def test_eval_report_json_shape():
    report = evaluate(ScriptedIndex(SCRIPT), QUESTIONS, ks=(1, 3))
    data = json.loads(json.dumps(report.to_dict()))
    assert set(data) == {"split", "ks", "k_answer", "overall", "by_kind", "failures"}
    assert data["ks"] == [1, 3] and data["k_answer"] == 3 and data["split"] is None
    figures_keys = {
        "questions",
        "answerable",
        "unanswerable",
        "answer_accuracy",
        "evidence_questions",
        "evidence_hit",
        "cited_evidence_hit",
        "doc_questions",
        "doc_recall",
        "mrr_at_10",
        "ndcg_at_10",
        "abstention",
        "latency_ms",
    }
    for figures in [data["overall"], *data["by_kind"].values()]:
        assert set(figures) == figures_keys
        assert set(figures["evidence_hit"]) == set(figures["doc_recall"]) == {"1", "3"}
        assert set(figures["abstention"]) == {"precision", "recall", "f1", "false_abstention_rate"}
        assert set(figures["latency_ms"]) == {"median", "p95"}
    assert data["overall"]["answer_accuracy"] == pytest.approx(0.6)
    assert data["by_kind"]["dose"]["abstention"]["recall"] is None
    assert data["failures"][0] == {
        "id": "q2",
        "question": Q2.question,
        "kind": "dose",
        "reason": "abstained on an answerable question",
        "expected": ["conscious"],
        "got": "I could not find this.",
        "cited": [],
    }


def test_format_report_tables():
    report = evaluate(ScriptedIndex(SCRIPT), QUESTIONS, ks=(1, 3))
    text = format_report(report)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("measure"))
    assert header.split() == ["measure", "all", "(no", "kind)", "dose", "scope"]
    accuracy = next(line for line in lines if line.startswith("answer accuracy"))
    assert accuracy.split()[2:] == ["0.600", "1.000", "0.500", "0.500"]
    assert "evidence hit@3" in text and "doc Recall@1" in text
    assert "failures (2):" in text and "- q4 [scope]" in text
    assert all(line == line.rstrip() for line in lines)

    beir = BeirReport(
        queries=3, documents=9, ndcg_at_10=0.5, recall_at_k=0.75, mrr_at_10=0.25, k=50, seconds=1.5
    )
    assert "Recall@50" in format_report(beir) and "0.750" in format_report(beir)
    calibration = choose_threshold([0.1, 0.9], [False, True])
    assert "balanced accuracy" in format_report(calibration)
    with pytest.raises(UsageError):
        format_report("not a report")  # type: ignore[arg-type]


# --- evaluate() with the real index on a corpus built in the test --------------------------------


@pytest.fixture(scope="module")
def tiny_index():
    index_module = pytest.importorskip("emsqa.index")
    documents = [
        Document(
            id="aspirin",
            title="Aspirin",
            text="Aspirin 324 mg is chewed by adults with suspected cardiac chest pain. "
            "Do not give aspirin to a patient with an aspirin allergy.",
        ),
        Document(
            id="glucose",
            title="Oral glucose",
            text="Oral glucose gel is given to a conscious patient with low blood sugar "
            "who can swallow. An unconscious patient must not receive anything by mouth.",
        ),
        Document(
            id="oxygen",
            title="Oxygen",
            text="Oxygen is given when the oxygen saturation is below 94 percent. "
            "A nasal cannula delivers 1 to 6 liters per minute.",
        ),
    ]
    return index_module.Index.build(documents)


def test_evaluate_with_a_real_index(tiny_index):
    questions = [
        TestQuestion(
            id="r1",
            question="How much aspirin for chest pain?",
            answers=("324 mg",),
            evidence=("Aspirin 324 mg is chewed",),
            docs=("aspirin",),
            kind="dose",
        ),
        TestQuestion(
            id="r2",
            question="What flow does a nasal cannula deliver?",
            answers=("6 liters per minute",),
            evidence=("1 to 6 liters per minute",),
            docs=("oxygen",),
            kind="device",
        ),
        TestQuestion(
            id="r3",
            question="Which team won the football world cup in 1998?",
            unanswerable=True,
            kind="out of scope",
        ),
    ]
    report = evaluate(tiny_index, questions, ks=(1, 3))
    assert isinstance(report, EvalReport)
    # Every per-question figure agrees with what the index itself returns.
    for q, r in zip(questions, report.results, strict=True):
        hits = tiny_index.search(q.question, k=10)
        answer = tiny_index.ask(q.question, k=3)
        ranks = [
            h.rank for h in hits if any(e.lower() in h.passage.text.lower() for e in q.evidence)
        ]
        assert r.evidence_rank == (ranks[0] if ranks else None)
        assert r.abstained == answer.abstained
        assert r.cited == tuple(c.passage.id for c in answer.citations)
        if q.docs:
            run = {q.id: {}}
            for h in hits:
                run[q.id].setdefault(h.passage.doc_id, h.score)
            qrels = {q.id: dict.fromkeys(q.docs, 1)}
            assert r.doc_mrr == mrr_at(run, qrels, 10)[q.id]
            assert r.doc_recall == {k: recall_at(run, qrels, k)[q.id] for k in (1, 3)}
        if q.unanswerable:
            assert r.correct == answer.abstained
        else:
            text = answer.text.lower()
            assert r.correct == (not answer.abstained and any(a in text for a in q.answers))
    assert {f.id for f in report.failures} == {r.id for r in report.results if not r.correct}
    assert sum(f.questions for f in report.by_kind.values()) == 3
    assert report.overall.latency_median_ms > 0


# --- calibration ---------------------------------------------------------------------------------


def test_calibration_separable_set_uses_the_gap_midpoint():
    result = choose_threshold(
        [0.6, 0.2, 0.8, 0.1, 0.9, 0.3], [True, False, True, False, True, False]
    )
    assert isinstance(result, CalibrationResult)
    assert result.threshold == pytest.approx(0.45)
    assert result.balanced_accuracy == 1.0
    assert (result.answered, result.abstained, result.rejected, result.accepted) == (3, 0, 3, 0)


def test_calibration_ties_go_to_the_widest_gap():
    # Cuts at 0.3 (gap 0.1..0.5) and at 0.8 (gap 0.7..0.9) both give balanced accuracy 0.75.
    result = choose_threshold([0.5, 0.9, 0.1, 0.7], [True, True, False, False])
    assert result.balanced_accuracy == pytest.approx(0.75)
    assert result.threshold == pytest.approx(0.3)
    assert (result.answered, result.abstained, result.rejected, result.accepted) == (2, 0, 1, 1)
    # Equal gaps: the lower one.
    result = choose_threshold([0.2, 0.6, 0.0, 0.4], [True, True, False, False])
    assert result.balanced_accuracy == pytest.approx(0.75)
    assert result.threshold == pytest.approx(0.1)


def test_calibration_inverted_set_answers_everything_or_nothing():
    # Unanswerable questions are the confident ones: no cut beats 0.5; the first (answer all) wins.
    result = choose_threshold([0.1, 0.2, 0.8, 0.9], [True, True, False, False])
    assert result.balanced_accuracy == 0.5
    assert result.threshold == 0.1
    assert result.answered == 2 and result.accepted == 2


@pytest.mark.parametrize(
    ("confidences", "answerable", "match"),
    [
        ([0.1, 0.2], [True, True], "both"),
        ([0.1, 0.2], [False, False], "both"),
        ([0.1], [True, False], "same length"),
        ([0.1, float("nan")], [True, False], "finite"),
    ],
)
def test_calibration_rejects_unusable_input(confidences, answerable, match):
    with pytest.raises(UsageError, match=match):
        choose_threshold(confidences, answerable)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.5, 0.75, 0.9, 1.0]), st.booleans()),
        min_size=2,
        max_size=30,
    ).filter(lambda pairs: len({a for _, a in pairs}) == 2)
)
def test_calibration_is_optimal_against_brute_force(pairs):
    confidences = [c for c, _ in pairs]
    answerable = [a for _, a in pairs]
    result = choose_threshold(confidences, answerable)
    n_pos, n_neg = sum(answerable), len(answerable) - sum(answerable)

    def balanced(t: float) -> float:
        tpr = sum(1 for c, a in pairs if a and c >= t) / n_pos
        tnr = sum(1 for c, a in pairs if not a and c < t) / n_neg
        return (tpr + tnr) / 2

    candidates = set(confidences) | {math.inf} | {c + 0.01 for c in confidences}
    assert result.balanced_accuracy == pytest.approx(max(balanced(t) for t in candidates))
    assert result.balanced_accuracy == pytest.approx(balanced(result.threshold))
    assert result.answered + result.abstained == n_pos
    assert result.rejected + result.accepted == n_neg
    # The threshold never sits on a confidence, except when it answers everything.
    assert result.threshold not in set(confidences) or result.threshold == min(confidences)


def test_calibrate_threshold_asks_the_index():
    script = {
        q.question: ([], _answer(q.question, "x", confidence=c))
        for q, c in zip(QUESTIONS, [0.9, 0.4, 0.1, 0.6, 0.7], strict=True)
    }
    result = calibrate_threshold(ScriptedIndex(script), QUESTIONS)
    expected = choose_threshold([0.9, 0.4, 0.1, 0.6, 0.7], [not q.unanswerable for q in QUESTIONS])
    assert result == expected
    only_test = calibrate_threshold(ScriptedIndex(script), QUESTIONS, split="test")
    kept = [
        (c, not q.unanswerable)
        for q, c in zip(QUESTIONS, [0.9, 0.4, 0.1, 0.6, 0.7], strict=True)
        if q.split == "test"
    ]
    assert only_test == choose_threshold([c for c, _ in kept], [a for _, a in kept])
    with pytest.raises(UsageError, match="split 'nope'"):
        calibrate_threshold(ScriptedIndex(script), QUESTIONS, split="nope")


# --- BEIR ----------------------------------------------------------------------------------------


def test_evaluate_beir_on_a_scripted_index():
    datasets = pytest.importorskip("emsqa.datasets")
    beir = datasets.BeirSet(
        documents=[Document(id=d, title="", text=d) for d in ("aspirin", "glucose", "scope")],
        queries={"1": Q1.question, "5": Q5.question, "2": Q2.question},
        qrels={"1": {"aspirin": 1}, "5": {"glucose": 2, "aspirin": 1}, "2": {"glucose": 1}},
    )
    seen: list[tuple[int, int]] = []
    report = evaluate_beir(
        ScriptedIndex(SCRIPT), beir, k=2, progress=lambda d, t: seen.append((d, t))
    )
    assert seen[-1] == (3, 3)
    # Passages become documents; a document keeps its first (best) passage's score; k documents.
    assert report.run == {
        "1": {"glucose": 10.0, "aspirin": 9.0},
        "5": {"aspirin": 10.0, "glucose": 8.0},
        "2": {"scope": 10.0},
    }
    assert report.ndcg_at_10 == pytest.approx(
        mean_over(ndcg_at(report.run, beir.qrels, 10), beir.qrels)
    )
    assert report.recall_at_k == pytest.approx((1 + 1 + 0) / 3)
    assert report.mrr_at_10 == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert report.to_dict()["recall_at_2"] == pytest.approx(2 / 3, abs=1e-4)


def _scifact_slice(n_docs: int = 200, n_queries: int = 60):
    folder = DATA / "scifact" / "beir"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}")
    from emsqa.datasets import BeirSet, load_beir

    full = load_beir(folder, split="test")
    by_id = {d.id: d for d in full.documents}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    keep: dict[str, None] = {}
    for qid in sorted(full.qrels, key=int)[:n_queries]:
        qrels[qid] = full.qrels[qid]
        queries[qid] = full.queries[qid]
        keep.update(dict.fromkeys(d for d in full.qrels[qid] if d in by_id))
    # Fill up to n_docs with the corpus' first documents (distractors), in file order.
    for doc in full.documents:
        if len(keep) >= n_docs:
            break
        keep.setdefault(doc.id)
    return BeirSet(documents=[by_id[d] for d in keep], queries=queries, qrels=qrels)


@pytest.mark.data
def test_evaluate_beir_on_a_scifact_slice(tmp_path):
    beir = _scifact_slice()
    assert len(beir.documents) == 200
    calls: list[tuple[int, int]] = []
    report = evaluate_beir(None, beir, k=100, progress=lambda d, t: calls.append((d, t)))
    assert report.queries == len(beir.qrels) == 60
    assert calls[-1] == (60, 60) and calls == sorted(calls)
    assert set(report.run) == set(beir.queries)
    assert all(len(docs) <= 100 for docs in report.run.values())
    # Every relevant document is in the slice, so a lexical ranker should find most of them. BM25
    # reaches nDCG@10 0.665 on the full 5,183 documents (BEIR paper); a 200-document pool is easier.
    assert report.ndcg_at_10 > 0.6
    assert report.recall_at_k > 0.9
    # The run written to disk and read back gives the same figures (and what trec_eval would say).
    path = tmp_path / "scifact.run"
    write_trec_run(report.run, path)
    back = read_trec_run(path)
    assert mean_over(ndcg_at(back, beir.qrels, 10), beir.qrels) == pytest.approx(report.ndcg_at_10)
    pytrec_eval = pytest.importorskip("pytrec_eval")
    per_query = pytrec_eval.RelevanceEvaluator(beir.qrels, {"ndcg_cut.10"}).evaluate(back)
    trec = sum(v["ndcg_cut_10"] for v in per_query.values()) / len(beir.qrels)
    assert report.ndcg_at_10 == pytest.approx(trec, abs=1e-12)
