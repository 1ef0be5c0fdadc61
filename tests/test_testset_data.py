"""The shipped data stays well formed: the EMS test set, the lexicon and the corpus files."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
TESTSET = ROOT / "tests" / "data" / "ems_questions.jsonl"
LEXICON = ROOT / "emsqa" / "data" / "lexicon.json"
GLOSSARY = CORPUS / "04-abbreviations-glossary.md"
SEED = CORPUS / "00-emt-vs-paramedic.txt"
SHARED_SEED = ROOT.parent / "shared" / "seed"

REQUIRED = {"id": str, "question": str, "answers": list, "evidence": list, "doc": list, "kind": str}
SPLITS = {"calibration", "test"}
MINIMUM_PER_KIND = {
    "direct": 15,
    "paraphrase": 12,
    "abbreviation": 8,
    "typo": 6,
    "comparison": 8,
    "followup": 8,
    "unanswerable": 15,
}


def strip_markdown(text: str) -> str:
    """Document text as the test set quotes it: no Markdown markers, whitespace collapsed."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"^\s*#+\s*", "", line)
        line = re.sub(r"^\s*- ", "", line)
        lines.append(line)
    text = "\n".join(lines).replace("**", "").replace("__", "").replace("`", "")
    return " ".join(text.split())


def sentences(text: str) -> list[str]:
    """Rough sentence split of stripped text; each original line also ends a sentence."""
    marked = "\n".join(line + " ." for line in text.splitlines())
    return re.split(r"(?<=[.?!])\s+", strip_markdown(marked))


