"""Reliability of questions: every odd question gets an Answer (or an abstention), never a crash.

Each case runs against a small hand-written index and against the shipped corpus (opened through
`emsqa.api.open_index()` with its cache in a temporary folder). Wrong types are refused with a
QuestionError by every entry point; the command line cannot pass anything but text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_driver import drive_chat

from emsqa import api
from emsqa.answer import NOT_FOUND
from emsqa.cli import main
from emsqa.datatypes import Answer, Document
from emsqa.errors import EmsqaError, QuestionError, UsageError
from emsqa.index import Index
from emsqa.retrieve import MAX_QUESTION_CHARS

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

DOCUMENTS = [
    Document(
        id="cpr.txt",
        title="Adult CPR",
        text=(
            "Adult CPR\n\nPush hard and fast in the centre of the chest at a rate of 100 to 120 "
            "compressions per minute. Allow the chest to recoil fully between compressions. "
            "Give two rescue breaths after every thirty compressions when a barrier device is at "
            "hand. Attach the AED pads as soon as the device arrives and follow its prompts."
        ),
    ),
    Document(
        id="oxygen.md",
        title="Oxygen therapy",
        text=(
            "Oxygen therapy\n\nGive oxygen by nasal cannula at 2 to 6 litres per minute when the "
            "saturation falls below 94 percent. A non-rebreather mask delivers higher "
            "concentrations at 10 to 15 litres per minute. Do not withhold oxygen from a patient "
            "in respiratory distress because of a history of lung disease."
        ),
    ),
    Document(
        id="feldsher.txt",
        title="Фельдшер",
        text=(
            "Фельдшер скорой помощи оценивает дыхание пациента и вводит лекарства по протоколу. "
            "救急車 carries the crew 🚑 to the scene, where the feldsher leads the assessment."
        ),
    ),
]

GOOD_QUESTION = "How many compressions per minute during adult CPR?"


@pytest.fixture(scope="module")
def small_index() -> Index:
    return Index.build(DOCUMENTS, name="hand-written")


@pytest.fixture(scope="module")
def shipped_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    """The shipped corpus' index, cached under a temporary XDG_CACHE_HOME (never the real home)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        api.default_index.cache_clear()
        index = api.open_index()
        yield index
        api.default_index.cache_clear()


@pytest.fixture(params=["small", "shipped"])
def index(request: pytest.FixtureRequest) -> Index:
    return request.getfixturevalue(f"{request.param}_index")


def assert_abstains(answer: Answer, reason_part: str = "") -> None:
    assert isinstance(answer, Answer)
    assert answer.abstained
    assert answer.text == NOT_FOUND
    assert not answer.citations
    assert reason_part in answer.reason


# --- questions with nothing to search for ---------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "",
        "   ",
        "\t\n \r\n",
        "?!?...",
        ";;; --- *** ,,, ()[]{}",
        "¿¡«»…—",
        "the and of",
        "what is the",
    ],
    ids=[
        "empty",
        "spaces",
        "whitespace",
        "punctuation",
        "symbols",
        "unicode-punct",
        "stop",
        "stop2",
    ],
)
def test_question_without_content_words_abstains_saying_why(index: Index, question: str) -> None:
    answer = index.ask(question)
    assert_abstains(answer, "no words to search for")
    assert answer.question == question
    assert answer.to_dict()["abstained"] is True


def test_words_absent_from_the_vocabulary_abstain(index: Index) -> None:
    answer = index.ask("zyxquv plorbinate snarfwidget")
    assert_abstains(answer, "no passage shares a word")
    assert answer.query is not None
    assert answer.query.terms  # the words were searched for, just not found
    assert index.search("zyxquv plorbinate snarfwidget") == []


def test_a_lone_question_mark_is_the_help_reply_not_an_error(index: Index) -> None:
    answer = index.ask("?")
    assert answer.kind == "smalltalk" and not answer.abstained and answer.text


# --- long, dirty and foreign questions ------------------------------------------------------------


