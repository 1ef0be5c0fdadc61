"""Tests of emsqa.corpus: files -> Documents, robustness, fingerprints."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
import time
import unicodedata
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emsqa.corpus import SUPPORTED_SUFFIXES, corpus_fingerprint, load_documents, load_file
from emsqa.datatypes import Document
from emsqa.errors import CorpusError, EmsqaWarning, UsageError

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED_DATA = REPO.parent / "shared" / "data"


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


def only(docs: list[Document]) -> Document:
    assert len(docs) == 1, [d.id for d in docs]
    return docs[0]


def assert_sections_exact(doc: Document) -> None:
    for section in doc.sections:
        assert doc.text[section.start : section.end] == section.title
    starts = [s.start for s in doc.sections]
    assert starts == sorted(starts)


def make_pdf(pages: list[list[str]], *, title: str = "", password: str | None = None) -> bytes:
    """A small PDF whose pages show the given lines in Helvetica (made with pypdf itself)."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        shown = " T* ".join(f"({line}) Tj" for line in lines)
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 14 TL 72 720 Td {shown} ET".encode("latin-1"))
        page.replace_contents(stream)
    if title:
        writer.add_metadata({"/Title": title})
    if password is not None:
        writer.encrypt(password, algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# The shipped corpus


def test_shipped_corpus_has_the_seed_document_with_its_sections() -> None:
    docs = load_documents(REPO / "corpus")
    seed = next(d for d in docs if d.id == "00-emt-vs-paramedic.txt")
    assert seed.title == "Difference between EMT and Paramedic"
    titles = [s.title for s in seed.sections]
    assert "What is EMT?" in titles and "What is Paramedic?" in titles
    assert titles.index("What is EMT?") < titles.index("What is Paramedic?")
    raw = (REPO / "corpus" / "00-emt-vs-paramedic.txt").read_bytes().decode("utf-8-sig")
    assert seed.text == unicodedata.normalize("NFC", raw.replace("\r\n", "\n"))
    assert seed.source.endswith("00-emt-vs-paramedic.txt")
    assert_sections_exact(seed)
    for doc in docs:
        assert_sections_exact(doc)
    assert [d.id for d in docs] == sorted(d.id for d in docs)


def test_the_seed_bullets_and_long_paragraphs_are_not_headings() -> None:
    seed = only(load_file(REPO / "corpus" / "00-emt-vs-paramedic.txt"))
    assert seed.id == "00-emt-vs-paramedic.txt"
    for section in seed.sections:
        assert len(section.title.split()) <= 12
        assert not section.title.startswith("•")


# --------------------------------------------------------------------------------------------------
# Plain text


def test_txt_text_is_kept_except_newlines(tmp_path: Path) -> None:
    raw = "Title Line\r\n\r\nFirst paragraph.\r\nSecond line.\r\n"
    doc = only(load_documents(write(tmp_path / "a.txt", raw)))
    assert doc.text == raw.replace("\r\n", "\n")
    assert doc.id == "a.txt"
    assert doc.title == "Title Line"
    assert doc.source == str(tmp_path / "a.txt")


def test_txt_heading_rules(tmp_path: Path) -> None:
    text = (
        "  Stroke Care  \n\n"
        "Intro paragraph that runs on.\n\n"
        "Signs of Stroke\n\n"
        "Face, arm, speech.\n\n"
        "Ends with a colon:\n\n"
        "Part of a paragraph\nthat continues here\n\n"
        "• a bullet standing alone\n\n"
        "one two three four five six seven eight nine ten eleven twelve thirteen\n\n"
        "Time Is Brain\n\n"
        "Last words"
    )
    doc = only(load_documents(write(tmp_path / "s.txt", text)))
    assert [s.title for s in doc.sections] == ["Stroke Care", "Signs of Stroke", "Time Is Brain"]
    assert doc.title == "Stroke Care"
    assert_sections_exact(doc)


def test_long_first_line_gives_a_short_title_and_no_heading(tmp_path: Path) -> None:
    first = "word " * 60
    doc = only(load_documents(write(tmp_path / "long.txt", first + "\n\nMore.\n")))
    assert len(doc.title) <= 101 and doc.title.endswith("…")
    assert doc.sections == ()


def test_text_is_nfc_but_not_nfkc(tmp_path: Path) -> None:
    decomposed = "Cafe\u0301 ﬁre\n"
    doc = only(load_documents(write(tmp_path / "u.txt", decomposed)))
    assert doc.text == "Café ﬁre\n"
    assert "ﬁ" in doc.text  # a compatibility ligature survives: NFKC would have split it


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    doc = only(load_documents(write(tmp_path / "b.txt", b"\xef\xbb\xbfHello\n")))
    assert doc.text == "Hello\n"
    assert doc.title == "Hello"


def test_cp1252_fallback_warns_with_file_and_encoding(tmp_path: Path) -> None:
    path = write(tmp_path / "w.txt", "Don’t stop – €5".encode("cp1252"))
    with pytest.warns(EmsqaWarning, match=r"w\.txt.*cp1252"):
        doc = only(load_documents(path))
    assert doc.text == "Don’t stop – €5"


def test_latin1_fallback_when_cp1252_fails(tmp_path: Path) -> None:
    path = write(tmp_path / "l.txt", b"caf\xe9 \x81 ok")  # 0x81 is undefined in cp1252
    with pytest.warns(EmsqaWarning, match=r"l\.txt.*latin-1"):
        doc = only(load_documents(path))
    assert doc.text == "café \x81 ok"


def test_utf16_with_bom_is_text_not_binary(tmp_path: Path) -> None:
    path = write(tmp_path / "x.txt", "Heading\n\nBody.\n".encode("utf-16"))
    doc = only(load_documents(path))
    assert doc.text == "Heading\n\nBody.\n"


# --------------------------------------------------------------------------------------------------
# Folders: order, ids, hidden files, errors


def test_folder_order_ids_and_sources(tmp_path: Path) -> None:
    root = tmp_path / "c"
    write(root / "b.txt", "B doc\n")
    write(root / "a.md", "# A doc\n")
    write(root / "sub" / "notes.md", "# Notes\n")
    write(root / "sub" / "deeper" / "z.htm", "<h1>Z</h1>")
    write(root / "ignored.csv", "x,y\n")
    write(root / "upper.TXT", "Upper case suffix\n")
    docs = load_documents(root)
    ids = [d.id for d in docs]
    assert ids == ["a.md", "b.txt", "sub/deeper/z.htm", "sub/notes.md", "upper.TXT"]
    assert [d.source for d in docs] == [os.path.join(str(root), i) for i in ids]


def test_hidden_files_and_folders_are_skipped_silently(tmp_path: Path) -> None:
    write(tmp_path / "seen.txt", "Seen\n")
    write(tmp_path / ".hidden.txt", "\x00binary would warn")
    write(tmp_path / ".git" / "x.txt", "Not seen\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        docs = load_documents(tmp_path)
    assert [d.id for d in docs] == ["seen.txt"]


def test_missing_path_names_it() -> None:
    with pytest.raises(CorpusError, match="no-such-corpus"):
        load_documents("no-such-corpus")


def test_folder_without_supported_files(tmp_path: Path) -> None:
    write(tmp_path / "data.csv", "a,b\n")
    with pytest.raises(CorpusError, match=r"no \.txt, \.md.*files under") as info:
        load_documents(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_single_file_of_unsupported_type(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"unsupported.*x\.docx"):
        load_documents(write(tmp_path / "x.docx", "text"))


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("bin.txt", b"abc\x00def" * 10, "binary"),
        ("empty.md", b"", "empty"),
        ("blank.txt", b"  \n\t\n ", "whitespace"),
        ("big.txt", b"x" * 2000, "max_file_bytes"),
        ("markup-only.html", b"<script>only()</script><style>p{}</style>", "no text"),
    ],
)
def test_unusable_file_is_skipped_with_one_warning(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    write(tmp_path / "good.txt", "Good\n")
    write(tmp_path / name, content)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs = load_documents(tmp_path, max_file_bytes=1000)
    assert [d.id for d in docs] == ["good.txt"]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert caught[0].category is EmsqaWarning
    assert name in messages[0] and reason in messages[0]


def test_nothing_usable_raises_corpus_error_saying_why(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", b"\x00\x01")
    write(tmp_path / "b.txt", b"")
    with pytest.warns(EmsqaWarning), pytest.raises(CorpusError, match=r"no usable documents.*2"):
        load_documents(tmp_path)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read a chmod 000 file"
)
def test_unreadable_file_is_skipped(tmp_path: Path) -> None:
    write(tmp_path / "good.txt", "Good\n")
    locked = write(tmp_path / "locked.txt", "Secret\n")
    locked.chmod(0)
    try:
        with pytest.warns(EmsqaWarning, match=r"locked\.txt.*permission denied"):
            docs = load_documents(tmp_path)
    finally:
        locked.chmod(0o644)
    assert [d.id for d in docs] == ["good.txt"]


def test_symlink_loop_terminates(tmp_path: Path) -> None:
    write(tmp_path / "a" / "doc.txt", "Doc\n")
    try:
        (tmp_path / "a" / "loop").symlink_to(tmp_path, target_is_directory=True)
    except OSError:
        pytest.skip("this file system cannot make symbolic links")
    docs = load_documents(tmp_path)
    assert [d.id for d in docs] == ["a/doc.txt"]


def test_a_folder_reached_twice_is_read_once_under_the_same_name(tmp_path: Path) -> None:
    write(tmp_path / "b" / "doc.txt", "Doc\n")
    try:
        (tmp_path / "a").mkdir()
        (tmp_path / "a" / "link").symlink_to(tmp_path / "b", target_is_directory=True)
    except OSError:
        pytest.skip("this file system cannot make symbolic links")
    ids = [d.id for d in load_documents(tmp_path)]
    assert ids == ["a/link/doc.txt"]  # name order: "a" comes before "b"
    assert [d.id for d in load_documents(tmp_path)] == ids


def test_broken_symlink_is_skipped_with_a_warning(tmp_path: Path) -> None:
    write(tmp_path / "ok.txt", "Fine\n")
    try:
        (tmp_path / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    except OSError:
        pytest.skip("this file system cannot make symbolic links")
    with pytest.warns(EmsqaWarning, match=r"gone\.txt.*broken"):
        docs = load_documents(tmp_path)
    assert [d.id for d in docs] == ["ok.txt"]


def test_duplicate_text_keeps_the_first(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "Same words\n")
    write(tmp_path / "b.txt", "Same words\n")
    write(tmp_path / "c.txt", "Other words\n")
    with pytest.warns(EmsqaWarning, match=r"b\.txt.*same text as .*a\.txt"):
        docs = load_documents(tmp_path)
    assert [d.id for d in docs] == ["a.txt", "c.txt"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_named_pipes_are_never_opened(tmp_path: Path) -> None:
    write(tmp_path / "ok.txt", "Fine\n")
    os.mkfifo(tmp_path / "pipe.txt")  # reading it would block forever
    assert [d.id for d in load_documents(tmp_path)] == ["ok.txt"]
    with pytest.raises(CorpusError, match=r"not a regular file.*pipe\.txt"):
        load_documents(tmp_path / "pipe.txt")
    with pytest.raises(CorpusError, match=r"pipe\.txt"):
        load_file(tmp_path / "pipe.txt")
    with pytest.raises(CorpusError, match=r"pipe\.txt"):
        corpus_fingerprint(tmp_path / "pipe.txt")


def test_load_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"gone\.md"):
        load_file(tmp_path / "gone.md")
    with pytest.raises(CorpusError, match=r"cannot load .*bin\.txt: binary"):
        load_file(write(tmp_path / "bin.txt", b"\x00\x01\x02"))
    with pytest.raises(CorpusError, match=r"unsupported.*x\.rtf"):
        load_file(write(tmp_path / "x.rtf", "{\\rtf1}"))


@pytest.mark.parametrize("bad", ["", None, 42, b"corpus"])
def test_a_path_of_the_wrong_kind_is_a_corpus_error(bad: object) -> None:
    with pytest.raises(CorpusError, match="corpus path"):
        load_documents(bad)  # type: ignore[arg-type]
    with pytest.raises(CorpusError, match="corpus path"):
        corpus_fingerprint(bad)  # type: ignore[arg-type]


def test_warnings_made_errors_by_the_caller_are_not_swallowed(tmp_path: Path) -> None:
    write(tmp_path / "ok.txt", "Fine\n")
    write(tmp_path / "r.jsonl", '{"text": "good"}\n{broken\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmsqaWarning)
        with pytest.raises(EmsqaWarning, match=r"line 2 of .*r\.jsonl"):
            load_documents(tmp_path)
        with pytest.raises(EmsqaWarning, match=r"line 2 of .*r\.jsonl"):
            load_file(tmp_path / "r.jsonl")


def test_bad_max_file_bytes_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="max_file_bytes"):
        load_documents(write(tmp_path / "a.txt", "A\n"), max_file_bytes=0)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=st.binary(max_size=300)
    | st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
    suffix=st.sampled_from(SUPPORTED_SUFFIXES),
)
def test_only_corpus_error_escapes_on_any_bytes(
    tmp_path: Path, content: bytes, suffix: str
) -> None:
    folder = tmp_path / f"fuzz{suffix}"
    write(folder / f"f{suffix}", content)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            docs = load_documents(folder)
        except CorpusError:
            docs = []
    assert all(issubclass(w.category, EmsqaWarning) for w in caught)
    for doc in docs:
        assert doc.text.strip()
        assert unicodedata.is_normalized("NFC", doc.text)
        assert_sections_exact(doc)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.text(alphabet=st.sampled_from("ab .,:?\t•"), min_size=0, max_size=30), max_size=12)
)
def test_txt_text_survives_and_sections_point_into_it(tmp_path: Path, lines: list[str]) -> None:
    raw = "\n".join(lines)
    if not raw.strip():
        return
    doc = only(load_file(write(tmp_path / "p.txt", raw)))
    assert doc.text == raw
    assert_sections_exact(doc)
    for section in doc.sections:
        assert not section.title.endswith((".", ",", ":"))


