"""Second opinions fused with the lexical score: options for small corpora, off by default.

- **Subwords** (`subword_weight`): a TF-IDF field of the character 3- to 5-grams of each word
  (the word padded with a space on each side), so "ribosomopathies" still meets "ribosome".
- **Neighbours** (`neighbour_weight`): each passage's NEIGHBOURS most similar passages (cosine
  of sublinear TF-IDF word vectors, title counted twice); a passage takes part of its
  neighbours' scores, so a relevant passage that misses the question's words is lifted by
  relevant passages like it.

Each score list is scaled to 0..1 by the lowest and highest of its TOP_FOR_SCALE best scores
before the lists are mixed. Both are built with scikit-learn and read with numpy only. The
neighbour search compares every passage with every other: meant for corpora up to
MAX_NEIGHBOUR_PASSAGES passages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from emsqa.arrays import weighted_postings
from emsqa.datatypes import Passage
from emsqa.errors import UsageError
from emsqa.store import IndexSettings, Store, hash_terms
from emsqa.text import normalize

__all__ = ["MAX_NEIGHBOUR_PASSAGES", "NEIGHBOURS", "build_fusion", "char_grams", "fuse"]

GRAMS = (3, 5)  # character n-gram lengths, inclusive
GRAM_HASH = "fnv1a64-mix"  # grams are keyed as whole strings (their padding holds spaces)
NEIGHBOURS = 10
TOP_FOR_SCALE = 1000
MAX_NEIGHBOUR_PASSAGES = 100_000
_SIMILARITY_CELLS = 20_000_000  # passage-pair similarities computed at a time (bounds memory)


def char_grams(text: str) -> list[str]:
    """The character n-grams (GRAMS) of each word of `text`, the word padded with one space on
    each side; a padded word no longer than n is one gram, and longer grams are not taken."""
    low, high = GRAMS
    out: list[str] = []
    for word in normalize(text).split():
        padded = f" {word} "
        for n in range(low, high + 1):
            if len(padded) <= n:
                out.append(padded)
                break
            out.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return out


def _field_text(p: Passage) -> str:
    return f"{p.title} {p.title} {p.text}" if p.title else p.text


def build_fusion(passages: Sequence[Passage], settings: IndexSettings) -> dict[str, np.ndarray]:
    """The arrays of the options `settings` turns on (Store fields), for `passages` in order."""
    arrays: dict[str, np.ndarray] = {}
    if not (settings.subword_weight or settings.neighbour_weight):
        return arrays
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [_field_text(p) for p in passages]
    min_df = 2 if len(texts) > 2 else 1
    if settings.subword_weight:
        vec = TfidfVectorizer(analyzer=char_grams, sublinear_tf=True, min_df=min_df)
        x = vec.fit_transform(texts).tocsc()
        keys = hash_terms(list(vec.get_feature_names_out()), GRAM_HASH)
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        if len(keys) > 1 and np.any(keys[1:] == keys[:-1]):
            raise UsageError("two character n-grams share a 64-bit hash; turn subwords off")
        x = x[:, order]
        arrays.update(
            sub_hash=keys,
            sub_idf=vec.idf_[order].astype(np.float32),
            sub_ptr=x.indptr.astype(np.int64),
            sub_idx=x.indices.astype(np.int32),
            sub_w=x.data.astype(np.float32),
        )
    if settings.neighbour_weight:
        if len(passages) > MAX_NEIGHBOUR_PASSAGES:
            raise UsageError(
                f"neighbour_weight compares every passage with every other: at most "
                f"{MAX_NEIGHBOUR_PASSAGES:,} passages, not {len(passages):,}"
            )
        analyzer = settings.analyzer()
        vec = TfidfVectorizer(analyzer=analyzer.content, sublinear_tf=True, min_df=min_df)
        try:
            x = vec.fit_transform(texts).tocsr()
        except ValueError:  # no word in two passages: nobody has a neighbour
            x = None
        idx, w = _nearest(x, len(passages))
        arrays.update(knn_idx=idx.ravel(), knn_w=w.ravel())
    return arrays


def _nearest(x: object, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n x k passage numbers, n x k weights summing to 1 or 0) of each row's most similar rows."""
    k = min(NEIGHBOURS, n - 1)
    idx = np.zeros((n, max(k, 0)), dtype=np.int32)
    w = np.zeros((n, max(k, 0)), dtype=np.float32)
    if k <= 0 or x is None:
        return idx, w
    step = max(1, _SIMILARITY_CELLS // n)
    xt = x.T.tocsc()  # type: ignore[attr-defined]
    for a in range(0, n, step):
        b = min(n, a + step)
        sim = (x[a:b] @ xt).toarray()  # type: ignore[index]
        sim[np.arange(b - a), np.arange(a, b)] = -1.0  # never one's own neighbour
        near = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        near_sim = np.clip(np.take_along_axis(sim, near, axis=1), 0.0, None)
        total = near_sim.sum(axis=1, keepdims=True)
        idx[a:b] = near
        w[a:b] = np.divide(near_sim, total, out=np.zeros_like(near_sim), where=total > 0)
    return idx, w


def _scaled(scores: np.ndarray) -> np.ndarray:
    """Scores mapped to 0..1 by the lowest and highest of the TOP_FOR_SCALE best (lower: 0).

    When those are all alike (one passage, or a tie), a positive score among them maps to 1."""
    m = min(TOP_FOR_SCALE, len(scores))
    if not m:
        return scores
    top = np.partition(scores, len(scores) - m)[len(scores) - m :]
    low, high = float(top.min()), float(top.max())
    if high <= low:
        return np.where((scores >= high) & (scores > 0), 1.0, 0.0)
    return np.clip((scores - low) / (high - low), 0.0, None)


def subword_scores(store: Store, text: str) -> np.ndarray:
    """Every passage's cosine with `text` in the character n-gram field."""
    scores = np.zeros(store.n_passages)
    if store.sub_hash is None or not len(store.sub_hash):
        return scores
    counts = Counter(char_grams(text))
    if not counts:
        return scores
    keys = hash_terms(list(counts), GRAM_HASH)
    pos = np.minimum(np.searchsorted(store.sub_hash, keys), len(store.sub_hash) - 1)
    found = store.sub_hash[pos] == keys
    ids = pos[found]
    if not len(ids):
        return scores
    tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))[found]
    w = (1.0 + np.log(tf)) * store.sub_idf[ids]
    w /= np.sqrt((w * w).sum())
    _, at, vals = weighted_postings(store.sub_ptr, store.sub_idx, store.sub_w, ids, w)
    return np.bincount(at, weights=vals, minlength=store.n_passages)


def fuse(store: Store, lexical: np.ndarray, text: str) -> np.ndarray:
    """The fused score of every passage, from its lexical score (`lexical`, one per passage) and
    the options the index was built with; 0..1, higher is better."""
    s = store.settings
    fused = _scaled(lexical)
    if s.subword_weight and store.sub_hash is not None:
        sub = _scaled(subword_scores(store, text))
        fused = (1 - s.subword_weight) * fused + s.subword_weight * sub
    if s.neighbour_weight and store.knn_idx is not None and store.knn_w is not None:
        n = store.n_passages
        k = len(store.knn_idx) // n if n else 0
        if k:
            g = _scaled(fused)
            near = g[store.knn_idx].reshape(n, k) * store.knn_w.reshape(n, k)
            fused = (1 - s.neighbour_weight) * g + s.neighbour_weight * near.sum(axis=1)
    return fused
