"""The interactive chat: the only module that imports prompt_toolkit.

`run_chat` is handed a Conversation (anything with `ask`, `reset`, `history`, `last`, `k` and
`index`) and renders every reply through emsqa.render. On a terminal it runs one PromptSession
with a file history, suggestions and completion; with piped stdin it reads one question per line
and prints the plain answers, separated by blank lines.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.completion import (
    CompleteEvent,
    Completer,
    Completion,
    PathCompleter,
    WordCompleter,
)
from prompt_toolkit.document import Document
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input, create_pipe_input
from prompt_toolkit.output import Output, create_output
from prompt_toolkit.shortcuts import ProgressBar, print_formatted_text

from emsqa import render
from emsqa.errors import EmsqaError, UsageError
from emsqa.render import Fragment

__all__ = [
    "COMMANDS",
    "PROGRESS_FROM",
    "default_history_path",
    "index_progress",
    "open_history",
    "run_chat",
    "run_lines",
]

PrintFn = Callable[[str], None]
"""Receives each finished block of output (plain or ANSI text, no trailing newline)."""


# --------------------------------------------------------------------------- progress

PROGRESS_FROM = 5_000  # passages: smaller corpora index too fast to need a progress bar


@contextlib.contextmanager
def index_progress(stream: TextIO) -> Iterator[Callable[[int, int], None]]:
    """A progress callback(done, total) drawing prompt_toolkit's bar on `stream` (a terminal) once
    a corpus of PROGRESS_FROM passages or more is being analysed. Warnings raised while the bar
    shows are held and shown once it is gone (printed at once, they were drawn over it)."""
    held: list[warnings.WarningMessage] = []
    try:
        with contextlib.ExitStack() as stack:
            yield _bar_reporter(stream, stack, held)
    finally:
        for w in held:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)


def _bar_reporter(
    stream: TextIO, stack: contextlib.ExitStack, held: list[warnings.WarningMessage]
) -> Callable[[int, int], None]:
    state: dict[str, Any] = {}

    def report(done: int, total: int) -> None:
        if "counter" not in state:
            if total < PROGRESS_FROM:
                return
            # entered before the bar, so left after it, and handed on after that
            stack.callback(lambda: held.extend(state["caught"]))
            state["caught"] = stack.enter_context(warnings.catch_warnings(record=True))
            # the bar reads no keys: an idle pipe (stdin may not be a terminal, and an
            # input at end-of-file would stop the bar's application with EOFError)
            keys = stack.enter_context(create_pipe_input())
            out = create_output(stdout=stream)
            # the idle pipe never answers a cursor position request: without this, a build
            # longer than two seconds printed "your terminal doesn't support ... (CPR)"
            if hasattr(out, "enable_cpr"):
                out.enable_cpr = False
            bar = stack.enter_context(ProgressBar(title="Indexing", output=out, input=keys))
            # no unit: a build counts passages, or lines when it streams a .jsonl file
            state["bar"], state["counter"] = bar, bar(label="", total=total)
        counter = state["counter"]
        counter.items_completed = done
        if done >= total:
            counter.done = True
        state["bar"].invalidate()

    return report


# --------------------------------------------------------------------------- history


def default_history_path() -> Path:
    """`$XDG_STATE_HOME/emsqa/history`, or `~/.local/state/emsqa/history`."""
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if state and os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "emsqa" / "history"


class _SafeFileHistory(FileHistory):
    """A FileHistory that stops writing, instead of crashing the session, when a write fails."""

    def __init__(self, filename: str) -> None:
        super().__init__(filename)
        self.failure = ""  # why writing stopped, once it has
        self.reported = False

    def store_string(self, string: str) -> None:
        if self.failure:
            return
        try:
            super().store_string(string)
        except OSError as exc:
            self.failure = f"could not write {self.filename} ({exc.strerror or exc})"


def _looks_like_history(data: bytes) -> bool:
    """A prompt_toolkit history file: UTF-8 lines that are blank, '# date' or '+entry'."""
    if b"\x00" in data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(not line or line[0] in "#+" for line in text.split("\n"))


def open_history(path: str | os.PathLike[str] | None = None) -> tuple[History, str]:
    """The history to use and, when it had to be kept in memory, a one-line notice why.

    The folder is created on first use. A location that cannot be created or written, or a file
    that is unreadable or not a history file, gives an in-memory history (the file is left alone).
    """
    target = Path(path) if path is not None else default_history_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and not _looks_like_history(target.read_bytes()):
            return InMemoryHistory(), (
                f"History is kept in memory only: {target} is not a readable history file."
            )
        with open(target, "ab"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return InMemoryHistory(), f"History is kept in memory only: cannot use {target} ({reason})."
    return _SafeFileHistory(str(target)), ""


# --------------------------------------------------------------------------- commands


class Command(NamedTuple):
    """A `:command`: its handler (returns False to leave), argument hint and one-line help."""

    handler: Callable[[_Chat, str], bool]
    help: str
    args: str = ""


COMMANDS: dict[str, Command] = {}
"""The command registry, `:name` -> Command; aliases share one Command."""


def _command(*names: str, help: str, args: str = "") -> Callable[[Any], Any]:
    def register(handler: Callable[[_Chat, str], bool]) -> Callable[[_Chat, str], bool]:
        for name in names:
            COMMANDS[name] = Command(handler, help, args)
        return handler

    return register


def _size(index: Any) -> str:
    return f"{render.counted(index.n_documents, 'document')}, {render.counted(index.n_passages, 'passage')}"


def _debugging() -> bool:
    return os.environ.get("EMSQA_DEBUG", "") not in ("", "0")


class _Chat:
    """What the session does with each line, independent of how lines arrive."""

    def __init__(
        self,
        conversation: Any,
        *,
        print_fn: PrintFn,
        color: bool,
        width: int | Callable[[], int],
        airy: bool,
    ) -> None:
        self.conversation = conversation
        self.print_fn = print_fn
        self.color = color
        self._width = width  # a number, or asked afresh each time (the terminal may be resized)
        # airy (a terminal): blank lines after the prompt and after every block; else blocks
        # are only separated by one blank line.
        self.airy = airy
        self.after_prompt = False
        self.blocks = 0
        self.answer_index: Any = None  # the index the last answer came from

    @property
    def width(self) -> int:
        return self._width() if callable(self._width) else self._width

    # output ------------------------------------------------------------------------------------
    def show(self, fragments: list[Fragment]) -> None:
        text = render.to_ansi(fragments) if self.color else render.to_plain(fragments)
        if self.airy:
            text = ("\n" if self.after_prompt else "") + text + "\n"
            self.after_prompt = False
        elif self.blocks:
            text = "\n" + text
        self.blocks += 1
        self.print_fn(text)

    def say(self, text: str, style: str = "") -> None:
        self.show(render.wrap_fragments([(style, text)], self.width))

    def error(self, message: str) -> None:
        """One line, never wrapped (the terminal may fold it, but it stays one line)."""
        self.show([("class:error", " ".join(message.split()))])

    def notice(self, message: str) -> None:
        self.show([("class:dim", " ".join(message.split()))])

    # input -------------------------------------------------------------------------------------
    def handle(self, line: str) -> bool:
        """Act on one line; False means leave."""
        text = line.strip()
        if not text:
            return True
        if text.startswith(":"):
            name, _, argument = text.partition(" ")
            command = COMMANDS.get(name.lower())
            if command is None:
                self.unknown(name)
                return True
            return self.guard(lambda: command.handler(self, argument.strip()))
        self.guard(lambda: self.ask(text))
        return True

    def guard(self, work: Callable[[], bool | None]) -> bool:
        """Run `work`; an error becomes one line and the session goes on."""
        try:
            return work() is not False
        except EmsqaError as exc:
            self.error(f"Error: {exc}")
        except KeyboardInterrupt:
            self.say("Cancelled.", "class:dim")
        except Exception as exc:
            if _debugging():
                raise
            detail = " ".join(str(exc).split()) or "no message"
            self.error(f"Internal error: {type(exc).__name__}: {detail} (please report)")
        return True

    def ask(self, question: str) -> None:
        answer = self.conversation.ask(question)
        self.answer_index = self.conversation.index
        self.show(render.answer_fragments(answer, width=self.width))

    def unknown(self, name: str) -> None:
        close = difflib.get_close_matches(name.lower(), list(COMMANDS), n=1, cutoff=0.6)
        hint = f" — did you mean {close[0]}?" if close else "."
        self.error(f"Unknown command {name}{hint} Type :help for the list.")

    def last(self) -> Any:
        answer = self.conversation.last
        if answer is None:
            raise UsageError("no answer yet: ask a question first")
        return answer

    def greeting(self) -> None:
        index = self.conversation.index
        self.show(
            [
                ("class:title", "emsqa"),
                ("", f" · {index.name}: {_size(index)}"),
                ("class:dim", " · type :help for commands, Ctrl-D to leave"),
            ]
        )


@_command(":help", help="list these commands")
def _help(chat: _Chat, argument: str) -> bool:
    seen: dict[Callable[..., bool], list[str]] = {}
    for name, command in COMMANDS.items():
        seen.setdefault(command.handler, []).append(name)
    rows: list[tuple[str, str]] = []
    for names in seen.values():
        command = COMMANDS[names[0]]
        usage = " / ".join(names) + (f" {command.args}" if command.args else "")
        rows.append((usage, command.help))
    size = max(len(usage) for usage, _ in rows)
    out: list[Fragment] = [("class:heading", "Commands")]
    for usage, text in rows:
        prefix = [("class:marker", f"{usage:<{size}}"), ("", "  ")]
        out += [("", "\n")]
        out += render.wrap_fragments(
            [("", text)], chat.width, prefix=prefix, subsequent_indent=" " * (size + 2)
        )
    out += [
        ("", "\n"),
        ("class:dim", "Anything else is a question. Ctrl-C cancels, Ctrl-D leaves."),
    ]
    chat.show(out)
    return True


@_command(":sources", help="full details of the passages the last answer cites")
def _sources(chat: _Chat, argument: str) -> bool:
    chat.show(render.sources_fragments(chat.last(), width=chat.width))
    return True


@_command(":open", args="N", help="the whole passage of citation [N], cited sentences highlighted")
def _open(chat: _Chat, argument: str) -> bool:
    answer = chat.last()
    text = argument.strip("[] ") or "1"
    if not text.isdecimal():  # isdigit() also takes "²", which int() refuses
        raise UsageError(f"':open {argument}' needs a citation number, such as ':open 1'")
    fragments = render.passage_fragments(answer, int(text), width=chat.width, marks=not chat.color)
    chat.show(fragments)
    return True


@_command(":why", help="the terms searched for and how each scored in the top passage")
def _why(chat: _Chat, argument: str) -> bool:
    answer = chat.last()
    index = chat.conversation.index
    top = render.top_passage(answer)
    contributions: list[tuple[str, float]] = []
    if answer.query is not None and answer.kind != "smalltalk" and top is not None:
        if chat.answer_index is not None and index is not chat.answer_index:
            raise UsageError("the corpus changed since that answer: ask the question again")
        contributions = list(index.explain(answer.query, top.id))
    chat.show(render.why_fragments(answer, contributions, width=chat.width))
    return True


@_command(":k", args="N", help="how many passages to retrieve and cite (alone: show it)")
def _k(chat: _Chat, argument: str) -> bool:
    if not argument:
        k = chat.conversation.k
        chat.say(f"k is {k}: answers draw on up to {render.counted(k, 'passage')}.")
        return True
    if not argument.isdecimal() or int(argument) < 1:
        raise UsageError(f"':k {argument}' needs a whole number of at least 1, such as ':k 5'")
    chat.conversation.k = int(argument)
    chat.say(f"k is now {chat.conversation.k}.")
    return True


@_command(
    ":corpus", args="PATH", help="search another file, folder or saved index (alone: show it)"
)
def _corpus(chat: _Chat, argument: str) -> bool:
    index = chat.conversation.index
    if not argument:
        chat.say(f"Searching {index.name}: {_size(index)}.")
        return True
    from emsqa.api import open_index

    path = os.path.expanduser(argument.strip().strip("'\""))
    chat.say(f"Loading {path} …", "class:dim")
    new = open_index(path)
    had_history = bool(chat.conversation.history)
    chat.conversation.index = new
    fresh = (
        " The conversation starts afresh." if had_history and not chat.conversation.history else ""
    )
    chat.say(f"Now searching {new.name}: {_size(new)}.{fresh}")
    return True


@_command(":reset", help="forget the conversation so far (follow-ups start afresh)")
def _reset(chat: _Chat, argument: str) -> bool:
    chat.conversation.reset()
    chat.say("Conversation cleared: the next question starts afresh.")
    return True


@_command(":history", help="the questions asked in this conversation")
def _history(chat: _Chat, argument: str) -> bool:
    questions = tuple(chat.conversation.history)
    if not questions:
        chat.say("No questions yet.", "class:dim")
        return True
    out: list[Fragment] = []
    for i, question in enumerate(questions, 1):
        if out:
            out.append(("", "\n"))
        prefix = [("class:marker", f"{i:>3}."), ("", " ")]
        out += render.wrap_fragments(
            [("", question)], chat.width, prefix=prefix, subsequent_indent="     "
        )
    chat.show(out)
    return True


@_command(":quit", ":exit", help="leave (Ctrl-D does too)")
def _quit(chat: _Chat, argument: str) -> bool:
    return False


# --------------------------------------------------------------------------- completion


class _ChatCompleter(Completer):
    """`:commands` (then a path after :corpus, a number after :open) or the corpus' words.

    Like prompt_toolkit's NestedCompleter, but a command name is matched whole, colon included.
    """

    def __init__(self, chat: _Chat) -> None:
        self.chat = chat
        self.paths = PathCompleter(expanduser=True)
        self.words = WordCompleter(self._current_words, ignore_case=True)
        self._words: list[str] = []
        self._words_of: Any = None

    def _current_words(self) -> list[str]:
        index = self.chat.conversation.index
        if index is not self._words_of:
            self._words_of = index
            try:
                self._words = list(index.words())
            except EmsqaError:
                self._words = []
        return self._words

    def get_completions(self, document: Document, event: CompleteEvent) -> Iterator[Completion]:
        text = document.text_before_cursor.lstrip()
        if not text.startswith(":"):
            if document.get_word_before_cursor():
                yield from self.words.get_completions(document, event)
            return
        name, space, rest = text.partition(" ")
        if not space:
            for command, entry in COMMANDS.items():
                if command.startswith(name.lower()) and command != name:
                    yield Completion(command, -len(name), display_meta=entry.help)
            return
        if name == ":corpus":
            yield from self.paths.get_completions(Document(rest.lstrip()), event)
        elif name == ":open" and self.chat.conversation.last is not None:
            last = self.chat.conversation.last
            count = len(last.citations) or len(last.related)
            for n in range(1, count + 1):
                if str(n).startswith(rest.strip()):
                    yield Completion(str(n), -len(rest.strip()))


# --------------------------------------------------------------------------- running


def _stdout_print(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def run_lines(
    conversation: Any,
    lines: Iterable[str],
    *,
    print_fn: PrintFn = _stdout_print,
    color: bool = False,
    width: int = render.DEFAULT_WIDTH,
) -> int:
    """Answer one question (or `:command`) per line, printing each reply; 0 at the end."""
    chat = _Chat(conversation, print_fn=print_fn, color=color, width=width, airy=False)
    for line in lines:
        if not chat.handle(line.rstrip("\r\n")):
            break
    return 0


def run_chat(
    conversation: Any,
    *,
    input: Input | None = None,
    output: Output | None = None,
    history_path: str | os.PathLike[str] | None = None,
    color: bool | None = None,
    print_fn: PrintFn | None = None,
) -> int:
    """Run the chat until Ctrl-D or :quit; returns the exit code.

    Without `input` and with stdin not a terminal, reads questions line by line (see run_lines).
    `print_fn` receives every block of output (tests collect it); by default blocks go to `output`.
    """
    stdin = sys.stdin
    if input is None and (stdin is None or not stdin.isatty()):
        reconfigure = getattr(stdin, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")  # a stray byte should not end the session
        use_color = render.wants_color(sys.stdout) if color is None else color
        columns = shutil.get_terminal_size((89, 24)).columns if use_color else 89
        return run_lines(
            conversation,
            stdin if stdin is not None else (),
            print_fn=print_fn or _stdout_print,
            color=use_color,
            width=render.fit_width(columns),
        )

    use_color = (
        (render.wants_color(sys.stdout) if output is None else False) if color is None else color
    )

    def to_output(text: str) -> None:
        print_formatted_text(ANSI(text), output=output)

    history, notice = open_history(history_path)
    size_of = output.get_size if output is not None else shutil.get_terminal_size
    chat = _Chat(
        conversation,
        print_fn=print_fn or to_output,
        color=use_color,
        width=lambda: render.fit_width(size_of().columns),
        airy=True,
    )
    session: PromptSession[str] = PromptSession(
        history=history,
        auto_suggest=AutoSuggestFromHistory(),
        completer=_ChatCompleter(chat),
        complete_while_typing=Condition(lambda: session.default_buffer.text.startswith(":")),
        input=input,
        output=output,
    )
    message: Any = ANSI("\x1b[1;36memsqa>\x1b[0m ") if use_color else "emsqa> "
    chat.greeting()
    if notice:
        chat.notice(notice)
    while True:
        try:
            line = session.prompt(message)
        except KeyboardInterrupt:  # Ctrl-C: drop the line, keep the session
            continue
        except EOFError:  # Ctrl-D: leave
            break
        if isinstance(history, _SafeFileHistory) and history.failure and not history.reported:
            history.reported = True
            chat.notice(f"History is kept in memory only: {history.failure}.")
        chat.after_prompt = True
        if not chat.handle(line):
            break
    return 0
