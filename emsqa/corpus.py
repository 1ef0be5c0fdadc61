"""Read files into Documents: the "load" stage.

`load_documents` turns a file or a folder tree of .txt, .md, .html, .pdf and .jsonl files into
Documents whose `text` is plain text (passages are cut from it; offsets refer to it) and whose
`sections` are the headings found in it. A file that cannot be used is skipped with one EmsqaWarning
naming it and the reason; the only exception leaving `load_documents` is CorpusError. Reads only.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import logging
import os
import re
import stat
import string
import unicodedata
import warnings
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from emsqa.datatypes import Document, Section
from emsqa.errors import CorpusError, EmsqaWarning, UsageError

__all__ = [
    "MAX_FILE_BYTES",
    "SUPPORTED_SUFFIXES",
    "JsonlPlan",
    "corpus_fingerprint",
    "jsonl_slice",
    "load_documents",
    "load_file",
    "plan_jsonl",
    "report_jsonl",
]

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".jsonl")

_SUFFIX_LIST = ", ".join(SUPPORTED_SUFFIXES[:-1]) + " or " + SUPPORTED_SUFFIXES[-1]
_BINARY_PROBE = 8192  # a NUL byte in this many leading bytes marks a file as binary
_TITLE_CHARS = 100  # longer first lines are shortened (at a word) when they become a title
_MAX_HEADING_WORDS = 12
_BAD_LINES_SHOWN = 5  # per jsonl file; the rest are counted in one summary warning
_FINGERPRINT_TAG = b"emsqa-corpus-fingerprint-v1\0"
MAX_FILE_BYTES = 64 * 2**20  # load_documents skips larger files unless told otherwise


class _Unusable(Exception):
    """A file (or jsonl record) that cannot become a document; `reason` says why, for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _warn(message: str) -> None:
    warnings.warn(message, EmsqaWarning, stacklevel=2)


# --------------------------------------------------------------------------------------------------
# Public API


def load_documents(
    path: str | os.PathLike[str], *, max_file_bytes: int = MAX_FILE_BYTES
) -> list[Document]:
    """Read a file, or every supported file under a folder (recursively), into Documents.

    Order follows the sorted relative POSIX paths; ids are those paths (a single file: its name;
    jsonl: the records' ids). Hidden files and folders are ignored; unusable files and duplicate
    documents are skipped with an EmsqaWarning each. Raises CorpusError when the path is missing or
    nothing usable remains.
    """
    if (
        isinstance(max_file_bytes, bool)
        or not isinstance(max_file_bytes, int)
        or max_file_bytes < 1
    ):
        raise UsageError(f"max_file_bytes must be a positive whole number, not {max_file_bytes!r}")
    root = _as_path(path)
    shown = os.fspath(path)
    files = _corpus_files(root, shown, warn=True)
    documents: list[Document] = []
    seen_text: dict[str, str] = {}
    seen_ids: set[str] = set()
    for rel, file_path, source in files:
        try:
            loaded = _load(file_path, doc_id=rel, source=source, max_bytes=max_file_bytes)
        except _Unusable as exc:
            _warn(f"skipped {source}: {exc.reason}")
            continue
        except Warning:  # an EmsqaWarning turned into an error by the caller's filters goes up
            raise
        except Exception as exc:  # a reader failing in a way not foreseen must not stop the corpus
            _warn(f"skipped {source}: {type(exc).__name__}: {exc}")
            continue
        records = _suffix(file_path.name) == ".jsonl"
        kept = _drop_duplicates(loaded, source, seen_text, seen_ids, records=records)
        documents.extend(kept)
    if not documents:
        raise CorpusError(
            f"no usable documents in {shown} ({len(files)} file(s) found, none usable)"
        )
    return documents


def load_file(path: str | os.PathLike[str], *, doc_id: str | None = None) -> list[Document]:
    """Read one supported file into Documents (a list: a .jsonl file holds many).

    `doc_id` defaults to the file's name; a .jsonl file's records keep their own ids. Raises
    CorpusError when the file is missing, of an unsupported type or unusable (binary, empty, an
    encrypted PDF...).
    """
    file_path = _as_path(path)
    shown = os.fspath(path)
    if _kind(file_path, shown) != "file":
        raise CorpusError(f"not a regular file: {shown}")
    if _suffix(file_path.name) not in SUPPORTED_SUFFIXES:
        raise CorpusError(f"unsupported file type: {shown} (emsqa reads {_SUFFIX_LIST} files)")
    try:
        return _load(file_path, doc_id=doc_id or file_path.name, source=shown, max_bytes=None)
    except _Unusable as exc:
        raise CorpusError(f"cannot load {shown}: {exc.reason}") from None
    except Warning:
        raise
    except Exception as exc:
        raise CorpusError(f"cannot load {shown}: {type(exc).__name__}: {exc}") from exc


