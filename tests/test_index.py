"""Index build, scoring against a brute-force reference, persistence and its refusals."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emsqa import Index, IndexFormatError, IndexStateError, UsageError
from emsqa.datatypes import Document
from emsqa.retrieve import score_candidates
from emsqa.store import MANIFEST


@pytest.fixture(scope="module")
def index(small_docs: list[Document]) -> Index:
    return Index.build(small_docs)


def _dense(index: Index) -> np.ndarray:
    """The passage x term weight matrix, rebuilt densely from the term-major postings."""
    s = index.store_
    assert s is not None
    m = np.zeros((s.n_passages, s.n_terms))
    for t in range(s.n_terms):
        rows, weights = s.postings(t)
        m[rows, t] = weights
    return m


@pytest.mark.parametrize("weighting", ["bm25", "tfidf"])
def test_scores_match_brute_force(small_docs: list[Document], weighting: str) -> None:
    index = Index.build(small_docs, weighting=weighting)
    dense = _dense(index)
    for question in [
        "suction the airway",
        "AED shock rhythm",
        "patient",
        "C-spine collar no board",
    ]:
        pq = index.prepare(question)
        q = np.zeros(dense.shape[1])
        for t, w in zip(pq.term_ids, pq.weights, strict=True):
            if t >= 0:
                q[t] += w
        if weighting == "tfidf":
            q = np.where(q >= 1, 1 + np.log(np.maximum(q, 1.0)), q) * index.store_.idf
            q /= np.linalg.norm(q) or 1
        expected = dense @ q
        cands, scores = score_candidates(index.store_, pq)
        got = np.zeros(dense.shape[0])
        got[cands] = scores
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_tfidf_scores_are_cosines_of_sklearn_vectors(small_docs: list[Document]) -> None:
    """With weighting='tfidf' a passage's score is the cosine between sklearn's l2-normalised vectors."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    index = Index.build(small_docs, weighting="tfidf", title_weight=0, section_weight=0)
    analyzer = index.settings.analyzer()
    passages = list(index.passages())
    vec = TfidfVectorizer(analyzer=analyzer.terms, sublinear_tf=True, lowercase=False)
    x = vec.fit_transform([p.text for p in passages])
    question = "chest compressions for a patient without a pulse"
    q = vec.transform([question])
    expected = (x @ q.T).toarray().ravel()
    for hit in index.search(question, k=len(passages)):
        i = next(j for j, p in enumerate(passages) if p.id == hit.passage.id)
        # the index stores each weight to half a step of its term's scale, 1/65,535 of the term's
        # largest weight (at most 1 in a cosine): a few terms stay well within 1e-4
        assert hit.score == pytest.approx(expected[i], abs=1e-4)


def test_idf_never_reaches_zero(small_docs: list[Document]) -> None:
    """'patient' is in every document; it must still add to a score."""
    index = Index.build(small_docs)
    assert float(index.store_.idf.min()) > 0
    assert index.search("patient", k=1)[0].score > 0


def test_search_ranks_the_right_passage_and_collapses_overlaps(index: Index) -> None:
    hits = index.search("automated external defibrillator shock", k=5)
    assert hits[0].passage.doc_id == "cardiac.md"
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    for i, a in enumerate(hits):
        for b in hits[i + 1 :]:
            same_doc = a.passage.doc_id == b.passage.doc_id
            assert not (
                same_doc and a.passage.start < b.passage.end and b.passage.start < a.passage.end
            )


def test_hits_carry_exact_offsets(index: Index, small_docs: list[Document]) -> None:
    by_id = {d.id: d for d in small_docs}
    for hit in index.search("airway tongue suction", k=10):
        p = hit.passage
        assert by_id[p.doc_id].text[p.start : p.end] == p.text


def test_save_load_round_trip(index: Index, tmp_path) -> None:
    index.save(tmp_path / "idx")
    loaded = Index.load(tmp_path / "idx")
    for q in ["suction", "CPR rate", "C-spine", "nothing matches zzz"]:
        assert [(h.passage, h.score) for h in loaded.search(q)] == [
            (h.passage, h.score) for h in index.search(q)
        ]
        assert loaded.ask(q).to_dict() == index.ask(q).to_dict()
    manifest = json.loads((tmp_path / "idx" / MANIFEST).read_text())
    assert manifest["format_version"] == 4
    assert not (tmp_path / "idx" / manifest["data"] / "idf.npy").exists()  # derived on loading
    assert set(manifest["versions"]) == {"emsqa", "scikit-learn", "numpy"}
    assert manifest["settings"]["weighting"] == "bm25"
    assert "stop_words" in manifest["analyzer"]


