"""emsqa.metrics against pytrec_eval (trec_eval), plus the qrels reader and TREC run files."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emsqa.errors import TestSetError, UsageError
from emsqa.metrics import (
    mean_over,
    mrr_at,
    ndcg_at,
    precision_at,
    ranking,
    read_qrels,
    read_trec_run,
    recall_at,
    truncate_run,
    write_trec_run,
)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="module")
def pytrec_eval():
    return pytest.importorskip("pytrec_eval", reason="pytrec_eval is not installed")


# --- an independent reference for trec_eval's order, written as its comparator -------------------


def _trec_compare(a: tuple[str, float], b: tuple[str, float]) -> int:
    """trec_eval's qsort comparator: higher score first, then the larger docno first."""
    if a[1] != b[1]:
        return -1 if a[1] > b[1] else 1
    if a[0] != b[0]:
        return -1 if a[0] > b[0] else 1
    return 0


def _trec_top(scores: dict[str, float], k: int) -> dict[str, float]:
    ordered = sorted(scores.items(), key=functools.cmp_to_key(_trec_compare))
    return dict(ordered[:k])


def _compare_with_trec_eval(pytrec_eval, run, qrels, k: int) -> None:
    """Every per-query figure equals pytrec_eval's; queries missing from the run score 0."""
    measures = {f"ndcg_cut.{k}", f"recall.{k}", f"P.{k}"}
    reference = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    truncated = {qid: _trec_top(scores, k) for qid, scores in run.items()}
    reference_rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(truncated)

    ours = {
        f"ndcg_cut_{k}": ndcg_at(run, qrels, k),
        f"recall_{k}": recall_at(run, qrels, k),
        f"P_{k}": precision_at(run, qrels, k),
        "recip_rank": mrr_at(run, qrels, k),
    }
    assert set(reference) == set(qrels) & set(run)
    for name, per_query in ours.items():
        assert set(per_query) == set(qrels), name
        source = reference_rr if name == "recip_rank" else reference
        for qid in qrels:
            expected = source[qid][name] if qid in source else 0.0
            assert per_query[qid] == pytest.approx(expected, abs=1e-12), (name, qid)
        # The mean over the qrels equals trec_eval -c: missing queries count as zeros.
        expected_mean = sum(source[q][name] for q in source) / len(qrels)
        assert mean_over(per_query, qrels) == pytest.approx(expected_mean, abs=1e-12)


# --- hand-made fixtures --------------------------------------------------------------------------

QRELS_HAND = {
    "q1": {"d1": 3, "d2": 0, "d3": 1, "d4": 2},
    "q2": {"d9": 1},
    "q3": {"d5": 1, "d6": 1},  # absent from the run
    "q4": {"d7": 0, "d8": -1},  # no relevant document at all
    "q5": {"10": 1, "9": 0},  # ties between ids that sort differently as numbers and strings
}
RUN_HAND = {
    "q1": {"d2": 5.0, "d3": 4.0, "d1": 4.0, "dx": 3.5, "d4": 0.25, "dy": -1.0},
    "q2": {"a": 2.0, "b": 2.0, "c": 2.0, "d9": 2.0},
    "q4": {"d8": 1.0, "d7": 0.5},
    "q5": {"9": 1.0, "10": 1.0},
    "q_not_judged": {"d1": 1.0},
}


@pytest.mark.parametrize("k", [1, 2, 3, 5, 10, 100])
def test_hand_fixture_matches_trec_eval(pytrec_eval, k):
    _compare_with_trec_eval(pytrec_eval, RUN_HAND, QRELS_HAND, k)


def test_ties_are_broken_by_document_id_descending():
    assert ranking({"a": 1.0, "b": 1.0, "c": 2.0}) == ["c", "b", "a"]
    assert ranking({"10": 1.0, "9": 1.0}) == ["9", "10"]  # string order, as trec_eval's strcmp
    # q2's only relevant document ties with three others and has the largest id: rank 1.
    assert mrr_at(RUN_HAND, QRELS_HAND, 10)["q2"] == 1.0
    # q5's relevant "10" sorts after "9" as a string, so it comes second.
    assert mrr_at(RUN_HAND, QRELS_HAND, 10)["q5"] == 0.5