def corpus_fingerprint(path: str | os.PathLike[str]) -> str:
    """A hex digest over the relative paths, sizes and bytes of the supported files under `path`.

    It changes whenever a file is added, removed, renamed or edited, so a cached index built from
    the corpus can tell it is stale. Raises CorpusError when the path does not exist.
    """
    root = _as_path(path)
    shown = os.fspath(path)
    kind = _kind(root, shown)
    if kind == "other":
        raise CorpusError(f"not a regular file or folder: {shown}")
    if kind == "folder":
        files = [(rel, p) for rel, p, _ in _walk(root, shown, warn=False)]
    else:
        files = [(root.name, root)]
    digest = hashlib.blake2b(_FINGERPRINT_TAG, digest_size=20)
    for rel, file_path in files:
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        try:
            with open(file_path, "rb") as handle:
                digest.update(str(os.fstat(handle.fileno()).st_size).encode() + b"\0")
                while block := handle.read(2**20):
                    digest.update(block)
        except OSError as exc:
            digest.update(f"unreadable:{exc.errno}".encode())
        digest.update(b"\0\0")
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# Finding files


def _as_path(path: Any) -> Path:
    try:
        name = os.fspath(path)
    except TypeError:
        name = path
    if not isinstance(name, str):
        raise CorpusError(f"a corpus path must be a string or path, not {type(name).__name__}")
    if not name:  # Path("") would quietly mean the current folder
        raise CorpusError("the corpus path is empty")
    return Path(name)


