"""emsqa: ask questions of EMS course material and get answers that cite their passages."""

from __future__ import annotations

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

__all__ = [
    "Answer",
    "AnswerSentence",
    "Citation",
    "CorpusError",
    "Document",
    "EmsqaError",
    "EmsqaWarning",
    "Hit",
    "IndexFormatError",
    "IndexStateError",
    "Passage",
    "Query",
    "QuestionError",
    "Section",
    "TestSetError",
    "UsageError",
    "__version__",
]

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("emsqa")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
