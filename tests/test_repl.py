"""repl.py: whole chat sessions driven through a pipe input, plus the piped-stdin mode and history."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from chat_driver import drive_chat
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from emsqa.api import Conversation, open_index
from emsqa.errors import QuestionError
from emsqa.repl import COMMANDS, default_history_path, open_history, run_lines

ROOT = Path(__file__).resolve().parent.parent

AIRWAY = """# Airway care

## Opening the airway

Open the airway with a head-tilt chin-lift unless a spinal injury is suspected.
Use a jaw-thrust maneuver when the cervical spine may be injured.

## Suction

Suction the mouth before ventilating when vomit or blood is present.
"""

ACCESS = """# Vascular access

## Intravenous lines

Paramedics start an intravenous line to give fluids and drugs.
An intraosseous needle is the fallback when no vein can be found.
"""

BURNS = """# Burn care

## Cooling

Cool a thermal burn with running water for twenty minutes. Never put ice on a burn.
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "airway.md").write_text(AIRWAY, encoding="utf-8")
    (folder / "access.md").write_text(ACCESS, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def other_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("other")
    (folder / "burns.md").write_text(BURNS, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def index(corpus: Path) -> Any:
    return open_index(corpus)


@pytest.fixture
def conversation(index: Any) -> Conversation:
    return Conversation(index, k=3)


def session(
    conversation: Any, keys: str, history: Path, *, color: bool = False
) -> tuple[int, list[str]]:
    """Type `keys` into a chat and return its exit code and every block it printed."""
    return drive_chat(conversation, keys, history, color=color)


def flat(text: str) -> str:
    return " ".join(text.split())


def block_with(blocks: list[str], needle: str) -> str:
    found = [b for b in blocks if needle in flat(b)]
    assert found, f"{needle!r} not in transcript:\n" + "\n---\n".join(blocks)
    return found[0]


# --------------------------------------------------------------------------- whole sessions


def test_a_session_with_every_command(conversation: Conversation, tmp_path: Path) -> None:
    keys = (
        "When should I use a jaw-thrust?\r"
        ":sources\r"
        ":open 1\r"
        ":why\r"
        ":k 2\r"
        ":k\r"
        "and what about suction?\r"
        ":history\r"
        ":help\r"
        ":reset\r"
        ":history\r"
        "\x04"
    )
    code, blocks = session(conversation, keys, tmp_path / "history")
    assert code == 0
    greeting = blocks[0]
    assert conversation.index.name in greeting and ":help" in greeting and "Ctrl-D" in greeting
    assert f"{conversation.index.n_passages} passages" in greeting

    assert len(blocks) == 12  # the greeting and one block per line typed
    first, sources, opened, why = blocks[1:5]
    history = ("When should I use a jaw-thrust?", "and what about suction?")
    assert conversation.history == ()  # :reset at the end cleared it
    assert "jaw-thrust" in first.lower()
    assert "Sources" in first and "airway.md" in first
    assert sources.lstrip().startswith("Sources  for “When should I use a jaw-thrust?”")
    assert re.search(r"passage\s+\S+, characters \d+–\d+", sources)

    marked = re.search(r"»(.*?)«", opened, flags=re.S)  # the cited sentence, marked without colour
    assert marked and "jaw-thrust" in marked.group(1)
    assert re.search(r"airway\.md · section “[^”]+” · characters \d+–\d+", flat(opened))

    assert "Searched for" in why
    assert re.search(r"Top passage\s+\[1\]", why)
    assert re.search(r"^\s+\S+\s+\d+\.\d{4}\s+\d+%$", why, flags=re.M)

    assert block_with(blocks, "k is now 2.")
    assert block_with(blocks, "k is 2:")
    listed = block_with(blocks, "1. When should I use")
    assert flat(listed) == f"1. {history[0]} 2. {history[1]}"
    help_block = block_with(blocks, "Commands")
    for name in COMMANDS:
        assert name in help_block
    assert block_with(blocks, "Conversation cleared")
    assert blocks[-1].strip() == "No questions yet."


def test_follow_up_uses_the_earlier_question(conversation: Conversation, tmp_path: Path) -> None:
    code, blocks = session(
        conversation,
        "Why open the airway with a chin-lift?\rand the jaw-thrust?\r:why\r\x04",
        tmp_path / "h",
    )
    assert code == 0
    assert conversation.history[0] == "Why open the airway with a chin-lift?"
    query = conversation.last.query
    assert query is not None
    if query.carried:  # what the core carried over is shown by :why
        why = block_with(blocks, "Carried over")
        assert all(term in why for term in query.carried)


def test_bad_input_gives_one_line_and_the_session_goes_on(
    conversation: Conversation, tmp_path: Path
) -> None:
    keys = (
        ":open 1\r"  # nothing asked yet
        "Where do paramedics start an intravenous line?\r"
        ":open 99\r"
        ":open abc\r"
        ":k abc\r"
        ":k 0\r"
        ":frobnicate\r"
        ":sorces\r"
        ":why\r"
        "\x04"
    )
    code, blocks = session(conversation, keys, tmp_path / "h")
    assert code == 0
    one_liners = [b.strip() for b in blocks if b.strip().startswith(("Error", "Unknown"))]
    assert all("\n" not in line for line in one_liners)
    n = len(conversation.last.citations)
    assert one_liners == [
        "Error: no answer yet: ask a question first",
        f"Error: no citation [99] in the last answer (it has [1]{'' if n == 1 else f'–[{n}]'})",
        "Error: ':open abc' needs a citation number, such as ':open 1'",
        "Error: ':k abc' needs a whole number of at least 1, such as ':k 5'",
        "Error: ':k 0' needs a whole number of at least 1, such as ':k 5'",
        "Unknown command :frobnicate. Type :help for the list.",
        "Unknown command :sorces — did you mean :sources? Type :help for the list.",
    ]
    assert conversation.k == 3
    assert "Searched for" in blocks[-1]  # the session went on to :why


def test_quit_leaves_before_later_lines(conversation: Conversation, tmp_path: Path) -> None:
    code, blocks = session(conversation, ":quit\rWhat is suction for?\r", tmp_path / "h")
    assert code == 0
    assert len(blocks) == 1  # only the greeting
    assert conversation.history == ()
    code, blocks = session(conversation, ":exit\r:help\r", tmp_path / "h")
    assert code == 0 and len(blocks) == 1


def test_ctrl_c_cancels_the_line_only(conversation: Conversation, tmp_path: Path) -> None:
    code, blocks = session(
        conversation, "half a question about ice\x03What is suction for?\r\x04", tmp_path / "h"
    )
    assert code == 0
    assert conversation.history == ("What is suction for?",)
    assert len(blocks) == 2


def test_smalltalk_is_answered_without_sources(conversation: Conversation, tmp_path: Path) -> None:
    _, blocks = session(conversation, "thanks!\r\x04", tmp_path / "h")
    assert conversation.last is not None and conversation.last.kind == "smalltalk"
    assert blocks[1].strip() == conversation.last.text.strip()


def test_errors_from_the_core_are_one_line(
    conversation: Conversation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(question: str) -> Any:
        raise QuestionError("questions about the moon are not accepted", hint="ask about EMS")

    monkeypatch.setattr(conversation, "ask", refuse)
    code, blocks = session(conversation, "moon?\r:help\r\x04", tmp_path / "h")
    assert code == 0
    assert blocks[1].strip() == ("Error: questions about the moon are not accepted (ask about EMS)")
    assert "Commands" in blocks[2]

    def broken(question: str) -> Any:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(conversation, "ask", broken)
    monkeypatch.delenv("EMSQA_DEBUG", raising=False)
    code, blocks = session(conversation, "anything\r\x04", tmp_path / "h")
    assert code == 0
    assert blocks[1].strip().startswith("Internal error: ZeroDivisionError: division by zero")
    assert "please report" in blocks[1]


def test_corpus_command_switches_or_keeps_the_corpus(
    conversation: Conversation, other_corpus: Path, tmp_path: Path
) -> None:
    before = conversation.index
    code, blocks = session(
        conversation, f":corpus {tmp_path / 'missing'}\r:corpus\r\x04", tmp_path / "h"
    )
    assert code == 0
    error = [b for b in blocks if b.strip().startswith("Error")]
    assert len(error) == 1 and "\n" not in error[0].strip() and "missing" in error[0]
    assert conversation.index is before
    assert block_with(blocks, f"Searching {before.name}")

    _, blocks = session(
        conversation,
        f":corpus {other_corpus}\rHow long should a burn be cooled?\r\x04",
        tmp_path / "h",
    )
    assert conversation.index is not before
    assert conversation.index.n_documents == 1
    switched = block_with(blocks, "Now searching")
    assert "1 document," in switched
    assert "burns.md" in blocks[-1]


def test_colour_only_when_asked(conversation: Conversation, tmp_path: Path) -> None:
    _, plain = session(conversation, "What is suction for?\r\x04", tmp_path / "h")
    _, coloured = session(conversation, "What is suction for?\r\x04", tmp_path / "h", color=True)
    assert not any("\x1b[" in b for b in plain)
    assert "\x1b[" in coloured[1]
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured[1]) == plain[1]


# --------------------------------------------------------------------------- completion


def test_completion_of_commands_numbers_paths_and_words(
    conversation: Conversation, tmp_path: Path
) -> None:
    from emsqa.repl import _Chat, _ChatCompleter

    chat = _Chat(conversation, print_fn=lambda text: None, color=False, width=80, airy=True)
    completer = _ChatCompleter(chat)

    def complete(text: str) -> list[str]:
        """Each completion applied: the line as it would read after choosing it."""
        found = completer.get_completions(Document(text), CompleteEvent())
        return [text[: len(text) + c.start_position] + c.text for c in found]

    assert complete(":so") == [":sources"]
    assert set(complete(":")) == set(COMMANDS)
    assert complete(":open ") == []  # nothing asked yet
    conversation.ask("When should I use a jaw-thrust?")
    assert complete(":open ") == [f":open {c.n}" for c in conversation.last.citations]
    (tmp_path / "notes-folder").mkdir()
    assert complete(f":corpus {tmp_path}/no") == [f":corpus {tmp_path}/notes-folder"]
    words = conversation.index.words()
    prefix = next(w for w in words if len(w) > 4)[:3]
    expected = sorted(f"how to {w}" for w in words if w.lower().startswith(prefix))
    assert sorted(complete(f"how to {prefix}")) == expected
    assert complete("how to ") == []  # no word begun: no flood of the whole vocabulary


# --------------------------------------------------------------------------- history


def test_history_file_is_created_and_kept(conversation: Conversation, tmp_path: Path) -> None:
    path = tmp_path / "state" / "emsqa" / "history"
    session(conversation, "What is suction for?\r\x04", path)
    assert "+What is suction for?" in path.read_text(encoding="utf-8").splitlines()
    # A new session finds it: Up recalls the last line, so Enter asks it again.
    fresh = Conversation(conversation.index)
    session(fresh, "\x1b[A\r\x04", path)
    assert fresh.history == ("What is suction for?",)


def test_corrupt_history_falls_back_to_memory(conversation: Conversation, tmp_path: Path) -> None:
    path = tmp_path / "history"
    garbage = b"\x00\xff\xfe not a history\n\x89PNG"
    path.write_bytes(garbage)
    code, blocks = session(conversation, "What is suction for?\r\x04", path)
    assert code == 0
    assert blocks[1].strip() == (
        f"History is kept in memory only: {path} is not a readable history file."
    )
    assert path.read_bytes() == garbage  # left alone
    assert conversation.history == ("What is suction for?",)


def test_unwritable_history_location_falls_back(conversation: Conversation, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("I am a file, not a folder", encoding="utf-8")
    path = blocker / "emsqa" / "history"  # can never be created, even by root
    code, blocks = session(conversation, "What is suction for?\r\x04", path)
    assert code == 0
    notice = blocks[1].strip()
    assert notice.startswith("History is kept in memory only: cannot use") and "\n" not in notice
    assert conversation.history == ("What is suction for?",)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root ignores directory permissions (covered by the file-as-folder test)",
)
def test_read_only_folder_falls_back(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        history, notice = open_history(folder / "history")
    finally:
        folder.chmod(0o700)
    assert notice.startswith("History is kept in memory only")
    assert type(history).__name__ == "InMemoryHistory"


def test_default_history_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_history_path() == tmp_path / "emsqa" / "history"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/dir")  # ignored, as the spec says
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_history_path() == tmp_path / ".local" / "state" / "emsqa" / "history"


# --------------------------------------------------------------------------- piped stdin


def test_piped_lines_print_plain_answers_separated_by_blank_lines(
    conversation: Conversation,
) -> None:
    out: list[str] = []
    lines = iter(["What is suction for?\n", "\n", ":history\n", "thanks!\n"])
    assert run_lines(conversation, lines, print_fn=out.append) == 0
    assert len(out) == 3
    assert not out[0].startswith("\n")
    assert all(b.startswith("\n") and not b.startswith("\n\n") for b in out[1:])
    text = "\n".join(out)
    assert "emsqa>" not in text and "\x1b" not in text
    assert "Sources" in out[0]
    assert flat(out[1]) == "1. What is suction for?"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "EMSQA_DEBUG")}
    env.update(extra)
    return env


def test_python_m_emsqa_reads_questions_from_a_pipe(corpus: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "emsqa", "chat", "--corpus", str(corpus)],
        input="What is suction for?\n:sources\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(XDG_STATE_HOME=str(tmp_path)),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    blocks = proc.stdout.rstrip("\n").split("\n\n")
    assert "Sources" in proc.stdout and "Sources  for “What is suction for?”" in proc.stdout
    assert "\x1b" not in proc.stdout and "emsqa>" not in proc.stdout
    assert len(blocks) >= 2
    assert not (tmp_path / "emsqa").exists()  # piped sessions keep no history