def _kind(path: Path, shown: str) -> str:
    """'folder', 'file' or 'other' (a pipe, a device...); CorpusError if missing or unreachable."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: a NUL in the name
        raise CorpusError(f"corpus path not found: {shown}") from None
    except OSError as exc:
        raise CorpusError(f"cannot open corpus path {shown}: {_os_reason(exc)}") from None
    if stat.S_ISDIR(mode):
        return "folder"
    return "file" if stat.S_ISREG(mode) else "other"


def _suffix(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def _corpus_files(root: Path, shown: str, *, warn: bool) -> list[tuple[str, Path, str]]:
    """(document id, path, source shown to people) of each file to load, checked and sorted."""
    kind = _kind(root, shown)
    if kind == "folder":
        files = _walk(root, shown, warn=warn)
        if not files:
            raise CorpusError(f"no {_SUFFIX_LIST} files under {shown}")
        return files
    if kind != "file":
        raise CorpusError(f"not a regular file or folder: {shown}")
    if _suffix(root.name) not in SUPPORTED_SUFFIXES:
        raise CorpusError(f"unsupported file type: {shown} (emsqa reads {_SUFFIX_LIST} files)")
    return [(root.name, root, shown)]


def _walk(root: Path, shown: str, *, warn: bool) -> list[tuple[str, Path, str]]:
    """Supported, non-hidden files under `root`, sorted by relative POSIX path.

    Links are followed, but a folder is read once (by its real path), so link loops end; folders
    are visited depth-first in name order, so which path reaches a linked folder is always the same.
    """
    found: list[tuple[str, Path, str]] = []
    visited: set[str] = set()
    pending: list[tuple[Path, str]] = [(root, "")]
    while pending:
        folder, rel = pending.pop()
        real = os.path.realpath(folder)
        if real in visited:  # a link back to a folder already read: a loop, or a second way in
            continue
        visited.add(real)
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as exc:
            if not rel:
                raise CorpusError(f"cannot read folder {shown}: {_os_reason(exc)}") from None
            if warn:
                _warn(f"skipped folder {os.path.join(shown, rel)}: {_os_reason(exc)}")
            continue
        subfolders: list[tuple[Path, str]] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            name = os.fsencode(entry.name).decode("utf-8", "replace")
            child = f"{rel}/{name}" if rel else name
            try:
                if entry.is_dir():
                    subfolders.append((Path(entry.path), child))
                elif _suffix(entry.name) in SUPPORTED_SUFFIXES:
                    if entry.is_file():
                        found.append((child, Path(entry.path), os.path.join(shown, child)))
                    elif entry.is_symlink() and warn:
                        _warn(f"skipped {os.path.join(shown, child)}: broken symbolic link")
            except OSError as exc:
                if warn:
                    _warn(f"skipped {os.path.join(shown, child)}: {_os_reason(exc)}")
        pending.extend(reversed(subfolders))  # the stack pops them in name order
    found.sort(key=lambda item: item[0])
    return found


def _os_reason(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else str(exc)


def _drop_duplicates(
    loaded: list[Document],
    source: str,
    seen_text: dict[str, str],
    seen_ids: set[str],
    *,
    records: bool,
) -> list[Document]:
    """Keep the documents whose id and text are new; warn once per file (and kind) about the rest."""
    kept: list[Document] = []
    same_text: list[Document] = []
    same_id: list[Document] = []
    for doc in loaded:
        if doc.id in seen_ids:
            same_id.append(doc)
        elif doc.text in seen_text:
            same_text.append(doc)
        else:
            seen_ids.add(doc.id)
            seen_text[doc.text] = doc.source
            kept.append(doc)
    if not records and (same_text or same_id):
        doc = loaded[0]
        if same_id:
            _warn(f"skipped {source}: its id {doc.id!r} is already used by an earlier document")
        else:
            _warn(f"skipped {source}: same text as {seen_text[doc.text]}")
        return kept
    _warn_repeats(
        source,
        [d.source.rpartition(":")[2] for d in same_id],
        [d.source.rpartition(":")[2] for d in same_text],
    )
    return kept


def _warn_repeats(source: str, same_id: list[str], same_text: list[str]) -> None:
    """Warn about the records of `source` skipped for repeating an earlier id or text (their
    line numbers, in order)."""
    for dups, what in ((same_id, "an earlier document's id"), (same_text, "an earlier text")):
        if dups:
            lines = ", ".join(dups[:_BAD_LINES_SHOWN])
            more = ", ..." if len(dups) > _BAD_LINES_SHOWN else ""
            _warn(
                f"skipped {len(dups)} record(s) of {source} repeating {what} (lines {lines}{more})"
            )


# --------------------------------------------------------------------------------------------------
# Reading one file


def _load(path: Path, *, doc_id: str, source: str, max_bytes: int | None) -> list[Document]:
    data = _read_bytes(path, max_bytes)
    if not data:
        raise _Unusable("empty file")
    suffix = _suffix(path.name)
    if suffix == ".pdf":
        return [_pdf_document(data, doc_id, source)]
    text = _decode(data, source)
    if suffix == ".jsonl":
        return _jsonl_documents(text, doc_id, source)
    text = _normalise(text)
    if not text.strip():
        raise _Unusable("no text (only whitespace)")
    if suffix in (".md", ".markdown"):
        title, body, sections = _markdown(text)
    elif suffix in (".html", ".htm"):
        title, body, sections = _html(text)
    else:
        title, body, sections = _first_line(text), text, _plain_sections(text)
    if not body.strip():
        raise _Unusable("no text once markup is removed")
    return [Document(id=doc_id, title=title, text=body, source=source, sections=sections)]


def _read_bytes(path: Path, max_bytes: int | None) -> bytes:
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if max_bytes is not None and size > max_bytes:
                raise _Unusable(f"{size:,} bytes is more than max_file_bytes={max_bytes:,}")
            data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    except OSError as exc:
        raise _Unusable(f"cannot be read ({_os_reason(exc)})") from None
    if max_bytes is not None and len(data) > max_bytes:  # it grew while we looked
        raise _Unusable(f"more than max_file_bytes={max_bytes:,} bytes")
    return data


_UNICODE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode(data: bytes, source: str) -> str:
    """UTF-8 (BOM dropped), else cp1252, else latin-1 with a warning; NUL bytes mean binary."""
    for bom, encoding in _UNICODE_BOMS:  # UTF-16/32 text is full of NULs but is still text
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                raise _Unusable(f"starts like {encoding.upper()} text but is not") from None
    if b"\0" in data[:_BINARY_PROBE]:
        raise _Unusable("binary file (NUL bytes in its first 8 KB)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    for encoding in ("cp1252", "latin-1"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        _warn(f"{source} is not valid UTF-8; read it as {encoding}")
        return text
    raise _Unusable("undecodable text")  # not reached: latin-1 decodes every byte


def _normalise(text: str) -> str:
    """Newlines to \\n and NFC (composed, not compatibility-folded: offsets stay readable)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text


def _shorten(line: str) -> str:
    line = line.strip()
    if len(line) <= _TITLE_CHARS:
        return line
    cut = line.rfind(" ", 0, _TITLE_CHARS)
    return line[: cut if cut > 0 else _TITLE_CHARS].rstrip() + "…"