def test_a_memory_mapped_index_answers_alike_and_reads_texts_from_its_files(
    index: Index, tmp_path
) -> None:
    index.save(tmp_path / "idx")
    mapped = Index.load(tmp_path / "idx", mmap=True)
    for q in ["suction", "CPR rate", "C-spine", "nothing matches zzz"]:
        assert [(h.passage, h.score) for h in mapped.search(q)] == [
            (h.passage, h.score) for h in index.search(q)
        ]
        assert mapped.ask(q).to_dict() == index.ask(q).to_dict()
    # texts are read from the file when asked for (a mapped page would map 64 KB around it), so
    # a file cut short under an open index is one clear error, not a crash of the process
    blob = next((tmp_path / "idx").glob("data-*/p_text.blob.npy"))
    with blob.open("r+b") as fh:
        fh.truncate(200)
    with pytest.raises(IndexFormatError, match=r"p_text\.blob\.npy was cut short"):
        mapped.search("suction")


def test_mapped_runs_read_short_runs_from_the_file_and_long_ones_through_the_map(
    tmp_path,
) -> None:
    from emsqa.arrays import SHORT_RUN, MappedRuns

    values = np.arange(3 * SHORT_RUN, dtype=np.int32)
    np.save(tmp_path / "a.npy", values)
    runs = MappedRuns(np.load(tmp_path / "a.npy", mmap_mode="r"))
    short, long_ = SHORT_RUN // 4 - 1, SHORT_RUN // 4 + 1
    for a, b in [(0, 0), (5, 5 + short), (7, 7 + long_), (len(values) - 3, len(values))]:
        got = runs(a, b)
        assert got.dtype == values.dtype and np.array_equal(got, values[a:b])
        assert isinstance(got, np.memmap) == (b - a >= SHORT_RUN // 4)  # long: a view of the map
    assert not isinstance(MappedRuns(values)(0, 3), np.memmap)  # in memory: plain slices
    with (tmp_path / "a.npy").open("r+b") as fh:
        fh.truncate(1_000)
    with pytest.raises(IndexFormatError, match=r"a\.npy was cut short"):
        runs(2 * SHORT_RUN // 4, 2 * SHORT_RUN // 4 + 10)


def test_saving_again_replaces_the_old_generation(index: Index, tmp_path) -> None:
    index.save(tmp_path / "idx")
    index.save(tmp_path / "idx")
    data_dirs = [p for p in (tmp_path / "idx").iterdir() if p.is_dir()]
    assert len(data_dirs) == 1
    Index.load(tmp_path / "idx")


def test_tampered_manifest_is_refused(index: Index, tmp_path) -> None:
    index.save(tmp_path / "idx")
    path = tmp_path / "idx" / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["settings"]["k1"] = 2.0
    path.write_text(json.dumps(manifest))
    with pytest.raises(IndexFormatError, match="modified"):
        Index.load(tmp_path / "idx")


def test_truncated_array_is_refused_and_named(index: Index, tmp_path) -> None:
    index.save(tmp_path / "idx")
    target = next((tmp_path / "idx").glob("data-*/post_w.npy"))
    target.write_bytes(target.read_bytes()[:-8])
    with pytest.raises(IndexFormatError, match=r"post_w\.npy"):
        Index.load(tmp_path / "idx")


def test_missing_and_foreign_folders_are_refused(tmp_path) -> None:
    with pytest.raises(IndexFormatError, match="does not exist"):
        Index.load(tmp_path / "nope")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("hello")
    with pytest.raises(IndexFormatError, match="not an emsqa index"):
        Index.load(tmp_path / "plain")
    with pytest.raises(IndexFormatError, match="non-empty folder"):
        Index.build([Document("a", "A", "some text here for a passage")]).save(tmp_path / "plain")


def test_unbuilt_index_and_bad_settings_raise_clearly() -> None:
    with pytest.raises(IndexStateError, match="empty"):
        Index().search("anything")
    with pytest.raises(UsageError, match="weighting"):
        Index(weighting="magic")
    with pytest.raises(UsageError, match="unknown index setting"):
        Index(colour="red")
    with pytest.raises(IndexStateError, match="no passages"):
        Index.build([Document("empty", "", "   ")])


def test_explain_sums_to_the_score(index: Index) -> None:
    hit = index.search("suction vomit before ventilation", k=1)[0]
    pq = index.prepare("suction vomit before ventilation")
    parts = index.explain(pq.query, hit.passage.id)
    assert parts and parts == sorted(parts, key=lambda p: -p[1])
    assert sum(c for _, c in parts) == pytest.approx(hit.score, rel=1e-5)


def test_question_path_does_not_import_sklearn(index: Index, tmp_path) -> None:
    index.save(tmp_path / "idx")
    code = (
        "import sys, emsqa\n"
        f"idx = emsqa.Index.load({str(tmp_path / 'idx')!r})\n"
        "a = idx.ask('What rate of chest compressions per minute?')\n"
        "assert a.citations, a\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy', 'prompt_toolkit'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_saving_where_a_file_is_in_the_way_is_one_clear_error(index: Index, tmp_path) -> None:
    from emsqa import IndexWriteError

    (tmp_path / "plainfile").write_text("x")
    with pytest.raises(IndexWriteError, match="plainfile"):
        index.save(tmp_path / "plainfile" / "idx")
    with pytest.raises(IndexFormatError, match="is a file"):
        index.save(tmp_path / "plainfile")


def _with_saved_idf(folder: Path, idf: np.ndarray) -> dict:
    """The manifest of the index in `folder` once an idf.npy is added, as formats 1-3 saved it."""
    from emsqa.store import _file_digest

    manifest = json.loads((folder / MANIFEST).read_text("utf-8"))
    path = folder / manifest["data"] / "idf.npy"
    np.save(path, idf)
    manifest["files"]["idf"] = {"bytes": path.stat().st_size, "digest": _file_digest(path)}
    return manifest


@pytest.mark.parametrize("weighting", ["bm25", "tfidf"])
def test_an_index_of_format_3_reads_its_saved_idf(
    small_docs: list[Document], weighting: str, tmp_path: Path
) -> None:
    """Format 3 saved each term's idf; format 4 derives it from the postings' lengths."""
    from emsqa.store import _checksum, save_store

    index = Index.build(small_docs, weighting=weighting)
    store = index.store_
    assert store is not None and store.saved_idf is None
    df = np.diff(store.post_ptr.astype(np.int64))
    n = store.n_passages
    assert store.idf.dtype == np.float32
    assert store.idf == pytest.approx(np.log((1 + n) / (1 + df)) + 1, rel=1e-6)
    ids = np.array([3, 0, 3, store.n_terms - 1])
    assert store.idf_of(ids).tobytes() == store.idf[ids].tobytes()

    folder = save_store(store, tmp_path / "v3")
    saved = np.full(store.n_terms, 2.5, dtype=np.float32)  # what a format 3 file would hold
    manifest = _with_saved_idf(folder, saved)
    manifest["format_version"] = 3
    manifest["checksum"] = _checksum(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest), "utf-8")
    loaded = Index.load(folder).store_
    assert loaded is not None and loaded.idf_of(ids).tolist() == [2.5] * 4


def test_an_index_of_format_2_still_answers(index: Index, tmp_path) -> None:
    """Format 2 kept wider postings (int64 / int32 / float32) plus df and the term strings."""
    import dataclasses

    from emsqa.store import _checksum, save_store

    store = index.store_
    assert store is not None
    wide = dataclasses.replace(
        store,
        post_ptr=store.post_ptr.astype(np.int64),
        post_idx=store.post_idx.astype(np.int32),
        post_w=np.concatenate(
            [store.postings(t)[1] for t in range(store.n_terms)] + [np.empty(0)]
        ).astype(np.float32),
        post_scale=None,
        cache={},
    )
    folder = save_store(wide, tmp_path / "v2")
    manifest = _with_saved_idf(folder, store.idf)
    manifest["format_version"] = 2
    manifest["checksum"] = _checksum(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest), "utf-8")
    with pytest.raises(IndexFormatError, match="unexpected array"):  # format 3 is strict
        manifest["format_version"] = 3
        manifest["checksum"] = _checksum(manifest)
        (folder / MANIFEST).write_text(json.dumps(manifest), "utf-8")
        Index.load(folder)
    manifest["format_version"] = 2
    manifest["checksum"] = _checksum(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest), "utf-8")
    loaded = Index.load(folder)
    assert loaded.store_ is not None and loaded.store_.post_w.dtype == np.float32
    for q in ["suction", "CPR rate", "C-spine"]:
        # the same passages and answer; scores equal but for float32 rounding of the weights
        assert loaded.ask(q).text == index.ask(q).text
        old_hits, hits = loaded.search(q), index.search(q)
        assert [h.passage for h in old_hits] == [h.passage for h in hits]
        assert [h.score for h in old_hits] == pytest.approx([h.score for h in hits], rel=1e-6)
    assert np.array_equal(loaded.store_.df, store.df)


