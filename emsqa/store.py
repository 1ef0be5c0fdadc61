"""The index's arrays: built with scikit-learn, saved as .npy + JSON, loaded without running code.

Layout of an index folder::

    manifest.json            format, versions, settings, counts, corpus fingerprint, file digests
    data-<token>/*.npy       the arrays (term hashes, postings, passages, strings)

Saving writes a fresh data folder, then atomically replaces manifest.json, then removes the old data
folder: a save killed at any moment leaves the previous index loadable. Every array is read with
`allow_pickle=False`, and the manifest's checksum and the arrays' digests are verified on load.

Terms are addressed by a 64-bit hash kept sorted (FNV-1a over a word's bytes, mixed; a bigram's
key mixes its words' keys), so a question's terms are found with one
`searchsorted` and the vocabulary never has to be loaded into a dict (a million-passage index opens
memory-mapped in milliseconds). Postings are term-major (CSC): a question touches only the passages
sharing one of its terms.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import secrets
import shutil
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emsqa.arrays import MappedRuns, release_free_memory
from emsqa.counting import ChunkCounts, Vocabulary, count_chunk, count_fields, merge_chunks
from emsqa.datatypes import Document, Passage
from emsqa.errors import (
    EmsqaWarning,
    IndexFormatError,
    IndexStateError,
    IndexWriteError,
    UsageError,
)
from emsqa.parallel import can_fork, computed_ahead, forked_slices, usable_cores
from emsqa.passages import (
    PARALLEL_SPLIT_FROM,
    SplitSettings,
    passage_spans,
    require_documents,
    split_documents,
)
from emsqa.strings import StringTable
from emsqa.text import STOP_WORDS, Analyzer, tokenize

if TYPE_CHECKING:  # the corpus reader is imported where a build streams a file: not on the
    from emsqa.corpus import JsonlPlan  # question path, which must start fast

__all__ = [
    "FORMAT_VERSION",
    "IndexSettings",
    "Store",
    "StringTable",
    "build_store",
    "build_store_from_documents",
    "build_store_from_jsonl",
    "hash_terms",
    "load_store",
    "save_store",
]

# 4: no idf (derived from the postings' lengths when asked: Store.idf_of); 3: postings in the
#    narrowest dtypes that hold them, weights as 16-bit steps of a per-term scale (post_scale),
#    bigrams keyed by their words' keys, no term strings and no df (the postings' lengths); 2:
#    every term keyed by the "term_hash" the manifest names; 1: BLAKE2b. All four are read.
FORMAT_VERSION = 4
FORMAT_NAME = "emsqa-index"
MANIFEST = "manifest.json"
_FULL_DIGEST_LIMIT = 64 * 2**20  # arrays above this are checked by size and a head/tail digest


@dataclass(frozen=True)
class IndexSettings:
    """How passages are cut, analysed and weighted. Stored in the manifest; all keyword-only."""

    weighting: str = "bm25"  # "bm25": saturated tf and length normalisation; "tfidf": cosine
    k1: float = 1.2
    b: float = 0.75
    stem: bool = True
    bigrams: bool = True
    bigram_weight: float = 1.0  # a question's bigrams weigh this much beside its words (0..1)
    title_weight: int = 1
    section_weight: int = 2
    target_words: int = 80
    min_words: int = 40
    max_words: int = 150
    overlap: int = 1
    # ask() abstains below this confidence; None = emsqa.answer.ABSTAIN_BELOW, calibrated on the EMS
    # corpus. Another corpus or question style: choose one with `emsqa eval ... --calibrate`.
    abstain_below: float | None = None
    # "smooth": ln((1 + n) / (1 + df)) + 1, never zero, so a term in every passage of a tiny corpus
    # still counts; "bm25": ln(1 + (n - df + 0.5) / (df + 0.5)) (Lucene's), near zero for a term in
    # most passages: for large corpora. Applied to the question's weights, so the index is the same.
    idf: str = "smooth"
    # Options for small corpora of whole documents (emsqa.fusion), 0 = off: the share of the score
    # taken by a character n-gram field, and by each passage's most similar passages.
    subword_weight: float = 0.0
    neighbour_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.weighting not in ("bm25", "tfidf"):
            raise UsageError(f"weighting must be 'bm25' or 'tfidf', not {self.weighting!r}")
        if not (0 <= self.b <= 1) or self.k1 < 0:
            raise UsageError(f"k1 must be >= 0 and b within 0..1 (got k1={self.k1}, b={self.b})")
        if not (0 <= self.bigram_weight <= 1):
            raise UsageError(f"bigram_weight must be within 0..1, not {self.bigram_weight}")
        if self.idf not in ("smooth", "bm25") or (self.idf == "bm25" and self.weighting != "bm25"):
            raise UsageError(
                f"idf must be 'smooth', or 'bm25' with weighting='bm25', not {self.idf!r}"
            )
        if self.abstain_below is not None and not (0 <= self.abstain_below <= 1):
            raise UsageError(f"abstain_below must be within 0..1, not {self.abstain_below}")
        if self.title_weight < 0 or self.section_weight < 0:
            raise UsageError("title_weight and section_weight must be >= 0")
        for name in ("subword_weight", "neighbour_weight"):
            if not (0 <= getattr(self, name) < 1):
                raise UsageError(
                    f"{name} must be within 0..1 (1 excluded), not {getattr(self, name)}"
                )

    @property
    def split(self) -> SplitSettings:
        """How documents are cut into passages under these settings."""
        return SplitSettings(self.target_words, self.min_words, self.max_words, self.overlap)

    @property
    def fuses(self) -> bool:
        """Whether questions mix other scores with the lexical one (emsqa.fusion)."""
        return bool(self.subword_weight or self.neighbour_weight)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> IndexSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            raise UsageError(f"unknown index setting(s): {', '.join(unknown)}")
        return cls(**raw)

    def analyzer(self) -> Analyzer:
        """The analyzer of these settings: one shared instance, so its stem cache serves every question."""
        return _shared_analyzer(self.stem, self.bigrams)


@lru_cache(maxsize=8)
def _shared_analyzer(stem: bool, bigrams: bool) -> Analyzer:
    return Analyzer(stem=stem, bigrams=bigrams)


TERM_HASH = "fnv1a64-pair"  # the term key written by this version (the manifest's "term_hash")
_WORD_HASH = "fnv1a64-mix"  # every term hashed as a string (format 2)
_OLD_TERM_HASH = "blake2b-64"  # indexes whose manifest names no term hash
TERM_HASHES = (TERM_HASH, _WORD_HASH, _OLD_TERM_HASH)
_MASK = (1 << 64) - 1
_FNV_OFFSET, _FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3
_MIX1, _MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_PAIR = 0x9E3779B97F4A7C15  # odd: multiplying the first word's key by it keeps pairs ordered


def hash_terms(terms: Sequence[str], kind: str = TERM_HASH) -> np.ndarray:
    """The 64-bit key of each term, as uint64 (the key of the term table).

    A word's key is FNV-1a over its UTF-8 bytes, then the splitmix64 finaliser to spread the bits.
    A bigram ("cardiac arrest": words never hold a space) is keyed by its two words' keys, mixed:
    so a build hashes only its words, and a question only the words it has not met before.
    Earlier indexes hashed every term as a string ("fnv1a64-mix"), or used BLAKE2b.
    """
    if kind == _OLD_TERM_HASH:
        out = np.empty(len(terms), dtype=np.uint64)
        for i, t in enumerate(terms):
            digest = hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest()
            out[i] = int.from_bytes(digest, "little")
        return out
    if kind == _WORD_HASH:
        if len(terms) < 64:
            return np.array([_fnv_one(t) for t in terms], dtype=np.uint64)
        return hash_table(StringTable.of(terms))
    if kind != TERM_HASH:
        raise IndexFormatError(f"unknown term hash {kind!r}", hint="rebuild the index")
    keys = []
    for t in terms:
        first, space, second = t.partition(" ")
        keys.append(_pair_one(_fnv_one(first), _fnv_one(second)) if space else _fnv_one(t))
    return np.array(keys, dtype=np.uint64)


@lru_cache(maxsize=1 << 16)
def _fnv_one(term: str) -> int:
    h = _FNV_OFFSET
    for byte in term.encode("utf-8"):
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return _finish(h)


def _finish(h: int) -> int:
    h = ((h ^ (h >> 30)) * _MIX1) & _MASK
    h = ((h ^ (h >> 27)) * _MIX2) & _MASK
    return h ^ (h >> 31)


def _pair_one(first: int, second: int) -> int:
    return _finish(((first * _PAIR) & _MASK) ^ second)


def _pair_keys(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """_pair_one() of uint64 word keys, vectorised."""
    h = first * np.uint64(_PAIR)  # arrays wrap around silently, as the & _MASK above
    h ^= second
    return _finish_array(h)


def _finish_array(h: np.ndarray) -> np.ndarray:
    h ^= h >> np.uint64(30)
    h *= np.uint64(_MIX1)
    h ^= h >> np.uint64(27)
    h *= np.uint64(_MIX2)
    h ^= h >> np.uint64(31)
    return h


def _term_keys(words: StringTable, pairs: np.ndarray) -> np.ndarray:
    """The keys of the words of `words`, then of the word pairs `pairs` ((first << 32) | second)."""
    word_keys = hash_table(words)
    first = word_keys[(pairs >> 32).astype(np.intp)]
    second = word_keys[(pairs & 0xFFFFFFFF).astype(np.intp)]
    return np.concatenate([word_keys, _pair_keys(first, second)])


def hash_table(table: StringTable) -> np.ndarray:
    """hash_terms() of every string of `table`, vectorised (no Python loop over the strings)."""
    starts = table.offsets[:-1]
    lengths = np.diff(table.offsets)
    order = np.argsort(-lengths, kind="stable")  # longest first: the live terms are a prefix
    sorted_lengths = lengths[order]
    sorted_starts = starts[order]
    h = np.full(len(order), _FNV_OFFSET, dtype=np.uint64)
    prime = np.uint64(_FNV_PRIME)
    longest = int(sorted_lengths[0]) if len(order) else 0
    # lives[j]: how many terms are longer than j bytes
    lives = np.searchsorted(-sorted_lengths, -np.arange(longest), side="left").tolist()
    for j, live in enumerate(lives):
        byte = table.blob[sorted_starts[:live] + j].astype(np.uint64)
        h[:live] = (h[:live] ^ byte) * prime
    h = _finish_array(h)
    out = np.empty_like(h)
    out[order] = h
    return out


# a passage as Store.passage_rows reads it: document, start, end, section, ordinal, text start, end
PassageRow = list[int]


@dataclass
class Store:
    """All arrays of a built or loaded index (treat as read-only once made)."""

    settings: IndexSettings
    term_hash: np.ndarray  # uint64, sorted
    post_ptr: np.ndarray  # uint32 (int64 from 2**32 postings on), n_terms + 1
    post_idx: np.ndarray  # uint16 passage numbers (int32 from 65,535 passages on), term-major
    post_w: np.ndarray  # uint16 steps of the term's post_scale (float32 weights in format 2)
    p_doc: np.ndarray  # int32 document number of each passage
    p_start: np.ndarray  # int64
    p_end: np.ndarray  # int64
    p_ordinal: np.ndarray  # int32
    p_section: np.ndarray  # int32 index into sections
    p_text: StringTable
    doc_ids: StringTable
    doc_titles: StringTable
    doc_sources: StringTable
    sections: StringTable
    words: tuple[str, ...] = ()
    # the terms as text, in term_hash order: kept by a build for inspection and tests; not saved
    # (questions find terms by hash), so None once loaded
    terms: StringTable | None = None
    # float32, per term: a posting's weight is post_w * post_scale[term] (None: post_w are weights)
    post_scale: np.ndarray | None = None
    # float32, per term: the idf as formats 1-3 saved it (None: derived from the postings' lengths)
    saved_idf: np.ndarray | None = None
    # emsqa.fusion's arrays, when the settings turn it on: character n-gram keys (sorted), idf and
    # postings; each passage's neighbours and their weights (passages x NEIGHBOURS, flattened)
    sub_hash: np.ndarray | None = None
    sub_idf: np.ndarray | None = None
    sub_ptr: np.ndarray | None = None
    sub_idx: np.ndarray | None = None
    sub_w: np.ndarray | None = None
    knn_idx: np.ndarray | None = None
    knn_w: np.ndarray | None = None
    name: str = ""
    fingerprint: str = ""
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    term_hash_kind: str = TERM_HASH  # how term_hash was computed (older indexes: BLAKE2b)
    # readers of post_idx and post_w runs, for a memory-mapped index (short runs from the files:
    # see arrays.SHORT_RUN); None: the postings are sliced
    post_runs: tuple[MappedRuns, MappedRuns] | None = None
    # derived lookup tables built on first use (e.g. the spelling-correction word table)
    cache: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def n_passages(self) -> int:
        return len(self.p_doc)

    @property
    def n_documents(self) -> int:
        return len(self.doc_ids)

    @property
    def n_terms(self) -> int:
        return len(self.term_hash)

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """(passage numbers, float64 weights) of term number `term`."""
        a, b = int(self.post_ptr[term]), int(self.post_ptr[term + 1])
        weights = self.post_w[a:b].astype(np.float64)
        if self.post_scale is not None:
            weights *= float(self.post_scale[term])
        return self.post_idx[a:b], weights

    @property
    def df(self) -> np.ndarray:
        """Passages holding each term: the lengths of its postings (computed once, when asked)."""
        df = self.cache.get("df")
        if df is None:
            df = self.cache["df"] = np.diff(self.post_ptr).astype(np.int32)
        return df

    def idf_of(self, terms: np.ndarray) -> np.ndarray:
        """float32 smoothed idf of term numbers `terms`, ln((1 + n) / (1 + df)) + 1: computed from
        the lengths of their postings (the bits of the build's, which are not saved)."""
        if self.saved_idf is not None:
            return self.saved_idf[terms]
        ptr = self.post_ptr
        return _smooth_idf(ptr[terms + 1] - ptr[terms], self.n_passages)

    @property
    def idf(self) -> np.ndarray:
        """idf_of() every term (computed once, when asked)."""
        idf = self.cache.get("idf")
        if idf is None:
            idf = self.cache["idf"] = self.idf_of(np.arange(self.n_terms))
        return idf

    def lookup(self, terms: Sequence[str]) -> np.ndarray:
        """Term numbers of `terms` (-1 where a term is not in the index)."""
        if not terms or not self.n_terms:
            return np.full(len(terms), -1, dtype=np.int64)
        known: dict[str, int] = self.cache.setdefault("term_ids", {})  # terms asked before
        get = known.get
        ids = [get(t) for t in terms]
        if None in ids:
            missing = list(dict.fromkeys(t for t, i in zip(terms, ids, strict=True) if i is None))
            h = hash_terms(missing, self.term_hash_kind)
            pos = np.searchsorted(self.term_hash, h)
            pos[pos >= self.n_terms] = 0
            found = np.where(self.term_hash[pos] == h, pos, -1).tolist()
            if len(known) > 200_000:
                known.clear()
            known.update(zip(missing, found, strict=True))
            ids = [known[t] for t in terms]
        return np.array(ids, dtype=np.int64)

    def passages(self, numbers: Sequence[int]) -> list[Passage]:
        """Passages number `numbers` as Passage objects (the arrays read once for all of them)."""
        return self.passages_of(self.passage_rows(np.asarray(numbers, dtype=np.int64)))

    def passage_rows(self, at: np.ndarray) -> list[PassageRow]:
        """What passages() reads from the arrays for passage numbers `at` (an int array), a row
        per passage: [document, start, end, section, ordinal, text start, text end]."""
        table = self.cache.get("passage_rows")
        if table is None:
            table = self.cache["passage_rows"] = self._row_table()
        return table[at].tolist()

    def _row_table(self) -> np.ndarray:
        """passage_rows() of every passage as one array, a passage's values side by side: the
        ranked passages of a question are then a few cache lines apart, not seven arrays."""
        offsets = self.p_text.offsets
        columns = (
            self.p_doc,
            self.p_start,
            self.p_end,
            self.p_section,
            self.p_ordinal,
            offsets[:-1],
            offsets[1:],
        )
        low, high = np.iinfo(np.int32).min, np.iinfo(np.int32).max
        narrow = all(not len(c) or (int(c.min()) >= low and int(c.max()) <= high) for c in columns)
        table = np.empty((self.n_passages, len(columns)), dtype=np.int32 if narrow else np.int64)
        for j, column in enumerate(columns):
            table[:, j] = column
        return table

    def passages_of(self, rows: Sequence[PassageRow]) -> list[Passage]:
        """Passage objects for rows of passage_rows(), their text decoded."""
        docs = self.cache.setdefault("documents", {})  # decoded once per document shown
        if len(docs) >= 100_000:
            docs.clear()
        sections = self.cache.setdefault("sections", {})
        if len(sections) >= 100_000:
            sections.clear()
        text = self.p_text.bytes_at
        new = object.__new__  # every field set at once: see datatypes._unchecked
        out = []
        for d, start, end, sec, ordinal, a, b in rows:
            doc = docs.get(d)
            if doc is None:
                doc = docs[d] = (self.doc_ids[d], self.doc_titles[d], self.doc_sources[d])
            section = sections.get(sec)
            if section is None:
                section = sections[sec] = self.sections[sec]
            p = new(Passage)
            p.__dict__.update(
                {
                    "id": f"{doc[0]}#{ordinal}",
                    "doc_id": doc[0],
                    "title": doc[1],
                    "section": section,
                    "source": doc[2],
                    "text": text(a, b).decode("utf-8"),
                    "start": start,
                    "end": end,
                    "ordinal": ordinal,
                }
            )
            out.append(p)
        return out

    def neighbours(self, i: int) -> list[Passage]:
        """The passages just before and after passage number `i` in its document (0 to 2)."""
        doc = int(self.p_doc[i])
        near = [j for j in (i - 1, i + 1) if 0 <= j < self.n_passages and int(self.p_doc[j]) == doc]
        return self.passages(near) if near else []

    def passage(self, i: int) -> Passage:
        """Passage number `i` as a Passage object."""
        return self.passages([i])[0]


_SURFACE_SAMPLE = 3000  # passages whose tokens choose the surface words (spelling suggestions) ...
_SURFACE_LIMIT = 5000  # ... and how many of the most frequent are kept


def _surface_words(seen: Counter[str]) -> tuple[str, ...]:
    """The most frequent tokens of the first _SURFACE_SAMPLE passages (`seen`, in order of first
    appearance), leaving out short ones, stop words and numbers."""
    kept = Counter(  # filtered once per distinct token (the order of the rest is kept)
        {t: c for t, c in seen.items() if len(t) > 2 and t not in STOP_WORDS and not t[0].isdigit()}
    )
    return tuple(w for w, _ in kept.most_common(_SURFACE_LIMIT))


_WEIGHT_ROWS = 4_000  # passages weighted at a time (bounds the temporaries)
_GATHER = 1_000_000  # postings renumbered into hash order at a time
_SCATTER = 250_000  # postings at least scattered into term order at a time (bounds temporaries)
_AT_ONCE = 5_000_000  # postings up to which they are put in term order in one step (2x faster)
PARALLEL_FROM = 10_000  # passages: from here on, passages are counted by forked worker processes
RARE_BIGRAMS_FROM = 50_000  # passages: from here on, bigrams found in one passage only are dropped
TABLES_FIRST_BELOW = 50_000  # passages: below this, forked workers read the passage tables
_CHUNK = 2_000  # passages per unit of work (and per progress report) at most ...
_SHARES = 4  # ... and fewer on smaller corpora: at least this many units per worker (balance)

Progress = Callable[[int, int], None]  # (passages counted so far, all passages)


def _count(
    passages: Sequence[Passage],
    settings: IndexSettings,
    vocabulary: Vocabulary,
    start: int,
    source: int = 0,
) -> ChunkCounts:
    """Term counts of `passages`, passages[0] being passage number `start` of the corpus."""
    return count_chunk(
        passages,
        vocabulary.analyzer,
        settings.title_weight,
        settings.section_weight,
        vocabulary,
        surface=max(0, _SURFACE_SAMPLE - start),
        source=source,
    )


# A forked worker's vocabulary, kept from one slice to its next (each word is learnt and stemmed
# once per worker, not once per slice): (its process id, the vocabulary).
_WORKER_VOCABULARY: tuple[int, Vocabulary] | None = None


@dataclass(frozen=True)
class _PassageTables:
    """The passages as the store keeps them: text, document and section numbers, and the tables
    of document ids, titles, sources and section titles."""

    p_text: StringTable
    p_doc: np.ndarray
    p_start: np.ndarray
    p_end: np.ndarray
    p_section: np.ndarray
    doc_ids: StringTable
    doc_titles: StringTable
    doc_sources: StringTable
    sections: StringTable

    def places(self, a: int, b: int) -> list[tuple[object, int, int]]:
        """(document number, start, end) of passages [a, b)."""
        return list(
            zip(
                self.p_doc[a:b].tolist(),
                self.p_start[a:b].tolist(),
                self.p_end[a:b].tolist(),
                strict=True,
            )
        )

    def fields(self, a: int, b: int) -> tuple[list[str], list[str], list[str]]:
        """(texts, titles, sections) of passages [a, b), decoded from the tables."""
        return (
            self.p_text.strings(a, b),
            _decoded(self.doc_titles, self.p_doc[a:b].tolist()),
            _decoded(self.sections, self.p_section[a:b].tolist()),
        )


def _decoded(table: StringTable, numbers: list[int]) -> list[str]:
    """table[i] for each of `numbers`, each distinct string decoded once (passages of a document
    share its title and section; an empty one too)."""
    found: dict[int, str] = {}
    return [found[i] if i in found else found.setdefault(i, table[i]) for i in numbers]


def _passage_tables(passages: Sequence[Passage]) -> _PassageTables:
    n = len(passages)
    doc_index: dict[str, int] = {}
    doc_titles: list[str] = []
    doc_sources: list[str] = []
    section_index: dict[str, int] = {}
    p_doc = np.empty(n, dtype=np.int32)
    p_section = np.empty(n, dtype=np.int32)
    for i, p in enumerate(passages):
        d = doc_index.get(p.doc_id)
        if d is None:
            d = doc_index[p.doc_id] = len(doc_index)
            doc_titles.append(p.title)
            doc_sources.append(p.source)
        p_doc[i] = d
        p_section[i] = section_index.setdefault(p.section, len(section_index))
    return _PassageTables(
        p_text=StringTable.of([p.text for p in passages]),
        p_doc=p_doc,
        p_start=np.fromiter((p.start for p in passages), dtype=np.int64, count=n),
        p_end=np.fromiter((p.end for p in passages), dtype=np.int64, count=n),
        p_section=p_section,
        doc_ids=StringTable.of(list(doc_index)),
        doc_titles=StringTable.of(doc_titles),
        doc_sources=StringTable.of(doc_sources),
        sections=StringTable.of(list(section_index)),
    )


def _worker_vocabulary(settings: IndexSettings) -> Vocabulary:
    """This process's vocabulary, made at a forked worker's first slice and kept for the next."""
    global _WORKER_VOCABULARY
    pid = os.getpid()
    if _WORKER_VOCABULARY is None or _WORKER_VOCABULARY[0] != pid:
        _WORKER_VOCABULARY = (pid, Vocabulary(settings.analyzer()))
    return _WORKER_VOCABULARY[1]


def _count_slice(
    work: tuple[_PassageTables, IndexSettings], bounds: tuple[int, int]
) -> ChunkCounts:
    """Term counts of passages [a, b) of `work` (runs in a forked worker). The passages are read
    from the tables' arrays, not from the parent's Passage objects: reading an object writes its
    reference count, which would make the worker its own copy of every page of them it read."""
    tables, settings = work
    vocabulary = _worker_vocabulary(settings)
    a, b = bounds
    counted = count_fields(
        *tables.fields(a, b),
        vocabulary.analyzer,
        settings.title_weight,
        settings.section_weight,
        vocabulary,
        surface=max(0, _SURFACE_SAMPLE - a),
        source=os.getpid(),
        places=tables.places(a, b),
    )
    release_free_memory()  # the slice's temporaries: a worker lives for the whole run
    return counted


def _count_passages_slice(
    work: tuple[Sequence[Passage], IndexSettings], bounds: tuple[int, int]
) -> ChunkCounts:
    """Term counts of passages [a, b) of `work`, read from the Passage objects (runs in a forked
    worker that is replaced every few slices: see parallel.forked_slices)."""
    passages, settings = work
    a, b = bounds
    return _count(passages[a:b], settings, _worker_vocabulary(settings), a, source=os.getpid())


def _chunk_counts(
    passages: Sequence[Passage],
    tables: _PassageTables | None,
    settings: IndexSettings,
    workers: int,
    progress: Progress | None,
) -> Iterator[ChunkCounts]:
    """Term counts of each run of _CHUNK passages, in order, counted `workers` ways."""
    n = len(passages)
    if workers <= 1:
        analyzer = Analyzer(stem=settings.stem, bigrams=settings.bigrams)  # its own stem cache
        vocabulary = Vocabulary(analyzer)  # one numbering for every run
        for a in range(0, n, _CHUNK):
            b = min(a + _CHUNK, n)
            yield _count(passages[a:b], settings, vocabulary, a)
            if progress:
                progress(b, n)
        return
    if tables is None:  # a large corpus: workers read the passages, and are replaced (memory)
        whole = (passages, settings)
        for (_, b), counted in forked_slices(_count_passages_slice, whole, n, _CHUNK, workers):
            yield counted
            if progress:
                progress(b, n)
        return
    work = (tables, settings)
    # workers keep their vocabulary from slice to slice, so smaller slices cost little: enough of
    # them that no worker is left with a last slice to count alone while the others are done
    size = max(1, min(_CHUNK, -(-n // (_SHARES * workers))))
    for (_, b), counted in forked_slices(_count_slice, work, n, size, workers, renew=False):
        yield counted
        if progress:
            progress(b, n)


def _surface_counts(chunks: Iterator[ChunkCounts], seen: Counter[str]) -> Iterator[ChunkCounts]:
    """`chunks`, adding the token counts they carry (ChunkCounts.surface) to `seen`, in order."""
    for chunk in chunks:
        if chunk.surface:
            seen.update(chunk.surface)
        yield chunk


def _drops_rare_bigrams(n_passages: int, settings: IndexSettings) -> bool:
    return n_passages >= RARE_BIGRAMS_FROM and settings.bigrams


def _drop_rare_bigrams(x: Any, n_words: int, settings: IndexSettings) -> Any:
    """`x` without bigrams found in a single passage, from RARE_BIGRAMS_FROM passages on."""
    if not _drops_rare_bigrams(x.shape[0], settings):
        return x
    rare = _document_frequency(x.indices, x.shape[1]) == 1
    rare[:n_words] = False
    x.data[rare[x.indices]] = 0
    x.eliminate_zeros()
    return x


def _default_workers(n_passages: int) -> int:
    return usable_cores() if n_passages >= PARALLEL_FROM else 1


def build_store(
    passages: Sequence[Passage],
    settings: IndexSettings,
    *,
    name: str = "",
    fingerprint: str = "",
    workers: int | None = None,
    progress: Progress | None = None,
    keep_terms: bool = False,
) -> Store:
    """Index `passages`: count their terms, weight them with scikit-learn's TF-IDF, store the postings.

    Terms are counted by emsqa.counting (the terms of Analyzer.fields(), counted with numpy). The
    IDF is scikit-learn's TfidfTransformer's smoothed ln((1 + n) / (1 + df)) + 1, which never
    reaches zero: a term found in every passage still counts. With weighting="bm25" each term's
    weight is then idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen)), the idf computed
    by _smooth_idf exactly as the transformer's fit does; with "tfidf" the transformer itself
    gives the sublinear tf * idf, l2-normalised per passage.

    Passages are counted in runs of _CHUNK by `workers` forked processes (default: every core from
    PARALLEL_FROM passages on, else one; the result is the same). From RARE_BIGRAMS_FROM passages
    on, bigrams found in a single passage are dropped once the passage lengths are taken: on large
    corpora they are most of the vocabulary and rarely asked for. `progress(done, total)` is called
    as passages are counted. `keep_terms`: spell the terms out in Store.terms (for inspection;
    questions find terms by their keys).
    """
    if not passages:
        raise IndexStateError("nothing to index: the documents produced no passages")
    n = len(passages)
    if workers is None:
        workers = _default_workers(n)
    if workers > 1 and not can_fork():
        workers = 1
    seen: Counter[str] = Counter()  # the first passages' tokens, for the surface words
    # Forked workers read the passages from their tables, made first, when the corpus is small
    # enough that the tables cost less memory during the merge than the workers' copies would.
    tables = _passage_tables(passages) if workers > 1 and n < TABLES_FIRST_BELOW else None
    chunks = _surface_counts(_chunk_counts(passages, tables, settings, workers, progress), seen)

    def passage_tables() -> tuple[_PassageTables, np.ndarray]:
        ordinals = np.fromiter((p.ordinal for p in passages), dtype=np.int32, count=n)
        return tables or _passage_tables(passages), ordinals

    return _store_from_chunks(
        chunks, settings, seen, passage_tables, name=name, fingerprint=fingerprint,
        keep_terms=keep_terms,
    )  # fmt: skip


_DOC_SHARES = 8  # slices of documents per worker at least (their passages vary: balance) ...
_SLICE_TEXT = 2**20  # ... and characters of text per slice at most (bounds a worker's temporaries)


def _document_cuts(documents: Sequence[Document], workers: int) -> list[int]:
    """Slice boundaries over `documents`: runs of about equal text, at most _SLICE_TEXT
    characters (or one document) and _CHUNK documents each."""
    sizes = np.fromiter((len(d.text) for d in documents), np.int64, len(documents))
    ends = np.cumsum(sizes)
    total = int(ends[-1]) if len(ends) else 0
    budget = max(1, min(_SLICE_TEXT, -(-total // (_DOC_SHARES * workers))))
    cuts = [0]
    n = len(documents)
    while cuts[-1] < n:
        a = cuts[-1]
        before = int(ends[a - 1]) if a else 0
        b = int(np.searchsorted(ends, before + budget, side="right"))
        cuts.append(min(n, a + _CHUNK, max(b, a + 1)))
    return cuts


@dataclass(frozen=True)
class _SlicePassages:
    """The passages a forked worker cut a slice of documents into, as the store keeps them."""

    p_doc: np.ndarray  # int64: each passage's document, numbered in the corpus
    p_start: np.ndarray  # int64
    p_end: np.ndarray  # int64
    p_ordinal: np.ndarray  # int32
    section_names: list[str]  # the slice's section titles in order of first use ...
    p_section: np.ndarray  # int32 ... and each passage's, numbered in that list
    text: StringTable  # the passages' text
    # the text tokens of the slice's first passages, for the surface words: (the distinct
    # tokens in order of first appearance, every token's number among them, each passage's end)
    surface: tuple[list[str], np.ndarray, np.ndarray] | None


def _split_count_slice(
    work: tuple[Sequence[Document], SplitSettings, IndexSettings], bounds: tuple[int, int]
) -> tuple[ChunkCounts, _SlicePassages]:
    """Documents [a, b) of `work` cut into passages and their terms counted (runs in a forked
    worker): the passages never become Passage objects, nor travel back as text objects."""
    docs, split, settings = work
    a, b = bounds
    # passages before this slice number at least its first document's (unless documents made
    # none): only slices starting within the sample keep their tokens for the surface words
    return _split_count(docs, a, b, split, settings, sample=a < _SURFACE_SAMPLE)


def _split_count(
    docs: Sequence[Document],
    a: int,
    b: int,
    split: SplitSettings,
    settings: IndexSettings,
    *,
    sample: bool,
) -> tuple[ChunkCounts, _SlicePassages]:
    """Documents [a, b) of `docs` cut into passages and counted; `sample`: keep the tokens of
    the first _SURFACE_SAMPLE passages' text (_SlicePassages.surface)."""
    texts: list[str] = []
    titles: list[str] = []
    sections: list[str] = []
    places: list[tuple[object, int, int]] = []
    ordinals: list[int] = []
    for d in range(a, b):
        doc = docs[d]
        text, title = doc.text, doc.title
        for k, (start, end, section) in enumerate(passage_spans(doc, split)):
            texts.append(text[start:end])
            titles.append(title)
            sections.append(section)
            places.append((d, start, end))
            ordinals.append(k)
    m = len(texts)
    vocabulary = _worker_vocabulary(settings)
    tokens: list[list[str]] | None = [] if sample else None
    counted = count_fields(
        texts,
        titles,
        sections,
        vocabulary.analyzer,
        settings.title_weight,
        settings.section_weight,
        vocabulary,
        surface=_SURFACE_SAMPLE if tokens is not None else 0,
        source=os.getpid(),
        places=places,
        surface_tokens=tokens,
    )
    names = list(dict.fromkeys(sections))
    section_number = {t: i for i, t in enumerate(names)}
    text_table = StringTable.of(texts)
    del texts
    passages = _SlicePassages(
        p_doc=np.fromiter((d for d, _, _ in places), np.int64, m),
        p_start=np.fromiter((s for _, s, _ in places), np.int64, m),
        p_end=np.fromiter((e for _, _, e in places), np.int64, m),
        p_ordinal=np.asarray(ordinals, dtype=np.int32),
        section_names=names,
        p_section=np.fromiter(map(section_number.__getitem__, sections), np.int32, m),
        text=text_table,
        surface=_numbered_tokens(tokens) if tokens is not None else None,
    )
    release_free_memory()  # the slice's temporaries
    return counted, passages


def _numbered_tokens(lists: list[list[str]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(distinct tokens in order of first appearance, each token's number, each list's end)."""
    flat = list(itertools.chain.from_iterable(lists))
    distinct = list(dict.fromkeys(flat))
    number = {t: i for i, t in enumerate(distinct)}
    ids = np.fromiter(map(number.__getitem__, flat), np.int32, len(flat))
    ends = np.cumsum(np.fromiter(map(len, lists), np.int64, len(lists)))
    return distinct, ids, ends


def _surface_of(got: _SlicePassages, documents: Sequence[Document], wanted: int) -> dict[str, int]:
    """How often each token occurs in the text of the slice's first `wanted` passages, in order
    of first appearance (what count_fields' `surface` counts)."""
    wanted = min(wanted, len(got.p_start))
    if got.surface is None:  # documents before the slice made few passages: read them here
        seen: Counter[str] = Counter()
        for d, a, b in zip(
            got.p_doc[:wanted].tolist(),
            got.p_start[:wanted].tolist(),
            got.p_end[:wanted].tolist(),
            strict=True,
        ):
            seen.update(tokenize(documents[d].text[a:b]))
        return seen
    distinct, ids, ends = got.surface
    prefix = ids[: int(ends[wanted - 1])] if wanted else ids[:0]
    if not len(prefix):
        return {}
    top = int(prefix.max()) + 1  # numbered in order of first appearance: all of 0..top-1 occur
    return dict(zip(distinct[:top], np.bincount(prefix, minlength=top).tolist(), strict=True))


def _joined_tables(
    documents: Sequence[Document], parts: list[_SlicePassages]
) -> tuple[_PassageTables, np.ndarray]:
    """The passage tables (as _passage_tables makes them) and ordinals of the slices' passages;
    `parts` is emptied as their text is copied."""
    p_doc = np.concatenate([p.p_doc for p in parts] + [np.empty(0, np.int64)])
    n = len(p_doc)
    # documents are numbered by id in order of first appearance, those without passages left out
    # (p_doc never decreases: the documents that start a run of passages are the ones used)
    starts_run = np.ones(n, dtype=bool)
    np.not_equal(p_doc[1:], p_doc[:-1], out=starts_run[1:])
    used = p_doc[starts_run]
    used_docs = [documents[d] for d in used.tolist()]
    doc_index: dict[str, int] = {}
    number = np.fromiter(
        (doc_index.setdefault(doc.id, len(doc_index)) for doc in used_docs),
        np.int32,
        len(used_docs),
    )
    if len(doc_index) < len(used_docs):  # an id used twice: each id's first document
        used_docs = [used_docs[j] for j in np.unique(number, return_index=True)[1].tolist()]
    titles = [doc.title for doc in used_docs]
    sources = [doc.source for doc in used_docs]
    section_index: dict[str, int] = {}
    p_section = np.empty(n, dtype=np.int32)
    at = 0
    for part in parts:
        to_corpus = np.fromiter(
            (section_index.setdefault(s, len(section_index)) for s in part.section_names),
            np.int32,
            len(part.section_names),
        )
        p_section[at : at + len(part.p_section)] = to_corpus[part.p_section]
        at += len(part.p_section)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(
        np.concatenate([np.diff(p.text.offsets) for p in parts] + [np.empty(0, np.int64)]),
        out=offsets[1:],
    )
    blob = np.empty(int(offsets[-1]), dtype=np.uint8)
    starts = np.concatenate([p.p_start for p in parts] + [np.empty(0, np.int64)])
    ends = np.concatenate([p.p_end for p in parts] + [np.empty(0, np.int64)])
    ordinals = np.concatenate([p.p_ordinal for p in parts] + [np.empty(0, np.int32)])
    at = 0
    while parts:  # each slice's text copied, then let go
        text = parts.pop(0).text.blob
        blob[at : at + len(text)] = text
        at += len(text)
        del text
    # the slices' text arrived in the pool's result thread, so its malloc arena holds the freed
    # pieces: given back now, or they stay resident beside whatever the process does next
    release_free_memory()
    tables = _PassageTables(
        p_text=StringTable(blob, offsets),
        p_doc=np.repeat(number, np.diff(np.flatnonzero(np.append(starts_run, True)))),
        p_start=starts,
        p_end=ends,
        p_section=p_section,
        doc_ids=StringTable.of(list(doc_index)),
        doc_titles=StringTable.of(titles),
        doc_sources=StringTable.of(sources),
        sections=StringTable.of(list(section_index)),
    )
    return tables, ordinals


def build_store_from_documents(
    documents: Sequence[Document],
    settings: IndexSettings,
    *,
    name: str = "",
    fingerprint: str = "",
    workers: int | None = None,
) -> Store:
    """`build_store(split_documents(documents, ...), settings)` (split with `settings`), made in
    one round of forked workers: each cuts a slice of the documents into passages and counts
    them at once, so no Passage objects are made and the workers are forked once, not twice.

    Used from PARALLEL_SPLIT_FROM documents on (`workers` overrides); with one worker, or where
    processes cannot be forked, it is the two steps above. The Store is the same either way.
    """
    split = settings.split
    if not isinstance(documents, Sequence):
        documents = list(documents)
    if workers is None:
        workers = usable_cores() if len(documents) >= PARALLEL_SPLIT_FROM else 1
    if workers <= 1 or not can_fork():
        passages = split_documents(documents, **dataclasses.asdict(split))
        return build_store(passages, settings, name=name, fingerprint=fingerprint)
    require_documents(documents)  # one clear error before any work, not a worker's
    n_docs = len(documents)
    cuts = _document_cuts(documents, workers)
    # below TABLES_FIRST_BELOW documents, workers live for the whole run (their vocabulary serves
    # every slice); on large corpora the pages of Documents they read become their own: renewed
    renew = n_docs >= TABLES_FIRST_BELOW
    parts: list[_SlicePassages] = []
    seen: Counter[str] = Counter()

    def chunks() -> Iterator[ChunkCounts]:
        before = 0
        work = (documents, split, settings)
        for _, (counted, got) in forked_slices(
            _split_count_slice, work, n_docs, 0, workers, renew=renew, cuts=cuts
        ):
            if before < _SURFACE_SAMPLE:
                seen.update(_surface_of(got, documents, _SURFACE_SAMPLE - before))
            before += len(got.p_start)
            parts.append(dataclasses.replace(got, surface=None))
            yield counted

    return _store_from_chunks(
        chunks(),
        settings,
        seen,
        lambda: _joined_tables(documents, parts),
        name=name,
        fingerprint=fingerprint,
        keep_terms=False,
    )


STREAM_FROM = 8 * 2**20  # bytes: a .jsonl file this large is read a slice at a time by workers


@dataclass(frozen=True)
class _JsonlSlice:
    """What a forked worker sends back of one slice of a .jsonl file besides its counts. The
    strings stay in the slice's file (text, then titles, then sources): only offsets travel."""

    passages: _SlicePassages  # its text's offsets: where each passage's text is in the file
    lines: np.ndarray  # int64: each record's line number
    id_keys: np.ndarray  # uint64 (n, 2): a 128-bit digest of each record's id ...
    text_keys: np.ndarray  # ... and of its text (repeated records are found with them)
    ids: StringTable  # the records' ids
    titles: np.ndarray  # int64 offsets of the records' titles in the file ...
    sources: np.ndarray  # ... and of their sources
    bad: list[tuple[int, str]]  # (line number, reason) of the slice's unusable lines


def _digests(strings: Iterable[str]) -> np.ndarray:
    """A 128-bit BLAKE2b digest of each string, as two uint64 columns (equal strings, equal
    rows; different strings sharing one would take some 2**64 corpora of a million records)."""
    raw = b"".join(
        hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        for t in strings
    )
    return np.frombuffer(raw, dtype=np.uint64).reshape(-1, 2)


def _jsonl_split_count_slice(
    work: tuple[JsonlPlan, SplitSettings, IndexSettings, str], bounds: tuple[int, int]
) -> tuple[ChunkCounts, _JsonlSlice]:
    """Slice bounds[0] of a .jsonl file read, cut into passages and counted (runs in a forked
    worker, which writes the strings to the slice's file in `work`'s folder)."""
    from emsqa.corpus import jsonl_slice

    plan, split, settings, folder = work
    i = bounds[0]
    docs, bad = jsonl_slice(plan, i)
    # records before the slice are at most its lines before: slices starting within the sample
    # keep their tokens (others the parent reads from the file, if ever needed)
    counted, got = _split_count(
        docs, 0, len(docs), split, settings, sample=plan.first_lines[i] <= _SURFACE_SAMPLE
    )
    titles = StringTable.of([d.title for d in docs])
    sources = StringTable.of([d.source for d in docs])
    with open(os.path.join(folder, f"{i}.bin"), "wb") as f:
        for table in (got.text, titles, sources):
            f.write(table.blob.tobytes())
    at = len(got.text.blob)
    sliced = _JsonlSlice(
        passages=dataclasses.replace(got, text=StringTable(got.text.blob[:0], got.text.offsets)),
        lines=np.fromiter((int(d.source.rpartition(":")[2]) for d in docs), np.int64, len(docs)),
        id_keys=_digests(d.id for d in docs),
        text_keys=_digests(d.text for d in docs),
        ids=StringTable.of([d.id for d in docs]),
        titles=titles.offsets + at,
        sources=sources.offsets + at + len(titles.blob),
        bad=bad,
    )
    del docs, got, titles, sources
    release_free_memory()
    return counted, sliced


class _SeenKeys:
    """128-bit keys met so far (uint64 pairs), as runs sorted by their first word and merged
    like a binary counter (few runs, little copying)."""

    def __init__(self) -> None:
        self.runs: list[tuple[np.ndarray, np.ndarray]] = []  # (first words ascending, seconds)

    def known(self, keys: np.ndarray) -> np.ndarray:
        found = np.zeros(len(keys), dtype=bool)
        first = np.ascontiguousarray(keys[:, 0])
        for column, second in self.runs:
            left = np.searchsorted(column, first)
            same = column[np.minimum(left, len(column) - 1)] == first
            for q in np.flatnonzero(same & ~found).tolist():  # few: the keys met before
                j = int(left[q])
                while j < len(column) and column[j] == first[q]:
                    if second[j] == keys[q, 1]:
                        found[q] = True
                        break
                    j += 1
        return found

    def add(self, keys: np.ndarray) -> None:
        first, second = keys[:, 0], keys[:, 1]
        while self.runs and len(self.runs[-1][0]) <= 2 * len(first):
            before = self.runs.pop()
            first, second = np.concatenate([before[0], first]), np.concatenate([before[1], second])
        if len(first):
            order = np.argsort(first, kind="stable")
            self.runs.append((first[order], second[order]))


def _repeated(keys: np.ndarray) -> np.ndarray:
    """Which of `keys` share their first word with another of them (a superset of the repeats)."""
    first = keys[:, 0]
    order = np.argsort(first, kind="stable")
    ordered = first[order]
    same = np.zeros(len(keys), dtype=bool)
    if len(keys) > 1:
        twin = ordered[1:] == ordered[:-1]
        same[order[1:][twin]] = True
        same[order[:-1][twin]] = True
    return same


def _kept_records(
    got: _JsonlSlice,
    ids: _SeenKeys,
    texts: _SeenKeys,
    same_id: list[int],
    same_text: list[int],
) -> np.ndarray:
    """Which records of `got` load_documents keeps: not repeating the id, nor else the text,
    of a record kept before (the lines of those that do are added to `same_id`, `same_text`)."""
    old_id, old_text = ids.known(got.id_keys), texts.known(got.text_keys)
    # Only records met before or sharing a key within the slice can be left out, and the others
    # share no key with them: the rest are kept, and those few are read in order.
    keep = np.ones(len(got.id_keys), dtype=bool)
    doubtful = old_id | old_text | _repeated(got.id_keys) | _repeated(got.text_keys)
    new_ids: set[tuple[int, int]] = set()
    new_texts: set[tuple[int, int]] = set()
    for r in np.flatnonzero(doubtful).tolist():
        i, t = tuple(got.id_keys[r].tolist()), tuple(got.text_keys[r].tolist())
        if old_id[r] or i in new_ids:
            same_id.append(int(got.lines[r]))
            keep[r] = False
        elif old_text[r] or t in new_texts:
            same_text.append(int(got.lines[r]))
            keep[r] = False
        else:
            new_ids.add(i)
            new_texts.add(t)
    ids.add(got.id_keys[keep])
    texts.add(got.text_keys[keep])
    return keep


def _without_rows(counted: ChunkCounts, keep: np.ndarray) -> ChunkCounts:
    """`counted` with only the passages `keep` marks (its vocabulary unchanged: terms of the
    others alone end with no postings, and are left out of the index with the other unused)."""
    sizes = np.diff(counted.indptr)
    entries = np.repeat(keep, sizes)
    indptr = np.zeros(int(keep.sum()) + 1, dtype=counted.indptr.dtype)
    np.cumsum(sizes[keep], out=indptr[1:])
    return dataclasses.replace(
        counted, indptr=indptr, indices=counted.indices[entries], data=counted.data[entries]
    )


def _first_use(numbers: np.ndarray) -> np.ndarray:
    """The distinct values of `numbers` in order of first appearance."""
    distinct, first = np.unique(numbers, return_index=True)
    return distinct[np.argsort(first, kind="stable")]


@dataclass
class _StreamedSlice:
    """A slice's kept passages as the parent keeps them until the end of the build."""

    file: str
    text: np.ndarray  # int64 (start, end) in the file of each kept passage's text
    titles: np.ndarray  # ... of each kept document's title
    sources: np.ndarray  # ... and source
    p_start: np.ndarray
    p_end: np.ndarray
    p_ordinal: np.ndarray
    p_section: np.ndarray  # numbered among the corpus's section titles
    p_doc: np.ndarray  # int32, numbered among the corpus's documents


def _spans_of(offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return np.stack([offsets[:-1][rows], offsets[1:][rows]], axis=1)


def _streamed(
    got: _JsonlSlice,
    keep: np.ndarray,
    file: str,
    docs_before: int,
    section_index: dict[str, int],
) -> tuple[_StreamedSlice, StringTable]:
    """The slice's kept passages and documents (those with a passage), and their ids."""
    part = got.passages
    rows = np.flatnonzero(keep[part.p_doc])
    p_doc = part.p_doc[rows]
    used = np.unique(p_doc)  # ascending: in order of first appearance
    sections = part.p_section[rows]
    to_corpus = np.zeros(len(part.section_names), dtype=np.int32)
    for k in _first_use(sections).tolist():
        to_corpus[k] = section_index.setdefault(part.section_names[k], len(section_index))
    kept = _StreamedSlice(
        file=file,
        text=_spans_of(part.text.offsets, rows),
        titles=_spans_of(got.titles, used),
        sources=_spans_of(got.sources, used),
        p_start=part.p_start[rows],
        p_end=part.p_end[rows],
        p_ordinal=part.p_ordinal[rows],
        p_section=to_corpus[sections],
        p_doc=(np.searchsorted(used, p_doc) + docs_before).astype(np.int32),
    )
    return kept, got.ids.take(used)


def _kept_surface(got: _JsonlSlice, keep: np.ndarray, file: str, wanted: int) -> dict[str, int]:
    """How often each token occurs in the text of the slice's first `wanted` kept passages, in
    order of first appearance (what _surface_of gives for a slice of Documents)."""
    part = got.passages
    rows = np.flatnonzero(keep[part.p_doc])[:wanted]
    if not len(rows):
        return {}
    if part.surface is None or rows[-1] >= len(part.surface[2]):  # tokens not kept: read
        seen: Counter[str] = Counter()
        blob = np.fromfile(file, dtype=np.uint8, count=int(part.text.offsets[-1]))
        table = StringTable(blob, part.text.offsets)
        for r in rows.tolist():
            seen.update(tokenize(table[r]))
        return seen
    distinct, ids, ends = part.surface
    starts = np.concatenate([np.zeros(1, np.int64), ends[:-1]])
    tokens = np.concatenate([ids[starts[r] : ends[r]] for r in rows.tolist()])
    if not len(tokens):
        return {}
    order = _first_use(tokens)
    counts = np.bincount(tokens)[order]
    return dict(zip([distinct[k] for k in order.tolist()], counts.tolist(), strict=True))


def _joined_files(parts: list[_StreamedSlice], field: str) -> StringTable:
    """One table of the strings at `field`'s spans of every slice's file, in order."""
    spans = [getattr(p, field) for p in parts]
    sizes = np.concatenate([s[:, 1] - s[:, 0] for s in spans] + [np.empty(0, np.int64)])
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    blob = np.empty(int(offsets[-1]), dtype=np.uint8)
    at = 0
    for part, span in zip(parts, spans, strict=True):
        if not len(span):
            continue
        lo, hi = int(span[0, 0]), int(span[-1, 1])
        size = int((span[:, 1] - span[:, 0]).sum())
        with open(part.file, "rb") as f:
            f.seek(lo)
            if hi - lo == size:  # every string of the range (no passage left out): in place
                got = f.readinto(memoryview(blob[at : at + size]))
            else:
                data = f.read(hi - lo)
                got = len(data)
                pieces = b"".join(data[a - lo : b - lo] for a, b in span.tolist())
                blob[at : at + size] = np.frombuffer(pieces, dtype=np.uint8)
        if got != hi - lo:
            raise IndexStateError(f"a temporary file of the build was cut short: {part.file}")
        at += size
    return StringTable(blob, offsets)


def build_store_from_jsonl(
    path: str | os.PathLike[str],
    settings: IndexSettings,
    *,
    name: str = "",
    workers: int | None = None,
    progress: Progress | None = None,
    slice_bytes: int | None = None,
) -> Store | None:
    """The Store of `build_store_from_documents(load_documents(path), settings)` for a .jsonl
    file, with the same warnings and fingerprint, made without ever holding its records: forked
    workers each read a slice of the file's lines (found by one pass over its bytes), cut its
    records into passages and count them, and leave the strings in temporary files, joined
    once the postings are made. Repeated records are left out as load_documents does (their
    ids and texts are compared by 128-bit digests).

    None when this does not apply (the caller loads the documents instead): a file smaller
    than STREAM_FROM bytes (unless `slice_bytes` is given), or not UTF-8 (see plan_jsonl), fused
    settings, or no fork. `progress(lines read, lines)` is called as slices are counted.
    """
    import tempfile

    from emsqa.corpus import plan_jsonl

    if settings.fuses or not can_fork():
        return None
    workers = workers or usable_cores()
    if slice_bytes is None:
        try:
            size = os.stat(path).st_size
        except (OSError, ValueError):
            return None
        if size < STREAM_FROM:
            return None
        slice_bytes = max(1, min(_SLICE_TEXT, -(-size // (_DOC_SHARES * workers))))
    plan = plan_jsonl(path, slice_bytes)
    if plan is None:
        return None
    folder = tempfile.mkdtemp(prefix="emsqa-build-")
    try:
        return _store_from_jsonl(plan, settings, name, workers, progress, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _store_from_jsonl(
    plan: JsonlPlan,
    settings: IndexSettings,
    name: str,
    workers: int,
    progress: Progress | None,
    folder: str,
) -> Store:
    from emsqa.corpus import report_jsonl

    parts: list[_StreamedSlice] = []
    ids: list[StringTable] = []
    seen: Counter[str] = Counter()
    section_index: dict[str, int] = {}

    def chunks() -> Iterator[ChunkCounts]:
        bad: list[tuple[int, str]] = []
        same_id: list[int] = []
        same_text: list[int] = []
        seen_ids, seen_texts = _SeenKeys(), _SeenKeys()
        records = passages = documents = 0
        work = (plan, settings.split, settings, folder)
        total = max(1, plan.lines)
        for (i, _), (counted, got) in forked_slices(
            _jsonl_split_count_slice,
            work,
            plan.slices,
            0,
            workers,
            renew=False,  # workers read no object of the parent's: nothing to copy
            cuts=range(plan.slices + 1),
        ):
            file = os.path.join(folder, f"{i}.bin")
            bad.extend(got.bad)
            records += len(got.id_keys)
            keep = _kept_records(got, seen_ids, seen_texts, same_id, same_text)
            if passages < _SURFACE_SAMPLE:
                seen.update(_kept_surface(got, keep, file, _SURFACE_SAMPLE - passages))
            kept, kept_ids = _streamed(got, keep, file, documents, section_index)
            if not keep.all():
                counted = _without_rows(counted, keep[got.passages.p_doc])
            del got
            parts.append(kept)
            ids.append(kept_ids)
            passages += len(kept.p_start)
            documents += len(kept_ids)
            yield counted
            if progress:
                progress(
                    min(total, plan.first_lines[i + 1] - 1) if i + 2 < len(plan.cuts) else total,
                    total,
                )
        if not plan.unchanged():
            raise plan.changed_error()
        report_jsonl(plan, bad, records, same_id, same_text)

    def tables() -> tuple[_PassageTables, np.ndarray]:
        def joined(field: str) -> np.ndarray:
            return np.concatenate([getattr(p, field) for p in parts])

        out = _PassageTables(
            p_text=_joined_files(parts, "text"),
            p_doc=joined("p_doc"),
            p_start=joined("p_start"),
            p_end=joined("p_end"),
            p_section=joined("p_section"),
            doc_ids=StringTable.concat(ids),
            doc_titles=_joined_files(parts, "titles"),
            doc_sources=_joined_files(parts, "sources"),
            sections=StringTable.of(list(section_index)),
        )
        return out, joined("p_ordinal")

    return _store_from_chunks(
        chunks(),
        settings,
        seen,
        tables,
        name=name,
        fingerprint=plan.fingerprint,
        keep_terms=False,
    )


def _store_from_chunks(
    chunks: Iterator[ChunkCounts],
    settings: IndexSettings,
    seen: Counter[str],
    passage_tables: Callable[[], tuple[_PassageTables, np.ndarray]],
    *,
    name: str,
    fingerprint: str,
    keep_terms: bool,
) -> Store:
    """The Store of `n` passages counted in `chunks` (in passage order): merged, weighted, and
    postings term-major in hash order. `seen` holds the surface words' counts once the chunks are
    read; the passage tables and ordinals are asked for last (a large corpus's peak is before)."""
    from scipy import sparse

    drop_early = settings.weighting == "bm25"  # (tfidf's norms count every term: dropped later)
    counts = merge_chunks(
        chunks, drop_single_bigrams=lambda rows: drop_early and _drops_rare_bigrams(rows, settings)
    )
    n = len(counts.indptr) - 1
    if not n:
        raise IndexStateError("nothing to index: the documents produced no passages")
    if not counts.n_terms:
        raise IndexStateError(
            "nothing to index: the documents hold no searchable words (only stop words or "
            "punctuation)"
        )
    n_words, lengths = counts.n_words, counts.lengths
    hashes = _term_keys(counts.words, counts.pairs)
    names = counts.names if keep_terms else None
    x = sparse.csr_matrix((counts.data, counts.indices, counts.indptr), shape=(n, len(hashes)))
    del counts  # x holds the counts now: once x goes, so do they (a large build's peak)
    release_free_memory()  # what the runs' counts took while they were merged
    if settings.weighting == "bm25":
        # weighting below keeps every entry (weights > 0), so these counts stay the postings'
        df = _document_frequency(x.indices, x.shape[1])
        idf = _smooth_idf(df, n)
        avg = float(lengths.mean()) or 1.0
        row_norm = settings.k1 * (1 - settings.b + settings.b * lengths / avg)
        # in slices of rows, so the temporaries stay small on large corpora (same arithmetic)
        bounds = [*range(0, n, _WEIGHT_ROWS), n]
        for r0, r1 in itertools.pairwise(bounds):
            a, b = int(x.indptr[r0]), int(x.indptr[r1])
            tf = x.data[a:b]
            row_of = np.repeat(np.arange(r0, r1), np.diff(x.indptr[r0 : r1 + 1]))
            x.data[a:b] = (
                idf[x.indices[a:b]] * tf * (settings.k1 + 1) / (tf + row_norm[row_of])
            ).astype(np.float32)
        del tf, row_of
    else:
        from sklearn.feature_extraction.text import TfidfTransformer

        tfidf = TfidfTransformer(norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True)
        x = tfidf.fit_transform(x).tocsr().astype(np.float32)  # norms count every term
        x = _drop_rare_bigrams(x, n_words, settings)
        df = _document_frequency(x.indices, x.shape[1])
    del lengths

    # term-major postings in hash order, scattered from x a slice of rows at a time: no second
    # copy of the matrix (a whole-matrix tocsc() held both, the build's largest peak)
    kept = np.flatnonzero(df > 0)  # every term but the dropped bigrams
    order = kept[np.argsort(hashes[kept])]  # (distinct keys, checked below: any sort will do)
    del kept
    hashes = hashes[order]
    if len(hashes) > 1 and np.any(hashes[1:] == hashes[:-1]):
        raise IndexStateError("two index terms share a 64-bit hash; rebuild with other settings")
    # what is left of the term arrays in hash order now, so only those stay for the scatter
    term_counts = df[order]
    del df
    terms = names.take(order) if names is not None else None
    del names
    indptr, indices, weights = x.indptr, x.indices, x.data
    del x
    # weights become uint16 steps before the scatter, so it runs beside 6 bytes a posting, not 8
    post_scale, steps = _steps_in_order(indices, weights, order)
    del weights, order
    release_free_memory()
    post_ptr, post_idx, post_w = _term_major(indptr, indices, steps, term_counts)
    del indptr, indices, steps
    release_free_memory()

    tables, ordinals = passage_tables()
    return Store(
        settings=settings,
        term_hash=hashes,
        terms=terms,
        post_ptr=post_ptr.astype(_pointer_dtype(len(post_idx))),
        post_idx=post_idx,
        post_w=post_w,
        post_scale=post_scale,
        p_doc=tables.p_doc,
        p_start=tables.p_start,
        p_end=tables.p_end,
        p_ordinal=ordinals,
        p_section=tables.p_section,
        p_text=tables.p_text,
        doc_ids=tables.doc_ids,
        doc_titles=tables.doc_titles,
        doc_sources=tables.doc_sources,
        sections=tables.sections,
        words=_surface_words(seen),
        name=name,
        fingerprint=fingerprint,
    )


def _document_frequency(indices: np.ndarray, n_terms: int) -> np.ndarray:
    """How many passages hold each term, from a CSR matrix's column numbers (one per passage and
    term). Counted in slices: np.bincount widens int32 numbers to 64 bits first, which for the
    whole array at once costs 880 MB at a million passages."""
    df = np.zeros(n_terms, dtype=np.int64)
    for a in range(0, len(indices), _GATHER):
        df += np.bincount(indices[a : a + _GATHER], minlength=n_terms)
    return df


def _smooth_idf(df: np.ndarray, n: int) -> np.ndarray:
    """float32 ln((1 + n) / (1 + df)) + 1 for `n` passages, computed step by step as
    scikit-learn's TfidfTransformer(smooth_idf=True).fit does on float32 counts, so the bits are
    the same (tested), without its fit's whole-matrix np.bincount (see _document_frequency)."""
    plus_one = df.astype(np.float32)
    plus_one += 1.0
    idf = np.full_like(plus_one, fill_value=n + 1, dtype=np.float32)
    idf /= plus_one
    np.log(idf, out=idf)
    idf += 1.0
    return idf


def _row_slices(indptr: np.ndarray, entries: int) -> Iterator[tuple[int, int]]:
    """Runs of rows [r0, r1) of about `entries` stored entries each (at least one row)."""
    n = len(indptr) - 1
    r0 = 0
    while r0 < n:
        r1 = int(np.searchsorted(indptr, indptr[r0] + entries, side="right")) - 1
        r1 = min(n, max(r1, r0 + 1))
        yield r0, r1
        r0 = r1


def _steps_in_order(
    indices: np.ndarray, weights: np.ndarray, order: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(per-term scale, uint16 steps) of CSR `weights`, after renumbering `indices` in place to
    positions in `order` (term t becomes the one at order[t]). A term's weights are steps of its
    own float32 scale: its largest is exact to 1 part in 131,070, and uint16 widens to float far
    faster than float16 does when a question is scored."""
    position = np.zeros(int(order.max(initial=0)) + 1, dtype=indices.dtype)
    position[order] = np.arange(len(order), dtype=indices.dtype)
    top = np.zeros(len(order), dtype=np.float32)
    for a in range(0, len(indices), _GATHER):
        b = min(a + _GATHER, len(indices))
        indices[a:b] = position[indices[a:b]]
        np.maximum.at(top, indices[a:b], weights[a:b])
    del position
    scale = np.where(top > 0, top / np.float32(_STEPS), np.float32(1.0)).astype(np.float32)
    steps = np.empty(len(weights), dtype=np.uint16)
    for a in range(0, len(indices), _GATHER):
        b = min(a + _GATHER, len(indices))
        steps[a:b] = np.rint(weights[a:b] / scale[indices[a:b]])
    return scale, steps


def _term_major(
    indptr: np.ndarray, indices: np.ndarray, steps: np.ndarray, term_counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(post_ptr, post_idx, post_w) of a passages x terms CSR matrix: each term's passages
    ascending, scattered into place a slice of rows at a time (no second copy of the matrix)."""
    from scipy import sparse

    n, n_terms = len(indptr) - 1, len(term_counts)
    if len(indices) <= _AT_ONCE:  # small: one tocsc(), its copy costs little (the same arrays)
        whole = sparse.csr_matrix((steps, indices, indptr), shape=(n, n_terms)).tocsc()
        return (
            whole.indptr.astype(np.int64),
            whole.indices.astype(_passage_dtype(n)),
            whole.data.astype(np.uint16, copy=False),
        )
    post_ptr = np.zeros(n_terms + 1, dtype=np.int64)
    np.cumsum(term_counts, out=post_ptr[1:])
    post_idx = np.empty(int(post_ptr[-1]), dtype=_passage_dtype(n))  # in their final, narrow
    post_w = np.empty(int(post_ptr[-1]), dtype=np.uint16)  # dtypes: no extra copy
    filled = post_ptr[:-1].copy()  # where each term's next posting goes

    def by_term(bounds: tuple[int, int]) -> Any:
        """Rows r0..r1's postings, term by term, passages ascending (a slice ahead, in a thread)."""
        r0, r1 = bounds
        a, b = int(indptr[r0]), int(indptr[r1])
        return sparse.csr_matrix(
            (steps[a:b], indices[a:b], indptr[r0 : r1 + 1] - a), shape=(r1 - r0, n_terms)
        ).tocsc()

    # a slice's tocsc() costs its entries plus one step per term: slices of a quarter as many
    # entries as terms at least keep the second part from dominating on large vocabularies
    slices = list(_row_slices(indptr, max(_SCATTER, n_terms // 4)))
    for (r0, _), rows in zip(slices, computed_ahead(by_term, slices), strict=True):
        counts = np.diff(rows.indptr)
        terms = np.flatnonzero(counts)
        counts = counts[terms]
        to = np.repeat(filled[terms] - rows.indptr[terms], counts)
        to += np.arange(len(to), dtype=np.int64)
        post_idx[to] = rows.indices + r0
        post_w[to] = rows.data
        filled[terms] += counts
    return post_ptr, post_idx, post_w


_STEPS = 65535  # a term's largest weight is this many steps of its scale


def _pointer_dtype(n_postings: int) -> type[np.integer[Any]]:
    return np.uint32 if n_postings < 2**32 else np.int64


def _passage_dtype(n_passages: int) -> type[np.integer[Any]]:
    # below 2**16 - 1, so that a passage number plus one still fits
    return np.uint16 if n_passages < 2**16 - 1 else np.int32


# --- persistence -------------------------------------------------------------------------------

_ARRAYS = ("term_hash", "post_ptr", "post_idx", "post_w",
           "p_doc", "p_start", "p_end", "p_ordinal", "p_section")  # fmt: skip
_TABLES = ("p_text", "doc_ids", "doc_titles", "doc_sources", "sections")
_DTYPES: dict[str, tuple[str, ...]] = {  # the dtypes each array may have (format 4)
    "term_hash": ("uint64",), "post_ptr": ("uint32", "int64"),
    "post_idx": ("uint16", "int32"), "post_w": ("uint16",), "p_doc": ("int32",),
    "p_start": ("int64",), "p_end": ("int64",), "p_ordinal": ("int32",), "p_section": ("int32",),
}  # fmt: skip
_OPTIONAL: dict[str, tuple[str, ...]] = {  # emsqa.fusion's arrays: saved when present
    "sub_hash": ("uint64",), "sub_idf": ("float32",), "sub_ptr": ("int64",), "sub_idx": ("int32",),
    "sub_w": ("float32",), "knn_idx": ("int32",), "knn_w": ("float32",),
}  # fmt: skip
# formats 1 and 2 kept the term strings and df, and wider postings
_OLD_DTYPES = {**_DTYPES, "post_ptr": ("int64",), "post_idx": ("int32",), "post_w": ("float32",)}


def _file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    size = path.stat().st_size
    with path.open("rb") as f:
        if size <= _FULL_DIGEST_LIMIT:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        else:
            h.update(f.read(1 << 20))
            f.seek(size - (1 << 20))
            h.update(f.read(1 << 20))
    return h.hexdigest()


def _checksum(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode("ascii"), digest_size=16).hexdigest()


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("emsqa", "scikit-learn", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_leftover(path: Path) -> bool:
    """A data folder or manifest temp file of a save (perhaps one that was killed)."""
    name = path.name.lstrip(".")
    if path.is_dir():
        return name.startswith("data-")
    return name.startswith(f"{MANIFEST}.") and name.endswith(".tmp")


def _only_leftovers(root: Path) -> bool:
    """Whether `root` holds nothing but what an interrupted first save into it left behind."""
    return all(_is_leftover(p) for p in root.iterdir())


def save_store(store: Store, folder: str | os.PathLike[str]) -> Path:
    """Write `store` to `folder` atomically (see the module docstring)."""
    try:
        return _save(store, Path(folder))
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise IndexWriteError(f"cannot save the index to {folder}: {reason}") from None


def _save(store: Store, root: Path) -> Path:
    if root.exists() and not root.is_dir():
        raise IndexFormatError(f"cannot save the index to {root}: it is a file, not a folder")
    if root.is_dir() and not (root / MANIFEST).is_file() and not _only_leftovers(root):
        raise IndexFormatError(
            f"refusing to save into {root}: it is a non-empty folder that is not an emsqa index"
        )
    root.mkdir(parents=True, exist_ok=True)
    data_name = f"data-{secrets.token_hex(6)}"
    data = root / f".{data_name}.partial"
    data.mkdir()
    files: dict[str, dict[str, Any]] = {}

    def put(name: str, array: np.ndarray) -> None:
        path = data / f"{name}.npy"
        with path.open("wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        files[name] = {"bytes": path.stat().st_size, "digest": _file_digest(path)}

    for name in _ARRAYS:
        put(name, getattr(store, name))
    if store.post_scale is not None:
        put("post_scale", store.post_scale)
    for name in _OPTIONAL:
        if getattr(store, name) is not None:
            put(name, getattr(store, name))
    for name in _TABLES:
        table: StringTable = getattr(store, name)
        put(f"{name}.blob", table.blob)
        put(f"{name}.offsets", table.offsets)
    _fsync_dir(data)
    os.replace(data, root / data_name)

    manifest: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "versions": _versions(),
        "settings": dataclasses.asdict(store.settings),
        "analyzer": store.settings.analyzer().to_dict(),
        "name": store.name,
        "fingerprint": store.fingerprint,
        "counts": {
            "documents": store.n_documents,
            "passages": store.n_passages,
            "terms": store.n_terms,
        },
        "words": list(store.words),
        "term_hash": store.term_hash_kind,
        "data": data_name,
        "files": files,
    }
    manifest["checksum"] = _checksum(manifest)
    tmp = root / f".{MANIFEST}.{secrets.token_hex(4)}.tmp"
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, root / MANIFEST)
    _fsync_dir(root)
    for old in root.iterdir():  # earlier generations and abandoned partial writes
        if old.name == data_name or not _is_leftover(old):
            continue
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
    return root


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The verified manifest of the index in `folder` (raises IndexFormatError)."""
    root = Path(folder)
    path = root / MANIFEST
    if not root.exists():
        raise IndexFormatError(f"no index at {root}: the folder does not exist")
    if not root.is_dir():
        raise IndexFormatError(f"{root} is a file, not an index folder")
    if not path.is_file():
        raise IndexFormatError(f"{root} is not an emsqa index: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeError, ValueError) as exc:
        raise IndexFormatError(
            f"{path} is unreadable or not valid JSON ({exc.__class__.__name__})"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise IndexFormatError(f"{path} is not an emsqa index manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise IndexFormatError(f"{path} has no valid format_version")
    if version > FORMAT_VERSION:
        raise IndexFormatError(
            f"{path} was written by a newer emsqa (index format {version}; this emsqa reads {FORMAT_VERSION})",
            hint="upgrade emsqa or rebuild the index",
        )
    if manifest.get("checksum") != _checksum(manifest):
        raise IndexFormatError(
            f"{path} was modified after it was written (checksum mismatch)",
            hint="rebuild the index",
        )
    return manifest


def _generation(root: Path) -> object:
    """The data folder the manifest in `root` names right now (None when there is none)."""
    try:
        return json.loads((root / MANIFEST).read_text("utf-8")).get("data")
    except (OSError, ValueError, AttributeError):
        return None


def load_store(folder: str | os.PathLike[str], *, mmap: bool | None = None) -> Store:
    """Load and verify the index in `folder`; arrays are memory-mapped when large (or mmap=True).

    A save by another process may replace the index while it is read, removing the files of the
    generation being read: then the new generation is read instead of failing.
    """
    root = Path(folder)
    attempts = 5
    while True:
        before = _generation(root)
        try:
            return _load_generation(root, mmap)
        except IndexFormatError:
            attempts -= 1
            if not attempts or _generation(root) == before:
                raise


def _load_generation(root: Path, mmap: bool | None) -> Store:
    manifest = read_manifest(root)
    try:
        data_name = str(manifest["data"])
        if not data_name.startswith("data-") or not data_name[5:].isalnum():
            raise IndexFormatError(
                f"{root / MANIFEST} names a data folder outside the index ({data_name!r})"
            )
        data = root / data_name
        files: dict[str, dict[str, Any]] = manifest["files"]
        settings = IndexSettings.from_dict(manifest["settings"])
        counts = manifest["counts"]
        term_hash_kind = manifest.get("term_hash", _OLD_TERM_HASH)
        if term_hash_kind not in TERM_HASHES:
            raise IndexFormatError(
                f"{root / MANIFEST} names an unknown term hash ({term_hash_kind!r})",
                hint="rebuild the index",
            )
    except (KeyError, TypeError, UsageError) as exc:
        raise IndexFormatError(f"{root / MANIFEST} is incomplete or inconsistent ({exc})") from None
    if manifest.get("analyzer") != settings.analyzer().to_dict():
        warnings.warn(
            f"{root} was built by an emsqa that reads text differently (an older version?): "
            "some question words may not match; rebuild it for the best answers",
            EmsqaWarning,
            stacklevel=4,
        )
    total = sum(int(f.get("bytes", 0)) for f in files.values())
    use_mmap = mmap if mmap is not None else total > 256 * 2**20

    def get(name: str, dtypes: tuple[str, ...] = ()) -> np.ndarray:
        path = data / f"{name}.npy"
        info = files.get(name)
        if info is None:
            raise IndexFormatError(f"{root / MANIFEST} does not list {name}.npy")
        if not path.is_file():
            raise IndexFormatError(f"index file {path} is missing")
        try:
            intact = path.stat().st_size == info.get("bytes")
            intact = intact and _file_digest(path) == info.get("digest")
        except OSError as exc:
            raise IndexFormatError(f"index file {path} cannot be read ({exc.strerror})") from None
        if not intact:
            raise IndexFormatError(
                f"index file {path} is truncated or was modified", hint="rebuild the index"
            )
        try:
            arr = np.load(path, allow_pickle=False, mmap_mode="r" if use_mmap else None)
        except (ValueError, OSError, EOFError) as exc:
            raise IndexFormatError(
                f"index file {path} cannot be read as a plain array ({exc})"
            ) from None
        if (
            not isinstance(arr, np.ndarray)
            or arr.ndim != 1
            or (dtypes and arr.dtype.name not in dtypes)
        ):
            raise IndexFormatError(
                f"index file {path} holds an unexpected array ({getattr(arr, 'dtype', '?')})"
            )
        return arr

    old = manifest["format_version"] < 3  # its df and term strings are not read
    arrays = {name: get(name, (_OLD_DTYPES if old else _DTYPES)[name]) for name in _ARRAYS}
    arrays.update({name: get(name, dtypes) for name, dtypes in _OPTIONAL.items() if name in files})
    if not old:
        arrays["post_scale"] = get("post_scale", ("float32",))
    if manifest["format_version"] < 4:  # formats 1-3 saved the idf
        arrays["saved_idf"] = get("idf", ("float32",))
    tables = {
        name: (StringTable.on_file if use_mmap else StringTable)(
            get(f"{name}.blob", ("uint8",)), get(f"{name}.offsets", ("int64",))
        )
        for name in _TABLES
    }
    runs = (MappedRuns(arrays["post_idx"]), MappedRuns(arrays["post_w"])) if use_mmap else None
    store = Store(
        settings=settings,
        **arrays,
        **tables,
        post_runs=runs,
        words=tuple(str(w) for w in manifest.get("words", [])),
        name=str(manifest.get("name", "")),
        fingerprint=str(manifest.get("fingerprint", "")),
        meta=manifest,
        term_hash_kind=term_hash_kind,
    )
    _check_consistency(store, counts, root)
    return store


def _fusion_problems(store: Store) -> list[str]:
    """What is wrong with the fusion arrays of `store` (none of them is fine when not asked for)."""
    s, n = store.settings, store.n_passages
    keys, idf, ptr, idx, w = (
        store.sub_hash, store.sub_idf, store.sub_ptr, store.sub_idx, store.sub_w
    )  # fmt: skip
    if keys is None or idf is None or ptr is None or idx is None or w is None:
        if s.subword_weight or any(a is not None for a in (keys, idf, ptr, idx, w)):
            return ["the character n-gram arrays are missing or incomplete"]
    elif len(idf) != len(keys) or len(ptr) != len(keys) + 1:
        return ["the character n-gram arrays have different lengths"]
    elif ptr[0] != 0 or ptr[-1] != len(idx) or len(w) != len(idx):
        return ["the character n-gram postings do not match their pointers"]
    elif len(idx) and (idx.min() < 0 or idx.max() >= n):
        return ["sub_idx points outside the passages"]
    near, near_w = store.knn_idx, store.knn_w
    if near is None or near_w is None:
        if s.neighbour_weight or near is not None or near_w is not None:
            return ["the neighbour arrays are missing or incomplete"]
    elif len(near_w) != len(near) or (n and len(near) % n):
        return ["the neighbour arrays do not match the passages"]
    elif len(near) and (near.min() < 0 or near.max() >= n):
        return ["knn_idx points outside the passages"]
    return []


def _check_consistency(store: Store, counts: dict[str, Any], root: Path) -> None:
    problems = []
    if counts.get("passages") != store.n_passages or counts.get("documents") != store.n_documents:
        problems.append("passage or document counts differ from the manifest")
    if counts.get("terms") != store.n_terms:
        problems.append("term counts differ from the manifest")
    n = store.n_terms
    if (
        len(store.post_ptr) != n + 1
        or (store.saved_idf is not None and len(store.saved_idf) != n)
        or (store.post_scale is not None and len(store.post_scale) != n)
    ):
        problems.append("term arrays have different lengths")
    elif (
        store.post_ptr[0] != 0
        or store.post_ptr[-1] != len(store.post_idx)
        or len(store.post_w) != len(store.post_idx)
    ):
        problems.append("postings do not match their pointers")
    np_ = store.n_passages
    if (
        any(len(a) != np_ for a in (store.p_start, store.p_end, store.p_ordinal, store.p_section))
        or len(store.p_text) != np_
    ):
        problems.append("passage arrays have different lengths")
    problems += _fusion_problems(store)
    for table_name in _TABLES:
        t: StringTable = getattr(store, table_name)
        if len(t.offsets) and (t.offsets[0] != 0 or t.offsets[-1] != len(t.blob)):
            problems.append(f"string table {table_name} is inconsistent")
    # Numbers that index other arrays must stay in range, or a question would crash. Postings
    # bigger than the fully digested size are left unscanned, so large indexes still open fast.
    for name, values, bound in (
        ("p_doc", store.p_doc, store.n_documents),
        ("p_section", store.p_section, len(store.sections)),
        ("post_idx", store.post_idx, np_),
    ):
        small = len(values) and values.nbytes <= _FULL_DIGEST_LIMIT
        if small and (int(values.min()) < 0 or int(values.max()) >= bound):
            problems.append(f"{name} points outside its table")
    if problems:
        raise IndexFormatError(
            f"index at {root} is inconsistent: {problems[0]}", hint="rebuild the index"
        )