def _first_line(text: str) -> str:
    for line in text.split("\n", 50):
        if line.strip():
            return _shorten(line)
    return ""


# --------------------------------------------------------------------------------------------------
# Plain text (also the text pypdf extracts)

_NOT_HEADING_START = ("-", "*", "+", "•", "·", "‣", "▪", "◦", "–", "—", ">", "|")
_NOT_HEADING_END = (".", ",", ":", ";")


def _looks_like_heading(line: str) -> bool:
    return (
        len(line.split()) <= _MAX_HEADING_WORDS
        and not line.endswith(_NOT_HEADING_END)
        and not line.startswith(_NOT_HEADING_START)
        and any(ch.isalpha() for ch in line)
    )


def _plain_sections(text: str) -> tuple[Section, ...]:
    """Headings of plain text: the first line, and short lines standing alone as a paragraph.

    A line "stands alone" when a blank line (or the start) comes before it and a blank line after.
    Lines ending in '.', ',', ':' or ';', bullets and lines of over 12 words are not headings.
    """
    sections: list[Section] = []
    lines = text.split("\n")
    offset = 0
    seen_text = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped:
            first = not seen_text
            seen_text = True
            alone = (i == 0 or not lines[i - 1].strip()) and (
                i + 1 < len(lines) and not lines[i + 1].strip()
            )
            if (first or alone) and _looks_like_heading(stripped):
                start = offset + (len(line) - len(line.lstrip()))
                sections.append(Section(start, start + len(stripped), stripped))
        offset += len(line) + 1
    return tuple(sections)


# --------------------------------------------------------------------------------------------------
# Output of the markup converters: lines with headings recorded, blank runs collapsed


