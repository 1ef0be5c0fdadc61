"""Drive the chat without a terminal: keys go in through a pipe, printed blocks come back."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def drive_chat(
    conversation: Any, keys: str, history: Path, *, color: bool = False
) -> tuple[int, list[str]]:
    """Type `keys` into run_chat and return its exit code and every block it printed."""
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    from emsqa.repl import run_chat

    blocks: list[str] = []
    with create_pipe_input() as pipe:
        pipe.send_text(keys)
        code = run_chat(
            conversation,
            input=pipe,
            output=DummyOutput(),
            history_path=history,
            color=color,
            print_fn=blocks.append,
        )
    return code, blocks
