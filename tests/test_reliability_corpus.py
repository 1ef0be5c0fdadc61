"""Reliability of corpora: every bad path or file gets a clear answer through Index.build and the CLI.

An unusable file inside a folder is skipped with one EmsqaWarning naming it (the rest is indexed);
when nothing usable remains, CorpusError names the path. The CLI prints warnings as
"emsqa: warning: ..." lines and an error as exactly one "emsqa: error: ..." line, exit code 1.
"""

from __future__ import annotations

import errno
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

import emsqa.corpus
from emsqa.cli import main
from emsqa.errors import CorpusError, EmsqaWarning, UsageError
from emsqa.index import Index

GOOD = (
    "Scene safety\n\nBefore touching a patient the crew checks the scene for traffic, fire and "
    "violence. A safe scene protects the responders and the patient alike.\n"
)
HUNDRED_MB = 100 * 2**20


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def encrypted_pdf() -> bytes:
    from io import BytesIO

    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.encrypt("secret")
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def big_text_file(path: Path, size: int = HUNDRED_MB) -> Path:
    """A plain-text file of `size` bytes, written 1 MB at a time (the test never holds it all)."""
    line = b"The ambulance crew checks airway, breathing and circulation on every call.\n"
    block = line * (2**20 // len(line))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        written = 0
        while written + len(block) <= size:
            f.write(block)
            written += len(block)
        f.write(b"x" * (size - written))
    assert path.stat().st_size == size
    return path


def build(path: Path | str) -> tuple[Index | None, str, list[str]]:
    """Index.build(path): (index or None, the CorpusError message or '', warning messages)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            index, error = Index.build(path), ""
        except CorpusError as exc:
            index, error = None, str(exc)
    for w in caught:
        assert issubclass(w.category, EmsqaWarning), w
    return index, error, [str(w.message) for w in caught]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, list[str]]:
    code = main(args)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert "Traceback" not in err
    assert all(line.startswith(("emsqa: ", "hint: ")) for line in lines), lines
    return code, out, lines


def errors_of(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("emsqa: error:")]


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 100 MB text file for the whole module (cases hard-link it instead of writing another)."""
    return big_text_file(tmp_path_factory.mktemp("huge") / "original.txt")


# --- each bad input: what Index.build says ---------------------------------------------------------

# name -> (builds the case under a folder and returns the path to index, expected message parts)
Case = Callable[[Path, Path], Path]


def _missing(tmp: Path, huge: Path) -> Path:
    return tmp / "no-such-folder"


def _empty_folder(tmp: Path, huge: Path) -> Path:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def _only_unsupported(tmp: Path, huge: Path) -> Path:
    for name in ("notes.docx", "data.csv", "image.png", "README"):
        write(tmp / "unsupported" / name, "some words")
    return tmp / "unsupported"


def _binary_txt(tmp: Path, huge: Path) -> Path:
    write(tmp / "bin" / "photo.txt", bytes(range(256)) * 40)
    return tmp / "bin"


def _empty_file(tmp: Path, huge: Path) -> Path:
    write(tmp / "ef" / "empty.txt", b"")
    return tmp / "ef"


def _whitespace_file(tmp: Path, huge: Path) -> Path:
    write(tmp / "ws" / "blank.md", " \n\t\n  \n")
    return tmp / "ws"


def _corrupt_pdf(tmp: Path, huge: Path) -> Path:
    write(tmp / "pdf" / "broken.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage\n%%EOF")
    return tmp / "pdf"


def _encrypted_pdf(tmp: Path, huge: Path) -> Path:
    write(tmp / "enc" / "locked.pdf", encrypted_pdf())
    return tmp / "enc"


def _huge_file(tmp: Path, huge: Path) -> Path:
    (tmp / "huge").mkdir()
    os.link(huge, tmp / "huge" / "huge.txt")  # a second name of the one 100 MB file: no copy
    return tmp / "huge"


def _device(tmp: Path, huge: Path) -> Path:
    return Path(os.devnull)


CASES: dict[str, tuple[Case, list[str]]] = {
    "missing path": (_missing, ["not found", "no-such-folder"]),
    "empty folder": (_empty_folder, ["no .txt", "empty"]),
    "only unsupported files": (_only_unsupported, ["no .txt", ".pdf", "unsupported"]),
    "binary file named .txt": (_binary_txt, ["no usable documents", "bin"]),
    "empty file": (_empty_file, ["no usable documents", "ef"]),
    "whitespace-only file": (_whitespace_file, ["no usable documents", "ws"]),
    "corrupt PDF": (_corrupt_pdf, ["no usable documents", "pdf"]),
    "encrypted PDF": (_encrypted_pdf, ["no usable documents", "enc"]),
    "100 MB text file": (_huge_file, ["no usable documents", "huge"]),
    "a device": (_device, ["not a regular file or folder", os.devnull]),
}
WARNINGS = {  # the warning naming the skipped file, where one is expected
    "binary file named .txt": ["photo.txt", "binary"],
    "empty file": ["empty.txt", "empty file"],
    "whitespace-only file": ["blank.md", "whitespace"],
    "corrupt PDF": ["broken.pdf", "not a PDF"],
    "encrypted PDF": ["locked.pdf", "encrypted"],
    "100 MB text file": ["huge.txt", "104,857,600 bytes", "max_file_bytes=67,108,864"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_corpus_alone_raises_corpus_error_naming_it(
    tmp_path: Path, huge: Path, case: str
) -> None:
    make, parts = CASES[case]
    path = make(tmp_path, huge)
    index, error, messages = build(path)
    assert index is None, f"{case}: indexed instead of refused"
    assert "\n" not in error
    for part in parts:
        assert part in error, (case, error)
    for part in WARNINGS.get(case, []):
        assert any(part in m for m in messages), (case, part, messages)
    assert len(messages) == (1 if case in WARNINGS else 0), messages


@pytest.mark.parametrize("case", list(WARNINGS))
def test_bad_file_beside_a_good_one_is_skipped_and_the_rest_indexed(
    tmp_path: Path, huge: Path, case: str
) -> None:
    make, _ = CASES[case]
    folder = make(tmp_path, huge)
    write(folder / "good.txt", GOOD)
    index, error, messages = build(folder)
    assert index is not None, error
    assert [d for d in {p.doc_id for p in index.passages()}] == ["good.txt"]
    assert len(messages) == 1
    for part in WARNINGS[case]:
        assert part in messages[0]
    assert not index.ask("What does the crew check for a safe scene?").abstained


@pytest.mark.parametrize("case", list(CASES))
def test_cli_index_of_a_bad_corpus_is_one_error_line(
    tmp_path: Path, huge: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    make, parts = CASES[case]
    path = make(tmp_path, huge)
    code, out, lines = run_cli(["index", str(path), "-o", str(tmp_path / "out")], capsys)
    assert code == 1
    assert out == ""
    (error,) = errors_of(lines)
    assert all(part in error for part in parts), error
    assert not (tmp_path / "out").exists()  # nothing half-written


@pytest.mark.parametrize("case", ["missing path", "binary file named .txt", "encrypted PDF"])
def test_cli_ask_with_a_bad_corpus_is_one_error_line(
    tmp_path: Path, huge: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    make, parts = CASES[case]
    path = make(tmp_path, huge)
    code, out, lines = run_cli(["ask", "--corpus", str(path), "what is triage?"], capsys)
    assert code == 1 and out == ""
    (error,) = errors_of(lines)
    assert all(part in error for part in parts), error
    assert [line for line in lines if line.startswith("emsqa: warning:")] == [
        f"emsqa: warning: {m}" for m in build(path)[2]
    ]


def test_cli_index_warns_per_skipped_file_and_indexes_the_rest(
    tmp_path: Path, huge: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for case in ("binary file named .txt", "empty file", "corrupt PDF", "encrypted PDF"):
        for path in CASES[case][0](tmp_path, huge).iterdir():
            path.rename(folder / path.name)
    write(folder / "good.txt", GOOD)
    code, out, lines = run_cli(["index", str(folder), "-o", str(tmp_path / "idx")], capsys)
    assert code == 0
    assert out.startswith("Indexed 1 document into ")
    assert not errors_of(lines)
    assert len(lines) == 4
    for name in ("photo.txt", "empty.txt", "broken.pdf", "locked.pdf"):
        assert sum(name in line for line in lines) == 1, (name, lines)
    assert Index.load(tmp_path / "idx").n_documents == 1


# --- encodings ------------------------------------------------------------------------------------


def test_cp1252_text_is_decoded_with_a_warning_naming_the_file(tmp_path: Path) -> None:
    text = "Résumé of the café crew: “triage” sorts patients by urgency – first the worst.\n"
    write(tmp_path / "c" / "cp.txt", text.encode("cp1252"))
    index, error, messages = build(tmp_path / "c")
    assert index is not None, error
    assert messages == [f"{tmp_path / 'c' / 'cp.txt'} is not valid UTF-8; read it as cp1252"]
    (passage,) = index.passages()
    assert passage.text == text.strip()
    assert index.search("résumé café")[0].passage.doc_id == "cp.txt"


def test_latin1_text_is_decoded_with_a_warning_naming_the_file(tmp_path: Path) -> None:
    # 0x81 and 0x8d are undefined in cp1252, so only latin-1 can read this.
    raw = "Señal de tráfico \x81\x8d: the crew parks upstream of the crash.\n".encode("latin-1")
    write(tmp_path / "l" / "latin.txt", raw)
    index, error, messages = build(tmp_path / "l")
    assert index is not None, error
    assert messages == [f"{tmp_path / 'l' / 'latin.txt'} is not valid UTF-8; read it as latin-1"]
    assert "Señal de tráfico" in next(iter(index.passages())).text


def test_file_name_that_is_not_utf8_still_indexes_saves_and_loads(tmp_path: Path) -> None:
    folder = tmp_path / "names"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9 notes.txt")
    write(folder / name, GOOD)
    index, error, messages = build(folder)
    assert index is not None and not messages, error
    index.save(tmp_path / "idx")
    loaded = Index.load(tmp_path / "idx")
    assert loaded.n_documents == 1
    assert not loaded.ask("What does the crew check for a safe scene?").abstained


# --- links, duplicates, size, odd files -----------------------------------------------------------


def test_symlink_loops_end_and_each_document_is_read_once(tmp_path: Path) -> None:
    root = tmp_path / "looped"
    write(root / "a" / "scene.txt", GOOD)
    write(root / "b" / "other.md", "# Triage\n\nTriage sorts patients by the urgency of care.\n")
    os.symlink(root, root / "a" / "back-to-root")
    os.symlink(root / "b", root / "b" / "self")
    os.symlink(root / "a", root / "b" / "to-a")
    index, error, messages = build(root)
    assert index is not None, error
    assert messages == []
    assert sorted({p.doc_id for p in index.passages()}) == ["a/scene.txt", "b/other.md"]


def test_symlink_loop_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "loop"
    write(root / "scene.txt", GOOD)
    os.symlink(root, root / "again")
    code, out, lines = run_cli(["ask", "--corpus", str(root), "what makes a scene safe?"], capsys)
    assert code == 0 and lines == []
    assert "[1]" in out


def test_duplicate_documents_keep_the_first_with_a_warning(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.txt", GOOD)
    write(tmp_path / "d" / "b.txt", GOOD)
    write(tmp_path / "d" / "sub" / "c.txt", GOOD)
    index, error, messages = build(tmp_path / "d")
    assert index is not None, error
    assert {p.doc_id for p in index.passages()} == {"a.txt"}
    assert len(messages) == 2
    assert all("same text as" in m and m.endswith("a.txt") for m in messages)
    hits = index.search("scene safety traffic fire", k=5)
    assert len(hits) == 1  # the duplicate does not crowd the results


def test_hundred_mb_file_alone_is_refused_by_the_cli(
    huge: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = huge
    code, out, lines = run_cli(["ask", "--corpus", str(path), "what is checked?"], capsys)
    assert code == 1 and out == ""
    assert any("max_file_bytes" in line and str(path) in line for line in lines), lines
    (error,) = errors_of(lines)
    assert str(path) in error


def test_file_over_the_limit_is_indexed_when_the_limit_allows(tmp_path: Path) -> None:
    path = big_text_file(tmp_path / "c" / "big.txt", size=2 * 2**20)
    with (
        pytest.warns(EmsqaWarning, match="big.txt.*max_file_bytes=1,048,576"),
        pytest.raises(CorpusError, match="no usable documents"),
    ):
        emsqa.corpus.load_documents(path.parent, max_file_bytes=2**20)
    (doc,) = emsqa.corpus.load_documents(path.parent, max_file_bytes=4 * 2**20)
    assert len(doc.text) > 2 * 10**6


def test_fifo_named_txt_is_not_read_and_does_not_hang(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    write(tmp_path / "f" / "good.txt", GOOD)
    os.mkfifo(tmp_path / "f" / "pipe.txt")  # opening it for reading would block forever
    index, error, _ = build(tmp_path / "f")
    assert index is not None, error
    assert {p.doc_id for p in index.passages()} == {"good.txt"}


@pytest.mark.parametrize("bad", [None, 42, b"\xff\xfe", "nul\0byte", ""])
def test_corpus_path_of_the_wrong_kind_is_a_clear_error(bad: object) -> None:
    with pytest.raises((CorpusError, UsageError)) as info:
        Index.build(bad)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_iterable_of_non_documents_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="Documents or strings"):
        Index.build([GOOD, 3.5])  # type: ignore[list-item]


# --- permissions ----------------------------------------------------------------------------------


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads every file anyway"
)
def test_unreadable_file_is_skipped_with_a_warning(tmp_path: Path) -> None:
    write(tmp_path / "p" / "good.txt", GOOD)
    locked = write(tmp_path / "p" / "locked.txt", "secret words")
    locked.chmod(0)
    try:
        index, error, messages = build(tmp_path / "p")
    finally:
        locked.chmod(0o600)
    assert index is not None, error
    assert messages and "locked.txt" in messages[0] and "permission denied" in messages[0]


def _deny(monkeypatch: pytest.MonkeyPatch, denied: Path) -> None:
    """Make the loader's open() fail with EACCES for `denied`, as for a file of another user."""
    real_open = open

    def guarded_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if os.path.realpath(file) == os.path.realpath(denied):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(emsqa.corpus, "open", guarded_open, raising=False)


def test_permission_denied_file_is_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "p" / "good.txt", GOOD)
    locked = write(tmp_path / "p" / "locked.txt", "Triage sorts patients by urgency.")
    _deny(monkeypatch, locked)
    index, error, messages = build(tmp_path / "p")
    assert index is not None, error
    assert {p.doc_id for p in index.passages()} == {"good.txt"}
    assert messages == [f"skipped {locked}: cannot be read (permission denied)"]


def test_permission_denied_only_file_is_one_cli_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    locked = write(tmp_path / "p" / "locked.txt", "Triage sorts patients by urgency.")
    _deny(monkeypatch, locked)
    code, out, lines = run_cli(["index", str(locked.parent), "-o", str(tmp_path / "o")], capsys)
    assert code == 1 and out == ""
    assert "permission denied" in lines[0] and "locked.txt" in lines[0]
    (error,) = errors_of(lines)
    assert "no usable documents" in error and str(locked.parent) in error


def test_permission_denied_folder_is_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "p" / "good.txt", GOOD)
    write(tmp_path / "p" / "private" / "notes.txt", "Triage sorts patients by urgency.")
    denied = os.path.realpath(tmp_path / "p" / "private")
    real_scandir = os.scandir

    def guarded_scandir(path):  # type: ignore[no-untyped-def]
        if os.path.realpath(path) == denied:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(emsqa.corpus.os, "scandir", guarded_scandir)
    index, error, messages = build(tmp_path / "p")
    assert index is not None, error
    assert {p.doc_id for p in index.passages()} == {"good.txt"}
    assert len(messages) == 1 and "private" in messages[0] and "permission denied" in messages[0]


def test_file_names_with_control_characters_never_reach_the_terminal_raw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "names"
    write(folder / "evil\x1b[2J\x1b]0;title\x07.txt", b"bin\x00ary")
    code, out, lines = run_cli(["index", str(folder), "-o", str(tmp_path / "o")], capsys)
    assert code == 1 and out == ""
    assert len(lines) == 2  # the warning naming the file, then the error
    text = "\n".join(lines)
    assert "\x1b" not in text and "\x07" not in text
    assert "evil\ufffd[2J\ufffd]0;title\ufffd.txt" in lines[0]