# --------------------------------------------------------------------------------------------------
# Markdown


def test_markdown_fixture_becomes_plain_text_with_sections() -> None:
    doc = only(load_file(FIXTURES / "guide.md"))
    assert doc.title == "Airway Basics for EMTs"  # from the front matter
    assert [s.title for s in doc.sections] == ["Airway Management", "Adjuncts", "Suction Devices"]
    assert_sections_exact(doc)
    text = doc.text
    assert "author:" not in text and "---" not in text
    assert "#" not in text
    assert "reviewer note" not in text  # the HTML comment
    assert "comes first, before anything else." in text
    assert "Use the head-tilt chin-lift unless a spinal injury is suspected." in text
    assert "https://" not in text and "airway.png" not in text and "diagram" not in text
    assert "- an oropharyngeal airway (OPA) for an unresponsive patient" in text
    assert "- a nasopharyngeal airway (NPA) when the gag reflex is intact" in text
    assert "    - size it from the nostril to the earlobe" in text
    assert "snake_case_name and 2*3*4 as written" in text
    assert "A literal *star* stays." in text
    assert "*not emphasis* inside code" in text
    assert "Quoted advice: reassess" in text and ">" not in text
    assert "| OPA     | absent     |" in text and "|-----" not in text
    assert "\n\n\n" not in text and not text.startswith("\n") and not text.endswith("\n")


