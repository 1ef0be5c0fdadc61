"""The one exception hierarchy of emsqa.

    EmsqaError                 base: every error emsqa raises on purpose
    ├── CorpusError            a path or file that cannot be turned into documents
    ├── IndexFormatError       an index directory that is missing, damaged, tampered or too new
    ├── IndexStateError        an index used before it was built, or built from nothing
    ├── IndexWriteError        an index that cannot be saved (permissions, disk full, a file in the way)
    ├── QuestionError          a question that cannot be asked (e.g. not a string)
    ├── TestSetError           a malformed evaluation set (names the line)
    └── UsageError             a bad setting or argument value

EmsqaWarning is the category of every warning emsqa emits (a skipped file, a decoding fallback).
Each message is one line meant for a person; `hint` is an optional second sentence on what to do.
"""

from __future__ import annotations

__all__ = [
    "CorpusError",
    "EmsqaError",
    "EmsqaWarning",
    "IndexFormatError",
    "IndexStateError",
    "IndexWriteError",
    "QuestionError",
    "TestSetError",
    "UsageError",
]


class EmsqaError(Exception):
    """Base class of every error emsqa raises on purpose."""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class CorpusError(EmsqaError):
    """A corpus path or file cannot be read into documents."""


class IndexFormatError(EmsqaError):
    """An index directory is missing, truncated, tampered with, or of a newer format."""


class IndexStateError(EmsqaError):
    """An index is used before it holds anything."""


class IndexWriteError(EmsqaError):
    """An index cannot be written where it was asked to go; the previous one, if any, is intact."""


class QuestionError(EmsqaError):
    """A question cannot be asked (wrong type)."""


class TestSetError(EmsqaError):
    """An evaluation set is malformed; the message names the file and line."""

    __test__ = False  # not a pytest test class


class UsageError(EmsqaError):
    """A setting or argument has a value emsqa cannot use."""


class EmsqaWarning(UserWarning):
    """Category of the warnings emsqa emits (skipped files, decoding fallbacks, truncation)."""