def load_records() -> list[tuple[int, dict[str, Any]]]:
    records = []
    for lineno, line in enumerate(TESTSET.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            pytest.fail(f"{TESTSET.name}:{lineno}: not valid JSON ({exc.msg})")
        assert isinstance(record, dict), f"{TESTSET.name}:{lineno}: not a JSON object"
        records.append((lineno, record))
    return records


def corpus_texts() -> dict[str, str]:
    return {
        path.name: strip_markdown(path.read_text(encoding="utf-8"))
        for path in CORPUS.iterdir()
        if path.is_file()
    }


RECORDS = load_records()
ANSWERABLE = [(n, r) for n, r in RECORDS if r.get("kind") != "unanswerable"]


def test_file_has_a_header_comment() -> None:
    first = TESTSET.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("#")


def test_ids_are_unique_and_numbered() -> None:
    ids = [r["id"] for _, r in RECORDS]
    duplicates = [i for i, count in Counter(ids).items() if count > 1]
    assert not duplicates, f"duplicate ids: {duplicates}"
    for lineno, record in RECORDS:
        assert re.fullmatch(r"q\d{3}", record["id"]), f"line {lineno}: bad id {record['id']!r}"


@pytest.mark.parametrize(("lineno", "record"), RECORDS, ids=[f"line{n}" for n, _ in RECORDS])
def test_record_shape(lineno: int, record: dict[str, Any]) -> None:
    where = f"{TESTSET.name}:{lineno}"
    for key, kind in REQUIRED.items():
        assert isinstance(record.get(key), kind), (
            f"{where}: {key!r} missing or not a {kind.__name__}"
        )
    assert record["question"].strip(), f"{where}: empty question"
    assert record["kind"] in MINIMUM_PER_KIND, f"{where}: unknown kind {record['kind']!r}"
    assert record.get("split") in SPLITS, f"{where}: split must be one of {sorted(SPLITS)}"
    for key in ("answers", "evidence", "doc"):
        assert all(isinstance(v, str) and v.strip() for v in record[key]), f"{where}: {key} items"
    allowed = set(REQUIRED) | {"split", "unanswerable", "history"}
    assert not set(record) - allowed, f"{where}: unexpected keys {sorted(set(record) - allowed)}"

    if record["kind"] == "unanswerable":
        assert record.get("unanswerable") is True, (
            f"{where}: unanswerable needs 'unanswerable': true"
        )
        assert record["answers"] == [] and record["evidence"] == [], (
            f"{where}: must have no answers"
        )
    else:
        assert "unanswerable" not in record, (
            f"{where}: 'unanswerable' only on unanswerable questions"
        )
        assert record["answers"] and record["evidence"] and record["doc"], (
            f"{where}: needs gold data"
        )

    if record["kind"] == "followup":
        history = record.get("history")
        assert isinstance(history, list) and history, f"{where}: a follow-up needs a history"
        assert all(isinstance(h, str) and h.strip() for h in history), f"{where}: history items"
    else:
        assert "history" not in record, f"{where}: history only on follow-up questions"


def test_questions_are_not_repeated() -> None:
    keys = [(r["question"].casefold(), tuple(r.get("history", ()))) for _, r in RECORDS]
    repeated = [k[0] for k, count in Counter(keys).items() if count > 1]
    assert not repeated, f"repeated questions: {repeated}"


def test_counts_per_kind_meet_minimums() -> None:
    counts = Counter(r["kind"] for _, r in RECORDS)
    for kind, minimum in MINIMUM_PER_KIND.items():
        assert counts[kind] >= minimum, f"{kind}: {counts[kind]} questions, need {minimum}"
    assert len(RECORDS) >= 75


def test_each_kind_is_split_about_forty_percent_calibration() -> None:
    for kind in MINIMUM_PER_KIND:
        splits = [r["split"] for _, r in RECORDS if r["kind"] == kind]
        share = splits.count("calibration") / len(splits)
        assert 0.3 <= share <= 0.5, f"{kind}: {share:.0%} calibration"


def test_gold_documents_exist() -> None:
    names = {p.name for p in CORPUS.iterdir() if p.is_file()}
    for lineno, record in RECORDS:
        missing = [d for d in record["doc"] if d not in names]
        assert not missing, f"{TESTSET.name}:{lineno}: no such corpus file {missing}"


@pytest.mark.parametrize(("lineno", "record"), ANSWERABLE, ids=[f"line{n}" for n, _ in ANSWERABLE])
def test_evidence_and_answers_are_in_the_gold_documents(
    lineno: int, record: dict[str, Any]
) -> None:
    texts = corpus_texts()
    where = f"{TESTSET.name}:{lineno}"
    gold = [texts[d] for d in record["doc"] if d in texts]
    for evidence in record["evidence"]:
        assert not re.search(r"\*\*|__|`|^#|^- ", evidence), f"{where}: Markdown in {evidence!r}"
        assert any(evidence in text for text in gold), f"{where}: evidence not found: {evidence!r}"
    held = [
        s
        for d in record["doc"]
        for s in sentences((CORPUS / d).read_text(encoding="utf-8"))
        if any(e in s for e in record["evidence"])
    ]
    assert held, f"{where}: no evidence string lies within one sentence"
    answers = [a.casefold() for a in record["answers"]]
    assert any(a in s.casefold() for a in answers for s in held), (
        f"{where}: no answer occurs in a sentence holding the evidence"
    )
    for answer in answers:
        assert any(answer in text.casefold() for text in gold), f"{where}: answer {answer!r} absent"


def test_strip_markdown_matches_the_documented_rules() -> None:
    raw = "# Title\n\n## Part\n\n- **AED** — automated `x` __y__\nplain   text\n"
    assert strip_markdown(raw) == "Title Part AED — automated x y plain text"


# --- the abbreviation lexicon -------------------------------------------------------------------


def load_lexicon() -> list[list[str]]:
    data = json.loads(LEXICON.read_text(encoding="utf-8"))
    assert data.get("version") == 1
    groups = data.get("groups")
    assert isinstance(groups, list)
    return groups


def _form_key(form: str) -> str:
    return " ".join(form.casefold().replace("-", " ").split())


def test_lexicon_groups_are_well_formed() -> None:
    groups = load_lexicon()
    assert 60 <= len(groups) <= 120, f"{len(groups)} groups"
    for group in groups:
        assert isinstance(group, list) and all(isinstance(f, str) and f.strip() for f in group)
        assert len({f.casefold() for f in group}) >= 2, f"group with one form: {group}"


def test_no_lexicon_form_is_in_two_groups() -> None:
    owner: dict[str, int] = {}
    for index, group in enumerate(load_lexicon()):
        for key in {_form_key(f) for f in group}:
            assert key not in owner, f"{key!r} is in groups {owner[key]} and {index}"
            owner[key] = index


def test_lexicon_leaves_common_words_alone() -> None:
    forms = {_form_key(f) for group in load_lexicon() for f in group}
    for word in ("or", "it", "in", "is", "as", "am", "us", "me", "we", "sample", "cat"):
        assert word not in forms, f"{word!r} would be expanded into a wrong meaning"


def test_every_glossary_abbreviation_is_in_the_lexicon() -> None:
    glossary = GLOSSARY.read_text(encoding="utf-8")
    terms = re.findall(r"^- \*\*(.+?)\*\* — ", glossary, flags=re.MULTILINE)
    assert len(terms) >= 40, f"glossary has {len(terms)} abbreviations"
    forms = {_form_key(f) for group in load_lexicon() for f in group}
    firsts = {key.split()[0] for key in forms}
    missing = [t for t in terms if _form_key(t) not in forms and _form_key(t) not in firsts]
    assert not missing, f"glossary abbreviations missing from the lexicon: {missing}"


# --- the corpus files ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.md")), ids=lambda p: p.name)
def test_reference_documents_follow_the_house_shape(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# "), f"{path.name}: first line must be a '# Title'"
    assert "\n## Sources\n" in text, f"{path.name}: needs a '## Sources' section"
    assert re.search(r"^- ", text, flags=re.MULTILINE), f"{path.name}: needs a bullet list"
    words = len(text.split())
    assert 500 <= words <= 1100, f"{path.name}: {words} words"


def test_corpus_has_the_seed_and_reference_documents() -> None:
    assert SEED.is_file()
    assert len(list(CORPUS.glob("*.md"))) >= 4


@pytest.mark.data
def test_seed_matches_the_shared_original() -> None:
    if not SHARED_SEED.is_dir():
        pytest.skip(f"{SHARED_SEED} is absent (only present next to the development checkout)")
    originals = [p.read_bytes() for p in SHARED_SEED.glob("*.txt")]
    if not originals:
        pytest.skip(f"no seed .txt file in {SHARED_SEED}")
    assert SEED.read_bytes() in originals, "corpus/00-emt-vs-paramedic.txt differs from the seed"