class _Lines:
    """Plain-text output built line by line; headings become their own paragraphs and Sections."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.headings: list[tuple[int, str]] = []  # (line number, title)
        self.levels: list[int] = []  # heading levels, parallel to `headings`

    def blank(self) -> None:
        if self.lines and self.lines[-1]:
            self.lines.append("")

    def add(self, line: str) -> None:
        line = unicodedata.normalize("NFC", line.rstrip())
        if line:
            self.lines.append(line)
        else:
            self.blank()

    def heading(self, title: str, level: int = 1) -> None:
        title = unicodedata.normalize("NFC", title.strip())
        self.blank()
        if not title:
            return
        self.headings.append((len(self.lines), title))
        self.levels.append(level)
        self.lines.append(title)
        self.lines.append("")

    def result(self) -> tuple[str, tuple[Section, ...]]:
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        starts: list[int] = []
        offset = 0
        for line in self.lines:
            starts.append(offset)
            offset += len(line) + 1
        text = "\n".join(self.lines)
        sections = tuple(Section(starts[n], starts[n] + len(t), t) for n, t in self.headings)
        return text, sections


# --------------------------------------------------------------------------------------------------
# Markdown

_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.M)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.M)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*\S+")
_TABLE_RULE = re.compile(r"^[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)+[ \t]*(?::?-+:?[ \t]*)?$")
_QUOTE = re.compile(r"^ {0,3}>[ ]?")
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+")
_BLOCK_START = re.compile(r"^ {0,3}(?:[-*+][ \t]|\d{1,9}[.)][ \t]|>|#|`{3}|~{3}|\|)")

_SPAN = 300  # emphasis and code spans longer than this stay as written: keeps the rules linear
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
_CODE_SPAN = re.compile(rf"(`+)(.{{1,{_SPAN}}}?)(?<!`)\1(?!`)")
_IMAGE = re.compile(r"!\[[^\]]*\](?:\((?:[^()]|\([^()]*\))*\)|\[[^\]]*\])")
_LINK = re.compile(r"\[([^\]]*)\]\((?:[^()]|\([^()]*\))*\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_AUTOLINK = re.compile(r"<((?:https?|ftp|mailto):[^>\s]+)>")
_STRONG = re.compile(rf"(\*\*|__)(?=\S)(.{{1,{_SPAN}}}?)(?<=\S)\1")
_STRIKE = re.compile(rf"~~(?=\S)(.{{1,{_SPAN}}}?)(?<=\S)~~")
_EM_STAR = re.compile(rf"(?<![\w*])\*(?=[^\s*])(.{{1,{_SPAN}}}?)(?<=[^\s*])\*(?![\w*])")
_EM_UNDERSCORE = re.compile(rf"(?<![\w_])_(?=[^\s_])(.{{1,{_SPAN}}}?)(?<=[^\s_])_(?![\w_])")
_PROTECT_BASE = 0xF0000  # supplementary private use area: ASCII punctuation hides here meanwhile
_PUNCTUATION = frozenset(string.punctuation)
_PROTECTED = re.compile("[\U000f0000-\U000f007f]")


def _protect(text: str) -> str:
    """Hide ASCII punctuation from the inline rules (inside code spans, after a backslash)."""
    return "".join(chr(_PROTECT_BASE + ord(ch)) if ch in _PUNCTUATION else ch for ch in text)


def _md_inline(text: str) -> str:
    """Markdown inline syntax -> plain words: no emphasis marks, backticks, link targets, images."""
    if not any(ch in text for ch in "\\`![]<*_~"):
        return text
    text = _ESCAPED.sub(lambda m: _protect(m.group(1)), text)
    text = _CODE_SPAN.sub(lambda m: _protect(m.group(2).strip() or m.group(2)), text)
    text = _IMAGE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _REF_LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    for _ in range(
        3
    ):  # nested emphasis (***both***, **bold _and italic_**) needs more than one pass
        before = text
        text = _STRONG.sub(r"\2", text)
        text = _STRIKE.sub(r"\1", text)
        text = _EM_STAR.sub(r"\1", text)
        text = _EM_UNDERSCORE.sub(r"\1", text)
        if text == before:
            break
    return _PROTECTED.sub(lambda m: chr(ord(m.group()) - _PROTECT_BASE), text)


def _front_matter(text: str) -> tuple[str, str]:
    """(text without a leading YAML front matter block, its title or '')."""
    if not text.startswith("---\n"):
        return text, ""
    end = _FRONT_MATTER_END.search(text, 4)
    if end is None:
        return text, ""
    block = text[4 : end.start()]
    match = _FRONT_TITLE.search(block)
    title = match.group(1).strip() if match else ""
    if len(title) >= 2 and title[0] == title[-1] and title[0] in "'\"":
        title = title[1:-1].strip()
    return text[end.end() :].lstrip("\n"), title


def _markdown(text: str) -> tuple[str, str, tuple[Section, ...]]:
    """(title, plain text, sections) of a Markdown document."""
    text, front_title = _front_matter(text)
    text = _HTML_COMMENT.sub("", text)
    out = _Lines()
    fence = ""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if fence:  # inside a fenced code block: verbatim until the closing fence
            stripped = line.strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]):
                fence = ""
                out.blank()
            else:
                out.add(line)
            continue
        opened = _FENCE.match(line)
        if opened:
            fence = opened.group(1)
            out.blank()
            continue
        atx = _ATX.match(line)
        if atx:
            out.heading(_md_inline(atx.group(2) or ""), len(atx.group(1)))
            continue
        if (
            line.strip()
            and i < len(lines)
            and _SETEXT.match(lines[i])
            and not _BLOCK_START.match(line)
            and (not out.lines or not out.lines[-1])
        ):
            out.heading(_md_inline(line.strip()), 1 if lines[i].strip().startswith("=") else 2)
            i += 1
            continue
        if _RULE.match(line):
            out.blank()
            continue
        if _REF_DEF.match(line) or ("|" in line and _TABLE_RULE.match(line)):
            continue
        while _QUOTE.match(line):
            line = _QUOTE.sub("", line, count=1)
        bullet = _BULLET.match(line)
        if bullet:
            out.add(bullet.group(1) + "- " + _md_inline(line[bullet.end() :]))
        else:
            out.add(_md_inline(line))
    body, sections = out.result()
    title = front_title
    if not title and sections:
        first_h1 = next(
            (s for s, level in zip(sections, out.levels, strict=True) if level == 1), sections[0]
        )
        title = first_h1.title
    return _shorten(title) if title else _first_line(body), body, sections


# --------------------------------------------------------------------------------------------------
# HTML

_SKIPPED_TAGS = frozenset(
    {"script", "style", "nav", "head", "noscript", "template", "svg", "iframe", "object", "select"}
)
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "caption", "center", "dd", "details",
        "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form",
        "header", "hgroup", "hr", "html", "legend", "main", "menu", "ol", "p", "pre", "section",
        "summary", "table", "tbody", "tfoot", "thead", "ul",
    }
)  # fmt: skip
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_SPACES = re.compile(r"\s+")
_BREAK = "\U000f0100"  # stands for <br> until a block is flushed (raw newlines are just spaces)


class _HtmlText(HTMLParser):
    """Collects the visible text of an HTML page as blocks: paragraphs, items, rows, headings."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, str, int]] = []  # (kind, text, list depth)
        self.title = ""
        self.first_h1 = ""
        self._parts: list[str] = []
        self._kind = "p"
        self._depth = 0
        self._skipping: list[str] = []
        self._in_title = False
        self._title_parts: list[str] = []
        self._pre = 0
        self._heading = ""

    # Parser callbacks
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and (not self._skipping or "head" in self._skipping):
            self._in_title = True
            return
        if tag == "body" and "head" in self._skipping:  # a page that never closed its <head>
            self._skipping = [t for t in self._skipping if t != "head"]
        if tag in _SKIPPED_TAGS:
            self._skipping.append(tag)
            return
        if self._skipping:
            return
        if tag == "br":
            self._parts.append(_BREAK)
        elif tag in ("td", "th"):
            if "".join(self._parts).strip():
                self._parts.append(" | ")
        elif tag in ("ul", "ol", "menu", "dir"):
            self._flush()
            self._depth += 1
        elif tag == "li":
            self._flush()
            self._kind = "li"
        elif tag == "tr":
            self._flush()
            self._kind = "row"
        elif tag in _HEADING_TAGS:
            self._flush()
            self._kind, self._heading = "h", tag
        elif tag in _BLOCK_TAGS:
            self._flush()
            if tag == "pre":
                self._pre += 1
                self._kind = "pre"
        elif tag == "img":
            self._parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            self.title = self.title or _SPACES.sub(" ", "".join(self._title_parts)).strip()
            return
        if tag in _SKIPPED_TAGS and tag in self._skipping:
            while self._skipping and self._skipping.pop() != tag:
                pass
            return
        if self._skipping:
            return
        if tag in ("ul", "ol", "menu", "dir"):
            self._flush()
            self._depth = max(0, self._depth - 1)
        elif tag in ("li", "tr") or tag in _HEADING_TAGS or tag in _BLOCK_TAGS:
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)
        if not self._skipping and not self._in_title:
            self._parts.append(data)

    def close(self) -> None:
        super().close()
        self._flush()

    # Blocks
    def _flush(self) -> None:
        raw = "".join(self._parts)
        kind = self._kind
        self._parts = []
        self._kind = "pre" if self._pre else "p"
        if kind == "pre":
            lines = [line.rstrip() for line in raw.replace(_BREAK, "\n").split("\n")]
            while lines and not lines[0]:
                lines.pop(0)
            text = "\n".join(lines).rstrip()
        else:
            lines = [_SPACES.sub(" ", line).strip() for line in raw.split(_BREAK)]
            text = "\n".join(line for line in lines if line)
        if not text:
            return
        if kind == "h":
            text = text.replace("\n", " ")
            if self._heading == "h1" and not self.first_h1:
                self.first_h1 = text
        self.blocks.append((kind, text, self._depth))


