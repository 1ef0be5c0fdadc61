"""Build once, save as arrays + JSON, and answer later from the saved index.

A process that only loads and asks needs numpy alone: scikit-learn is used to build.
"""

import tempfile
from pathlib import Path

import emsqa

with tempfile.TemporaryDirectory() as tmp:
    folder = Path(tmp) / "ems.idx"
    emsqa.Index.build(emsqa.shipped_corpus()).save(folder)
    index = emsqa.Index.load(folder)
    print(f"{index.n_documents} documents, {index.n_passages} passages, {index.n_terms} terms")
    print(emsqa.ask("What does AED stand for?", corpus=index).text)