def test_markdown_title_is_the_first_h1_else_the_first_line(tmp_path: Path) -> None:
    doc = only(load_file(write(tmp_path / "a.md", "Intro words\n\n## Sub\n\n# Main *Topic*\n")))
    assert doc.title == "Main Topic"
    doc = only(load_file(write(tmp_path / "b.markdown", "Just **a** line\nand more\n")))
    assert doc.title == "Just a line"
    assert doc.sections == ()


def test_markdown_heading_is_its_own_paragraph(tmp_path: Path) -> None:
    doc = only(load_file(write(tmp_path / "h.md", "# Shock\nSigns of shock include\n## Care ##\n")))
    assert doc.text == "Shock\n\nSigns of shock include\n\nCare"
    assert [(s.start, s.end, s.title) for s in doc.sections] == [(0, 5, "Shock"), (31, 35, "Care")]


def test_markdown_emphasis_rules_stay_fast_on_hostile_lines(tmp_path: Path) -> None:
    # Unbounded lazy emphasis patterns took minutes on such a line (one scan per unmatched marker).
    line = "a *b _c **d ~~e `f` " * 6000  # only the code spans pair up; no emphasis does
    started = time.perf_counter()
    doc = only(load_file(write(tmp_path / "hostile.md", line + "\n")))
    assert time.perf_counter() - started < 5
    assert doc.text == line.replace("`", "").strip()