def test_hand_fixture_follows_the_definitions():
    # q1 ranking: d2 (0), d3 (1), d1 (3), dx (unjudged), d4 (2), dy
    dcg = 0 + 1 / math.log2(3) + 3 / math.log2(4) + 0 + 2 / math.log2(6)
    idcg = 3 + 2 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at(RUN_HAND, QRELS_HAND, 10)["q1"] == pytest.approx(dcg / idcg)
    assert recall_at(RUN_HAND, QRELS_HAND, 2)["q1"] == pytest.approx(1 / 3)
    assert precision_at(RUN_HAND, QRELS_HAND, 5)["q1"] == pytest.approx(3 / 5)
    assert mrr_at(RUN_HAND, QRELS_HAND, 1)["q1"] == 0.0
    assert mrr_at(RUN_HAND, QRELS_HAND, 2)["q1"] == 0.5
    for metric in (ndcg_at, recall_at, precision_at, mrr_at):
        values = metric(RUN_HAND, QRELS_HAND, 10)
        assert values["q3"] == 0.0  # missing from the run
        assert values["q4"] == 0.0  # nothing relevant: negative grades are not relevant
        assert "q_not_judged" not in values


def test_empty_run_and_empty_qrels(pytrec_eval):
    _compare_with_trec_eval(pytrec_eval, {"q1": {}}, {"q1": {"d1": 1}}, 10)
    for metric in (ndcg_at, recall_at, precision_at, mrr_at):
        assert metric({}, {"q1": {"d1": 1}}, 10) == {"q1": 0.0}
        assert metric({"q1": {"d1": 1.0}}, {}, 10) == {}
    assert mean_over({}, {}) == 0.0


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "10"])
def test_bad_cutoff_is_a_usage_error(k):
    with pytest.raises(UsageError, match="cut-off"):
        ndcg_at(RUN_HAND, QRELS_HAND, k)


# --- random fixtures -----------------------------------------------------------------------------

DOC_IDS = [str(i) for i in range(1, 14)] + ["d", "D", "doc-7", "x_1"]


@st.composite
def run_and_qrels(draw, graded: bool):
    n_queries = draw(st.integers(1, 6))
    grades = st.integers(-1, 3) if graded else st.integers(0, 1)
    # Scores from a handful of values so that ties are frequent.
    scores = st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.0, -0.25, 3.75, 1e-9])
    qrels, run = {}, {}
    for q in range(n_queries):
        qid = f"q{q}"
        judged = draw(st.dictionaries(st.sampled_from(DOC_IDS), grades, min_size=1, max_size=8))
        qrels[qid] = judged
        shape = draw(st.sampled_from(["normal", "normal", "missing", "empty"]))
        if shape == "normal":
            run[qid] = draw(st.dictionaries(st.sampled_from(DOC_IDS), scores, max_size=15))
        elif shape == "empty":
            run[qid] = {}
    if draw(st.booleans()):
        run["unjudged"] = {"1": 1.0}
    return run, qrels


@settings(max_examples=150, deadline=None)
@given(data=run_and_qrels(graded=True), k=st.sampled_from([1, 2, 3, 5, 10, 100]))
def test_random_graded_fixtures_match_trec_eval(pytrec_eval, data, k):
    run, qrels = data
    _compare_with_trec_eval(pytrec_eval, run, qrels, k)


@settings(max_examples=150, deadline=None)
@given(data=run_and_qrels(graded=False), k=st.sampled_from([1, 3, 10, 100]))
def test_random_binary_fixtures_match_trec_eval(pytrec_eval, data, k):
    run, qrels = data
    _compare_with_trec_eval(pytrec_eval, run, qrels, k)


def test_larger_seeded_fixture_matches_trec_eval(pytrec_eval):
    rng = np.random.default_rng(20240611)
    docs = [f"doc{i}" for i in range(300)]
    qrels, run = {}, {}
    for q in range(40):
        judged = rng.choice(docs, size=int(rng.integers(1, 12)), replace=False)
        qrels[f"q{q}"] = {str(d): int(rng.integers(0, 4)) for d in judged}
        if q % 7 == 3:
            continue  # a query the run does not mention
        retrieved = rng.choice(docs, size=int(rng.integers(0, 150)), replace=False)
        # Rounded scores give ties at every depth.
        run[f"q{q}"] = {str(d): float(np.round(rng.normal(), 1)) for d in retrieved}
    for k in (10, 100):
        _compare_with_trec_eval(pytrec_eval, run, qrels, k)


# --- qrels files ---------------------------------------------------------------------------------


