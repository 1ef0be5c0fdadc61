"""cli.py: main([...]) end to end on small corpora written under tmp_path."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

import emsqa.api
from emsqa.cli import SUBCOMMANDS, main
from emsqa.errors import CorpusError, EmsqaWarning
from emsqa.render import wants_color

ROOT = Path(__file__).resolve().parent.parent

ANSWER_KEYS = {"question", "answer", "abstained", "confidence", "reason", "citations"}
CITATION_KEYS = {
    "n",
    "passage_id",
    "doc_id",
    "title",
    "section",
    "source",
    "start",
    "end",
    "score",
    "text",
}

AIRWAY = """Airway care

Opening the airway

Open the airway with a head-tilt chin-lift unless a spinal injury is suspected.
Use a jaw-thrust maneuver when the cervical spine may be injured.

Suction

Suction the mouth before ventilating when vomit or blood is present.
"""

ACCESS = """Vascular access

Paramedics start an intravenous line to give fluids and drugs.
An intraosseous needle is the fallback when no vein can be found.
"""

QUESTION = "When should I use a jaw-thrust maneuver?"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    (folder / "airway.txt").write_text(AIRWAY, encoding="utf-8")
    (folder / "access.txt").write_text(ACCESS, encoding="utf-8")
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- ask


def test_ask_json_has_exactly_the_documented_keys(
    capsys: pytest.CaptureFixture[str], corpus: Path
) -> None:
    code, out, err = run(capsys, "ask", QUESTION, "--corpus", str(corpus), "--json")
    assert code == 0 and err == ""
    data = json.loads(out)
    assert set(data) == ANSWER_KEYS
    assert data["question"] == QUESTION
    assert data["citations"], "expected the jaw-thrust sentence to be found and cited"
    for citation in data["citations"]:
        assert set(citation) == CITATION_KEYS
        # The cited text sits exactly at its offsets in the source file.
        source = Path(citation["source"]).read_text(encoding="utf-8")
        assert source[citation["start"] : citation["end"]] == citation["text"]
    numbers = [c["n"] for c in data["citations"]]
    assert numbers == list(range(1, len(numbers) + 1))
    assert all(f"[{n}]" in data["answer"] for n in numbers)


def test_ask_prints_the_rendered_answer(capsys: pytest.CaptureFixture[str], corpus: Path) -> None:
    code, out, _ = run(
        capsys, "ask", "When", "should", "I", "use", "a", "jaw-thrust?", "--corpus", str(corpus)
    )
    assert code == 0
    answer = emsqa.api.ask("When should I use a jaw-thrust?", corpus=corpus)
    from emsqa.render import render_answer

    assert out == render_answer(answer) + "\n"  # words joined into one question; no colour
    assert "\x1b" not in out


def test_k_limits_the_citations(capsys: pytest.CaptureFixture[str], corpus: Path) -> None:
    code, out, _ = run(
        capsys, "ask", "airway suction intravenous", "--corpus", str(corpus), "-k", "1", "--json"
    )
    assert code == 0
    assert len(json.loads(out)["citations"]) <= 1


# --------------------------------------------------------------------------- index round trip


def test_index_then_ask_index_round_trip(
    capsys: pytest.CaptureFixture[str], corpus: Path, tmp_path: Path
) -> None:
    target = tmp_path / "idx"
    code, out, err = run(capsys, "index", str(corpus), "-o", str(target))
    assert code == 0 and err == ""
    summary = re.fullmatch(
        r"Indexed (\d+) documents? into (\d+) passages?, ([\d,]+) terms in (\d+\.\d\d) s -> (.+)\n",
        out,
    )
    assert summary, out
    assert int(summary.group(1)) == 2
    assert summary.group(5) == str(target)
    assert (target / "manifest.json").is_file()

    _, from_index, _ = run(capsys, "ask", QUESTION, "--index", str(target), "--json")
    _, from_corpus, _ = run(capsys, "ask", QUESTION, "--corpus", str(corpus), "--json")
    assert json.loads(from_index) == json.loads(from_corpus)


def test_index_takes_settings(
    capsys: pytest.CaptureFixture[str], corpus: Path, tmp_path: Path
) -> None:
    target = tmp_path / "idx"
    code, _, err = run(
        capsys, "index", str(corpus), "-o", str(target),
        "--set", "target_words=60", "--set", "min_words=20", "--set", "stem=false",
        "--set", "abstain_below=0.5", "--set", "subword_weight=0.3", "--set", "weighting=tfidf",
    )  # fmt: skip
    assert code == 0 and err == ""
    settings = json.loads((target / "manifest.json").read_text("utf-8"))["settings"]
    assert settings["target_words"] == 60 and settings["min_words"] == 20
    assert settings["stem"] is False and settings["abstain_below"] == 0.5
    assert settings["subword_weight"] == 0.3 and settings["weighting"] == "tfidf"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("frobs=1", "unknown index setting 'frobs'"),
        ("target_words=many", "--set target_words=many: expected int"),
        ("stem=maybe", "--set stem=maybe: expected true or false"),
        ("abstain_below=high", "expected a number or none"),
        ("b=2", "b within 0..1"),
        ("weighting=okapi", "weighting must be"),
    ],
)
def test_bad_index_settings_are_one_line_and_build_nothing(
    capsys: pytest.CaptureFixture[str], corpus: Path, tmp_path: Path, setting: str, message: str
) -> None:
    code, out, err = run(
        capsys, "index", str(corpus), "-o", str(tmp_path / "idx"), "--set", setting
    )
    assert code == 1 and out == ""
    assert message in err and err.count("\n") <= 2 and "Traceback" not in err
    assert not (tmp_path / "idx").exists()


def test_ask_with_a_saved_index_stays_light(
    capsys: pytest.CaptureFixture[str], corpus: Path, tmp_path: Path
) -> None:
    target = tmp_path / "idx"
    assert run(capsys, "index", str(corpus), "-o", str(target))[0] == 0
    script = (
        "import sys\n"
        "from emsqa.cli import main\n"
        f"code = main(['ask', {QUESTION!r}, '--index', {str(target)!r}])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'prompt_toolkit', 'sklearn', 'scipy'})\n"
        "print('HEAVY', heavy, code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.stdout.rstrip().splitlines()[-1] == "HEAVY [] 0", proc.stdout + proc.stderr


# --------------------------------------------------------------------------- errors


def test_missing_corpus_is_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"
    code, out, err = run(capsys, "ask", "anything?", "--corpus", str(missing))
    assert code == 1 and out == ""
    lines = err.splitlines()
    assert lines[0].startswith("emsqa: error: ") and str(missing) in lines[0]
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: "))


def test_not_an_index_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run(capsys, "ask", "anything?", "--index", str(tmp_path))
    assert code == 1 and out == ""
    assert err.startswith("emsqa: error: ") and "Traceback" not in err
    assert len(err.splitlines()) <= 2


def test_hint_gets_its_own_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise CorpusError("notes.txt: cannot be read", hint="check the file's permissions")

    monkeypatch.setattr(emsqa.api, "ask", fail)
    monkeypatch.setattr(emsqa.api, "open_index", lambda source=None: None)
    code, out, err = run(capsys, "ask", "q")
    assert (code, out) == (1, "")
    assert err == "emsqa: error: notes.txt: cannot be read\nhint: check the file's permissions\n"


def test_file_system_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], corpus: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    code, out, err = run(capsys, "index", str(corpus), "-o", str(blocker / "idx"))
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 1 and err.startswith("emsqa: error: ")
    assert "a-file" in err and "internal error" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["ask"],
        ["ask", "q", "-k", "0"],
        ["ask", "q", "-k", "many"],
        ["ask", "q", "--corpus", "a", "--index", "b"],
        ["index", "somewhere"],
        ["index", "somewhere", "-o", "x", "--set", "no-equals-sign"],
        ["frobnicate"],
        ["eval"],
        ["chat", "--corpus", "a", "--index", "b"],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.splitlines()[-1].startswith("emsqa")
    assert "error:" in err.splitlines()[-1]


def test_interrupt_exits_130_quietly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(emsqa.api, "ask", interrupted)
    monkeypatch.setattr(emsqa.api, "open_index", lambda source=None: None)
    assert run(capsys, "ask", "q") == (130, "", "")


def test_internal_errors_are_one_line_unless_debugging(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def bug(*args: Any, **kwargs: Any) -> Any:
        return {}["missing key"]

    monkeypatch.setattr(emsqa.api, "ask", bug)
    monkeypatch.setattr(emsqa.api, "open_index", lambda source=None: None)
    monkeypatch.delenv("EMSQA_DEBUG", raising=False)
    code, out, err = run(capsys, "ask", "q")
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 1
    assert err.startswith("emsqa: internal error: KeyError: 'missing key'")
    assert "please report" in err and "Traceback" not in err

    monkeypatch.setenv("EMSQA_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["ask", "q"])


def test_emsqa_warnings_become_one_line_each(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, corpus: Path
) -> None:
    real_open = emsqa.api.open_index

    def open_with_warnings(source: Any = None) -> Any:
        warnings.warn("skipped notes.bin: not text", EmsqaWarning, stacklevel=2)
        warnings.warn(
            "old.txt: decoded as Latin-1\nbecause it is not UTF-8", EmsqaWarning, stacklevel=2
        )
        return real_open(source)

    monkeypatch.setattr(emsqa.api, "open_index", open_with_warnings)
    code, out, err = run(capsys, "ask", QUESTION, "--corpus", str(corpus), "--json")
    assert code == 0 and json.loads(out)["question"] == QUESTION
    assert err.splitlines() == [
        "emsqa: warning: skipped notes.bin: not text",
        "emsqa: warning: old.txt: decoded as Latin-1 because it is not UTF-8",
    ]
    # Outside the CLI run, warnings are back to the caller's rules (errors under pytest).
    with pytest.raises(EmsqaWarning):
        warnings.warn("after the run", EmsqaWarning, stacklevel=1)


# --------------------------------------------------------------------------- colour


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_needs_a_terminal_and_no_NO_COLOR(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert wants_color(FakeTerminal()) is True
    assert wants_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert wants_color(FakeTerminal()) is False
    monkeypatch.setenv("NO_COLOR", "")  # empty means unset, per no-color.org
    assert wants_color(FakeTerminal()) is True
    monkeypatch.setenv("TERM", "dumb")
    assert wants_color(FakeTerminal()) is False


# --------------------------------------------------------------------------- chat and eval


def test_no_arguments_means_chat_on_the_shipped_corpus(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import emsqa.repl

    seen: list[Any] = []
    sentinel = object()
    monkeypatch.setattr(
        emsqa.api, "open_index", lambda source=None: seen.append(source) or sentinel
    )
    monkeypatch.setattr(emsqa.repl, "run_chat", lambda conversation: seen.append(conversation) or 0)
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out == f"emsqa {emsqa.__version__}\n"
    assert main([]) == 0
    assert seen[0] is None  # the shipped corpus
    assert seen[1].index is sentinel and seen[1].k == 3


def test_eval_on_a_question_set(
    capsys: pytest.CaptureFixture[str], corpus: Path, tmp_path: Path
) -> None:
    testset = tmp_path / "set.jsonl"
    records = [
        {
            "id": "a1",
            "question": QUESTION,
            "answers": ["jaw-thrust"],
            "evidence": ["jaw-thrust maneuver"],
        },
        {
            "id": "a2",
            "question": "How do I fix a carburettor?",
            "answers": [],
            "evidence": [],
            "unanswerable": True,
        },
    ]
    testset.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    code, out, err = run(capsys, "eval", str(testset), "--corpus", str(corpus), "--json")
    assert code == 0, err
    report = json.loads(out)
    overall = report["overall"]
    assert (overall["questions"], overall["answerable"], overall["unanswerable"]) == (2, 1, 1)
    # The report agrees with what emsqa answers for the same questions.
    answers = [emsqa.api.ask(r["question"], corpus=corpus) for r in records]
    right = int("jaw-thrust" in answers[0].text.lower() and not answers[0].abstained)
    right += int(answers[1].abstained)
    assert overall["answer_accuracy"] == pytest.approx(right / 2)
    assert len(report["failures"]) == 2 - right
    code, text, _ = run(capsys, "eval", str(testset), "--corpus", str(corpus))
    assert code == 0 and "answer accuracy" in text

    assert "failed (list them with --failures)" in text or "failures (" not in text
    code, text, _ = run(capsys, "eval", str(testset), "--corpus", str(corpus), "--failures")
    assert code == 0 and ("failures (" in text) == (right < 2)
    code, out, _ = run(capsys, "eval", str(testset), "--corpus", str(corpus), "-k", "2,1", "--json")
    assert code == 0 and json.loads(out)["ks"] == [1, 2]
    code, _, err = run(capsys, "eval", str(testset), "-k", "0,x")
    assert code == 2 and "whole numbers" in err

    testset.write_text('{"id": "b1", "question": 5}\n', encoding="utf-8")
    code, out, err = run(capsys, "eval", str(testset), "--corpus", str(corpus))
    assert code == 1 and out == ""
    assert err.startswith("emsqa: error: ") and "set.jsonl" in err and "1" in err


def test_eval_on_a_beir_folder_writes_a_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    docs = [
        {"_id": "d1", "title": "Airway", "text": "Use a jaw-thrust when the spine may be injured."},
        {"_id": "d2", "title": "Access", "text": "An intraosseous needle goes into the bone."},
        {"_id": "d3", "title": "Burns", "text": "Cool a burn with running water."},
    ]
    queries = [{"_id": "q1", "text": "jaw-thrust spine"}, {"_id": "q2", "text": "needle into bone"}]
    (beir / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs), encoding="utf-8")
    (beir / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries), encoding="utf-8")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    run_file = tmp_path / "out.run"
    code, out, err = run(
        capsys, "eval", "--beir", str(beir), "--run-out", str(run_file), "--depth", "2", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["queries"] == 2 and report["documents"] == 3
    rows = [line.split() for line in run_file.read_text().splitlines()]
    assert {r[0] for r in rows} == {"q1", "q2"}
    assert all(len([r for r in rows if r[0] == q]) <= 2 for q in ("q1", "q2"))
    # MRR from the written run matches the report's.
    relevant = {"q1": "d1", "q2": "d2"}
    ranks = {r[0]: int(r[3]) for r in rows if r[2] == relevant[r[0]]}
    mrr = sum(1 / ranks[q] for q in ranks) / 2
    assert report["mrr_at_10"] == pytest.approx(mrr, abs=1e-4)

    code, _, err = run(capsys, "eval", "--beir", str(beir), "--corpus", str(tmp_path))
    assert code == 1 and err.startswith("emsqa: error: --corpus does not apply to --beir")


# --------------------------------------------------------------------------- help and README


@pytest.mark.parametrize("sub", SUBCOMMANDS, ids=lambda s: s.name)
def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str], sub: Any) -> None:
    code, out, _ = run(capsys, sub.name, "--help")
    assert code == 0
    assert out.startswith(f"usage: emsqa {sub.name}")
    assert sub.help and len(out.splitlines()) > 3
    code, top, _ = run(capsys, "--help")
    assert code == 0 and re.search(rf"^\s+{sub.name}\b", top, re.M)
    assert sub.help in " ".join(top.split())


def test_every_subcommand_is_in_the_readme() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    if "## Command line" not in text:
        pytest.skip("README.md has no '## Command line' section yet")
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    for sub in SUBCOMMANDS:
        assert re.search(rf"emsqa {sub.name}\b", section), f"`emsqa {sub.name}` missing from README"


def test_python_m_emsqa_ask(corpus: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "EMSQA_DEBUG")}
    proc = subprocess.run(
        [sys.executable, "-m", "emsqa", "ask", QUESTION, "--corpus", str(corpus)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stderr == ""
    assert "Sources" in proc.stdout and "airway.txt" in proc.stdout
    assert "\x1b" not in proc.stdout  # a pipe gets no colour
