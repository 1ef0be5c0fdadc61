"""emsqa: ask questions of EMS course material and get answers that cite their passages."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from emsqa.datatypes import Answer, AnswerSentence, Citation, Document, Hit, Passage, Query, Section
from emsqa.errors import (
    CorpusError,
    EmsqaError,
    EmsqaWarning,
    IndexFormatError,
    IndexStateError,
    IndexWriteError,
    QuestionError,
    TestSetError,
    UsageError,
)

if TYPE_CHECKING:
    from emsqa.api import Conversation, ask, default_index, open_index, shipped_corpus
    from emsqa.corpus import SUPPORTED_SUFFIXES, corpus_fingerprint, load_documents, load_file
    from emsqa.index import Index, IndexSettings
    from emsqa.passages import SplitSettings, split_document, split_documents, split_sentences

# The question path (api, index) is imported on first use, so `import emsqa.datasets` or the CLI's
# argument parsing do not pay for it.
_LAZY = {
    "load_documents": "emsqa.corpus",
    "load_file": "emsqa.corpus",
    "corpus_fingerprint": "emsqa.corpus",
    "SUPPORTED_SUFFIXES": "emsqa.corpus",
    "SplitSettings": "emsqa.passages",
    "split_document": "emsqa.passages",
    "split_documents": "emsqa.passages",
    "split_sentences": "emsqa.passages",
    "Conversation": "emsqa.api",
    "ask": "emsqa.api",
    "default_index": "emsqa.api",
    "open_index": "emsqa.api",
    "shipped_corpus": "emsqa.api",
    "Index": "emsqa.index",
    "IndexSettings": "emsqa.index",
}


def _version() -> str:
    # importlib.metadata costs tens of milliseconds: read it only when __version__ is asked for.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("emsqa")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = globals()["__version__"] = _version()
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'emsqa' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "SUPPORTED_SUFFIXES",
    "Answer",
    "AnswerSentence",
    "Citation",
    "Conversation",
    "CorpusError",
    "Document",
    "EmsqaError",
    "EmsqaWarning",
    "Hit",
    "Index",
    "IndexFormatError",
    "IndexSettings",
    "IndexStateError",
    "IndexWriteError",
    "Passage",
    "Query",
    "QuestionError",
    "Section",
    "SplitSettings",
    "TestSetError",
    "UsageError",
    "__version__",
    "ask",
    "corpus_fingerprint",
    "default_index",
    "load_documents",
    "load_file",
    "open_index",
    "shipped_corpus",
    "split_document",
    "split_documents",
    "split_sentences",
]