def test_postings_are_stored_narrow(index: Index, tmp_path) -> None:
    store = index.store_
    assert store is not None
    assert (store.post_ptr.dtype, store.post_idx.dtype, store.post_w.dtype) == (
        np.uint32,
        np.uint16,
        np.uint16,
    )
    assert store.post_scale is not None and store.post_scale.dtype == np.float32
    # every term's largest weight is its top step
    tops = np.maximum.reduceat(store.post_w, store.post_ptr[:-1].astype(np.int64))
    assert np.all(tops == 65535)
    assert np.array_equal(store.df, np.diff(store.post_ptr.astype(np.int64)))
    index.save(tmp_path / "idx")
    names = {p.name for p in next((tmp_path / "idx").glob("data-*")).iterdir()}
    assert "df.npy" not in names and not any(n.startswith("terms.") for n in names)


def test_documents_of_stop_words_only_are_one_clear_error() -> None:
    with pytest.raises(IndexStateError, match="no searchable words"):
        Index.build(["The and of it.", "Is a the, or?"])


def test_search_reports_the_hits_passage_numbers(index: Index) -> None:
    from emsqa.retrieve import search

    store = index.store_
    assert store is not None
    numbers: list[int] = []
    question = "automated external defibrillator shock"
    hits = search(store, index.prepare(question), 5, numbers=numbers)
    assert len(numbers) == len(hits) > 0
    assert [store.passage(n).id for n in numbers] == [h.passage.id for h in hits]


