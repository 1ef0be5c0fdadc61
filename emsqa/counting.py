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
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from emsqa.arrays import release_free_memory, sorted_unique
from emsqa.datatypes import Passage
from emsqa.errors import IndexStateError
from emsqa.parallel import computed_ahead
from emsqa.strings import StringTable
from emsqa.text import STOP_WORDS, Analyzer, tokenize

__all__ = ["ChunkCounts", "Counts", "Vocabulary", "count_chunk", "count_fields", "merge_chunks"]

_STOP = -1  # the word number of a stop word (dropped, and not part of any bigram)
_UNKNOWN = -2  # a token not learnt yet
_NUMBER_BATCH = 32_768  # tokens numbered at a time
_FIELD_CACHE = 4096  # titles and sections remembered per chunk (passages of a document share them)
_RELEASE_EVERY = 8 * 2**20  # bytes of released runs after which the heap is trimmed (at least)


@dataclass(frozen=True)
class ChunkCounts:
    """Term counts of a run of passages.

    Word numbers run from 0 to word_base + len(words) - 1: `words` are the words this run added to
    its vocabulary (all of them when the run had its own; word_base 0). Term numbers below that
    are words; word pair j is the term right after them plus j. `source` names the vocabulary:
    runs of one source are merged in the order they were counted.
    """

    words: list[str]
    word_base: int
    pairs: np.ndarray  # int64 (n_pairs, 2): the word numbers of each bigram
    indptr: np.ndarray  # int64, passages + 1
    indices: np.ndarray  # int32 term numbers
    data: np.ndarray  # counts (fields weighted): uint16, or float32 when one is above 65,535
    # how often each token (stop words too) occurs in the text of the run's first passages, in
    # order of first appearance (count_chunk's `surface`)
    surface: dict[str, int] | None = None
    source: int = 0


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
        self.parts: dict[int, list[int]] = {}  # compound word -> word numbers of its parts
        self.compound = bytearray()  # per word number: 1 when it has parts

    def _word(self, form: str) -> int:
        number = self.words.get(form)
        if number is None:
            number = self.words[form] = len(self.words)
            self.compound.append(0)
        return number

    def learn(self, token: str) -> None:
        self.learn_all([token])

    def learn_all(self, tokens: list[str]) -> None:
        """Number `tokens` (distinct, none known yet), in order; their stems made in one call."""
        known = self.tokens
        content = [t for t in tokens if t not in STOP_WORDS]
        for t in tokens:
            if t in STOP_WORDS:
                known[t] = _STOP
        words = self.words
        analyzer = self.analyzer
        for token, form in zip(content, analyzer.stems_of(content), strict=True):
            new = form not in words
            number = known[token] = self._word(form)
            if new and "-" in form:  # compounds stay whole; their parts are extra terms
                parts = [self._word(p) for p in analyzer.parts(form)]
                if parts:
                    self.parts[number] = parts
                    self.compound[number] = 1

    def numbers(self, tokens: list[str]) -> np.ndarray:
        """The word numbers of `tokens` (_STOP for stop words); tokens not met before are learnt
        first, in order of first appearance. One dict lookup a token, none of them in Python code."""
        known = self.tokens
        out = np.fromiter(map(known.get, tokens, itertools.repeat(_UNKNOWN)), np.int64, len(tokens))
        new = np.flatnonzero(out == _UNKNOWN).tolist()
        if new:
            self.learn_all(list(dict.fromkeys(tokens[i] for i in new)))
            out[new] = [known[tokens[i]] for i in new]
        return out


class _OverlapTokens:
    """tokenize() of passage texts, each stretch a passage shares with the next tokenised once.

    Consecutive passages of a section overlap (they share a sentence). Tokens never hold
    whitespace, and text is normalised a character at a time apart from NFKC, which never joins
    a character to whitespace: so the tokens of a text cut next to whitespace are those of its two
    pieces, one after the other. A passage is cut where the next one starts, when that cut is
    next to whitespace; the next passage takes the tokens of the shared piece and tokenises only
    the rest. Anything else (no overlap, a cut between two non-spaces) is tokenised whole.
    """

    def __init__(self, places: Sequence[tuple[object, int, int]]) -> None:
        self.places = places
        self.carry: tuple[object, int, int, list[str]] | None = None  # (doc, start, end, tokens)

    def tokens(self, i: int, text: str) -> list[str]:
        places = self.places
        doc, start, end = places[i]
        done: list[str] = []
        pos = 0  # text[:pos] is tokenised (done)
        carry, self.carry = self.carry, None
        if carry is not None and carry[0] == doc and carry[1] == start and carry[2] <= end:
            pos = carry[2] - start
            if pos < len(text) and not _spaced(text, pos):
                pos = 0  # the shared piece ends next to a non-space: tokenise the text whole
            else:
                done = carry[3]
        if i + 1 < len(places):
            next_doc, next_start, _ = places[i + 1]
            cut = next_start - start
            if next_doc == doc and pos < cut < len(text) and _spaced(text, cut):
                tail = tokenize(text[cut:])
                self.carry = (doc, next_start, end, tail)
                return done + tokenize(text[pos:cut]) + tail
        if not pos:
            return tokenize(text)
        return done + tokenize(text[pos:])


