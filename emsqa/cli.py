"""The `emsqa` command line: ask, index, chat and eval; errors become one line and an exit code.

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from emsqa.errors import EmsqaError, EmsqaWarning
from emsqa.render import fit_width, wants_color

__all__ = ["SUBCOMMANDS", "Subcommand", "build_parser", "main"]

PROG = "emsqa"
_C1_ESCAPES = {c: f"\\u{c:04x}" for c in range(0x7F, 0xA0)}
_CONTROL_MARKS = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)], "\ufffd")


@dataclass(frozen=True)
class Subcommand:
    """One `emsqa NAME ...` command: how to declare its arguments and how to run it."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""


# --------------------------------------------------------------------------- terminal helpers


def _width(stream: TextIO) -> int:
    """Wrap width: the terminal's (kept between 40 and 100 columns), else 88."""
    isatty = getattr(stream, "isatty", None)
    if isatty and isatty():
        return fit_width(shutil.get_terminal_size((88, 24)).columns)
    return 88


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_source_options(parser: argparse.ArgumentParser, *, passages_k: bool = True) -> None:
    """--corpus | --index, and (for ask/chat) -k N passages to draw on."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--corpus",
        metavar="PATH",
        help="a file or folder of documents to index and search (default: the shipped EMS corpus)",
    )
    group.add_argument(
        "--index", metavar="DIR", help="a saved index folder (made with `emsqa index`)"
    )
    if not passages_k:
        return
    parser.add_argument(
        "-k",
        type=_positive_int,
        default=3,
        metavar="N",
        help="how many passages to retrieve and cite at most (default: 3)",
    )


def _cutoffs(text: str) -> tuple[int, ...]:
    """argparse type: "1,3,5,10" -> (1, 3, 5, 10)."""
    try:
        values = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected whole numbers separated by commas, not {text!r}"
        ) from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(
            f"cut-offs must be whole numbers of at least 1, not {text!r}"
        )
    return values


def _source(args: argparse.Namespace) -> Any:
    """What --corpus/--index name: a path to index, a loaded saved index, or None (shipped)."""
    if getattr(args, "index", None):
        from emsqa.index import Index

        return Index.load(os.path.expanduser(args.index))
    if getattr(args, "corpus", None):
        return os.path.expanduser(args.corpus)
    return None


def _open_source(args: argparse.Namespace) -> Any:
    """The index named by --corpus/--index (the shipped corpus' when neither is given)."""
    from emsqa import api

    return api.open_index(_source(args))


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
    answer = api.ask(question, k=args.k, corpus=_source(args))
    if args.json:
        import json

        text = json.dumps(answer.to_dict(), ensure_ascii=False, indent=2)
        # json leaves C1 controls (U+0080..U+009F, e.g. CSI) raw; escape them for the terminal.
        print(text.translate(_C1_ESCAPES))
        return 0
    from emsqa.render import render_answer

    print(render_answer(answer, color=wants_color(sys.stdout), width=_width(sys.stdout)))
    return 0


# --------------------------------------------------------------------------- index


def _setting(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()


def _configure_index(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a file or folder of documents")
    parser.add_argument(
        "-o", "--output", required=True, metavar="DIR", help="folder to save the index in"
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        type=_setting,
        metavar="NAME=VALUE",
        help="an index setting (repeatable), e.g. --set target_words=100 --set subword_weight=0.3",
    )


_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _typed_settings(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """`--set` pairs as IndexSettings values of the fields' own types (checked before any work)."""
    import dataclasses

    from emsqa.errors import UsageError
    from emsqa.store import IndexSettings

    fields = {f.name: f.default for f in dataclasses.fields(IndexSettings)}
    out: dict[str, Any] = {}
    for name, text in pairs:
        if name not in fields:
            raise UsageError(
                f"unknown index setting {name!r}", hint="one of: " + ", ".join(sorted(fields))
            )
        default = fields[name]
        try:
            if isinstance(default, bool):
                value: Any = _BOOLEANS[text.lower()]
            elif isinstance(default, int):
                value = int(text)
            elif isinstance(default, float) or default is None:
                value = None if text.lower() == "none" else float(text)
            else:
                value = text
        except (KeyError, ValueError):
            kind = "true or false" if isinstance(default, bool) else type(default).__name__
            kind = "a number or none" if default is None else kind
            raise UsageError(f"--set {name}={text}: expected {kind}") from None
        out[name] = value
    IndexSettings.from_dict(out)
    return out


def _run_index(args: argparse.Namespace) -> int:
    from emsqa.index import Index

    settings = _typed_settings(args.settings)
    started = time.perf_counter()
    with _index_progress(sys.stderr) as progress:
        index = Index.build(os.path.expanduser(args.path), progress=progress, **settings)
    index.save(os.path.expanduser(args.output))
    seconds = time.perf_counter() - started
    terms = getattr(index, "n_terms", None)
    terms_part = f", {terms:,} terms" if isinstance(terms, int) else ""
    from emsqa.render import counted

    print(
        f"Indexed {counted(index.n_documents, 'document')} into "
        f"{counted(index.n_passages, 'passage')}{terms_part} in {seconds:.2f} s -> {args.output}"
    )
    return 0


@contextlib.contextmanager
def _index_progress(stream: TextIO) -> Iterator[Callable[[int, int], None] | None]:
    """The REPL module's progress bar on a terminal's stderr; nothing when stderr is redirected
    (then prompt_toolkit is not even imported)."""
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        yield None
        return
    from emsqa.repl import index_progress

    with index_progress(stream) as report:
        yield report


# --------------------------------------------------------------------------- chat


def _configure_chat(parser: argparse.ArgumentParser) -> None:
    _add_source_options(parser)


def _run_chat(args: argparse.Namespace) -> int:
    from emsqa import api

    conversation = api.Conversation(_open_source(args), k=args.k)
    from emsqa.repl import run_chat  # prompt_toolkit is loaded only for chat

    return run_chat(conversation)


# --------------------------------------------------------------------------- eval


def _configure_eval(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "testset",
        nargs="?",
        metavar="TESTSET",
        help="a question set in JSON Lines (format: see emsqa.evaluate)",
    )
    what.add_argument(
        "--beir",
        metavar="FOLDER",
        help="rank documents for a BEIR set (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv)",
    )
    _add_source_options(parser, passages_k=False)
    parser.add_argument(
        "-k",
        type=_cutoffs,
        default=(1, 3, 5, 10),
        metavar="K,K,...",
        help="cut-offs for evidence hit@k and Recall@k (default: 1,3,5,10)",
    )
    parser.add_argument(
        "--answer-k",
        type=_positive_int,
        default=3,
        metavar="N",
        help="passages each answer may draw on, as `ask -k` (default: 3)",
    )
    parser.add_argument(
        "--failures",
        action="store_true",
        help="list every failed question with what was expected and what came back",
    )
    parser.add_argument(
        "--split",
        metavar="NAME",
        help="only the questions of this split; for --beir the qrels file to use (default: test)",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="choose the abstention threshold from TESTSET's confidences instead of scoring it",
    )
    parser.add_argument(
        "--depth",
        type=_positive_int,
        default=100,
        metavar="K",
        help="--beir: documents ranked per query (default: 100)",
    )
    parser.add_argument(
        "--run-out",
        "--run",
        dest="run",
        metavar="FILE",
        help="--beir: also write the ranking as a TREC run file (for trec_eval, ir-measures, ranx)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _run_eval(args: argparse.Namespace) -> int:
    from emsqa import evaluate
    from emsqa.errors import UsageError

    if args.beir:
        if args.corpus or args.calibrate:
            flag = "--corpus" if args.corpus else "--calibrate"
            raise UsageError(f"{flag} does not apply to --beir", hint="use --index DIR or nothing")
        from emsqa.datasets import load_beir

        beir_set = load_beir(os.path.expanduser(args.beir), split=args.split or "test")
        index = _open_source(args) if args.index else None
        report: Any = evaluate.evaluate_beir(
            index, beir_set, k=args.depth, progress=_progress(sys.stderr)
        )
        if args.run:
            from emsqa.metrics import write_trec_run

            write_trec_run(report.run, os.path.expanduser(args.run))
    else:
        questions = evaluate.load_testset(os.path.expanduser(args.testset))
        index = _open_source(args)
        if args.calibrate:
            report = evaluate.calibrate_threshold(index, questions, split=args.split)
        else:
            report = evaluate.evaluate(
                index, questions, ks=args.k, k_answer=args.answer_k, split=args.split
            )
    if args.json:
        import json

        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(evaluate.format_report(report, failures=args.failures))
    return 0


def _progress(stream: TextIO) -> Callable[[int, int], None] | None:
    """A `done/total` counter on a terminal's stderr; nothing when stderr is redirected."""
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return None

    def report(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(1, total)
        bar = "#" * filled + "." * (width - filled)
        stream.write(f"\r[{bar}] {done:,}/{total:,} queries" + ("\n" if done >= total else ""))
        stream.flush()

    return report


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
    Subcommand(
        "eval",
        "measure answers and retrieval on a question set or a BEIR set",
        _configure_eval,
        _run_eval,
        "Score emsqa on TESTSET (answer accuracy, evidence, abstention, latency), choose the"
        " abstention threshold (--calibrate), or rank a BEIR set's documents (--beir).",
    ),
]


class _VersionAction(argparse.Action):
    """--version, reading the version only when asked (package metadata is slow to import)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.update(nargs=0, default=argparse.SUPPRESS)
        super().__init__(option_strings, argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from emsqa import __version__

        print(f"{parser.prog} {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Ask questions of EMS course material; answers cite their passages.",
        epilog="With no command, emsqa starts `chat` on the shipped corpus.",
    )
    parser.add_argument("--version", action=_VersionAction, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for sub in SUBCOMMANDS:
        child = commands.add_parser(sub.name, help=sub.help, description=sub.description or None)
        sub.configure(child)
        child.set_defaults(handler=sub.run)
    return parser


# --------------------------------------------------------------------------- errors and warnings


def _one_line(text: object) -> str:
    """One line, with control characters (from file names, say) shown as U+FFFD, never sent raw."""
    return " ".join(str(text).split()).translate(_CONTROL_MARKS)


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
            return int(args.handler(args))
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
        except OSError as exc:
            # The file system refused (a full disk, a path through a file): not a bug in emsqa.
            if debug:
                raise
            where = f": {exc.filename}" if exc.filename else ""
            reason = exc.strerror or _one_line(exc) or type(exc).__name__
            print(f"{PROG}: error: {reason}{where}", file=sys.stderr)
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
