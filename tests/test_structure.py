"""The layout's promises: prompt_toolkit only in repl.py, no printing in the core, data flows one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "emsqa"
# Left to right: a module may import only from modules to its left (datatypes/errors: everyone).
ORDER = [
    "parallel", "arrays", "corpus", "passages", "text", "strings", "counting", "store", "fusion", "retrieve",
    "answer", "index", "api", "render", "metrics", "datasets", "evaluate", "repl", "cli",
]  # fmt: skip
CORE = {
    "parallel", "arrays", "corpus", "passages", "text", "strings", "counting", "store", "fusion", "retrieve",
    "answer", "index", "api",
}  # fmt: skip


def test_every_module_has_its_place_in_the_flow() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert modules - {"datatypes", "errors"} == set(ORDER)


def _imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_only_the_repl_imports_prompt_toolkit() -> None:
    for path in PACKAGE.glob("*.py"):
        if path.stem != "repl":
            assert not any(m.startswith("prompt_toolkit") for m in _imports(path.stem)), path.name


@pytest.mark.parametrize("module", ORDER)
def test_modules_import_only_to_their_left(module: str) -> None:
    left = set(ORDER[: ORDER.index(module)]) | {"datatypes", "errors"}
    ours = {m.split(".")[1] for m in _imports(module) if m.startswith("emsqa.")}
    assert ours <= left, f"{module} imports {sorted(ours - left)} from its right"


@pytest.mark.parametrize("module", sorted(CORE))
def test_the_core_never_prints(module: str) -> None:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "print"
    ]
    assert not calls