# --------------------------------------------------------------------------------------------------
# HTML


def test_html_fixture_becomes_plain_text_with_sections() -> None:
    doc = only(load_file(FIXTURES / "page.html"))
    assert doc.title == "Scene Safety & Size-Up"
    assert [s.title for s in doc.sections] == ["Scene Size-Up", "What to Look For"]
    assert_sections_exact(doc)
    text = doc.text
    for hidden in ("color: red", "script text", "Course menu", "written by script", "comment"):
        assert hidden not in text
    assert "Before touching a patient, make sure the scene is safe — for you" in text
    assert "- Traffic, fire or downed power lines\n- Signs of violence\nor weapons" in text
    assert "\n\nCall for more resources early.\n\n" in text
    assert "Hazard | Action\nFire | Stay back" in text
    assert "<" not in text and "&" not in text


def test_html_title_falls_back_to_first_h1(tmp_path: Path) -> None:
    page = "<body><p>Lead</p><h2>Minor</h2><h1>Big &amp; Bold</h1><p>Text</p></body>"
    doc = only(load_file(write(tmp_path / "p.htm", page)))
    assert doc.title == "Big & Bold"
    assert [s.title for s in doc.sections] == ["Minor", "Big & Bold"]
    assert doc.text == "Lead\n\nMinor\n\nBig & Bold\n\nText"