def _spaced(text: str, at: int) -> bool:
    """Whether a cut of `text` at `at` (0 < at < len(text)) falls next to whitespace."""
    return text[at - 1].isspace() or text[at].isspace()


def count_chunk(
    passages: Sequence[Passage],
    analyzer: Analyzer,
    title_weight: int,
    section_weight: int,
    vocabulary: Vocabulary | None = None,
    *,
    surface: int = 0,
    source: int = 0,
) -> ChunkCounts:
    """The term counts of `passages` (see the module docstring and count_fields)."""
    return count_fields(
        [p.text for p in passages],
        [p.title for p in passages],
        [p.section for p in passages],
        analyzer,
        title_weight,
        section_weight,
        vocabulary,
        surface=surface,
        source=source,
        places=[(p.doc_id, p.start, p.end) for p in passages],
    )


def count_fields(
    texts: Sequence[str],
    titles: Sequence[str],
    sections: Sequence[str],
    analyzer: Analyzer,
    title_weight: int,
    section_weight: int,
    vocabulary: Vocabulary | None = None,
    *,
    surface: int = 0,
    source: int = 0,
    places: Sequence[tuple[object, int, int]] | None = None,
    surface_tokens: list[list[str]] | None = None,
) -> ChunkCounts:
    """The term counts of passages given as their texts, titles and sections.

    `places`: each passage's (document, start, end) in its document, when known: the text two
    consecutive passages of a document share is then tokenised once (see _OverlapTokens).

    `vocabulary`: go on numbering words where the run before left off (runs counted in order by
    one process), instead of learning every token of this run anew; `source` names it (runs of
    one source are merged in order; see ChunkCounts). `surface`: also count the tokens of the
    first `surface` passages' text, in ChunkCounts.surface, or, given `surface_tokens`, append
    those passages' tokens to it instead (ChunkCounts.surface is then None).
    """
    vocab = Vocabulary(analyzer) if vocabulary is None else vocabulary
    word_base = len(vocab.words)
    tokens: list[str] = []  # the fields' tokens, field after field, until numbered ...
    numbered: list[np.ndarray] = []  # ... a batch at a time (a token is a 50-byte object)
    field_rows: list[int] = []
    field_sizes: list[int] = []
    field_weights: list[int] = []
    # whether the field's text holds "-": only then are compound parts added (U+2010 and U+2011
    # become "-" in tokens, but a field with no "-" of its own gets no parts: as emsqa 5c9a326)
    field_hyphens: list[bool] = []
    remembered: dict[str, list[str]] = {}  # titles and sections: a document's passages share them
    seen: Counter[str] = Counter()

    def add(row: int, text: str, toks: list[str], weight: int) -> None:
        tokens.extend(toks)
        field_rows.append(row)
        field_sizes.append(len(toks))
        field_weights.append(weight)
        field_hyphens.append("-" in text)

    def shared(row: int, text: str, weight: int) -> None:
        toks = remembered.get(text)
        if toks is None:
            if len(remembered) >= _FIELD_CACHE:
                remembered.clear()
            toks = remembered[text] = tokenize(text)
        add(row, text, toks, weight)

    body = _OverlapTokens(places) if places is not None else None
    for row, (text, title, section) in enumerate(zip(texts, titles, sections, strict=True)):
        toks = body.tokens(row, text) if body is not None else tokenize(text)
        if row < surface:
            if surface_tokens is None:
                seen.update(toks)
            else:
                surface_tokens.append(toks)
        add(row, text, toks, 1)
        if title_weight and title:
            shared(row, title, title_weight)
        if section_weight and section:
            shared(row, section, section_weight)
        if len(tokens) >= _NUMBER_BATCH:
            numbered.append(vocab.numbers(tokens))
            tokens.clear()

    numbered.append(vocab.numbers(tokens))
    tokens.clear()
    numbers = np.concatenate(numbered)
    del numbered
    n_words = len(vocab.words)
    field_of = np.repeat(np.arange(len(field_sizes)), field_sizes)
    content = numbers != _STOP  # stop words drop out: the words around them become neighbours
    numbers, field_of = numbers[content], field_of[content]
    rows = np.asarray(field_rows, dtype=np.int64)[field_of]
    weights = np.asarray(field_weights, dtype=np.float32)[field_of]
    # bigrams: adjacent content words of one field
    same = field_of[1:] == field_of[:-1]
    keys = numbers[:-1][same] * n_words + numbers[1:][same]
    pair_keys, pair_of = np.unique(keys, return_inverse=True)
    # compound parts: once per occurrence of the compound, in its field's row and weight
    compound = np.frombuffer(vocab.compound, dtype=np.uint8)[:n_words]
    at = np.flatnonzero(compound[numbers]) if vocab.parts else np.empty(0, np.int64)
    at = at[np.asarray(field_hyphens, dtype=bool)[field_of[at]]]
    parts_of = vocab.parts
    found = [parts_of[w] for w in numbers[at].tolist()]
    sizes = np.fromiter(map(len, found), np.int64, len(found))
    part_words = np.fromiter(itertools.chain.from_iterable(found), np.int64, int(sizes.sum()))
    all_rows = np.concatenate([rows, rows[:-1][same], np.repeat(rows[at], sizes)])
    all_terms = np.concatenate([numbers, n_words + pair_of.ravel(), part_words])
    all_weights = np.concatenate([weights, weights[:-1][same], np.repeat(weights[at], sizes)])
    indptr, indices, data = _csr(all_rows, all_terms, all_weights, len(texts))
    if len(data) and data.max() <= np.iinfo(np.uint16).max:  # whole counts: half the bytes to
        data = data.astype(np.uint16)  # send and to keep until the merge (float32 there again)
    pairs = np.stack([pair_keys // max(n_words, 1), pair_keys % max(n_words, 1)], axis=1)
    added = list(itertools.islice(vocab.words, word_base, None))
    surface_counts = dict(seen) if surface and surface_tokens is None else None
    return ChunkCounts(added, word_base, pairs, indptr, indices, data, surface_counts, source)


def _csr(
    rows: np.ndarray, terms: np.ndarray, weights: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, data) of the sum of weights per (row, term), terms sorted in each row.

    scipy's COO -> CSR conversion sums the duplicates in C++ (a third faster than sorting the
    cells with np.unique); weights are summed as float64, then stored as float32."""
    from scipy import sparse

    if not len(rows):
        return np.zeros(n_rows + 1, dtype=np.int64), np.empty(0, np.int32), np.empty(0, np.float32)
    width = int(terms.max()) + 1
    matrix = sparse.csr_matrix((weights.astype(np.float64), (rows, terms)), shape=(n_rows, width))
    matrix.sum_duplicates()  # (and sorts each row's terms)
    return (
        matrix.indptr.astype(np.int64),
        matrix.indices.astype(np.int32, copy=False),
        matrix.data.astype(np.float32),
    )


@dataclass
class _Staged:
    """A run's counts waiting for the corpus vocabulary (its word pairs already as corpus keys)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    vocabulary: int  # the vocabulary that numbered the run's words ...
    n_words: int  # ... and how many of its words the run may use
    pair_keys: np.ndarray  # (first word << 32) | second word, corpus numbers


def _release(st: _Staged) -> int:
    """Drop a run's arrays (once copied into the corpus matrix); the bytes released."""
    size = st.indices.nbytes + st.data.nbytes + st.indptr.nbytes
    st.indices = st.data = st.indptr = np.empty(0, np.int64)
    return size


def merge_chunks(
    chunks: Iterable[ChunkCounts], *, drop_single_bigrams: bool | Callable[[int], bool] = False
) -> Counts:
    """One matrix over the corpus vocabulary from chunk counts given in passage order.

    Words are numbered in order of first appearance; bigrams follow all words, sorted by their
    (first word, second word) numbers. `drop_single_bigrams`: leave out bigrams found in a single
    passage (Counts.lengths still counts them); a function of the number of passages decides
    once every chunk is read. Runs are read twice and their arrays released as soon as they are
    copied into the matrix, so the peak stays near one copy of the counts.
    """
    words: dict[str, int] = {}
    # per vocabulary: a buffer whose first entries map its word numbers to corpus word numbers
    maps: list[tuple[np.ndarray, int]] = []
    current: dict[int, int] = {}  # source -> the vocabulary its runs number words in now
    staged: list[_Staged] = []
    for chunk in chunks:
        if chunk.word_base:  # numbered on from the source's runs before
            at = current.get(chunk.source)
            if at is None or chunk.word_base != maps[at][1]:
                raise IndexStateError("runs sharing a vocabulary must be merged in their order")
        else:
            at = current[chunk.source] = len(maps)
            maps.append((np.empty(0, np.int64), 0))
        buffer, filled = maps[at]
        size = filled + len(chunk.words)
        if size > len(buffer):  # grown by doubling: the copies add up to twice the words
            buffer = np.concatenate(
                [buffer[:filled], np.empty(max(size, 2 * filled) - filled, np.int64)]
            )
        # the run's words not met before get the next corpus numbers, in order (run words differ)
        fresh = [w for w in chunk.words if w not in words]
        words.update(zip(fresh, range(len(words), len(words) + len(fresh)), strict=True))
        buffer[filled:size] = np.fromiter(
            map(words.__getitem__, chunk.words), dtype=np.int64, count=len(chunk.words)
        )
        maps[at] = (buffer, size)
        word_map = buffer[:size]
        pair_keys = (word_map[chunk.pairs[:, 0]] << 32) | word_map[chunk.pairs[:, 1]]
        staged.append(_Staged(chunk.indptr, chunk.indices, chunk.data, at, size, pair_keys))
        del chunk  # its word pairs are no longer needed
    n_words = len(words)
    all_pairs = sorted_unique(
        np.concatenate([s.pair_keys for s in staged] + [np.empty(0, np.int64)]), in_place=True
    )
    n_terms = n_words + len(all_pairs)
    n_rows = sum(len(st.indptr) - 1 for st in staged)
    if callable(drop_single_bigrams):
        drop_single_bigrams = drop_single_bigrams(n_rows)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    # Without bigrams to drop, each run goes straight into the corpus matrix in the first pass,
    # released as soon as it is copied: the runs and the matrix never both exist in full.
    direct = not drop_single_bigrams
    total = sum(len(st.indices) for st in staged) if direct else 0
    indices = np.empty(total, dtype=np.int32)
    data = np.empty(total, dtype=np.float32)
    row = at = released = 0
    # trim often enough that freed runs never pile up, and at most about 32 times (each trim walks
    # the whole heap: 8 MB steps made hundreds of them at a million passages)
    trim_every = max(_RELEASE_EVERY, sum(st.indices.nbytes + st.data.nbytes for st in staged) // 32)
    # first pass: each run's terms in corpus numbers, document frequencies, passage lengths
    df = np.zeros(n_terms, dtype=np.int64)
    lengths = []

    def term_map_of(st: _Staged) -> np.ndarray:
        """The run's term numbers in the corpus (computed a run ahead, in a helper thread)."""
        found = n_words + np.searchsorted(all_pairs, st.pair_keys)
        st.pair_keys = np.empty(0, np.int64)
        return np.concatenate([maps[st.vocabulary][0][: st.n_words], found])

    for st, term_map in zip(staged, computed_ahead(term_map_of, staged), strict=True):
        df[term_map] += np.bincount(st.indices, minlength=len(term_map))  # a run's terms differ
        rows = len(st.indptr) - 1
        row_of = np.repeat(np.arange(rows), np.diff(st.indptr))
        lengths.append(np.bincount(row_of, weights=st.data, minlength=rows))
        if not direct:
            st.indices = term_map.astype(np.int32)[st.indices]  # corpus term numbers from here on
            continue
        m = len(st.indices)
        indices[at : at + m] = term_map[st.indices]
        data[at : at + m] = st.data
        indptr[row + 1 : row + rows + 1] = at + st.indptr[1:]
        row, at = row + rows, at + m
        released += _release(st)
        if released >= trim_every:
            release_free_memory()
            released = 0
    maps.clear()
    keep = np.ones(n_terms, dtype=bool)
    if drop_single_bigrams:
        keep[n_words:] = df[n_words:] > 1
    new_number = np.cumsum(keep) - 1  # the kept terms, renumbered in order
    # second pass: copy the kept entries into the corpus matrix, releasing each run
    if not direct:
        total = sum(int(keep[st.indices].sum()) for st in staged)
        indices = np.empty(total, dtype=np.int32)
        data = np.empty(total, dtype=np.float32)
    for st in staged if not direct else ():
        terms = st.indices
        mask = keep[terms]
        m = int(mask.sum())
        rows = len(st.indptr) - 1
        indices[at : at + m] = new_number[terms[mask]]
        data[at : at + m] = st.data[mask]
        row_of = np.repeat(np.arange(rows), np.diff(st.indptr))
        indptr[row + 1 : row + rows + 1] = at + np.cumsum(np.bincount(row_of[mask], minlength=rows))
        row, at = row + rows, at + m
        del terms
        released += _release(st)
        if released >= trim_every:  # else glibc keeps the freed runs: the output would
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
