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
    QuestionError,
    TestSetError,
    UsageError,
)

if TYPE_CHECKING:
    from emsqa.api import Conversation, ask, default_index, open_index, shipped_corpus
    from emsqa.index import Index, IndexSettings

# The question path (api, index) is imported on first use, so `import emsqa.datasets` or the CLI's
# argument parsing do not pay for it.
_LAZY = {
    "Conversation": "emsqa.api",
    "ask": "emsqa.api",
    "default_index": "emsqa.api",
    "open_index": "emsqa.api",
    "shipped_corpus": "emsqa.api",
    "Index": "emsqa.index",
    "IndexSettings": "emsqa.index",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'emsqa' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
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
    "Passage",
    "Query",
    "QuestionError",
    "Section",
    "TestSetError",
    "UsageError",
    "__version__",
    "ask",
    "default_index",
    "open_index",
    "shipped_corpus",
]

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("emsqa")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