def test_read_beir_qrels_with_crlf(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_bytes(
        b"query-id\tcorpus-id\tscore\r\n1\t31715818\t1\r\n1\t14717500\t2\r\n\r\n3\td 9\t0\r\n"
    )
    assert read_qrels(path) == {"1": {"31715818": 1, "14717500": 2}, "3": {"d 9": 0}}


def test_read_trec_qrels(tmp_path, pytrec_eval):
    path = tmp_path / "qrels.txt"
    path.write_text("q1 0 d1 2\nq1 0 d2 0\nq2 Q0 d3 1\n", encoding="utf-8")
    qrels = read_qrels(path)
    assert qrels == {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}
    with path.open(encoding="utf-8") as handle:
        assert qrels == pytrec_eval.parse_qrel(handle)


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("query-id\tcorpus-id\tscore\n1\t2\n", 2, "fields"),
        ("q1 0 d1 1\nq1 0 d2 1 extra junk\n", 2, "fields"),
        ("query-id\tcorpus-id\tscore\n1\td1\tvery\n", 2, "whole number"),
        ("q1 0 d1 1.5\n", 1, "whole number"),
        ("\n\nq1 0 d1 1\nq1 0 d1 2\n", 4, "twice"),
        ("1\t\t1\n", 1, "empty"),
    ],
)
def test_malformed_qrels_name_file_and_line(tmp_path, text, line, what):
    path = tmp_path / "bad.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TestSetError, match=f"bad.tsv:{line}:.*{what}"):
        read_qrels(path)


def test_missing_qrels_file(tmp_path):
    with pytest.raises(TestSetError, match="no such file"):
        read_qrels(tmp_path / "absent.tsv")


@pytest.mark.data
def test_read_scifact_qrels():
    folder = DATA / "scifact" / "beir" / "qrels"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder}")
    test = read_qrels(folder / "test.tsv")
    assert len(test) == 300
    assert sum(len(judged) for judged in test.values()) == 339
    train = read_qrels(folder / "train.tsv")
    assert (len(train), sum(len(j) for j in train.values())) == (809, 919)


# --- run files -----------------------------------------------------------------------------------


def test_run_file_layout(tmp_path):
    path = tmp_path / "run.txt"
    write_trec_run(
        {"q2": {"a": 1.0, "b": 1.0, "c": 0.5}, "q1": {"z": -2.0}}, path, tag="t1", depth=2
    )
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines == ["q1 Q0 z 1 -2.0 t1", "q2 Q0 b 1 1.0 t1", "q2 Q0 a 2 1.0 t1"]


@settings(max_examples=60, deadline=None)
@given(
    run=st.dictionaries(
        st.text("abcq0123456789", min_size=1, max_size=4),
        st.dictionaries(
            st.text("abcdef0123456789-_.", min_size=1, max_size=6),
            st.floats(allow_nan=False, allow_infinity=False, width=64),
            max_size=12,
        ),
        max_size=5,
    ),
    depth=st.integers(1, 15),
)
def test_run_file_round_trip(tmp_path_factory, run, depth):
    path = tmp_path_factory.mktemp("run") / "run.txt"
    write_trec_run(run, path, depth=depth)
    back = read_trec_run(path)
    nonempty = {qid for qid, scores in run.items() if scores}
    assert set(back) == nonempty
    for qid in nonempty:
        assert ranking(back[qid]) == ranking(run[qid])[:depth]
        assert back[qid] == truncate_run(run, depth)[qid]  # scores survive exactly
    ranks = [int(line.split()[3]) for line in path.read_text(encoding="utf-8").splitlines()]
    assert ranks.count(1) == len(nonempty)
    assert all(1 <= r <= depth for r in ranks)
    assert sorted(ranks) == sorted(r for q in nonempty for r in range(1, len(back[q]) + 1))


def test_run_file_is_read_by_pytrec_eval(tmp_path, pytrec_eval):
    path = tmp_path / "run.txt"
    write_trec_run(RUN_HAND, path)
    with path.open(encoding="utf-8") as handle:
        parsed = pytrec_eval.parse_run(handle)
    assert parsed == {qid: scores for qid, scores in RUN_HAND.items() if scores}


@pytest.mark.parametrize(
    ("run", "tag", "match"),
    [
        ({"q1": {"a b": 1.0}}, "emsqa", "document id"),
        ({"q 1": {"a": 1.0}}, "emsqa", "query id"),
        ({"q1": {"a": 1.0}}, "two words", "tag"),
        ({"q1": {"a": float("nan")}}, "emsqa", "NaN"),
    ],
)
def test_unwritable_runs(tmp_path, run, tag, match):
    with pytest.raises(UsageError, match=match):
        write_trec_run(run, tmp_path / "run.txt", tag=tag)


def test_malformed_run_file_names_line(tmp_path):
    path = tmp_path / "run.txt"
    path.write_text("q1 Q0 a 1 1.0 t\nq1 Q0 b 2 high t\n", encoding="utf-8")
    with pytest.raises(TestSetError, match=r"run\.txt:2: score 'high'"):
        read_trec_run(path)