def test_broken_html_still_loads(tmp_path: Path) -> None:
    page = "<html><head><title>T</title><body><p>Unclosed <b>bold <div>block</p></span><h2>H"
    doc = only(load_file(write(tmp_path / "b.html", page)))
    assert doc.title == "T"
    assert "Unclosed bold" in doc.text and "block" in doc.text
    assert_sections_exact(doc)


# --------------------------------------------------------------------------------------------------
# PDF


def test_pdf_pages_are_parted_by_a_blank_line(tmp_path: Path) -> None:
    data = make_pdf([["Cardiac Arrest", "Start CPR at once."], ["Page two text"]], title="CPR")
    doc = only(load_documents(write(tmp_path / "cpr.pdf", data)))
    assert doc.title == "CPR"
    assert doc.text == "Cardiac Arrest\nStart CPR at once.\n\nPage two text"
    assert doc.id == "cpr.pdf"


def test_pdf_without_metadata_title_uses_its_first_line(tmp_path: Path) -> None:
    doc = only(load_file(write(tmp_path / "n.pdf", make_pdf([["Burns", "Cool the burn."]]))))
    assert doc.title == "Burns"


def test_pdf_with_empty_user_password_is_read(tmp_path: Path) -> None:
    data = make_pdf([["Open to all"]], password="")
    assert only(load_file(write(tmp_path / "o.pdf", data))).text == "Open to all"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("locked.pdf", make_pdf([["Secret"]], password="s3cret"), "encrypted"),
        ("garbage.pdf", b"%PDF-1.4\nthis is not really a pdf", "PDF"),
        ("cut.pdf", make_pdf([["Cut short"]])[:200], "PDF"),
        ("blank.pdf", make_pdf([[]]), "without extractable text"),
    ],
)
def test_bad_pdf_is_skipped_quietly_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, data: bytes, reason: str
) -> None:
    write(tmp_path / "good.txt", "Good\n")
    write(tmp_path / name, data)
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs = load_documents(tmp_path)
    assert [d.id for d in docs] == ["good.txt"]
    assert len(caught) == 1 and caught[0].category is EmsqaWarning
    assert name in str(caught[0].message) and reason in str(caught[0].message)
    assert not [r for r in caplog.records if r.name.startswith("pypdf")]
    with pytest.raises(CorpusError, match=name):
        load_file(tmp_path / name)


# --------------------------------------------------------------------------------------------------
# JSON lines


def test_jsonl_records_become_documents(tmp_path: Path) -> None:
    lines = [
        json.dumps({"_id": "d1", "title": "Asthma", "text": "Wheezing and cough."}),
        "",
        json.dumps({"id": 7, "title": "", "text": "Untitled first line\nmore"}),
        json.dumps({"text": "No id at all", "title": "Anon"}),
    ]
    path = write(tmp_path / "sub" / "docs.jsonl", "\n".join(lines) + "\n")
    docs = load_documents(tmp_path)
    assert [d.id for d in docs] == ["d1", "7", "sub/docs.jsonl:4"]
    assert [d.title for d in docs] == ["Asthma", "Untitled first line", "Anon"]
    assert [d.source for d in docs] == [f"{tmp_path / 'sub' / 'docs.jsonl'}:{n}" for n in (1, 3, 4)]
    assert docs[0].text == "Wheezing and cough."
    assert [d.id for d in load_file(path, doc_id="named")] == ["d1", "7", "named:4"]


