"""Shared fixtures: a tiny hand-written corpus and an isolated cache folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from emsqa.datatypes import Document, Section

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test writes to the real home: the shipped index is cached under one session temp folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-state"))


def _doc(doc_id: str, title: str, body: list[tuple[str, str]]) -> Document:
    text, sections = f"{title}\n\n", [Section(0, len(title), title)]
    for heading, paragraph in body:
        start = len(text)
        text += f"{heading}\n\n"
        sections.append(Section(start, start + len(heading), heading))
        text += paragraph + "\n\n"
    return Document(
        id=doc_id, title=title, text=text.rstrip() + "\n", source=doc_id, sections=tuple(sections)
    )


@pytest.fixture(scope="session")
def small_docs() -> list[Document]:
    """Three short documents with distinct vocabularies and a shared word ("patient")."""
    return [
        _doc(
            "airway.md",
            "Airway care",
            [
                (
                    "Adjuncts",
                    "An oropharyngeal airway keeps the tongue from blocking the throat of an unresponsive patient. "
                    "A nasopharyngeal airway is used when the patient still has a gag reflex.",
                ),
                (
                    "Suction",
                    "Suction clears vomit and blood from the mouth before ventilation with a bag-valve mask. "
                    "Do not suction for longer than fifteen seconds in an adult.",
                ),
            ],
        ),
        _doc(
            "cardiac.md",
            "Cardiac arrest",
            [
                (
                    "CPR",
                    "Cardiopulmonary resuscitation (CPR) combines chest compressions and rescue breaths for a patient "
                    "without a pulse. Compressions should be at a rate of 100 to 120 per minute.",
                ),
                (
                    "Defibrillation",
                    "An automated external defibrillator (AED) analyzes the heart rhythm and advises a shock "
                    "for ventricular fibrillation. A-fib is a different, usually non-lethal rhythm.",
                ),
            ],
        ),
        _doc(
            "spine.md",
            "Spinal injury",
            [
                (
                    "Assessment",
                    "Suspect a C-spine injury after a fall from height or a high-speed crash. "
                    "Check movement and sensation in all four limbs of the patient.",
                ),
                (
                    "Restriction",
                    "Spinal motion restriction uses a cervical collar and careful movement; a long board is "
                    "no longer routine for every patient.",
                ),
            ],
        ),
    ]
