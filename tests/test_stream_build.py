"""A large .jsonl file indexed a slice at a time by forked workers (store.build_store_from_jsonl)
is the very index of its Documents loaded whole, with the same warnings and errors."""

from __future__ import annotations

import dataclasses
import json
import random
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import emsqa.store as store_module
from emsqa.corpus import corpus_fingerprint, jsonl_slice, load_documents, plan_jsonl
from emsqa.errors import CorpusError
from emsqa.index import Index
from emsqa.parallel import can_fork
from emsqa.store import IndexSettings, Store, build_store_from_jsonl
from emsqa.strings import StringTable

pytestmark = pytest.mark.skipif(not can_fork(), reason="streamed builds need forked workers")

WORDS = (
    "cardiac arrest aspirin chest pain airway oxygen trauma bleeding fracture splint shock "
    "naloxone overdose stroke seizure glucose burn hypothermia tourniquet pulse breathing"
).split()


def records(n: int, seed: int = 7) -> list[str]:
    """`n` jsonl lines of random passages: some titled, some long enough to make two passages."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 260)))
        record: dict[str, Any] = {"id": f"d{i}", "text": text}
        if i % 3 == 0:
            record["title"] = f"Note {i}: {rng.choice(WORDS)}"
        lines.append(json.dumps(record))
    return lines


def messy(n: int = 300) -> list[str]:
    """Records with bad lines, blank lines, repeated ids and texts, and ids left out."""
    lines = records(n)
    text_of = [json.loads(line)["text"] for line in lines]
    lines[5] = "not json"
    lines[7] = ""
    lines[8] = "   "
    lines[9] = json.dumps({"id": "d3", "text": "a repeated id, new text"})
    lines[11] = json.dumps({"id": "x11", "text": text_of[4]})  # repeated text, new id
    lines[13] = "[1, 2]"
    lines[20] = json.dumps({"text": "  "})
    lines[21] = json.dumps({"text": "no id: the file name and line number make it"})
    for k in range(30, 38):
        lines[k] = "{broken"
    lines.append(json.dumps({"id": "d3", "text": text_of[4]}))  # both repeated
    lines.append(json.dumps({"id": "x11", "text": "the id of a record skipped for its text"}))
    return lines


def write(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.write_text("\n".join(lines) + end, encoding="utf-8")
    return path


def recorded(fn: Callable[[], Any]) -> tuple[Any, list[str]]:
    """fn()'s result (or the exception it raised) and the messages of the warnings it gave."""
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        try:
            out = fn()
        except CorpusError as exc:
            out = exc
    return out, [str(w.message) for w in got]


def loaded(path: Path) -> Store:
    """The reference: the file's Documents loaded whole, then indexed."""
    docs = load_documents(path)
    built = Index.build(docs, name=str(path)).store_
    assert built is not None
    return dataclasses.replace(built, fingerprint=corpus_fingerprint(path))


def streamed(path: Path, slice_bytes: int = 2_000, workers: int = 2) -> Store:
    built = build_store_from_jsonl(
        path, IndexSettings(), name=str(path), slice_bytes=slice_bytes, workers=workers
    )
    assert built is not None
    return built


def assert_same(a: Store, b: Store) -> None:
    for field in dataclasses.fields(Store):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, StringTable):
            assert np.array_equal(x.blob, y.blob), field.name
            assert np.array_equal(x.offsets, y.offsets), field.name
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype, field.name
            assert np.array_equal(x, y), field.name
        else:
            assert x == y, field.name


@pytest.mark.parametrize("slice_bytes", [1, 700, 5_000, 10**7])
def test_streamed_index_is_the_loaded_one(tmp_path: Path, slice_bytes: int) -> None:
    path = write(tmp_path / "notes.jsonl", messy())
    plan = plan_jsonl(path, slice_bytes)
    assert plan is not None and (plan.slices > 10 or slice_bytes > 10**6)
    want, want_warnings = recorded(lambda: loaded(path))
    got, got_warnings = recorded(lambda: streamed(path, slice_bytes))
    assert got_warnings == want_warnings
    assert any("repeating an earlier document's id" in w for w in got_warnings)
    assert any("repeating an earlier text" in w for w in got_warnings)
    assert any("more bad line(s)" in w for w in got_warnings)
    assert_same(got, want)


def test_surface_words_of_slices_after_many_bad_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slices past the sample's lines but within its passages read their text back for it."""
    monkeypatch.setattr(store_module, "_SURFACE_SAMPLE", 12)
    path = write(tmp_path / "late.jsonl", ["{bad"] * 20 + [""] * 5 + records(40))
    want, want_warnings = recorded(lambda: loaded(path))
    got, got_warnings = recorded(lambda: streamed(path, 200))
    assert got_warnings == want_warnings
    assert got.words and got.words == want.words
    assert_same(got, want)


def test_index_build_streams_a_large_file_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "big.jsonl", messy(600))
    calls: list[tuple[int, int]] = []

    def streaming(*args: Any, **kwargs: Any) -> Store | None:
        calls.append((0, 0))
        return real(*args, **kwargs)

    real = store_module.build_store_from_jsonl
    monkeypatch.setattr("emsqa.index.build_store_from_jsonl", streaming)
    monkeypatch.setattr(store_module, "STREAM_FROM", 10**12)  # too small: loaded whole
    whole, whole_warnings = recorded(lambda: Index.build(path))
    monkeypatch.setattr(store_module, "STREAM_FROM", 0)
    seen: list[tuple[int, int]] = []
    part, part_warnings = recorded(
        lambda: Index.build(path, progress=lambda d, t: seen.append((d, t)))
    )
    assert len(calls) == 2
    assert part_warnings == whole_warnings
    assert_same(part.store_, whole.store_)
    assert part.store_.fingerprint == corpus_fingerprint(path)
    assert part.store_.name == str(path)
    total = len(path.read_text(encoding="utf-8").splitlines())
    assert seen and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    # saved and opened again, it answers as the whole-file index does
    part.save(tmp_path / "idx")
    again = Index.load(tmp_path / "idx")
    question = "aspirin for chest pain"
    assert [h.passage.id for h in again.search(question, k=5)] == [
        h.passage.id for h in whole.search(question, k=5)
    ]


