"""The `emsqa` command line: ask, index, chat (and eval), with errors as one line and an exit code.

Exit codes: 0 done, 1 an error emsqa could name (EmsqaError) or an internal one, 2 bad usage
(argparse), 130 interrupted. Heavy modules (the core, prompt_toolkit) are imported only inside the
command that needs them, so `emsqa ask` starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from emsqa.errors import EmsqaError, EmsqaWarning

__all__ = ["SUBCOMMANDS", "Subcommand", "build_parser", "main"]

PROG = "emsqa"


@dataclass(frozen=True)
class Subcommand:
    """One `emsqa NAME ...` command: how to declare its arguments and how to run it."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""


# --------------------------------------------------------------------------- terminal helpers


def _wants_color(stream: TextIO) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR", "") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _width(stream: TextIO) -> int:
    """Wrap width: the terminal's (kept between 40 and 100 columns), else 88."""
    isatty = getattr(stream, "isatty", None)
    if isatty and isatty():
        return max(40, min(100, shutil.get_terminal_size((88, 24)).columns - 1))
    return 88


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--corpus",
        metavar="PATH",
        help="a file or folder of documents to index and search (default: the shipped EMS corpus)",
    )
    group.add_argument(
        "--index", metavar="DIR", help="a saved index folder (made with `emsqa index`)"
    )
    parser.add_argument(
        "-k",
        type=_positive_int,
        default=3,
        metavar="N",
        help="how many passages to retrieve and cite at most (default: 3)",
    )


def _open_source(args: argparse.Namespace) -> Any:
    """The index named by --corpus/--index (None means the shipped corpus)."""
    from emsqa import api

    if getattr(args, "index", None):
        from emsqa.index import Index

        return Index.load(os.path.expanduser(args.index))
    if getattr(args, "corpus", None):
        return api.open_index(os.path.expanduser(args.corpus))
    return api.open_index(None)


# --------------------------------------------------------------------------- ask


def _configure_ask(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "question", nargs="+", metavar="QUESTION", help="the question (quotes are optional)"
    )
    _add_source_options(parser)
    parser.add_argument(
        "--json", action="store_true", help="print the answer and its citations as JSON"
    )


def _run_ask(args: argparse.Namespace) -> int:
    from emsqa import api

    question = " ".join(args.question)
    answer = api.ask(question, k=args.k, corpus=_open_source(args))
    if args.json:
        import json

        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    from emsqa.render import render_answer

    print(render_answer(answer, color=_wants_color(sys.stdout), width=_width(sys.stdout)))
    return 0


# --------------------------------------------------------------------------- index


def _configure_index(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a file or folder of documents")
    parser.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="folder to save the index in"
    )


def _run_index(args: argparse.Namespace) -> int:
    from emsqa.index import Index

    started = time.perf_counter()
    index = Index.build(os.path.expanduser(args.path))
    index.save(os.path.expanduser(args.output))
    seconds = time.perf_counter() - started
    terms = getattr(index, "n_terms", None)
    terms_part = f", {terms:,} terms" if isinstance(terms, int) else ""
    print(
        f"Indexed {index.n_documents:,} documents into {index.n_passages:,} passages"
        f"{terms_part} in {seconds:.2f} s -> {args.output}"
    )
    return 0


# --------------------------------------------------------------------------- chat


def _configure_chat(parser: argparse.ArgumentParser) -> None:
    _add_source_options(parser)


def _run_chat(args: argparse.Namespace) -> int:
    from emsqa import api

    conversation = api.Conversation(_open_source(args), k=args.k)
    from emsqa.repl import run_chat  # prompt_toolkit is loaded only for chat

    return run_chat(conversation)


# --------------------------------------------------------------------------- the registry
# Every subcommand is one entry here. To add one (for example `eval`), write a configure(parser)
# that declares its arguments and a run(args) -> int that does the work (importing heavy modules
# inside run), then append Subcommand("name", "one-line help", configure, run) to SUBCOMMANDS.

SUBCOMMANDS: list[Subcommand] = [
    Subcommand(
        "ask",
        "answer one question and cite the passages used",
        _configure_ask,
        _run_ask,
        "Answer QUESTION from the corpus; the answer cites passages as [n].",
    ),
    Subcommand(
        "index",
        "build an index of a file or folder and save it",
        _configure_index,
        _run_index,
        "Read the documents under PATH, index them and save the index to DIR.",
    ),
    Subcommand(
        "chat",
        "ask questions interactively (the default command)",
        _configure_chat,
        _run_chat,
        "An interactive session; follow-up questions use the earlier ones. Type :help inside.",
    ),
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every registered subcommand."""
    from emsqa import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Ask questions of EMS course material; answers cite their passages.",
        epilog="With no command, emsqa starts `chat` on the shipped corpus.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for sub in SUBCOMMANDS:
        child = commands.add_parser(sub.name, help=sub.help, description=sub.description or None)
        sub.configure(child)
        child.set_defaults(run=sub.run)
    return parser


# --------------------------------------------------------------------------- errors and warnings


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    stream = file or sys.stderr
    label = "warning" if issubclass(category, EmsqaWarning) else f"{category.__name__}"
    with contextlib.suppress(OSError):  # stderr closed: nothing sensible left to do
        print(f"{PROG}: {label}: {_one_line(message)}", file=stream)


def _default_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """`emsqa` alone means `emsqa chat` with its defaults."""
    return parser.parse_args(["chat"])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code instead of exiting."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            args = _default_args(parser)
    except SystemExit as exc:  # --help and --version exit 0, usage errors 2
        return exc.code if isinstance(exc.code, int) else 2
    debug = os.environ.get("EMSQA_DEBUG", "") not in ("", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("default", EmsqaWarning)
        warnings.showwarning = _show_warning
        try:
            return int(args.run(args))
        except KeyboardInterrupt:
            return 130
        except EmsqaError as exc:
            print(f"{PROG}: error: {_one_line(exc.message)}", file=sys.stderr)
            if exc.hint:
                print(f"hint: {_one_line(exc.hint)}", file=sys.stderr)
            return 1
        except BrokenPipeError:
            # The reader went away (`emsqa ask ... | head -1`): silence the final flush too.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except Exception as exc:
            if debug:
                raise
            detail = _one_line(exc) or "no message"
            print(
                f"{PROG}: internal error: {type(exc).__name__}: {detail} (please report; "
                "set EMSQA_DEBUG=1 for the traceback)",
                file=sys.stderr,
            )
            return 1