@pytest.mark.parametrize("unit", ["cardiac ", "x", "compressions per minute "])
def test_one_megabyte_question_is_truncated_with_a_notice(index: Index, unit: str) -> None:
    question = unit * (2**20 // len(unit))
    answer = index.ask(question)  # finishing at all is the point (it used to be unbounded)
    assert isinstance(answer, Answer)
    assert answer.question == question
    assert answer.query is not None
    assert len(answer.query.text) <= MAX_QUESTION_CHARS
    assert answer.query.notice.startswith("Your question was long")
    assert f"{len(answer.query.text):,} characters" in answer.query.notice


def test_long_question_keeps_its_words_at_the_cut(small_index: Index) -> None:
    # The question is cut at a space: no half word is searched for.
    question = ("compressions " * 400) + "oxygen"
    answer = small_index.ask(question)
    assert answer.query is not None and answer.query.notice
    assert answer.query.text.split() == ["compressions"] * len(answer.query.text.split())


def test_escape_sequences_never_reach_the_query(index: Index) -> None:
    question = "\x1b]0;title\x07 How many\x1b[31m compressions\x9b2J per minute?\x1b[0m"
    answer = index.ask(question)
    assert answer.query is not None
    assert not CONTROL.search(answer.query.text)
    assert answer.question == question  # the original is kept as it was asked


def test_control_characters_without_escape_sequences_give_the_identical_answer(
    index: Index,
) -> None:
    clean = index.ask(GOOD_QUESTION)
    dirty_question = (
        "How\x00 many\x07 compressions\x01 per\x7f minute\x85 during\x0b adult CPR?\x1f"
    )
    dirty = index.ask(dirty_question)
    assert dirty.to_dict() == clean.to_dict() | {"question": dirty_question}


def test_mixed_scripts_and_emoji_are_searched(small_index: Index) -> None:
    answer = small_index.ask("Кто такой фельдшер 🚑 救急車?")
    assert answer.query is not None
    assert "фельдшер" in answer.query.terms
    hits = small_index.search("фельдшер скорой помощи")
    assert hits and hits[0].passage.doc_id == "feldsher.txt"


@pytest.mark.parametrize(
    "question",
    ["🚑🚑🚑", "Что такое EMT 🚑 救急 ?", "ما هو المسعف؟", "e\u0301mt\u200b?", "\U0001f600" * 5000],
    ids=["emoji", "mixed", "arabic", "combining", "emoji-long"],
)
def test_any_script_gets_an_answer_or_an_abstention(index: Index, question: str) -> None:
    answer = index.ask(question)
    assert isinstance(answer, Answer)
    assert answer.abstained or answer.citations
    assert answer.to_dict()["question"] == question


def test_lone_surrogates_do_not_crash(index: Index) -> None:
    answer = index.ask("what is \ud800 an \udfff EMT?")
    assert isinstance(answer, Answer)


# --- wrong types ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, 3, 2.5, b"bytes", ["a list"], Path("q.txt")])
def test_non_text_questions_raise_question_error_everywhere(
    small_index: Index, bad: object
) -> None:
    calls = [
        lambda: small_index.ask(bad),  # type: ignore[arg-type]
        lambda: small_index.search(bad),  # type: ignore[arg-type]
        lambda: api.ask(bad, corpus=small_index),  # type: ignore[arg-type]
        lambda: api.Conversation(small_index).ask(bad),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(QuestionError, match=type(bad).__name__) as info:
            call()
        assert "\n" not in str(info.value)


def test_question_error_is_an_emsqa_error() -> None:
    assert issubclass(QuestionError, EmsqaError)


def test_conversation_survives_a_bad_question(small_index: Index) -> None:
    chat = api.Conversation(small_index)
    first = chat.ask(GOOD_QUESTION)
    with pytest.raises(QuestionError):
        chat.ask(None)  # type: ignore[arg-type]
    assert first.query is not None
    assert chat.history == (first.query.text,)
    assert chat.ask(GOOD_QUESTION).to_dict() == first.to_dict()


@pytest.mark.parametrize("k", [0, -1, 2.0, "3", True])
def test_bad_k_is_a_usage_error(small_index: Index, k: object) -> None:
    with pytest.raises(UsageError, match="k must be"):
        small_index.ask(GOOD_QUESTION, k=k)  # type: ignore[arg-type]


# --- the command line -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("questions-corpus")
    for doc in DOCUMENTS:
        (folder / doc.id).write_text(doc.text, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "question", ["", "   ", "?!?...", "the and of", "zyxquv plorbinate"], ids=repr
)
def test_cli_abstains_on_empty_questions_with_exit_0(
    corpus_dir: Path, capsys: pytest.CaptureFixture[str], question: str
) -> None:
    assert main(["ask", "--corpus", str(corpus_dir), question]) == 0
    out, err = capsys.readouterr()
    assert NOT_FOUND in out
    assert err == ""


def test_cli_without_a_question_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ask"]) == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "Traceback" not in err


def test_cli_one_megabyte_question_prints_the_notice(
    corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "--corpus", str(corpus_dir), "--json", "oxygen " * 150_000]) == 0
    assert capsys.readouterr().err == ""
    assert main(["ask", "--corpus", str(corpus_dir), "oxygen " * 150_000]) == 0
    out, err = capsys.readouterr()
    assert "Your question was long" in out and err == ""


def test_cli_never_echoes_terminal_escapes(
    corpus_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    question = "\x1b]0;pwned\x07\x1b[2J oxygen \x1b[31m mask \x9b6n"
    for extra in ([], ["--json"]):
        assert main(["ask", "--corpus", str(corpus_dir), *extra, question]) == 0
        out, err = capsys.readouterr()
        assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out
        assert err == ""


def test_cli_shipped_corpus_answers_odd_questions(
    shipped_index: Index, capsys: pytest.CaptureFixture[str]
) -> None:
    for question in ["", "🚑", "Что такое EMT?", "x" * 100_000]:
        assert main(["ask", question]) == 0
        out, err = capsys.readouterr()
        assert out.strip() and err == ""


# --- the REPL: what a user types is text, never code or an unasked-for file ---------------------


def chat_session(conversation: api.Conversation, keys: str, history: Path) -> tuple[int, list[str]]:
    """Type `keys` into run_chat through a pipe; (exit code, every printed block)."""
    return drive_chat(conversation, keys, history)


def errors_in(blocks: list[str]) -> list[str]:
    return [b.strip() for b in blocks if b.strip().startswith(("Error", "Internal error"))]


@pytest.mark.parametrize(
    "argument",
    ["../../etc/passwd", "/etc/passwd", "~/.bashrc", "1; cat /etc/passwd", "²", "1e3", "-1", "0x1"],
)
def test_repl_open_takes_only_a_citation_number(
    small_index: Index, tmp_path: Path, argument: str
) -> None:
    chat = api.Conversation(small_index)
    code, blocks = chat_session(chat, f"{GOOD_QUESTION}\r:open {argument}\r\x04", tmp_path / "h")
    assert code == 0
    (error,) = errors_in(blocks)
    assert error == f"Error: ':open {argument}' needs a citation number, such as ':open 1'"
    assert "root:" not in "".join(blocks)


def _record_opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path the corpus loader opens, in order."""
    import emsqa.corpus

    opened: list[str] = []
    real_open = open

    def recording_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(os.path.realpath(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(emsqa.corpus, "open", recording_open, raising=False)
    return opened


def test_repl_corpus_reads_exactly_the_given_path(
    small_index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    (chosen / "scene.txt").write_text("Scene safety comes before patient care.", "utf-8")
    (chosen / "notes.md").write_text("# Triage\n\nTriage sorts patients by urgency.", "utf-8")
    (tmp_path / "secret.txt").write_text("the launch code is 0000", "utf-8")
    (chosen / ".hidden.txt").write_text("hidden launch code", "utf-8")
    opened = _record_opened(monkeypatch)
    chat = api.Conversation(small_index)
    keys = f":corpus {chosen}\rWhat is the launch code?\r\x04"
    code, blocks = chat_session(chat, keys, tmp_path / "h")
    assert code == 0 and not errors_in(blocks)
    assert set(opened) == {str(chosen / "scene.txt"), str(chosen / "notes.md")}
    assert chat.index.n_documents == 2
    assert chat.last is not None and chat.last.abstained


@pytest.mark.parametrize(
    "argument", ["$HOME", "$(touch MARKER)", "`touch MARKER`", "*", "{a,b}", "corpus; touch MARKER"]
)
def test_repl_corpus_path_is_not_expanded_by_a_shell(
    small_index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argument: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "corpus").mkdir()
    (work / "corpus" / "a.txt").write_text("Triage sorts patients by urgency.", "utf-8")
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(work / "corpus"))
    chat = api.Conversation(small_index)
    code, blocks = chat_session(chat, f":corpus {argument}\r\x04", tmp_path / "h")
    assert code == 0
    (error,) = errors_in(blocks)
    assert error.startswith("Error: ") and argument in error and "\n" not in error
    assert chat.index is small_index
    assert sorted(p.name for p in work.iterdir()) == ["corpus"]


CODE_LIKE = [
    "__import__('os').system('touch MARKER')",
    "exec(\"open('MARKER', 'w')\")",
    "$(touch MARKER)",
    "`touch MARKER`",
    "{{ ''.__class__.__mro__ }} {0.__class__} %(x)s %s",
    "!touch MARKER",
    "; touch MARKER",
]


def test_repl_never_evaluates_input_as_code(
    small_index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    lines = []
    for text in CODE_LIKE:
        lines += [text, f":k {text}", f":open {text}", f":why {text}", f":sources {text}"]
    chat = api.Conversation(small_index)
    code, blocks = chat_session(chat, "\r".join(lines) + "\r\x04", tmp_path / "h")
    assert code == 0
    assert list(work.iterdir()) == []
    assert not any(b.strip().startswith("Internal error") for b in blocks), blocks
    assert chat.k == 3
    asked = [q for q in chat.history]
    assert len(asked) == len(CODE_LIKE)  # each was asked as a question, nothing more


def test_repl_piped_lines_are_not_code_either(
    small_index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emsqa.repl import run_lines

    monkeypatch.chdir(tmp_path)
    out: list[str] = []
    assert run_lines(api.Conversation(small_index), CODE_LIKE, print_fn=out.append) == 0
    assert list(tmp_path.iterdir()) == []
    assert len(out) == len(CODE_LIKE)


def test_repl_history_that_fails_to_write_does_not_stop_the_chat(
    small_index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from prompt_toolkit.history import FileHistory

    def disk_full(self: FileHistory, string: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FileHistory, "store_string", disk_full)
    chat = api.Conversation(small_index)
    keys = f"{GOOD_QUESTION}\rWhat does a non-rebreather mask deliver?\r\x04"
    code, blocks = chat_session(chat, keys, tmp_path / "history")
    assert code == 0
    assert len(chat.history) == 2
    notices = [b for b in blocks if "History is kept in memory only" in b]
    assert len(notices) == 1 and "No space left on device" in notices[0]


@pytest.mark.parametrize("kind", ["a folder", "under a file", "binary"])
def test_repl_unusable_history_file_does_not_stop_the_chat(
    small_index: Index, tmp_path: Path, kind: str
) -> None:
    if kind == "a folder":
        history = tmp_path / "history"
        history.mkdir()
    elif kind == "under a file":
        (tmp_path / "file").write_text("x", "utf-8")
        history = tmp_path / "file" / "history"
    else:
        history = tmp_path / "history"
        history.write_bytes(b"\x00\x01binary\xff")
    chat = api.Conversation(small_index)
    code, blocks = chat_session(chat, f"{GOOD_QUESTION}\r\x04", history)
    assert code == 0
    assert chat.last is not None and not chat.last.abstained
    assert any("History is kept in memory only" in b for b in blocks)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write read-only files"
)
def test_repl_read_only_history_file_does_not_stop_the_chat(
    small_index: Index, tmp_path: Path
) -> None:
    history = tmp_path / "history"
    history.write_text("", "utf-8")
    history.chmod(0o400)
    chat = api.Conversation(small_index)
    code, _ = chat_session(chat, f"{GOOD_QUESTION}\r\x04", history)
    assert code == 0 and chat.last is not None