def test_jsonl_bad_lines_warn_with_file_and_line(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "ok", "text": "Fine text"}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"id": "no-text"}),
        json.dumps({"id": "blank", "text": "   "}),
        json.dumps({"id": ["weird"], "text": "Bad id"}),
    ]
    path = write(tmp_path / "r.jsonl", "\n".join(lines))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs = load_documents(path)
    assert [d.id for d in docs] == ["ok"]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 5
    for number, message in zip((2, 3, 4, 5, 6), messages, strict=True):
        assert f"line {number} of" in message and "r.jsonl" in message


def test_jsonl_without_usable_records_is_unusable(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.jsonl", "{oops\n[1]\n")
    with pytest.warns(EmsqaWarning, match=r"bad\.jsonl"), pytest.raises(CorpusError):
        load_documents(path)


def test_jsonl_duplicates_are_dropped_with_one_warning_each_kind(tmp_path: Path) -> None:
    records = [
        {"_id": "a", "text": "alpha"},
        {"_id": "b", "text": "alpha"},
        {"_id": "a", "text": "other"},
        {"_id": "c", "text": "gamma"},
        {"_id": "d", "text": "gamma"},
    ]
    path = write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in records))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs = load_documents(path)
    assert [d.id for d in docs] == ["a", "c"]
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2
    assert "1 record(s)" in messages[0] and "id" in messages[0] and "lines 3" in messages[0]
    assert "2 record(s)" in messages[1] and "lines 2, 5" in messages[1]


@pytest.mark.data
def test_medquad_jsonl_loads_quickly_and_completely(tmp_path: Path) -> None:
    source = SHARED_DATA / "medquad" / "beir" / "corpus.jsonl.gz"
    if not source.exists():
        pytest.skip(f"shared data not found at {source} (only present in the project workspace)")
    path = tmp_path / "medquad.jsonl"
    path.write_bytes(gzip.decompress(source.read_bytes()))
    expected_ids: list[str] = []
    seen_ids: set[str] = set()
    seen_text: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        text = record["text"].replace("\r\n", "\n").replace("\r", "\n")
        text = unicodedata.normalize("NFC", text)
        if record["_id"] not in seen_ids and text not in seen_text:  # a skipped record counts not
            expected_ids.append(record["_id"])
            seen_ids.add(record["_id"])
            seen_text.add(text)
    started = time.perf_counter()
    with pytest.warns(EmsqaWarning, match="repeating"):
        docs = load_documents(path)
    elapsed = time.perf_counter() - started
    assert [d.id for d in docs] == expected_ids
    assert all(d.title for d in docs)
    assert elapsed < 10, f"loading 16k records took {elapsed:.1f} s"


# --------------------------------------------------------------------------------------------------
# Fingerprints


def test_fingerprint_is_stable_and_sees_every_change(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "Alpha\n")
    write(tmp_path / "sub" / "b.md", "# Beta\n")
    first = corpus_fingerprint(tmp_path)
    assert first == corpus_fingerprint(tmp_path)
    assert len(first) == 40 and int(first, 16) >= 0

    write(tmp_path / ".hidden.txt", "ignored")
    write(tmp_path / "notes.csv", "ignored")
    assert corpus_fingerprint(tmp_path) == first

    write(tmp_path / "a.txt", "Alphb\n")  # same size, other bytes
    edited = corpus_fingerprint(tmp_path)
    assert edited != first
    (tmp_path / "a.txt").rename(tmp_path / "c.txt")
    renamed = corpus_fingerprint(tmp_path)
    assert renamed != edited
    write(tmp_path / "d.txt", "Delta\n")
    assert corpus_fingerprint(tmp_path) not in {first, edited, renamed}


def test_fingerprint_of_a_file_and_of_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "one.txt", "One\n")
    assert corpus_fingerprint(path) != corpus_fingerprint(write(tmp_path / "two.txt", "Two\n"))
    with pytest.raises(CorpusError, match="missing-dir"):
        corpus_fingerprint(tmp_path / "missing-dir")
