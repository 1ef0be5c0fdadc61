"""The fast paths give the plain paths' results: batch search, spelling-correction prefilter, caches."""

from __future__ import annotations

import io
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from emsqa import retrieve
from emsqa.datatypes import Document
from emsqa.index import Index
from emsqa.retrieve import _edit_distance, prepare, search, search_many

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def shipped() -> Index:
    return Index.build(REPO / "corpus")


@pytest.fixture(scope="module")
def spelled(shipped: Index):  # type: ignore[no-untyped-def]
    """The shipped corpus's store with its terms spelled out (Store.terms)."""
    from emsqa.store import build_store

    return build_store(_passages(), shipped.settings, keep_terms=True)


def _questions() -> list[str]:
    lines = (REPO / "tests" / "data" / "ems_questions.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.startswith("{")]


def test_batch_search_equals_one_by_one(shipped: Index) -> None:
    questions = [*_questions(), "", "zzzz qqqq", "patient", "Can an EMT give aspirin?"]
    serial = [shipped.search(q, k=7) for q in questions]
    assert sum(map(len, serial)) > len(questions)  # most questions find something
    assert shipped.search_many(questions, k=7) == serial  # same passages, same float scores


def test_batch_search_in_many_small_chunks_is_unchanged(
    shipped: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    questions = _questions()[:40]
    whole = shipped.search_many(questions, k=5)
    monkeypatch.setattr(retrieve, "BATCH_POSTINGS", 1)  # one question per chunk
    assert shipped.search_many(questions, k=5) == whole
    assert shipped.search_many([], k=5) == []


@pytest.mark.parametrize("fillers", [0, 2_000])  # every passage scored / the postings sorted
def test_ties_are_broken_by_passage_number_on_both_paths(fillers: int) -> None:
    # 60 documents scoring exactly alike for "ventricular": only the first ones may be returned
    docs = [
        Document(id=f"d{i:02d}", title="", text=f"Ventricular rhythm note {i}.") for i in range(60)
    ] + [Document(id=f"f{i}", title="", text=f"Airway note {i}.") for i in range(fillers)]
    index = Index.build(docs, bigrams=False)
    store = index.store_
    assert store is not None
    pq = prepare(store, "ventricular")
    for k in (1, 3, 10):
        hits = search(store, pq, k)
        assert [h.passage.doc_id for h in hits] == [f"d{i:02d}" for i in range(k)]
        assert search_many(store, [pq], k) == [hits]


def test_spelling_prefilter_finds_what_a_full_scan_finds(shipped: Index) -> None:
    store = shipped.store_
    assert store is not None
    words = list(store.words)
    rng = np.random.default_rng(7)
    for word in [w for w in words if w.isalpha() and len(w) >= 4][:100]:
        i = int(rng.integers(1, len(word)))
        for typo in (
            word[:i] + word[i + 1 :],
            word[:i] + "x" + word[i:],
            word[:i] + "q" + word[i + 1 :],
        ):
            limit = 2 if len(typo) >= 8 else 1
            near = set(retrieve._near_words(store, typo, limit))
            full = {w for w in words if w[0] == typo[0] and _edit_distance(typo, w, limit) <= limit}
            assert full <= near, typo  # the prefilter never drops a word within reach


def test_term_lookup_cache_gives_the_uncached_numbers(spelled) -> None:  # type: ignore[no-untyped-def]
    store = spelled
    terms = [store.terms[i] for i in range(0, store.n_terms, 37)] + ["not-a-term", "zz top"]
    first = store.lookup(terms)
    assert first[:-2].tolist() == list(range(0, store.n_terms, 37))
    assert first[-2:].tolist() == [-1, -1]
    store.cache.clear()
    assert store.lookup(list(reversed(terms))).tolist() == list(reversed(first.tolist()))


def _passages() -> list:
    from emsqa.corpus import load_documents
    from emsqa.passages import split_documents

    return split_documents(load_documents(REPO / "corpus"))


def _by_term(store) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    out = {}
    for i in range(store.n_terms):
        a, b = store.post_ptr[i], store.post_ptr[i + 1]
        out[store.terms[i]] = (
            float(store.idf[i]),
            int(store.df[i]),
            store.post_idx[a:b].tolist(),
            store.postings(i)[1].tolist(),
        )
    return out


@pytest.mark.skipif(
    "fork" not in __import__("multiprocessing").get_all_start_methods(), reason="needs fork"
)
def test_parallel_build_gives_the_serial_arrays() -> None:
    from emsqa.store import IndexSettings, build_store

    passages = _passages()
    settings = IndexSettings()
    seen: list[tuple[int, int]] = []
    serial = build_store(passages, settings, workers=1, keep_terms=True)
    parallel = build_store(
        passages, settings, workers=2, progress=lambda d, t: seen.append((d, t)), keep_terms=True
    )
    names = ("term_hash", "idf", "df", "post_ptr", "post_idx", "post_w", "post_scale", "p_doc")
    for name in names:
        assert np.array_equal(getattr(serial, name), getattr(parallel, name)), name
    assert serial.terms.blob.tobytes() == parallel.terms.blob.tobytes()
    assert seen and seen[-1] == (len(passages), len(passages))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_vectorised_term_hash_equals_the_one_by_one_hash() -> None:
    from emsqa.store import StringTable, _fnv_one, _term_keys, hash_terms

    rng = np.random.default_rng(5)
    alphabet = list("abcxyz-1é'ß")
    words = ["", "a", "emt", "cardiac", "arrest"] + [
        "".join(rng.choice(alphabet, size=int(rng.integers(0, 25)))) for _ in range(400)
    ]
    words = list(dict.fromkeys(words))
    string_keys = hash_terms(words, "fnv1a64-mix")  # 64 terms or more: the numpy path
    assert string_keys.tolist() == [_fnv_one(t) for t in words]
    assert hash_terms(words[:10], "fnv1a64-mix").tolist() == string_keys[:10].tolist()
    # the build's keys (words hashed with numpy, pairs mixed from them) equal a question's
    first = rng.integers(0, len(words), size=300)
    second = rng.integers(0, len(words), size=300)
    pairs = np.unique((first.astype(np.int64) << 32) | second)
    names = words + [f"{words[p >> 32]} {words[p & 0xFFFFFFFF]}" for p in pairs.tolist()]
    built = _term_keys(StringTable.of(words), pairs)
    assert built.tolist() == hash_terms(names).tolist()
    assert len(set(built.tolist())) == len(built)
    assert hash_terms(["cardiac arrest"])[0] != hash_terms(["arrest cardiac"])[0]


def test_rare_bigrams_are_dropped_only_on_large_corpora(monkeypatch: pytest.MonkeyPatch) -> None:
    from emsqa import store as store_module
    from emsqa.store import IndexSettings, build_store

    passages = _passages()
    full = _by_term(build_store(passages, IndexSettings(), keep_terms=True))
    assert any(" " in t and v[1] == 1 for t, v in full.items())  # the small corpus keeps them
    monkeypatch.setattr(store_module, "RARE_BIGRAMS_FROM", 1)
    pruned = _by_term(build_store(passages, IndexSettings(), keep_terms=True))
    expected = {t: v for t, v in full.items() if not (" " in t and v[1] == 1)}
    assert pruned == expected  # the rest keep their weights: lengths still count the dropped


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_index_progress_shows_on_a_terminal_for_a_large_corpus_only(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from emsqa.cli import _index_progress
    from emsqa.repl import PROGRESS_FROM

    total = PROGRESS_FROM * 2
    screen = _Terminal()
    with _index_progress(screen) as report:
        assert report is not None
        for done in range(2_000, total + 1, 2_000):
            report(done, total)
        deadline = time.monotonic() + 10  # the bar redraws in its own thread
        while f"{total}/{total}" not in screen.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
    assert f"{total}/{total}" in screen.getvalue()
    small = _Terminal()
    with _index_progress(small) as report:
        assert report is not None
        report(10, 10)
    assert small.getvalue() == ""
    assert "Traceback" not in capfd.readouterr().err  # the bar's own thread ended cleanly


def test_a_long_build_s_progress_bar_asks_the_terminal_nothing() -> None:
    """The bar reads an idle pipe, which never answers a cursor position request: after two
    seconds prompt_toolkit printed a warning about the terminal into the bar's output."""
    from emsqa.cli import _index_progress
    from emsqa.repl import PROGRESS_FROM

    screen = _Terminal()
    with _index_progress(screen) as report:
        assert report is not None
        report(1, PROGRESS_FROM)
        time.sleep(2.5)  # past prompt_toolkit's wait for an answer
        report(PROGRESS_FROM, PROGRESS_FROM)
        done, deadline = f"{PROGRESS_FROM}/{PROGRESS_FROM}", time.monotonic() + 10
        while done not in screen.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)  # the bar redraws in its own thread
    assert "CPR" not in screen.getvalue() and "WARNING" not in screen.getvalue()
    assert f"{PROGRESS_FROM}/{PROGRESS_FROM}" in screen.getvalue()


def test_a_warning_during_the_bar_shows_after_it() -> None:
    """A corpus warning printed while the bar drew was written over the bar's line."""
    from emsqa.cli import _index_progress
    from emsqa.errors import EmsqaWarning
    from emsqa.repl import PROGRESS_FROM

    screen = _Terminal()
    shown: list[tuple[str, int]] = []

    def show(message: Warning | str, *_: object) -> None:
        shown.append((str(message), len(screen.getvalue())))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        with _index_progress(screen) as report:
            assert report is not None
            report(1, PROGRESS_FROM)
            warnings.warn("skipped line 7 of a.jsonl: not valid JSON", EmsqaWarning, stacklevel=1)
            assert shown == []  # held while the bar shows
            report(PROGRESS_FROM, PROGRESS_FROM)
        drawn = len(screen.getvalue())
    assert [m for m, _ in shown] == ["skipped line 7 of a.jsonl: not valid JSON"]
    assert shown[0][1] == drawn > 0  # shown once the bar had drawn its last


def test_index_progress_stays_silent_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from emsqa.cli import _index_progress, main

    with _index_progress(io.StringIO()) as report:
        assert report is None
    assert main(["index", str(REPO / "corpus"), "-o", str(tmp_path / "idx")]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "Indexed" in captured.out


@pytest.mark.parametrize("weighting", ["bm25", "tfidf"])
def test_weighting_and_reordering_in_slices_change_nothing(
    monkeypatch: pytest.MonkeyPatch, weighting: str
) -> None:
    from emsqa import store as store_module
    from emsqa.store import IndexSettings, build_store

    passages = _passages()
    whole = build_store(passages, IndexSettings(weighting=weighting))
    monkeypatch.setattr(store_module, "_WEIGHT_ROWS", 7)
    monkeypatch.setattr(store_module, "_GATHER", 50)
    sliced = build_store(passages, IndexSettings(weighting=weighting))
    for name in ("term_hash", "idf", "df", "post_ptr", "post_idx", "post_w", "post_scale"):
        assert np.array_equal(getattr(whole, name), getattr(sliced, name)), name


@pytest.mark.parametrize("kind", ["blake2b-64", "fnv1a64-mix"])
def test_an_index_keyed_by_an_older_term_hash_still_answers(
    shipped: Index,
    spelled,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    kind: str,
) -> None:
    import dataclasses

    from emsqa.store import MANIFEST, StringTable, _checksum, hash_terms, save_store

    store = spelled
    terms = [store.terms[i] for i in range(store.n_terms)]
    old = hash_terms(terms, kind)
    order = np.argsort(old, kind="stable")
    counts = np.diff(store.post_ptr)[order]
    ptr = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    gather = np.concatenate([np.arange(store.post_ptr[t], store.post_ptr[t + 1]) for t in order])
    older = dataclasses.replace(
        store,
        term_hash=old[order],
        terms=StringTable.of([terms[t] for t in order]),
        post_ptr=ptr,
        post_idx=store.post_idx[gather],
        post_w=store.post_w[gather],
        post_scale=store.post_scale[order],
        term_hash_kind=kind,
        cache={},
    )
    folder = save_store(older, tmp_path / "older")
    if kind == "blake2b-64":  # format 1 wrote no "term_hash"
        manifest = json.loads((folder / MANIFEST).read_text("utf-8"))
        del manifest["term_hash"]
        manifest["checksum"] = _checksum(manifest)
        (folder / MANIFEST).write_text(json.dumps(manifest), "utf-8")
    reopened = Index.load(folder)
    assert reopened.store_ is not None and reopened.store_.term_hash_kind == kind
    for question in _questions()[:30]:
        assert reopened.search(question, k=5) == shipped.search(question, k=5)


def test_passages_read_from_the_arrays_equal_the_split_passages(shipped: Index) -> None:
    from dataclasses import asdict

    from emsqa.corpus import load_documents
    from emsqa.datatypes import Passage
    from emsqa.passages import split_documents

    store = shipped.store_
    assert store is not None
    split = split_documents(load_documents(REPO / "corpus"))
    assert len(split) == store.n_passages
    numbers = [5, 0, store.n_passages - 1, 5, 17]
    together = store.passages(numbers)
    assert together == [split[i] for i in numbers]
    plain = [Passage(**asdict(p)) for p in together]  # made by the dataclass's own __init__
    assert [hash(p) for p in together] == [hash(p) for p in plain]
    assert [repr(p) for p in together] == [repr(p) for p in plain]
    assert [store.passage(i) for i in numbers] == together
    assert list(shipped.passages()) == split
    assert store.passages([]) == []


def test_hits_made_on_the_fast_path_equal_plain_hits(shipped: Index) -> None:
    from emsqa.datatypes import Hit

    for hit in shipped.search("Can an EMT give aspirin for chest pain?", k=5):
        plain = Hit(passage=hit.passage, score=hit.score, rank=hit.rank)
        assert hit == plain and hash(hit) == hash(plain) and repr(hit) == repr(plain)
        with pytest.raises(AttributeError):
            hit.rank = 0  # type: ignore[misc]


@pytest.mark.parametrize("n", [50, 2_000, 300_000])
@pytest.mark.parametrize("positive", [True, False])
def test_sampled_top_bound_keeps_exactly_the_plain_top(n: int, positive: bool) -> None:
    rng = np.random.default_rng(n)
    for trial in range(6):
        scores = rng.random(n) * (rng.random(n) < 0.4)  # many zeros
        if trial % 2:
            scores = np.round(scores, 2)  # many ties
        if trial == 5:
            scores[:] = 0
            scores[rng.integers(n, size=3)] = 1.0  # fewer scoring passages than wanted
        for want in (1, 10, 38):
            cut = n - want
            floor = np.partition(scores, cut)[cut]
            if positive:
                plain = np.flatnonzero(scores >= floor if floor > 0 else scores > 0)
            else:
                plain = np.flatnonzero(scores >= floor)
            got = retrieve._at_least_wanted(scores, want, positive=positive)
            assert got.tolist() == plain.tolist()
            # a bound taken from any distinct positions (here: random ones) keeps the same set
            likely = rng.choice(n, size=min(n, want * 2), replace=False)
            got = retrieve._at_least_wanted(scores, want, positive=positive, likely=likely)
            assert got.tolist() == plain.tolist()


def _square_slice(shared: list[int], bounds: tuple[int, int]) -> tuple[list[int], int]:
    import os

    return [v * v for v in shared[bounds[0] : bounds[1]]], os.getpid()


@pytest.mark.skipif(
    "fork" not in __import__("multiprocessing").get_all_start_methods(), reason="needs fork"
)
def test_replaced_workers_still_see_the_shared_data() -> None:
    from emsqa.parallel import TASKS_PER_WORKER, forked_slices

    values = list(range(97))
    n_slices = -(-len(values) // 3)
    assert n_slices > 2 * TASKS_PER_WORKER  # more slices than two workers may run
    out = list(forked_slices(_square_slice, values, len(values), 3, 2))
    assert [bounds for bounds, _ in out] == [(a, min(a + 3, 97)) for a in range(0, 97, 3)]
    assert [v for _, (squares, _) in out for v in squares] == [v * v for v in values]
    assert len({pid for _, (_, pid) in out}) > 2  # fresh workers took over, and saw `values`


def test_workers_are_the_usable_cores_up_to_eight(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from emsqa import parallel

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert parallel.usable_cores() == 8
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert parallel.usable_cores() == 1
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # as on macOS and Windows
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert parallel.usable_cores() == 1


@pytest.mark.parametrize("cores", [1, 2])
def test_results_computed_ahead_come_in_order_and_two_at_most(
    cores: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from emsqa import parallel

    monkeypatch.setattr(parallel, "usable_cores", lambda: cores)
    alive: set[int] = set()
    most = [0]
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            alive.add(i)
            most[0] = max(most[0], len(alive))
        return i * i

    out = []
    for got in parallel.computed_ahead(work, range(50)):
        out.append(got)
        with lock:
            alive.discard(int(got**0.5))  # the caller is done with it
    assert out == [i * i for i in range(50)]
    assert most[0] <= 2
    assert list(parallel.computed_ahead(work, [])) == []


def test_an_error_computed_ahead_reaches_the_caller() -> None:
    from emsqa import parallel

    def work(i: int) -> int:
        if i == 3:
            raise ValueError("three")
        return i

    got = []
    with pytest.raises(ValueError, match="three"):
        for x in parallel.computed_ahead(work, range(6)):
            got.append(x)
    assert got == [0, 1, 2]


@pytest.mark.parametrize("n_passages", [1, 7, 300, 5000])
def test_idf_is_scikit_learns_bit_for_bit(n_passages: int) -> None:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfTransformer

    from emsqa.store import _document_frequency, _smooth_idf

    rng = np.random.default_rng(n_passages)
    counts = sparse.random(
        n_passages, 400, density=0.05, format="csr", dtype=np.float32, random_state=rng
    )
    counts.data = np.ceil(counts.data * 5).astype(np.float32)
    counts.indices = counts.indices.astype(np.int32)
    expected = TfidfTransformer(norm=None, smooth_idf=True).fit(counts).idf_
    df = _document_frequency(counts.indices, counts.shape[1])
    assert df.tolist() == np.bincount(counts.indices, minlength=400).tolist()
    got = _smooth_idf(df, n_passages)
    assert got.dtype == np.float32
    assert got.tobytes() == expected.astype(np.float32).tobytes()
