"""emsqa.datasets: BEIR and SQuAD readers on tiny fixtures, plus counts on the shared real sets."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from emsqa.datasets import (
    BeirSet,
    SquadQuestion,
    find_shared_data,
    load_beir,
    load_squad,
)
from emsqa.errors import CorpusError

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
NO_DATA = f"shared evaluation data not found at {SHARED} (only present in the project workplace)"


# ---------------------------------------------------------------- fixtures


def _write_beir(
    folder: Path,
    corpus: list[dict[str, object]],
    queries: list[dict[str, object]],
    qrels_text: str,
    *,
    gz: bool = False,
    split: str = "test",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(r) + "\n" for r in corpus)
    if gz:
        with gzip.open(folder / "corpus.jsonl.gz", "wt", encoding="utf-8") as fh:
            fh.write(lines)
    else:
        (folder / "corpus.jsonl").write_text(lines, encoding="utf-8")
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in queries), encoding="utf-8"
    )
    (folder / "qrels").mkdir(exist_ok=True)
    (folder / "qrels" / f"{split}.tsv").write_bytes(qrels_text.encode("utf-8"))
    return folder


CORPUS = [
    {"_id": "d1", "title": "Aspirin", "text": "Aspirin is given for chest pain."},
    {"_id": "d2", "title": "", "text": "Oxygen is titrated to 94 percent."},
    {"_id": "d3", "title": "Glucose", "text": "Oral glucose for a conscious patient."},
]
QUERIES = [
    {"_id": "q1", "text": "When is aspirin given?"},
    {"_id": "q2", "text": "Oxygen target?", "metadata": {}},
    {"_id": "q3", "text": "Not judged in this split."},
]
QRELS_CRLF = "query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\nq2\td2\t2\r\nq2\td3\t0\r\n"


def _squad_payload() -> dict[str, object]:
    ctx_a0 = "The heart has four chambers. The left ventricle pumps blood to the body."
    ctx_a1 = "Blood pressure is measured in millimetres of mercury."
    ctx_b0 = "Epinephrine treats anaphylaxis. It is injected into the thigh."
    return {
        "version": "1.1",
        "data": [
            {
                "title": "Human_heart",
                "paragraphs": [
                    {
                        "context": ctx_a0,
                        "qas": [
                            {
                                "id": "h1",
                                "question": "How many chambers does the heart have?",
                                "answers": [{"text": "four", "answer_start": ctx_a0.index("four")}],
                            },
                            {
                                "id": "h2",
                                "question": "Which chamber pumps blood to the body?",
                                "answers": [
                                    {
                                        "text": "left ventricle",
                                        "answer_start": ctx_a0.index("left ventricle"),
                                    },
                                    {
                                        "text": "ventricle",
                                        "answer_start": ctx_a0.index("ventricle"),
                                    },
                                ],
                            },
                        ],
                    },
                    {
                        "context": ctx_a1,
                        "qas": [{"id": "h3", "question": "Unanswerable?", "answers": []}],
                    },
                ],
            },
            {
                "title": "Anaphylaxis",
                "paragraphs": [
                    {
                        "context": ctx_b0,
                        "qas": [
                            {
                                "id": "a1",
                                "question": "Where is epinephrine injected?",
                                "answers": [
                                    {"text": "the thigh", "answer_start": ctx_b0.index("the thigh")}
                                ],
                            }
                        ],
                    }
                ],
            },
        ],
    }


# ---------------------------------------------------------------- load_beir


def test_load_beir_reads_documents_queries_and_qrels(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path / "tiny", CORPUS, QUERIES, QRELS_CRLF)
    beir = load_beir(folder)
    assert isinstance(beir, BeirSet)
    assert [d.id for d in beir.documents] == ["d1", "d2", "d3"]
    first = beir.documents[0]
    assert (first.title, first.text, first.source) == (
        "Aspirin",
        "Aspirin is given for chest pain.",
        "tiny:d1",
    )
    assert beir.documents[1].title == ""
    # only judged queries are kept, and CRLF is stripped from every field
    assert beir.queries == {"q1": "When is aspirin given?", "q2": "Oxygen target?"}
    assert beir.qrels == {"q1": {"d1": 1}, "q2": {"d2": 2, "d3": 0}}


def test_load_beir_reads_gzipped_corpus_and_other_split(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path / "gz", CORPUS, QUERIES, "q3\td3\t1\n", gz=True, split="train")
    beir = load_beir(folder, split="train")
    assert len(beir.documents) == 3
    assert beir.queries == {"q3": "Not judged in this split."}
    assert beir.qrels == {"q3": {"d3": 1}}


def test_load_beir_duplicate_document_id_names_both_lines(tmp_path: Path) -> None:
    corpus = [*CORPUS, {"_id": "d2", "title": "Other", "text": "A different text."}]
    folder = _write_beir(tmp_path / "dup", corpus, QUERIES, QRELS_CRLF)
    with pytest.raises(
        CorpusError, match=r"corpus\.jsonl line 4: duplicate _id 'd2' \(first on line 2\)"
    ):
        load_beir(folder, duplicates="error")


def test_load_beir_duplicate_query_id_is_an_error_when_asked(tmp_path: Path) -> None:
    queries = [*QUERIES, {"_id": "q1", "text": "Another question with the same id"}]
    folder = _write_beir(tmp_path / "dupq", CORPUS, queries, QRELS_CRLF)
    with pytest.raises(CorpusError, match=r"queries\.jsonl line 4: duplicate _id 'q1'"):
        load_beir(folder, duplicates="error")


def test_load_beir_duplicates_by_default_warn_once_and_keep_the_last(tmp_path: Path) -> None:
    from emsqa.errors import EmsqaWarning

    corpus = [*CORPUS, {"_id": "d2", "title": "Other", "text": "A different text."}]
    queries = [*QUERIES, {"_id": "q1", "text": "The same id again"}]
    folder = _write_beir(tmp_path / "dupw", corpus, queries, QRELS_CRLF)
    with pytest.warns(EmsqaWarning) as caught:
        beir = load_beir(folder)
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2  # one per file, each naming its first repeat
    assert "corpus.jsonl: 1 records reuse an earlier _id (first: 'd2' on line 4)" in messages[0]
    assert "queries.jsonl: 1 records reuse an earlier _id (first: 'q1' on line 4)" in messages[1]
    ids = [d.id for d in beir.documents]
    assert ids.count("d2") == 1 and len(ids) == len(CORPUS)
    assert next(d for d in beir.documents if d.id == "d2").text == "A different text."
    assert beir.queries["q1"] == "The same id again"


def test_load_beir_bad_json_names_file_and_line(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path / "bad", CORPUS, QUERIES, QRELS_CRLF)
    with (folder / "corpus.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"_id": "d4", "text": \n')
    with pytest.raises(CorpusError, match=r"corpus\.jsonl line 4: not valid JSON"):
        load_beir(folder)


def test_load_beir_missing_text_id_is_an_error(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path / "noid", [{"title": "x", "text": "y"}], QUERIES, QRELS_CRLF)
    with pytest.raises(CorpusError, match=r"line 1: field '_id'"):
        load_beir(folder)


def test_load_beir_unknown_split_lists_available_ones(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path / "split", CORPUS, QUERIES, QRELS_CRLF)
    with pytest.raises(CorpusError, match=r"dev\.tsv: no such split \(splits here: test\)"):
        load_beir(folder, split="dev")


def test_load_beir_bad_score_names_line(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path / "score", CORPUS, QUERIES, "q1\td1\t1\nq2\td2\thigh\n")
    with pytest.raises(CorpusError, match=r"test\.tsv:2: relevance 'high' is not a whole number"):
        load_beir(folder)


def test_load_beir_judged_query_missing_from_queries(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path / "ghost", CORPUS, QUERIES, "q1\td1\t1\nq9\td2\t1\n")
    with pytest.raises(
        CorpusError, match=r"1 judged queries are not in queries\.jsonl \(first: 'q9'\)"
    ):
        load_beir(folder)


def test_load_beir_missing_corpus_and_folder(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path / "nocorpus", CORPUS, QUERIES, QRELS_CRLF)
    (folder / "corpus.jsonl").unlink()
    with pytest.raises(CorpusError, match=r"no corpus\.jsonl or corpus\.jsonl\.gz found"):
        load_beir(folder)
    with pytest.raises(CorpusError, match="not a folder"):
        load_beir(tmp_path / "absent")


def test_load_beir_corrupt_gzip_is_a_corpus_error(tmp_path: Path) -> None:
    folder = _write_beir(tmp_path / "corrupt", CORPUS, QUERIES, QRELS_CRLF)
    (folder / "corpus.jsonl").unlink()
    (folder / "corpus.jsonl.gz").write_bytes(b"not gzip at all")
    with pytest.raises(CorpusError, match=r"corpus\.jsonl\.gz: cannot be read"):
        load_beir(folder)


# ---------------------------------------------------------------- load_squad


@pytest.mark.parametrize("compressed", [False, True])
def test_load_squad_paragraphs_and_questions(tmp_path: Path, compressed: bool) -> None:
    text = json.dumps(_squad_payload())
    if compressed:
        path = tmp_path / "set.json.gz"
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path = tmp_path / "set.json"
        path.write_text(text, encoding="utf-8")
    squad = load_squad(path)
    assert [d.id for d in squad.documents] == ["Human_heart#0", "Human_heart#1", "Anaphylaxis#0"]
    assert [d.title for d in squad.documents] == ["Human heart", "Human heart", "Anaphylaxis"]
    assert squad.documents[0].source == f"{path.name}:Human_heart#0"
    # the unanswerable question is left out; the first answer is kept
    assert [q.id for q in squad.questions] == ["h1", "h2", "a1"]
    h2 = squad.questions[1]
    assert isinstance(h2, SquadQuestion)
    assert (h2.answer_text, h2.doc_id, h2.article_index) == ("left ventricle", "Human_heart#0", 0)
    assert squad.questions[2].article_index == 1
    docs = {d.id: d for d in squad.documents}
    for q in squad.questions:
        assert docs[q.doc_id].text[q.answer_start : q.answer_end] == q.answer_text


def test_load_squad_misplaced_answer_is_an_error(tmp_path: Path) -> None:
    payload = _squad_payload()
    payload["data"][1]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 0  # type: ignore[index]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad\.json: question 'a1'.*not at offset 0"):
        load_squad(path)


def test_load_squad_rejects_other_json(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"rows": []}', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"other\.json: no 'data' list"):
        load_squad(path)
    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [\n{"title": }', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"broken\.json line 2: not valid JSON"):
        load_squad(broken)
    shapeless = tmp_path / "shapeless.json"
    shapeless.write_text('{"data": [{"title": "T"}]}', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"article 0 is not in SQuAD shape"):
        load_squad(shapeless)


# ---------------------------------------------------------------- find_shared_data


def test_find_shared_data_prefers_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMSQA_DATA", str(tmp_path))
    assert find_shared_data() == tmp_path
    monkeypatch.setenv("EMSQA_DATA", str(tmp_path / "missing"))
    with pytest.raises(CorpusError, match="is not a folder"):
        find_shared_data()


def test_find_shared_data_falls_back_to_repo_sibling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMSQA_DATA", raising=False)
    found = find_shared_data()
    if SHARED.is_dir():
        assert found == SHARED
    else:
        assert found is None


# ---------------------------------------------------------------- the real shared sets


def _shared(sub: str) -> Path:
    path = SHARED / sub
    if not path.exists():
        pytest.skip(NO_DATA)
    return path


@pytest.mark.data
def test_scifact_counts() -> None:
    beir = load_beir(_shared("scifact/beir"))
    assert len(beir.documents) == 5183
    assert len(beir.queries) == 300
    assert sum(len(docs) for docs in beir.qrels.values()) == 339
    ids = {d.id for d in beir.documents}
    assert all(doc_id in ids for docs in beir.qrels.values() for doc_id in docs)


@pytest.mark.data
def test_medquad_counts() -> None:
    from emsqa.errors import EmsqaWarning

    folder = _shared("medquad/beir")
    with gzip.open(folder / "corpus.jsonl.gz", "rt", encoding="utf-8") as fh:
        raw_ids = [json.loads(line)["_id"] for line in fh]
    if len(set(raw_ids)) != len(raw_ids):
        # Strict reading refuses it, naming the line; the default warns and keeps one per id.
        with pytest.raises(CorpusError, match=r"corpus\.jsonl\.gz line \d+: duplicate _id"):
            load_beir(folder, duplicates="error")
        with pytest.warns(EmsqaWarning, match="reuse an earlier _id"):
            beir = load_beir(folder)
        assert len(beir.documents) == len(set(raw_ids))
        assert len(beir.queries) == len(beir.qrels) > 0
        pytest.skip(
            f"shared MedQuAD BEIR files have non-unique ids ({len(raw_ids)} rows, "
            f"{len(set(raw_ids))} distinct), so their qrels are ambiguous; regenerate them"
        )
    beir = load_beir(folder)
    assert len(beir.documents) == 16407
    assert len(beir.queries) == 2000


@pytest.mark.data
def test_xquad_counts_and_spans() -> None:
    squad = load_squad(_shared("xquad-en-squad11-dev-subset/xquad.en.json.gz"))
    assert len(squad.documents) == 240
    assert len(squad.questions) == 1190
    assert len({q.article_index for q in squad.questions}) == 48
    docs = {d.id: d for d in squad.documents}
    for q in squad.questions:
        assert docs[q.doc_id].text[q.answer_start : q.answer_end] == q.answer_text
