"""The README's promises: its two commands, CI running the same test command, examples that run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def _shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, flags=re.S)


def test_readme_begins_with_the_setup_and_the_test_command() -> None:
    first, second = (block.strip() for block in _shell_blocks()[:2])
    assert README.index(first) < README.index("## ")  # both come before the first section
    assert first.endswith(".venv/bin/emsqa") and "pip install" in first
    assert second.endswith("-m pytest") and "'.[dev]'" in second


def test_ci_runs_the_readme_test_command() -> None:
    test_command = _shell_blocks()[1].strip()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()


def test_seed_article_is_in_the_corpus_byte_for_byte() -> None:
    seed_dir = REPO.parent / "shared" / "seed"
    if not seed_dir.is_dir():
        pytest.skip("../shared/seed is absent (a clone without the shared folder)")
    seed = next(seed_dir.glob("000_*.txt")).read_bytes()
    assert (REPO / "corpus" / "00-emt-vs-paramedic.txt").read_bytes() == seed


@pytest.mark.parametrize("script", sorted((REPO / "examples").glob("*.py")), ids=lambda p: p.name)
def test_examples_run(script: Path, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "[1]" in out.stdout  # every example prints a cited answer or hit
