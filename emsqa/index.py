"""The public Index: build from documents, save, load, search and ask.

    index = Index.build("my-notes/", target_words=100)
    index.search("AED pads placement", k=5)      # -> list[Hit]
    index.ask("Can an EMT start an IV?")          # -> Answer
    index.save("notes.idx"); Index.load("notes.idx")

Building needs scikit-learn; searching and answering use numpy only, so a saved index answers
without importing scikit-learn.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from emsqa.answer import ABSTAIN_BELOW, compose, definitions_first, smalltalk
from emsqa.datatypes import Answer, Document, Hit, Passage, Query
from emsqa.errors import IndexStateError, UsageError
from emsqa.fusion import build_fusion
from emsqa.passages import split_documents
from emsqa.retrieve import PreparedQuery, explain, prepare, search, search_many
from emsqa.store import (
    IndexSettings,
    Store,
    build_store,
    build_store_from_documents,
    build_store_from_jsonl,
    load_store,
    save_store,
)
from emsqa.text import Lexicon, load_lexicon

__all__ = ["Index", "IndexSettings"]

_PASSAGE_BATCH = 1_000  # passages read from the arrays at a time by Index.passages()
DEFINITION_POOL = 20  # passages searched for one that defines the subject of a "what is" question


class Index:
    """A searchable index of passages. Make one with `Index.build(...)` or `Index.load(...)`.

    Constructor arguments are the settings of `IndexSettings` (keyword-only, only stored);
    `fit()` builds. Learned state ends in an underscore (`store_`).
    """

    def __init__(self, *, lexicon: Lexicon | None = None, **settings: Any) -> None:
        self.settings = IndexSettings.from_dict(settings)
        self.lexicon = lexicon
        self.store_: Store | None = None
        self._ids: dict[str, int] | None = None

    # --- building and persistence ----------------------------------------------------------------

    def fit(
        self,
        source: str | os.PathLike[str] | Iterable[Document | str],
        *,
        name: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Index:
        """Load (if a path), split and index `source`; returns self.

        `progress(done, total)` is called as passages are analysed (large corpora: every 2,000).
        A .jsonl file of store.STREAM_FROM bytes or more is read a slice at a time by forked
        workers, never whole (the same index; `progress` then counts its lines).
        """
        fingerprint = ""
        s = self.settings
        if isinstance(source, (str, os.PathLike)):
            from emsqa.corpus import MAX_FILE_BYTES, corpus_fingerprint, load_documents

            name = name or str(source)
            # a large .jsonl file: read a slice at a time by forked workers, never held whole
            streamed = build_store_from_jsonl(source, s, name=name, progress=progress)
            if streamed is not None:
                self.store_ = streamed
                self._ids = None
                return self
            # a single .jsonl file is read whatever its size (a folder's files up to the limit)
            limit = MAX_FILE_BYTES
            if str(source).lower().endswith(".jsonl") and os.path.isfile(source):
                limit = max(limit, os.path.getsize(source) + 1)
            documents = load_documents(source, max_file_bytes=limit)
            fingerprint = corpus_fingerprint(source)
        else:
            wrong = f"Index.build takes a path, Documents or strings, not {type(source).__name__}"
            if isinstance(source, (bytes, bytearray)) or not isinstance(source, Iterable):
                raise UsageError(wrong)
            documents = []
            for i, d in enumerate(source):
                if isinstance(d, str):
                    d = Document(id=f"doc{i}", title="", text=d)
                elif not isinstance(d, Document):
                    raise UsageError(
                        f"Index.build takes Documents or strings, not {type(d).__name__}"
                    )
                documents.append(d)
        name = name or "documents"
        if progress is None and not s.fuses:
            # split and counted in one round of forked workers (large corpora), no Passage objects
            store = build_store_from_documents(documents, s, name=name, fingerprint=fingerprint)
        else:  # the passages' number is known before they are counted (progress), or fused
            passages = split_documents(documents, **dataclasses.asdict(s.split))
            store = build_store(passages, s, name=name, fingerprint=fingerprint, progress=progress)
            if s.fuses:
                store = dataclasses.replace(store, **build_fusion(passages, s))
        self.store_ = store
        self._ids = None
        return self

    @classmethod
    def build(
        cls,
        source: str | os.PathLike[str] | Iterable[Document | str],
        *,
        name: str | None = None,
        lexicon: Lexicon | None = None,
        progress: Callable[[int, int], None] | None = None,
        **settings: Any,
    ) -> Index:
        """Index a file, a folder (recursive), or an iterable of Documents."""
        return cls(lexicon=lexicon, **settings).fit(source, name=name, progress=progress)

    @classmethod
    def load(
        cls,
        folder: str | os.PathLike[str],
        *,
        mmap: bool | None = None,
        lexicon: Lexicon | None = None,
    ) -> Index:
        """Open a saved index (verified; nothing in it is ever executed)."""
        store = load_store(folder, mmap=mmap)
        index = cls(lexicon=lexicon, **dataclasses.asdict(store.settings))
        index.store_ = store
        return index

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write the index to `folder` atomically: a reader sees the old index or the new, never half."""
        return save_store(self._store(), folder)

    # --- facts ------------------------------------------------------------------------------------

    def _store(self) -> Store:
        if self.store_ is None:
            raise IndexStateError(
                "this index is empty: build it with Index.build(...) or open one with Index.load(...)"
            )
        return self.store_

    def _lexicon(self) -> Lexicon:
        if self.lexicon is None:
            self.lexicon = load_lexicon()
        return self.lexicon

    @property
    def name(self) -> str:
        return self._store().name

    @property
    def fingerprint(self) -> str:
        return self._store().fingerprint

    @property
    def n_documents(self) -> int:
        return self._store().n_documents

    @property
    def n_passages(self) -> int:
        return self._store().n_passages

    @property
    def n_terms(self) -> int:
        return self._store().n_terms

    def words(self, limit: int = 5000) -> list[str]:
        """Frequent words of the corpus as written (for completion)."""
        return list(self._store().words[:limit])

    def passages(self) -> Iterable[Passage]:
        """Every passage in index order."""
        store = self._store()
        return (
            p
            for a in range(0, store.n_passages, _PASSAGE_BATCH)
            for p in store.passages(range(a, min(a + _PASSAGE_BATCH, store.n_passages)))
        )

    def _number(self, passage_id: str) -> int:
        if self._ids is None:
            store = self._store()
            self._ids = {
                f"{store.doc_ids[int(store.p_doc[i])]}#{int(store.p_ordinal[i])}": i
                for i in range(store.n_passages)
            }
        try:
            return self._ids[passage_id]
        except KeyError:
            raise UsageError(f"no passage {passage_id!r} in this index") from None

    def passage(self, passage_id: str) -> Passage:
        """The passage with this id."""
        return self._store().passage(self._number(passage_id))

    def __repr__(self) -> str:
        if self.store_ is None:
            return "Index(<not built>)"
        return (
            f"Index(name={self.name!r}, documents={self.n_documents}, passages={self.n_passages})"
        )

    # --- questions --------------------------------------------------------------------------------

    def prepare(self, question: str, *, history: Sequence[str] = ()) -> PreparedQuery:
        """Analyse a question the way search() and ask() will."""
        return prepare(self._store(), question, history=history, lexicon=self._lexicon())

    def search(self, question: str, k: int = 10, *, history: Sequence[str] = ()) -> list[Hit]:
        """The `k` best passages for `question`, best first."""
        store = self._store()
        # concepts=False: ranking never reads the coverage concepts (a fifth of the analysis)
        pq = prepare(store, question, history=history, lexicon=self._lexicon(), concepts=False)
        return search(store, pq, k)

    def search_many(self, questions: Sequence[str], k: int = 10) -> list[list[Hit]]:
        """search() for many questions at once (scored together: one sparse product per chunk)."""
        store, lexicon = self._store(), self._lexicon()
        pqs = [prepare(store, q, lexicon=lexicon, concepts=False) for q in questions]
        return search_many(store, pqs, k)

    def ask(
        self,
        question: str,
        *,
        k: int = 3,
        history: Sequence[str] = (),
        threshold: float | None = None,
    ) -> Answer:
        """Answer `question` with cited sentences from the `k` best passages, or abstain.

        `threshold`: abstain below this confidence; by default the index's `abstain_below` setting,
        else the calibrated ABSTAIN_BELOW.
        """
        if threshold is None:
            own = self.settings.abstain_below
            threshold = ABSTAIN_BELOW if own is None else own
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise UsageError(f"k must be a whole number of at least 1, not {k!r}")
        reply = smalltalk(question)
        if reply is not None:
            return reply
        store = self._store()
        pq = prepare(store, question, history=history, lexicon=self._lexicon())
        pool = max(k, 5)
        numbers: list[int] = []
        if "definition" in pq.intents:  # look further for the passage that defines the subject
            found = search(store, pq, max(pool, DEFINITION_POOL), numbers=numbers)
            hits = definitions_first(pq, found, store.settings.analyzer())[:pool]
        else:
            hits = found = search(store, pq, pool, numbers=numbers)
        number_of = {h.passage.id: n for h, n in zip(found, numbers, strict=True)}

        def neighbours(passage: Passage) -> list[Passage]:
            return store.neighbours(number_of[passage.id])

        return compose(
            question,
            pq,
            hits,
            analyzer=store.settings.analyzer(),
            lexicon=self._lexicon(),
            k=k,
            threshold=threshold,
            neighbours=neighbours,
        )

    def explain(
        self, query: Query | str, passage_id: str, *, history: Sequence[str] = ()
    ) -> list[tuple[str, float]]:
        """Each question term's contribution to that passage's score, largest first."""
        store = self._store()
        if isinstance(query, Query):
            pq = prepare(store, query.text, lexicon=self._lexicon(), carry=query.carried)
        else:
            pq = prepare(store, query, history=history, lexicon=self._lexicon())
        return explain(store, pq, self._number(passage_id))
