"""Question -> weighted query terms -> ranked passages, with numpy only.

A question is analysed with the index's own analyzer, expanded with the lexicon (expansion terms
weigh EXPANSION_WEIGHT) and, when it reads as a follow-up, completed with the content words of the
previous question (weighing CARRY_WEIGHT). Scoring walks only the postings of the question's terms:
the cost grows with the number of passages sharing a term with the question, not with the corpus.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from emsqa.datatypes import Hit, Query
from emsqa.errors import QuestionError
from emsqa.store import Store
from emsqa.text import Lexicon, tokenize

__all__ = [
    "CARRY_WEIGHT",
    "EXPANSION_WEIGHT",
    "MAX_QUESTION_CHARS",
    "PreparedQuery",
    "explain",
    "prepare",
    "search",
]

MAX_QUESTION_CHARS = 2000
EXPANSION_WEIGHT = 0.5
CARRY_WEIGHT = 0.4

# Question frames: "how long" asks for a duration; its "long" is not a topic word.
_FRAMES = (
    (
        re.compile(r"\bhow (long|many years|many hours|many weeks|many months)\b", re.I),
        ("hours", "weeks", "months", "years"),
    ),
    (re.compile(r"\bhow often\b", re.I), ("every", "years", "annually")),
    (re.compile(r"\bhow (many|much|old|far|soon)\b", re.I), ()),
    (
        re.compile(r"\bwhat (kind|type|sort)s? of\b|\bcan you tell me\b|\bis it true that\b", re.I),
        (),
    ),
)
CUE_WEIGHT = 0.3
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_FOLLOW_START = re.compile(
    r"^\s*(and|also|what about|how about|what else|and what|same for|then)\b", re.I
)
_ANAPHORA = frozenset(
    [
        "they",
        "them",
        "their",
        "theirs",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "he",
        "she",
        "him",
        "his",
        "her",
        "one",
        "ones",
    ]
)
# Who a question is about: a follow-up naming a new role replaces the old one instead of adding to it.
_ROLES = frozenset(["emr", "emt", "emts", "aemt", "aemts", "paramedic", "paramedics", "medic", "medics", "nurse", "nurses", "doctor", "doctors", "physician", "physicians", "firefighter", "firefighters", "dispatcher", "dispatchers", "responder", "responders"])  # fmt: skip


@dataclass(frozen=True)
class PreparedQuery:
    """The analysed question: the public Query plus the term numbers and weights to score with."""

    query: Query
    terms: tuple[str, ...]  # every weighted term (question, expansions, carried)
    weights: tuple[float, ...]
    term_ids: np.ndarray  # -1 where the term is not in the index
    concepts: tuple[
        tuple[float, tuple[frozenset[str], ...]], ...
    ]  # for coverage: (weight, alternatives)


def _clean(question: object) -> tuple[str, str]:
    if not isinstance(question, str):
        raise QuestionError(f"a question must be text, not {type(question).__name__}")
    notice = ""
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", question))
    if len(text) > MAX_QUESTION_CHARS:
        cut = text.rfind(" ", 0, MAX_QUESTION_CHARS)
        text = text[: cut if cut > MAX_QUESTION_CHARS // 2 else MAX_QUESTION_CHARS]
        notice = f"Your question was long; only its first {len(text):,} characters were used."
    return " ".join(text.split()), notice


def is_follow_up(question: str, n_content: int) -> bool:
    """A question leaning on the one before: it starts like "and ..."/"what about ...", points back with a
    pronoun, or is too short to stand alone."""
    words = tokenize(question)
    return (
        bool(_FOLLOW_START.match(question)) or any(w in _ANAPHORA for w in words) or n_content <= 1
    )


def _carried(store: Store, question: str, own: list[str], history: Sequence[str]) -> list[str]:
    if not history or not is_follow_up(question, len(own)):
        return []
    analyzer = store.settings.analyzer()
    own_roles = {w for w in tokenize(question) if w in _ROLES}
    out: list[str] = []
    for earlier in reversed(history[-2:]):
        for raw in tokenize(earlier):
            if own_roles and raw in _ROLES:
                continue
            for term in analyzer.content(raw):
                if term not in own and term not in out:
                    out.append(term)
        if out:
            break
    return out


def prepare(
    store: Store,
    question: str,
    *,
    history: Sequence[str] = (),
    lexicon: Lexicon | None = None,
    carry: Sequence[str] | None = None,
) -> PreparedQuery:
    """Analyse `question` (and its conversation) into weighted index terms.

    `carry` replays the terms an earlier analysis carried over (so an answer can be explained later).
    """
    text, notice = _clean(question)
    analyzer = store.settings.analyzer()
    topic, cues = text, []
    for pattern, cue_terms in _FRAMES:
        if pattern.search(topic):
            topic = pattern.sub(" how ", topic)
            cues.extend(analyzer.content(" ".join(cue_terms)))
    own_terms = analyzer.terms(topic)
    own_content = analyzer.content(topic)
    weights: Counter[str] = Counter(own_terms)
    for term in cues:
        if weights[term] < CUE_WEIGHT:
            weights[term] = CUE_WEIGHT
    expansions: list[tuple[str, str]] = []
    concepts: list[tuple[frozenset[str], ...]] = []
    covered_by_group: set[str] = set()
    if lexicon is not None:
        groups: dict[str, list[frozenset[str]]] = {}
        for found, other in lexicon.expansions(text):
            expansions.append((found, other))
            alt = frozenset(analyzer.content(other))
            for term in analyzer.phrase_terms(other):
                if weights[term] < EXPANSION_WEIGHT:
                    weights[term] = EXPANSION_WEIGHT
            groups.setdefault(found, [frozenset(analyzer.content(found))]).append(alt)
        for alternatives in groups.values():
            concepts.append(tuple(a for a in alternatives if a))
            covered_by_group.update(alternatives[0])
    carried = list(carry) if carry is not None else _carried(store, text, own_content, history)
    for term in carried:
        weights.setdefault(term, CARRY_WEIGHT)
    for term in dict.fromkeys(own_content + carried):
        if term not in covered_by_group:
            concepts.append((frozenset([term]),))
    terms = tuple(t for t in weights if weights[t] > 0)
    ids = store.lookup(terms)
    idf_max = float(math.log(1 + store.n_passages) + 1)
    idf = {t: (float(store.idf[i]) if i >= 0 else idf_max) for t, i in zip(terms, ids, strict=True)}
    weighted_concepts = tuple(
        (
            max(idf.get(t, idf_max) for alt in c for t in alt)
            * (CARRY_WEIGHT if all(a <= set(carried) for a in c) else 1.0),
            c,
        )
        for c in concepts
        if c and any(c)
    )
    query = Query(
        text=text,
        terms=tuple(own_terms),
        expansions=tuple(expansions),
        carried=tuple(carried),
        notice=notice,
    )
    return PreparedQuery(
        query=query,
        terms=terms,
        weights=tuple(float(weights[t]) for t in terms),
        term_ids=ids,
        concepts=weighted_concepts,
    )


def _query_weights(store: Store, pq: PreparedQuery) -> tuple[np.ndarray, np.ndarray]:
    mask = pq.term_ids >= 0
    ids = pq.term_ids[mask]
    w = np.asarray(pq.weights, dtype=np.float64)[mask]
    if store.settings.weighting == "tfidf" and len(ids):
        w = (1 + np.log(np.maximum(w, 1e-9))) * store.idf[
            ids
        ]  # sublinear tf times idf, like the passages
        w = np.where(w > 0, w, 0)
        norm = float(np.sqrt((w * w).sum())) or 1.0
        w = w / norm
    return ids, w


def score_candidates(store: Store, pq: PreparedQuery) -> tuple[np.ndarray, np.ndarray]:
    """(passage numbers, scores) of every passage sharing a term with the question."""
    ids, w = _query_weights(store, pq)
    if not len(ids):
        return np.empty(0, dtype=np.int64), np.empty(0)
    ptr, pidx, pw = store.post_ptr, store.post_idx, store.post_w
    idx_parts, w_parts = [], []
    for t, qw in zip(ids.tolist(), w.tolist(), strict=True):
        a, b = int(ptr[t]), int(ptr[t + 1])
        idx_parts.append(pidx[a:b])
        w_parts.append(pw[a:b] * qw)
    idx = np.concatenate(idx_parts)
    vals = np.concatenate(w_parts)
    n = store.n_passages
    if len(idx) * 16 < n:  # few postings: sort them instead of touching every passage
        cands, inverse = np.unique(idx, return_inverse=True)
        scores = np.bincount(inverse, weights=vals)
    else:
        full = np.bincount(idx, weights=vals, minlength=n)
        cands = np.flatnonzero(full)
        scores = full[cands]
    return cands.astype(np.int64), scores


def _overlaps(store: Store, i: int, kept: list[int]) -> bool:
    for j in kept:
        if (
            store.p_doc[i] == store.p_doc[j]
            and store.p_start[i] < store.p_end[j]
            and store.p_start[j] < store.p_end[i]
        ):
            return True
    return False


def search(store: Store, pq: PreparedQuery, k: int = 10, *, collapse: bool = True) -> list[Hit]:
    """The top `k` passages for a prepared question, best first; overlapping windows collapsed."""
    if k <= 0:
        return []
    cands, scores = score_candidates(store, pq)
    if not len(cands):
        return []
    want = min(len(cands), k * 3 + 8 if collapse else k)
    top = np.argpartition(-scores, want - 1)[:want] if want < len(cands) else np.arange(len(cands))
    order = top[np.lexsort((cands[top], -scores[top]))]
    kept: list[int] = []
    seen_text: set[int] = set()
    hits: list[Hit] = []
    for o in order.tolist():
        i = int(cands[o])
        if collapse:
            if _overlaps(store, i, kept):
                continue
            text_key = hash(store.p_text[i])
            if text_key in seen_text:
                continue
            seen_text.add(text_key)
        kept.append(i)
        hits.append(Hit(passage=store.passage(i), score=float(scores[o]), rank=len(hits) + 1))
        if len(hits) == k:
            break
    return hits


def explain(store: Store, pq: PreparedQuery, passage_number: int) -> list[tuple[str, float]]:
    """Each question term's contribution to the score of passage `passage_number`, largest first."""
    ids, w = _query_weights(store, pq)
    found = [t for t, i in zip(pq.terms, pq.term_ids, strict=True) if i >= 0]
    out = []
    for term, t, qw in zip(found, ids.tolist(), w.tolist(), strict=True):
        a, b = int(store.post_ptr[t]), int(store.post_ptr[t + 1])
        seg = store.post_idx[a:b]
        pos = int(np.searchsorted(seg, passage_number))
        if pos < len(seg) and seg[pos] == passage_number:
            out.append((term, float(store.post_w[a + pos]) * qw))
    return sorted(out, key=lambda tc: -tc[1])
