"""Reliability of saved indexes: damage is refused with an IndexFormatError naming the file.

A small index is saved to tmp_path and then damaged one way per test. Where a check earlier in the
loader would catch the damage first (the manifest checksum, a file's digest), the test repairs that
check so that only the defence under test can stop it. Loading never unpickles: a payload planted
in an array file must not run. Also here: the shipped cache is rebuilt when the corpus changes, and
a save killed at random moments (SIGKILL) always leaves a loadable index.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emsqa import api
from emsqa.cli import main
from emsqa.corpus import corpus_fingerprint
from emsqa.datatypes import Answer, Document
from emsqa.errors import EmsqaWarning, IndexFormatError
from emsqa.index import Index
from emsqa.store import FORMAT_VERSION, MANIFEST, _checksum, _file_digest

REPO = Path(__file__).resolve().parent.parent

DOCUMENTS = [
    Document(
        id="bleeding.txt",
        title="Bleeding control",
        text=(
            "Bleeding control\n\nApply direct pressure to the wound with a gauze pad. When direct "
            "pressure fails on a limb, apply a tourniquet above the wound and note the time. "
            "Never loosen a tourniquet in the field once it has been applied."
        ),
    ),
    Document(
        id="burns.txt",
        title="Burns",
        text=(
            "Burns\n\nCool a thermal burn with running water for twenty minutes. Cover it loosely "
            "with a clean, dry dressing. Do not apply ice, butter or ointment to a fresh burn."
        ),
    ),
]
QUESTION = "When should a tourniquet be applied?"


@pytest.fixture(scope="module")
def built() -> Index:
    return Index.build(DOCUMENTS, name="reliability")


@pytest.fixture
def saved(built: Index, tmp_path: Path) -> Path:
    return built.save(tmp_path / "idx")


def manifest_of(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST).read_text("utf-8"))


def write_manifest(folder: Path, manifest: dict[str, Any], *, reseal: bool = True) -> None:
    """Write `manifest` back; with reseal, recompute its checksum so only other checks can fail."""
    if reseal:
        manifest["checksum"] = _checksum(manifest)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1), "utf-8")


def array_path(folder: Path, name: str) -> Path:
    return folder / manifest_of(folder)["data"] / f"{name}.npy"


def redigest(folder: Path, name: str) -> None:
    """Record the current size and digest of array `name` in the manifest (and reseal it)."""
    manifest = manifest_of(folder)
    path = folder / manifest["data"] / f"{name}.npy"
    manifest["files"][name] = {"bytes": path.stat().st_size, "digest": _file_digest(path)}
    write_manifest(folder, manifest)


def refused(folder: Path, *parts: str) -> str:
    with pytest.raises(IndexFormatError) as info:
        Index.load(folder)
    message = str(info.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, (part, message)
    return message


def assert_loads_and_answers(folder: Path) -> Index:
    index = Index.load(folder)
    answer = index.ask(QUESTION)
    assert isinstance(answer, Answer) and not answer.abstained
    return index


def test_undamaged_index_loads_and_answers(saved: Path, built: Index) -> None:
    index = assert_loads_and_answers(saved)
    assert index.ask(QUESTION).to_dict() == built.ask(QUESTION).to_dict()


# --- damage, one kind per test --------------------------------------------------------------------


def test_missing_manifest(saved: Path) -> None:
    (saved / MANIFEST).unlink()
    refused(saved, str(saved), "manifest.json is missing")


def test_missing_array_file(saved: Path) -> None:
    path = array_path(saved, "post_w")
    path.unlink()
    refused(saved, str(path), "missing")


def test_missing_data_folder(saved: Path) -> None:
    data = saved / manifest_of(saved)["data"]
    shutil.rmtree(data)
    refused(saved, str(data))


@pytest.mark.parametrize("name", ["term_hash", "post_idx", "p_text.blob", "doc_ids.offsets"])
def test_truncated_array(saved: Path, name: str) -> None:
    path = array_path(saved, name)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 7])
    refused(saved, str(path), "truncated or was modified")


@pytest.mark.parametrize("name", ["post_idx", "post_scale", "p_text.blob"])
def test_truncated_array_with_its_digest_updated(saved: Path, name: str) -> None:
    path = array_path(saved, name)
    data = path.read_bytes()
    path.write_bytes(data[: max(140, len(data) - 9)])
    redigest(saved, name)
    refused(saved, str(saved))  # np.load or the consistency check refuses it


def test_flipped_byte_in_an_array(saved: Path) -> None:
    path = array_path(saved, "post_w")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    refused(saved, str(path), "modified")


def test_tampered_manifest_value(saved: Path) -> None:
    manifest = manifest_of(saved)
    manifest["counts"]["passages"] += 1
    write_manifest(saved, manifest, reseal=False)
    refused(saved, str(saved / MANIFEST), "checksum mismatch")


def test_tampered_manifest_setting(saved: Path) -> None:
    manifest = manifest_of(saved)
    manifest["settings"]["k1"] = 99.0  # valid JSON, valid setting: only the checksum notices
    write_manifest(saved, manifest, reseal=False)
    refused(saved, str(saved / MANIFEST), "checksum mismatch")


def test_resealed_manifest_with_wrong_counts(saved: Path) -> None:
    manifest = manifest_of(saved)
    manifest["counts"]["passages"] += 1
    write_manifest(saved, manifest)
    refused(saved, str(saved), "inconsistent")


@pytest.mark.parametrize("change", ["older tokens", "other stop words", "no analyzer"])
def test_index_built_with_other_text_analysis_warns_and_still_answers(
    saved: Path, change: str
) -> None:
    manifest = manifest_of(saved)
    analyzer = manifest["analyzer"]
    if change == "older tokens":
        del analyzer["tokens"]
    elif change == "other stop words":
        analyzer["stop_words"] = analyzer["stop_words"][1:]
    else:
        del manifest["analyzer"]
    write_manifest(saved, manifest)
    with pytest.warns(EmsqaWarning, match="reads text differently") as caught:
        assert_loads_and_answers(saved)
    assert [str(w.message).count("\n") for w in caught] == [0]


@pytest.mark.parametrize(
    "content", [b"", b"{not json", b"\xff\xfe\x00", b"[1, 2, 3]", b'{"format": "other"}']
)
def test_manifest_that_is_not_an_emsqa_manifest(saved: Path, content: bytes) -> None:
    (saved / MANIFEST).write_bytes(content)
    refused(saved, str(saved / MANIFEST))


@pytest.mark.parametrize("missing", ["data", "files", "settings", "counts"])
def test_resealed_manifest_missing_a_key(saved: Path, missing: str) -> None:
    manifest = manifest_of(saved)
    del manifest[missing]
    write_manifest(saved, manifest)
    refused(saved, str(saved / MANIFEST))


def test_resealed_manifest_with_an_unknown_setting(saved: Path) -> None:
    manifest = manifest_of(saved)
    manifest["settings"]["exec"] = "__import__('os').system('true')"
    write_manifest(saved, manifest)
    refused(saved, str(saved / MANIFEST), "exec")


@pytest.mark.parametrize("outside", ["..", "../elsewhere", "/", "data-x/../.."])
def test_resealed_manifest_pointing_outside_the_folder(
    saved: Path, built: Index, tmp_path: Path, outside: str
) -> None:
    # Another valid index next door: the manifest must not make emsqa read its arrays.
    other = built.save(tmp_path / "elsewhere")
    manifest = manifest_of(saved)
    manifest["data"] = (
        outside if outside != "../elsewhere" else f"../elsewhere/{manifest_of(other)['data']}"
    )
    write_manifest(saved, manifest)
    refused(saved, str(saved / MANIFEST))


def test_newer_format_version(saved: Path) -> None:
    manifest = manifest_of(saved)
    manifest["format_version"] = FORMAT_VERSION + 1
    write_manifest(saved, manifest)  # resealed: only the version check can refuse it
    message = refused(saved, str(saved / MANIFEST), "newer emsqa", "upgrade")
    assert f"index format {FORMAT_VERSION + 1}" in message


@pytest.mark.parametrize("version", ["1", None, 1.5, [1]])
def test_format_version_of_the_wrong_type(saved: Path, version: object) -> None:
    manifest = manifest_of(saved)
    manifest["format_version"] = version
    write_manifest(saved, manifest)
    refused(saved, str(saved / MANIFEST), "format_version")


def test_array_of_another_dtype(saved: Path) -> None:
    path = array_path(saved, "post_scale")
    np.save(path, np.load(path).astype(np.float64), allow_pickle=False)
    redigest(saved, "post_scale")
    refused(saved, str(path), "unexpected array")


def test_array_of_two_dimensions(saved: Path) -> None:
    path = array_path(saved, "p_doc")
    arr = np.load(path)
    np.save(path, np.stack([arr, arr]), allow_pickle=False)
    redigest(saved, "p_doc")
    refused(saved, str(path), "unexpected array")


def test_postings_pointing_past_the_passages_are_refused_or_harmless(saved: Path) -> None:
    """A resealed index whose postings name passage 10**6 must not crash a question."""
    path = array_path(saved, "post_idx")
    arr = np.load(path)
    arr[:] = np.iinfo(arr.dtype).max  # far past the shipped corpus's passages
    np.save(path, arr, allow_pickle=False)
    redigest(saved, "post_idx")
    try:
        index = Index.load(saved)
    except IndexFormatError as exc:
        assert str(saved) in str(exc)
        return
    answer = index.ask(QUESTION)  # loaded: then asking must still end in an Answer
    assert isinstance(answer, Answer)


# --- no file can run code -------------------------------------------------------------------------


class Payload:
    """Unpickling this creates `marker`: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (Path.touch, (Path(self.marker),))


