"""Passages -> term counts for the index: Analyzer.fields(), counted with numpy.

The terms are exactly those of `Analyzer.fields()` (content words, the parts of compounds, and
bigrams of adjacent content words within one field, the title counted `title_weight` times and the
section `section_weight` times), but no list of term strings is made per passage. Each distinct
token is stemmed once; a passage becomes a list of word numbers; bigrams are pairs of adjacent
numbers, found with numpy; and a chunk of passages becomes one sparse count matrix over the
chunk's own vocabulary. Chunks are independent (forked workers may count them) and are merged
into one matrix over the corpus vocabulary at the end.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from emsqa.arrays import release_free_memory, sorted_unique
from emsqa.datatypes import Passage
from emsqa.errors import IndexStateError
from emsqa.strings import StringTable
from emsqa.text import STOP_WORDS, Analyzer, tokenize

__all__ = ["ChunkCounts", "Counts", "Vocabulary", "count_chunk", "merge_chunks"]

_STOP = -1  # the word number of a stop word (dropped, and not part of any bigram)
_FIELD_CACHE = 4096  # titles and sections remembered per chunk (passages of a document share them)
_RELEASE_EVERY = 32 * 2**20  # bytes of released runs after which the heap is trimmed


@dataclass(frozen=True)
class ChunkCounts:
    """Term counts of a run of passages.

    Word numbers run from 0 to word_base + len(words) - 1: `words` are the words this run added to
    its vocabulary (all of them when the run had its own; word_base 0). Term numbers below that
    are words; word pair j is the term right after them plus j.
    """

    words: list[str]
    word_base: int
    pairs: np.ndarray  # int64 (n_pairs, 2): the word numbers of each bigram
    indptr: np.ndarray  # int64, passages + 1
    indices: np.ndarray  # int32 term numbers
    data: np.ndarray  # float32 counts (fields weighted)


@dataclass(frozen=True)
class Counts:
    """Term counts of the whole corpus: a passages x terms matrix and each passage's length.

    Terms below `n_words` are `words`; term n_words + j is the word pair pairs[j], held as
    (first word << 32) | second word. `names` spells every term out (made only when asked).
    """

    indptr: np.ndarray  # int64
    indices: np.ndarray  # int32 (column order within a row is not sorted)
    data: np.ndarray  # float32
    words: StringTable
    pairs: np.ndarray  # int64 word-pair keys, sorted
    lengths: np.ndarray  # float64: each passage's count of terms (dropped bigrams included)

    @property
    def n_words(self) -> int:
        return len(self.words)

    @property
    def n_terms(self) -> int:
        return len(self.words) + len(self.pairs)

    @cached_property
    def names(self) -> StringTable:
        """Every term as text: the words, then the pairs joined by a space."""
        return StringTable.concat(
            [self.words, self.words.joined(self.pairs >> 32, self.pairs & 0xFFFFFFFF)]
        )


class Vocabulary:
    """Word numbers for one run of passages, or for several runs counted one after another."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.words: dict[str, int] = {}
        self.tokens: dict[str, int] = {}  # token -> word number (or _STOP)
        self.parts: dict[str, list[int]] = {}  # compound token -> word numbers of its parts

    def learn(self, token: str) -> None:
        if token in STOP_WORDS:
            self.tokens[token] = _STOP
            return
        words = self.words
        form = self.analyzer.stem_of(token)
        self.tokens[token] = words.setdefault(form, len(words))
        if "-" in form:  # compounds stay whole; their parts are extra terms (Analyzer.terms)
            parts = self.analyzer.parts(form)
            self.parts[token] = [words.setdefault(p, len(words)) for p in parts]

    def field(self, text: str) -> tuple[list[int], list[int]]:
        """(word numbers of the tokens in order, _STOP for stop words; word numbers of compound parts)."""
        toks = tokenize(text)
        known = self.tokens
        try:
            numbers = [known[t] for t in toks]
        except KeyError:
            for t in toks:
                if t not in known:
                    self.learn(t)
            numbers = [known[t] for t in toks]
        parts: list[int] = []
        if "-" in text:
            compounds = self.parts.keys() & toks
            if compounds:
                # in order of appearance, once per occurrence (as Analyzer.terms adds them)
                for t in toks:
                    if t in compounds:
                        parts.extend(self.parts[t])
        return numbers, parts


