"""The front door: `ask()`, `Conversation`, and opening corpora (the shipped one is cached on disk).

The shipped corpus' index is saved once in the user's cache folder ($XDG_CACHE_HOME/emsqa, else
~/.cache/emsqa) under a key made of the corpus fingerprint and the code that shapes the index, so it
is rebuilt exactly when the corpus or the analysis changes. Where no cache folder can be written the
index lives in memory for the process.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path

from emsqa.datatypes import Answer
from emsqa.errors import CorpusError, IndexFormatError
from emsqa.index import Index
from emsqa.store import FORMAT_VERSION, MANIFEST

__all__ = ["Conversation", "ask", "default_index", "open_index", "shipped_corpus"]

Source = str | os.PathLike[str] | Index | None


def shipped_corpus() -> Path:
    """The folder of the shipped EMS corpus (inside the installed package, or the source tree's corpus/)."""
    packaged = Path(str(resources.files("emsqa"))) / "_corpus"
    if packaged.is_dir():
        return packaged
    source_tree = Path(__file__).resolve().parent.parent / "corpus"
    if source_tree.is_dir():
        return source_tree
    raise CorpusError(
        "the shipped corpus is missing from this installation", hint="reinstall emsqa"
    )


def _cache_roots() -> tuple[Path, ...]:
    """Where the shipped index may be cached: the user's cache folder, else a per-user temp folder."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    user = os.getuid() if hasattr(os, "getuid") else 0
    return (Path(base) / "emsqa", Path(tempfile.gettempdir()) / f"emsqa-cache-{user}")


def _code_key() -> str:
    """Digest of the sources that decide what an index holds (a change there means a rebuild)."""
    h = hashlib.blake2b(f"format{FORMAT_VERSION}".encode(), digest_size=8)
    here = Path(__file__).resolve().parent
    for name in (
        "text.py",
        "passages.py",
        "strings.py",
        "counting.py",
        "store.py",
        "fusion.py",
        "data/lexicon.json",
    ):
        try:
            h.update((here / name).read_bytes())
        except OSError:
            h.update(name.encode())
    return h.hexdigest()


@lru_cache(maxsize=1)
def default_index() -> Index:
    """The index of the shipped corpus, loaded from the cache or built (and cached) on first use."""
    from emsqa.corpus import corpus_fingerprint

    corpus = shipped_corpus()
    fingerprint = corpus_fingerprint(corpus)
    key = f"{fingerprint[:16]}-{_code_key()}"
    for root in _cache_roots():
        folder = root / f"shipped-{key}"
        if (folder / MANIFEST).is_file():
            try:
                index = Index.load(folder)
                if index.fingerprint == fingerprint:
                    return index
            except IndexFormatError:
                pass  # damaged cache: rebuild below
    index = Index.build(corpus, name="shipped EMS corpus")
    for root in _cache_roots():
        try:
            index.save(root / f"shipped-{key}")
            break
        except (OSError, IndexFormatError):
            continue
    return index


def open_index(source: Source = None) -> Index:
    """None -> the shipped corpus; an Index -> itself; a saved index folder -> loaded; a path -> indexed."""
    if source is None:
        return default_index()
    if isinstance(source, Index):
        return source
    path = Path(source)
    if path.is_dir() and (path / MANIFEST).is_file():
        return Index.load(path)
    return Index.build(path)


def ask(question: str, *, k: int = 3, corpus: Source = None, history: Sequence[str] = ()) -> Answer:
    """Answer `question` from `corpus` (default: the shipped EMS corpus) with cited passages."""
    return open_index(corpus).ask(question, k=k, history=tuple(history))


class Conversation:
    """A chat: each question may lean on the ones before ("And what about paramedics?")."""

    def __init__(self, index: Index | None = None, *, k: int = 3) -> None:
        self._index = index
        self.k = k
        self._history: list[str] = []
        self.last: Answer | None = None

    @property
    def index(self) -> Index:
        if self._index is None:
            self._index = default_index()
        return self._index

    @index.setter
    def index(self, value: Index) -> None:
        self._index = value
        self.reset()

    @property
    def history(self) -> tuple[str, ...]:
        return tuple(self._history)

    def ask(self, question: str) -> Answer:
        """Answer `question` in the context of the conversation so far."""
        answer = self.index.ask(question, k=self.k, history=self.history)
        if answer.kind != "smalltalk":
            self._history.append(answer.query.text if answer.query else question)
        self.last = answer
        return answer

    def reset(self) -> None:
        """Forget the conversation so far."""
        self._history.clear()
        self.last = None