def test_a_file_without_final_newline_ending_mid_record(tmp_path: Path) -> None:
    lines = [*records(80), '{"id": "last", "text": "cut sho']
    path = write(tmp_path / "cut.jsonl", lines, end="")
    want, want_warnings = recorded(lambda: loaded(path))
    got, got_warnings = recorded(lambda: streamed(path, 500))
    assert got_warnings == want_warnings
    assert len(got_warnings) == 1
    assert got_warnings[0].startswith(f"skipped line 81 of {path}: not valid JSON")
    assert_same(got, want)


def test_a_utf8_bom_and_other_characters(tmp_path: Path) -> None:
    lines = records(50)
    lines[3] = json.dumps({"id": "é", "text": "Cafe\u0301 na\u00efve \u2014 caf\u00e9s"})
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join(lines) + "\n").encode("utf-8"))
    want, want_warnings = recorded(lambda: loaded(path))
    got, got_warnings = recorded(lambda: streamed(path, 300))
    assert got_warnings == want_warnings
    assert_same(got, want)


def test_no_usable_records_is_the_same_error(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.jsonl", ["{nope", "[]", "", '{"text": 3}'])
    want, want_warnings = recorded(lambda: loaded(path))
    got, got_warnings = recorded(lambda: streamed(path, 1))
    assert isinstance(want, CorpusError) and isinstance(got, CorpusError)
    assert str(got) == str(want)
    assert got_warnings == want_warnings
    assert want_warnings[-1] == f"skipped {path}: no usable records (3 bad line(s))"


@pytest.mark.parametrize(
    "content",
    [b"", b"\xef\xbb\xbf", "caf\xe9".encode("cp1252"), b"\xff\xfe{\x00", b'{"text": "a\x00"}'],
)
def test_files_it_does_not_stream_are_loaded_whole(tmp_path: Path, content: bytes) -> None:
    """Empty, only a BOM, not UTF-8, UTF-16, NUL bytes: left to load_documents."""
    path = tmp_path / "odd.jsonl"
    path.write_bytes(content)
    assert plan_jsonl(path, 100) is None
    assert build_store_from_jsonl(path, IndexSettings(), slice_bytes=100) is None


def test_a_non_utf8_file_is_indexed_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(("\n".join(records(40)) + '\n{"text": "caf\xe9 au lait"}\n').encode("cp1252"))
    monkeypatch.setattr(store_module, "STREAM_FROM", 0)
    got, got_warnings = recorded(lambda: Index.build(path))
    assert got_warnings == [f"{path} is not valid UTF-8; read it as cp1252"]
    assert got.n_documents == 41


def test_a_file_changed_while_indexed_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "moving.jsonl", records(120))

    def grow(done: int, total: int) -> None:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"id": f"late{done}", "text": "appended meanwhile"}) + "\n")

    with pytest.raises(CorpusError, match="changed while it was being indexed"):
        build_store_from_jsonl(path, IndexSettings(), slice_bytes=2_000, progress=grow)


def test_a_slice_read_after_the_file_shrank_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "shrinking.jsonl", records(60))
    plan = plan_jsonl(path, 1_000)
    assert plan is not None and plan.slices > 2
    docs, bad = jsonl_slice(plan, 1)
    assert docs and not bad
    write(path, records(10))
    with pytest.raises(CorpusError, match="changed while it was being indexed"):
        jsonl_slice(plan, plan.slices - 1)


def test_slices_cover_every_line_once(tmp_path: Path) -> None:
    path = write(tmp_path / "lines.jsonl", messy(200))
    plan = plan_jsonl(path, 777)
    assert plan is not None
    assert plan.cuts[0] == 0 and plan.cuts[-1] == path.stat().st_size
    assert plan.fingerprint == corpus_fingerprint(path)
    whole = plan_jsonl(path, 10**9)
    assert whole is not None and whole.slices == 1
    assert plan.slices > 5

    def read(p: Any) -> tuple[list[tuple[str, str | None]], list[tuple[int, str]]]:
        found: list[tuple[str, str | None]] = []
        bad: list[tuple[int, str]] = []
        for i in range(p.slices):
            docs, wrong = jsonl_slice(p, i)
            found += [(d.id, d.source) for d in docs]
            bad += wrong
        return found, bad

    assert read(plan) == read(whole)
    assert len(read(plan)[1]) == 11  # lines 6, 14, 21 and 31 to 38


def test_the_temporary_files_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "notes.jsonl", records(100))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    streamed(path, 3_000)
    assert list(scratch.iterdir()) == []


def test_keys_sharing_a_first_word_are_told_apart() -> None:
    """Repeats are found by 128-bit keys: a first 64-bit word in common is not a repeat."""
    keys = store_module._SeenKeys()
    for first in range(0, 40, 3):  # many runs, merged as they come
        keys.add(np.array([[first, 7], [first + 1, 8], [5, first]], dtype=np.uint64))
    asked = np.array([[3, 7], [3, 8], [5, 9], [5, 10], [4, 8], [100, 7]], dtype=np.uint64)
    assert keys.known(asked).tolist() == [True, False, True, False, True, False]