def object_array(marker: Path) -> np.ndarray:
    arr = np.empty(3, dtype=object)
    arr[:] = [Payload(str(marker)), "x", 1]
    return arr


def test_the_payload_is_live(tmp_path: Path) -> None:
    """Control: with pickle allowed, loading the planted file does run code."""
    marker = tmp_path / "control-marker"
    np.save(tmp_path / "evil.npy", object_array(marker), allow_pickle=True)
    np.load(tmp_path / "evil.npy", allow_pickle=True)
    assert marker.exists()


@pytest.mark.parametrize("name", ["post_scale", "term_hash", "p_text.blob", "doc_ids.offsets"])
def test_npy_holding_python_objects_is_refused_without_unpickling(
    saved: Path, tmp_path: Path, name: str
) -> None:
    marker = tmp_path / "pwned"
    path = array_path(saved, name)
    np.save(path, object_array(marker), allow_pickle=True)
    redigest(saved, name)  # digest and checksum agree: only the pickle refusal is left
    refused(saved, str(path))
    assert not marker.exists()
    with pytest.raises(IndexFormatError):
        api.open_index(saved)
    assert not marker.exists()


def test_manifest_cannot_name_code_to_run(saved: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    manifest = manifest_of(saved)
    manifest["name"] = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    manifest["words"] = ["{{7*7}}", "$(touch x)", "`touch x`"]
    write_manifest(saved, manifest)
    index = assert_loads_and_answers(saved)  # the name is only text
    assert index.name == manifest["name"]
    assert not marker.exists()


# --- folders that are not indexes -----------------------------------------------------------------


def test_folder_that_is_not_an_index(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("hello", "utf-8")
    refused(tmp_path / "notes", str(tmp_path / "notes"), "not an emsqa index")


def test_empty_folder_is_not_an_index(tmp_path: Path) -> None:
    refused(tmp_path, str(tmp_path), "not an emsqa index")


def test_missing_folder(tmp_path: Path) -> None:
    refused(tmp_path / "nope", str(tmp_path / "nope"), "does not exist")


def test_a_file_instead_of_a_folder(saved: Path) -> None:
    refused(saved / MANIFEST, str(saved / MANIFEST), "is a file")


def test_saving_never_overwrites_what_is_not_an_index(built: Index, tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("precious", "utf-8")
    with pytest.raises(IndexFormatError, match=r"notes.*not an emsqa index"):
        built.save(tmp_path / "notes")
    assert sorted(p.name for p in (tmp_path / "notes").iterdir()) == ["keep.txt"]
    (tmp_path / "file").write_text("precious", "utf-8")
    with pytest.raises(IndexFormatError, match=r"file.*is a file"):
        built.save(tmp_path / "file")
    assert (tmp_path / "file").read_text("utf-8") == "precious"


# --- the command line -----------------------------------------------------------------------------


def damage_each_way(folder: Path) -> Iterator[tuple[str, Path, str]]:
    """(what, damaged folder, text its error must show), one fresh copy per damage."""
    cases: dict[str, Callable[[Path], str]] = {
        "missing manifest": lambda f: ((f / MANIFEST).unlink(), MANIFEST)[1],
        "missing array": lambda f: (array_path(f, "post_w").unlink(), "post_w.npy")[1],
        "truncated array": lambda f: (
            array_path(f, "p_end").write_bytes(array_path(f, "p_end").read_bytes()[:-8]),
            "p_end.npy",
        )[1],
        "tampered manifest": lambda f: (
            (f / MANIFEST).write_text(
                (f / MANIFEST).read_text("utf-8").replace('"b": 0.75', '"b": 0.5'), "utf-8"
            ),
            MANIFEST,
        )[1],
    }
    for what, damage in cases.items():
        copy = folder.parent / what.replace(" ", "-")
        shutil.copytree(folder, copy)
        yield what, copy, damage(copy)


def test_cli_with_a_damaged_index_is_one_error_line(
    saved: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for what, folder, shown in damage_each_way(saved):
        assert main(["ask", "--index", str(folder), QUESTION]) == 1, what
        out, err = capsys.readouterr()
        assert out == "" and "Traceback" not in err
        lines = err.splitlines()
        assert [line for line in lines if line.startswith("emsqa: error:")] == lines[:1], lines
        assert all(line.startswith("hint: ") for line in lines[1:]), lines
        assert shown in lines[0] and str(folder) in lines[0], (what, lines[0])


def test_cli_index_output_that_is_a_file_or_foreign_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for doc in DOCUMENTS:
        (corpus / doc.id).write_text(doc.text, "utf-8")
    (tmp_path / "file").write_text("x", "utf-8")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "keep.txt").write_text("x", "utf-8")
    for target in ("file", "foreign"):
        assert main(["index", str(corpus), "-o", str(tmp_path / target)]) == 1
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and str(tmp_path / target) in err


def test_cli_ask_index_that_is_a_corpus_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.txt").write_text(DOCUMENTS[0].text, "utf-8")
    assert main(["ask", "--index", str(tmp_path), QUESTION]) == 1
    err = capsys.readouterr().err
    assert err.startswith("emsqa: error:") and "not an emsqa index" in err and str(tmp_path) in err


# --- corpus fingerprints: a user index reports its own, the shipped cache rebuilds ---------------


def test_user_index_of_a_changed_corpus_loads_and_reports_its_fingerprint(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for doc in DOCUMENTS:
        (corpus / doc.id).write_text(doc.text, "utf-8")
    before = corpus_fingerprint(corpus)
    Index.build(corpus).save(tmp_path / "idx")
    (corpus / "burns.txt").write_text(DOCUMENTS[1].text + " Remove rings early.", "utf-8")
    index = assert_loads_and_answers(tmp_path / "idx")
    assert index.fingerprint == before != corpus_fingerprint(corpus)


@pytest.fixture
def shipped_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the shipped corpus that api.default_index uses; the cache lives in tmp_path."""
    copy = tmp_path / "corpus"
    shutil.copytree(api.shipped_corpus(), copy)
    monkeypatch.setattr(api, "shipped_corpus", lambda: copy)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    api.default_index.cache_clear()
    yield copy
    api.default_index.cache_clear()


def cached_folders(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "emsqa").glob("shipped-*"))


def test_shipped_cache_is_rebuilt_when_the_corpus_changes(
    shipped_copy: Path, tmp_path: Path
) -> None:
    first = api.default_index()
    (folder,) = cached_folders(tmp_path)
    assert Index.load(folder).fingerprint == first.fingerprint == corpus_fingerprint(shipped_copy)
    assert first.ask("What does a flumbrigator do?").abstained

    (shipped_copy / "99-new.md").write_text(
        "# Flumbrigators\n\nA flumbrigator restocks the ambulance with oxygen cylinders "
        "between calls.\n",
        "utf-8",
    )
    api.default_index.cache_clear()
    second = api.default_index()
    assert second.fingerprint == corpus_fingerprint(shipped_copy) != first.fingerprint
    assert not second.ask("What does a flumbrigator do?").abstained
    assert len(cached_folders(tmp_path)) == 2  # a new key; the old entry is simply unused


def test_shipped_cache_with_a_stale_fingerprint_is_rebuilt(
    shipped_copy: Path, tmp_path: Path
) -> None:
    api.default_index()
    (folder,) = cached_folders(tmp_path)
    stale = Index.build(DOCUMENTS, name="stale")
    stale.save(folder)  # same cache key, wrong content and fingerprint
    api.default_index.cache_clear()
    again = api.default_index()
    assert again.fingerprint == corpus_fingerprint(shipped_copy)
    assert again.name != "stale"
    assert Index.load(folder).fingerprint == again.fingerprint  # the cache was rewritten


@pytest.mark.parametrize("damage", ["manifest", "array", "pickle"])
def test_damaged_shipped_cache_is_rebuilt(shipped_copy: Path, tmp_path: Path, damage: str) -> None:
    expected = api.default_index().ask(QUESTION).to_dict()
    (folder,) = cached_folders(tmp_path)
    marker = tmp_path / "pwned"
    if damage == "manifest":
        (folder / MANIFEST).write_text("{", "utf-8")
    elif damage == "array":
        array_path(folder, "post_w").write_bytes(b"\x93NUMPY")
    else:
        np.save(array_path(folder, "post_scale"), object_array(marker), allow_pickle=True)
        redigest(folder, "post_scale")
    api.default_index.cache_clear()
    assert api.default_index().ask(QUESTION).to_dict() == expected
    assert_loads_and_answers_shipped(folder)
    assert not marker.exists()


def assert_loads_and_answers_shipped(folder: Path) -> None:
    index = Index.load(folder)
    assert index.n_passages > 0 and isinstance(index.ask("What is an EMT?"), Answer)


# --- atomic save: a save killed at any moment leaves a loadable index -----------------------------

SAVER = textwrap.dedent(
    """
    import sys
    from emsqa.index import Index

    source, target = sys.argv[1], sys.argv[2]
    index = Index.load(source)
    print("ready", flush=True)
    while True:
        index.save(target)
    """
)


def synthetic_documents(n: int, seed: int = 7) -> list[Document]:
    rng = random.Random(seed)
    vocabulary = [f"term{i}" for i in range(1500)] + ["tourniquet", "wound", "pressure"]
    docs = []
    for i in range(n):
        sentences = [" ".join(rng.choices(vocabulary, k=12)) for _ in range(5)]
        docs.append(Document(id=f"syn{i}.txt", title=f"Synthetic {i}", text=". ".join(sentences)))
    return docs


def kill_saver(source: Path, target: Path, delay: float, env: dict[str, str]) -> None:
    """Start a process saving `source` over `target` again and again; SIGKILL it after `delay`."""
    with subprocess.Popen(
        [sys.executable, "-c", SAVER, str(source), str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        try:
            started = child.stdout.readline().strip() == b"ready"
            if started:
                time.sleep(delay)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
        assert started, "the saver did not start: " + child.stderr.read().decode()[-2000:]


def test_first_save_killed_leaves_a_folder_the_next_save_reuses(
    built: Index, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh"
    (fresh / ".data-0123456789ab.partial").mkdir(parents=True)
    (fresh / ".data-0123456789ab.partial" / "idf.npy").write_bytes(b"\x93NUMPY half")
    (fresh / ".manifest.json.0badf00d.tmp").write_text('{"format": "emsq', "utf-8")
    refused(fresh, str(fresh), "manifest.json is missing")
    built.save(fresh)
    assert sorted(p.name for p in fresh.iterdir()) == sorted([MANIFEST, manifest_of(fresh)["data"]])
    assert_loads_and_answers(fresh)


def test_save_killed_at_random_moments_leaves_a_loadable_index(
    built: Index, tmp_path: Path
) -> None:
    target = built.save(tmp_path / "target")
    big = Index.build(synthetic_documents(3000) + DOCUMENTS, name="big")
    big.save(tmp_path / "big")
    sizes = {built.n_documents, big.n_documents}
    env = dict(os.environ, PYTHONPATH=str(REPO))
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    interrupted = 0
    deadline = time.monotonic() + 18
    kills = 0
    while kills < 6 and time.monotonic() < deadline:
        kill_saver(tmp_path / "big", target, rng.uniform(0.02, 0.6), env)
        kills += 1
        generations = [p.name for p in target.iterdir() if p.name.lstrip(".").startswith("data-")]
        interrupted += len(generations) > 1 or any(".partial" in g for g in generations)
        index = Index.load(target)  # old or new, never half
        assert index.n_documents in sizes, f"seed {seed}"
        assert index.search("tourniquet wound pressure"), f"seed {seed}"
        assert not index.ask(QUESTION).abstained, f"seed {seed}"
    assert kills >= 3, "too slow: fewer than three kills in 18 s"
    assert interrupted >= 1, f"no kill landed inside a save (seed {seed})"
    # The next complete save clears every abandoned generation.
    big.save(target)
    assert [p.name for p in target.iterdir() if "data-" in p.name] == [manifest_of(target)["data"]]
    assert Index.load(target).n_documents == big.n_documents


def test_save_failing_midway_keeps_the_old_index(
    built: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import emsqa.store
    from emsqa.errors import IndexWriteError

    target = built.save(tmp_path / "idx")
    before = manifest_of(target)
    bigger = Index.build([*DOCUMENTS, *synthetic_documents(20)], name="bigger")
    real_save = np.save
    calls = {"n": 0}

    def disk_fills_up(file: Any, arr: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(file, arr, *args, **kwargs)

    monkeypatch.setattr(emsqa.store.np, "save", disk_fills_up)
    with pytest.raises(IndexWriteError, match="No space left on device") as info:
        bigger.save(target)
    assert str(target) in str(info.value)
    monkeypatch.undo()
    assert manifest_of(target) == before
    assert assert_loads_and_answers(target).n_documents == built.n_documents
    bigger.save(target)  # the next save succeeds and sweeps the abandoned partial folder
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [MANIFEST, manifest_of(target)["data"]]
    )
    assert Index.load(target).n_documents == bigger.n_documents