def test_neighbours_are_the_passages_around_one_in_its_document() -> None:
    docs = [
        Document(
            id=name, title="", text=" ".join(f"{name} sentence number {i}." for i in range(60))
        )
        for name in ("a", "b")
    ]
    index = Index.build(docs, target_words=20, min_words=10, max_words=30)
    store = index.store_
    assert store is not None
    ids = [p.id for p in index.passages()]
    first_b = ids.index("b#0")
    assert [p.id for p in store.neighbours(0)] == ["a#1"]
    assert [p.id for p in store.neighbours(1)] == ["a#0", "a#2"]
    assert [p.id for p in store.neighbours(first_b)] == ["b#1"]  # not a's last passage
    assert [p.id for p in store.neighbours(len(ids) - 1)] == [ids[-2]]


def test_a_passage_leaning_on_the_one_before_counts_its_words(tmp_path: Path) -> None:
    """The requirements list names no lifeguard; the section before it does, and is not among the
    hits. The answer's confidence counts that neighbour's words; without them it falls short."""
    (tmp_path / "surf.md").write_text(
        "# Surf Work\n\n## The Job\n\nLifeguards watch the beach from towers and swim out to "
        "swimmers in trouble.\n\n## Requirements\n\nEntry requirements follow a common "
        "pattern:\n\n- a minimum age, usually 16\n- a swim test of 300 yards\n- a first aid card\n",
        encoding="utf-8",
    )
    for name in ("camp", "pool", "school"):  # they outrank "The Job"
        (tmp_path / f"{name}.md").write_text(
            f"# The {name}\n\nLifeguards watch the {name} from chairs and help swimmers in trouble.\n",
            encoding="utf-8",
        )
    index = Index.build(tmp_path)
    question = "Do I need a first aid card to become a lifeguard?"
    hits = index.search(question, 5)
    assert hits[0].passage.id == "surf.md#1"
    assert "surf.md#0" not in [h.passage.id for h in hits[:3]]
    answer = index.ask(question)
    assert not answer.abstained and "a first aid card" in answer.text
    assert answer.confidence == pytest.approx(1.0)
    from emsqa.answer import compose

    store = index.store_
    assert store is not None
    bare = compose(question, index.prepare(question), hits, analyzer=store.settings.analyzer())
    assert bare.confidence < 0.9