def _html(text: str) -> tuple[str, str, tuple[Section, ...]]:
    """(title, plain text, sections) of an HTML page, using the standard library's parser."""
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    out = _Lines()
    previous = ""
    for kind, block, depth in parser.blocks:
        if kind == "h":
            out.heading(block)
        else:
            if not (kind == previous and kind in ("li", "row")):
                out.blank()
            if kind == "li":
                block = "  " * max(0, depth - 1) + "- " + block
            for line in block.split("\n"):
                out.add(line)
        previous = kind
    body, sections = out.result()
    title = parser.title or parser.first_h1
    return _shorten(title) if title else _first_line(body), body, sections


# --------------------------------------------------------------------------------------------------
# PDF


def _pdf_document(data: bytes, doc_id: str, source: str) -> Document:
    """A PDF's text, pages parted by a blank line; pypdf's exceptions and log noise stay in here."""
    pypdf_log = logging.getLogger("pypdf")
    old_level = pypdf_log.level
    pypdf_log.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pages, meta_title, failed = _pdf_pages(data)
    finally:
        pypdf_log.setLevel(old_level)
    if failed:
        _warn(f"{source}: the text of page(s) {', '.join(map(str, failed))} could not be extracted")
    text = _normalise("\n\n".join(page for page in pages if page))
    if not text.strip():
        raise _Unusable("PDF without extractable text (scanned pages?)")
    title = _shorten(_normalise(meta_title)) if meta_title.strip() else _first_line(text)
    return Document(
        id=doc_id, title=title, text=text, source=source, sections=_plain_sections(text)
    )