def count_chunk(
    passages: Sequence[Passage],
    analyzer: Analyzer,
    title_weight: int,
    section_weight: int,
    vocabulary: Vocabulary | None = None,
) -> ChunkCounts:
    """The term counts of `passages` (see the module docstring).

    `vocabulary`: go on numbering words where the run before left off (runs counted in order by
    one process), instead of learning every token of this run anew.
    """
    vocab = Vocabulary(analyzer) if vocabulary is None else vocabulary
    word_base = len(vocab.words)
    flat: list[int] = []  # word numbers of every field's tokens, field after field
    field_rows: list[int] = []
    field_sizes: list[int] = []
    field_weights: list[int] = []
    part_rows: list[int] = []
    part_words: list[int] = []
    part_weights: list[int] = []
    remembered: dict[str, tuple[list[int], list[int]]] = {}

    def add(row: int, numbers: list[int], parts: list[int], weight: int) -> None:
        flat.extend(numbers)
        field_rows.append(row)
        field_sizes.append(len(numbers))
        field_weights.append(weight)
        if parts:
            part_rows.extend([row] * len(parts))
            part_words.extend(parts)
            part_weights.extend([weight] * len(parts))

    def shared(text: str) -> tuple[list[int], list[int]]:
        found = remembered.get(text)
        if found is None:
            if len(remembered) >= _FIELD_CACHE:
                remembered.clear()
            found = remembered[text] = vocab.field(text)
        return found

    for row, p in enumerate(passages):
        add(row, *vocab.field(p.text), 1)
        if title_weight and p.title:
            add(row, *shared(p.title), title_weight)
        if section_weight and p.section:
            add(row, *shared(p.section), section_weight)

    n_words = len(vocab.words)
    numbers = np.array(flat, dtype=np.int64)
    field_of = np.repeat(np.arange(len(field_sizes)), field_sizes)
    content = numbers != _STOP  # stop words drop out: the words around them become neighbours
    numbers, field_of = numbers[content], field_of[content]
    rows = np.asarray(field_rows, dtype=np.int64)[field_of]
    weights = np.asarray(field_weights, dtype=np.float32)[field_of]
    # bigrams: adjacent content words of one field
    same = field_of[1:] == field_of[:-1]
    keys = numbers[:-1][same] * n_words + numbers[1:][same]
    pair_keys, pair_of = np.unique(keys, return_inverse=True)
    all_rows = np.concatenate([rows, rows[:-1][same], np.asarray(part_rows, dtype=np.int64)])
    all_terms = np.concatenate(
        [numbers, n_words + pair_of.ravel(), np.asarray(part_words, dtype=np.int64)]
    )
    all_weights = np.concatenate(
        [weights, weights[:-1][same], np.asarray(part_weights, dtype=np.float32)]
    )
    indptr, indices, data = _csr(all_rows, all_terms, all_weights, len(passages))
    pairs = np.stack([pair_keys // max(n_words, 1), pair_keys % max(n_words, 1)], axis=1)
    added = list(itertools.islice(vocab.words, word_base, None))
    return ChunkCounts(added, word_base, pairs, indptr, indices, data)


def _csr(
    rows: np.ndarray, terms: np.ndarray, weights: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, data) of the sum of weights per (row, term), terms sorted in each row."""
    if not len(rows):
        return np.zeros(n_rows + 1, dtype=np.int64), np.empty(0, np.int32), np.empty(0, np.float32)
    width = int(terms.max()) + 1
    cells, at = np.unique(rows * width + terms, return_inverse=True)
    data = np.bincount(at.ravel(), weights=weights, minlength=len(cells)).astype(np.float32)
    cell_rows = cells // width
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(cell_rows, minlength=n_rows), out=indptr[1:])
    return indptr, (cells % width).astype(np.int32), data


@dataclass
class _Staged:
    """A run's counts waiting for the corpus vocabulary (its word pairs already as corpus keys)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    word_map: np.ndarray  # the run's word numbers -> corpus word numbers
    pair_keys: np.ndarray  # (first word << 32) | second word, corpus numbers


def merge_chunks(chunks: Iterable[ChunkCounts], *, drop_single_bigrams: bool = False) -> Counts:
    """One matrix over the corpus vocabulary from chunk counts given in passage order.

    Words are numbered in order of first appearance; bigrams follow all words, sorted by their
    (first word, second word) numbers. `drop_single_bigrams`: leave out bigrams found in a single
    passage (Counts.lengths still counts them). Runs are read twice and their arrays released as
    soon as they are copied into the matrix, so the peak stays near one copy of the counts.
    """
    words: dict[str, int] = {}
    staged: list[_Staged] = []
    for chunk in chunks:
        if chunk.word_base:  # numbered on from the runs before: same numbers here
            if chunk.word_base != len(words):
                raise IndexStateError("runs sharing a vocabulary must be merged in their order")
            first = len(words)
            words.update(zip(chunk.words, range(first, first + len(chunk.words)), strict=True))
            word_map = np.arange(len(words), dtype=np.int64)
        else:
            word_map = np.fromiter(
                (words.setdefault(w, len(words)) for w in chunk.words),
                dtype=np.int64,
                count=len(chunk.words),
            )
        pair_keys = (word_map[chunk.pairs[:, 0]] << 32) | word_map[chunk.pairs[:, 1]]
        staged.append(_Staged(chunk.indptr, chunk.indices, chunk.data, word_map, pair_keys))
        del chunk  # its word pairs are no longer needed
    n_words = len(words)
    all_pairs = sorted_unique(
        np.concatenate([s.pair_keys for s in staged] + [np.empty(0, np.int64)]), in_place=True
    )
    n_terms = n_words + len(all_pairs)
    # first pass: each run's terms in corpus numbers, document frequencies, passage lengths
    df = np.zeros(n_terms, dtype=np.int64)
    lengths = []
    for st in staged:
        term_map = np.concatenate([st.word_map, n_words + np.searchsorted(all_pairs, st.pair_keys)])
        st.word_map, st.pair_keys = term_map, np.empty(0, np.int64)  # (word_map: now all terms)
        df[term_map] += np.bincount(st.indices, minlength=len(term_map))  # a run's terms differ
        rows = np.repeat(np.arange(len(st.indptr) - 1), np.diff(st.indptr))
        lengths.append(np.bincount(rows, weights=st.data, minlength=len(st.indptr) - 1))
    keep = np.ones(n_terms, dtype=bool)
    if drop_single_bigrams:
        keep[n_words:] = df[n_words:] > 1
    new_number = np.cumsum(keep) - 1  # the kept terms, renumbered in order
    # second pass: copy the kept entries into the corpus matrix, releasing each run
    n_rows = sum(len(st.indptr) - 1 for st in staged)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    total = sum(int(keep[st.word_map[st.indices]].sum()) for st in staged)
    indices = np.empty(total, dtype=np.int32)
    data = np.empty(total, dtype=np.float32)
    row = at = released = 0
    for st in staged:
        terms = st.word_map[st.indices]
        mask = keep[terms]
        m = int(mask.sum())
        rows = len(st.indptr) - 1
        indices[at : at + m] = new_number[terms[mask]]
        data[at : at + m] = st.data[mask]
        row_of = np.repeat(np.arange(rows), np.diff(st.indptr))
        indptr[row + 1 : row + rows + 1] = at + np.cumsum(np.bincount(row_of[mask], minlength=rows))
        row, at = row + rows, at + m
        released += st.indices.nbytes + st.data.nbytes + st.indptr.nbytes + st.word_map.nbytes
        st.indices = st.data = st.indptr = st.word_map = np.empty(0, np.int64)  # released
        if released >= _RELEASE_EVERY:  # else glibc keeps the freed runs: the output would
            release_free_memory()  # sit on top of all of them (1.2 GB more at 1M passages)
            released = 0
    return Counts(
        indptr=indptr,
        indices=indices,
        data=data,
        words=StringTable.of(list(words)),
        pairs=all_pairs[keep[n_words:]],
        lengths=np.concatenate([*lengths, np.empty(0)]),
    )