def _pdf_pages(data: bytes) -> tuple[list[str], str, list[int]]:
    """(page texts, metadata title, pages that failed); _Unusable when pypdf cannot open it."""
    try:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = bool(reader.decrypt(""))
            except Exception:  # e.g. AES without the optional cryptography package
                opened = False
            if not opened:
                raise _Unusable("encrypted PDF (it needs a password)")
        page_list = list(reader.pages)
    except _Unusable:
        raise
    except Exception as exc:
        raise _Unusable(f"damaged or not a PDF ({type(exc).__name__})") from None
    pages: list[str] = []
    failed: list[int] = []
    for number, page in enumerate(page_list, 1):
        try:
            raw = page.extract_text() or ""
        except Exception:
            failed.append(number)
            continue
        lines = [line.rstrip() for line in raw.replace("\x00", "").split("\n")]
        pages.append("\n".join(lines).strip("\n"))
    try:
        meta = reader.metadata
        meta_title = str(meta.title or "") if meta is not None else ""
    except Exception:
        meta_title = ""
    return pages, meta_title, failed


# --------------------------------------------------------------------------------------------------
# JSON lines (BEIR style: {"_id" or "id", "title", "text"} per line)


def _jsonl_documents(text: str, file_id: str, source: str) -> list[Document]:
    documents: list[Document] = []
    bad: list[tuple[int, str]] = []
    _jsonl_lines(text, 1, file_id, source, documents, bad)
    _warn_bad_lines(bad, source)
    if not documents:
        raise _Unusable(_no_records(len(bad)))
    return documents


def _jsonl_lines(
    text: str,
    first: int,
    file_id: str,
    source: str,
    documents: list[Document],
    bad: list[tuple[int, str]],
) -> None:
    """The records of `text` (its first line being line `first` of the file) appended to
    `documents`, and (line number, reason) of its unusable lines to `bad`."""
    for number, line in enumerate(text.split("\n"), first):
        if not line.strip():
            continue
        try:
            documents.append(_jsonl_record(line, file_id, source, number))
        except _Unusable as exc:
            bad.append((number, exc.reason))


def _warn_bad_lines(bad: list[tuple[int, str]], source: str) -> None:
    for number, reason in bad[:_BAD_LINES_SHOWN]:
        _warn(f"skipped line {number} of {source}: {reason}")
    if len(bad) > _BAD_LINES_SHOWN:
        _warn(f"skipped {len(bad) - _BAD_LINES_SHOWN} more bad line(s) of {source}")


def _no_records(bad: int) -> str:
    return f"no usable records ({bad} bad line(s))" if bad else "no records"


def _jsonl_record(line: str, file_id: str, source: str, number: int) -> Document:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise _Unusable(f"not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise _Unusable(f"a JSON {type(record).__name__}, not an object")
    body = record.get("text")
    if not isinstance(body, str):
        raise _Unusable('no "text" string')
    body = _normalise(body)
    if not body.strip():
        raise _Unusable('empty "text"')
    raw_id = record.get("id", record.get("_id"))
    if raw_id is None:
        doc_id = f"{file_id}:{number}"
    elif isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) and str(raw_id).strip():
        doc_id = str(raw_id).strip()
    else:
        raise _Unusable(f"unusable id {raw_id!r}")
    title = record.get("title")
    if isinstance(title, str) and title.strip():
        title = _shorten(_normalise(title))
    else:
        title = _first_line(body)
    return Document(id=doc_id, title=title, text=body, source=f"{source}:{number}")


# --------------------------------------------------------------------------------------------------
# A large .jsonl file read in slices (by forked workers: the parent never holds its records)


@dataclass(frozen=True)
class JsonlPlan:
    """A .jsonl file cut at line ends into byte ranges [cuts[i], cuts[i + 1]), each starting at
    line `first_lines[i]`, as found by one pass over its bytes (which also gave `fingerprint`).
    Its records are those `load_documents(path)` reads, slice by slice (`jsonl_slice`)."""

    path: Path
    source: str  # the path as given: warnings and each record's Document.source name it
    file_id: str  # the file's name: the id of a record without one is "<file_id>:<line>"
    size: int
    mtime_ns: int
    cuts: list[int]
    first_lines: list[int]
    lines: int
    fingerprint: str  # corpus_fingerprint(path) of the bytes planned

    @property
    def slices(self) -> int:
        return len(self.cuts) - 1

    def unchanged(self) -> bool:
        """Whether the file still has the size and modification time it was planned with."""
        try:
            info = os.stat(self.path)
        except OSError:
            return False
        return (info.st_size, info.st_mtime_ns) == (self.size, self.mtime_ns)

    def changed_error(self) -> CorpusError:
        return CorpusError(f"{self.source} changed while it was being indexed; index it again")


_PLAN_BLOCK = 2**20  # bytes read at a time while planning


def plan_jsonl(path: str | os.PathLike[str], slice_bytes: int) -> JsonlPlan | None:
    """Cut the .jsonl file at `path` into slices of about `slice_bytes` bytes, each ending at a
    line end. None when the file is not one that can be read a slice at a time exactly as
    `load_documents` reads it whole: not a regular .jsonl file, empty, not UTF-8 (load_documents
    falls back to other encodings with a warning), or binary-looking."""
    file_path = _as_path(path)
    shown = os.fspath(path)
    if _kind(file_path, shown) != "file" or _suffix(file_path.name) != ".jsonl":
        return None
    digest = hashlib.blake2b(_FINGERPRINT_TAG, digest_size=20)
    digest.update(file_path.name.encode("utf-8", "surrogateescape") + b"\0")
    utf8 = codecs.getincrementaldecoder("utf-8")()  # decodes only to check
    try:
        with open(file_path, "rb") as handle:
            info = os.fstat(handle.fileno())
            digest.update(str(info.st_size).encode() + b"\0")
            head = handle.read(_BINARY_PROBE)
            if not head or b"\0" in head or any(head.startswith(b) for b, _ in _UNICODE_BOMS):
                return None
            start = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
            handle.seek(start)
            digest.update(head[:start])
            cuts, first_lines = [start], [1]
            at, lines = start, 0  # the file offset of the next block; line ends before it
            while block := handle.read(_PLAN_BLOCK):
                digest.update(block)
                utf8.decode(block)
                counted = 0  # line ends of the block before `counted` are in `lines`
                # each slice ends at the first line end at least slice_bytes after its start
                while (j := block.find(b"\n", max(0, cuts[-1] + slice_bytes - 1 - at))) >= 0:
                    lines += block.count(b"\n", counted, j + 1)
                    counted = j + 1
                    cuts.append(at + j + 1)
                    first_lines.append(lines + 1)
                lines += block.count(b"\n", counted)
                at += len(block)
            utf8.decode(b"", final=True)
    except (OSError, UnicodeDecodeError):
        return None
    if at != info.st_size or at <= start:  # it changed meanwhile, or holds only a BOM
        return None
    if cuts[-1] == at:
        first_lines.pop()
    else:
        cuts.append(at)
    digest.update(b"\0\0")
    return JsonlPlan(
        path=file_path,
        source=shown,
        file_id=file_path.name,
        size=at,
        mtime_ns=info.st_mtime_ns,
        cuts=cuts,
        first_lines=first_lines,
        lines=lines,
        fingerprint=digest.hexdigest(),
    )


def jsonl_slice(plan: JsonlPlan, i: int) -> tuple[list[Document], list[tuple[int, str]]]:
    """The records of slice `i` of `plan` as Documents, and its unusable lines' (line number,
    reason), exactly as load_documents finds them. CorpusError if the file changed."""
    a, b = plan.cuts[i], plan.cuts[i + 1]
    try:
        with open(plan.path, "rb") as handle:
            handle.seek(a)
            data = handle.read(b - a)
    except OSError as exc:
        raise CorpusError(f"cannot read {plan.source}: {_os_reason(exc)}") from None
    if len(data) != b - a or (b < plan.size and not data.endswith(b"\n")):
        raise plan.changed_error()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise plan.changed_error() from None
    del data
    documents: list[Document] = []
    bad: list[tuple[int, str]] = []
    _jsonl_lines(text, plan.first_lines[i], plan.file_id, plan.source, documents, bad)
    return documents, bad


def report_jsonl(
    plan: JsonlPlan,
    bad: list[tuple[int, str]],
    records: int,
    same_id: list[int],
    same_text: list[int],
) -> None:
    """Warn as load_documents does about the file's unusable lines (line number, reason) and
    its `records` usable ones skipped for repeating an earlier id or text (line numbers), and
    raise its CorpusError when the file held no usable record."""
    _warn_bad_lines(bad, plan.source)
    if not records:
        _warn(f"skipped {plan.source}: {_no_records(len(bad))}")
        raise CorpusError(f"no usable documents in {plan.source} (1 file(s) found, none usable)")
    _warn_repeats(plan.source, [str(n) for n in same_id], [str(n) for n in same_text])
