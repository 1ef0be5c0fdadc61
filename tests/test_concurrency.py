"""Concurrency: threads sharing one index, and processes sharing the shipped index cache.

Threads: 8 threads ask 1,000 questions (the EMS test set, cycled) of one freshly loaded index, so
its lazy state (the analyzer's stem cache, the passage-id map, the lexicon) is filled while they
race; every answer must equal, field for field, the answer of asking one by one.

Processes: one process saves the shipped corpus' index into the cache folder again and again while
another loads that folder and answers from it; the reader must never see a damaged index, and the
API's default_index() must never have to fall back to rebuilding.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from emsqa import api
from emsqa.index import Index

REPO = Path(__file__).resolve().parent.parent
QUESTIONS_FILE = REPO / "tests" / "data" / "ems_questions.jsonl"


def ems_questions() -> list[str]:
    lines = QUESTIONS_FILE.read_text("utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip() and line[0] != "#"]


@pytest.fixture(scope="module")
def saved_shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shipped") / "idx"
    Index.build(api.shipped_corpus(), name="shipped").save(folder)
    return folder


def test_eight_threads_give_the_serial_answers(saved_shipped: Path) -> None:
    questions = list(itertools.islice(itertools.cycle(ems_questions()), 1000))
    shared = Index.load(saved_shipped)  # cold: no passage-id map, no lexicon yet
    assert shared.store_ is not None
    # The analyzer (and its stem cache) is shared by every index of these settings in the
    # process: empty its cache so the threads fill it while they race.
    shared.store_.settings.analyzer()._cache.clear()

    def ask(question: str) -> tuple[dict[str, Any], list[str]]:
        answer = shared.ask(question)
        # Look every cited passage up by id: this builds the lazy id map under contention.
        looked_up = [shared.passage(c.passage.id).text for c in answer.citations]
        return answer.to_dict(), looked_up

    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(ask, questions))

    alone = Index.load(saved_shipped)
    one_by_one = {q: alone.ask(q).to_dict() for q in dict.fromkeys(questions)}
    serial = [one_by_one[q] for q in questions]
    assert [t for t, _ in threaded] == serial
    for (_, texts), expected in zip(threaded, serial, strict=True):
        assert texts == [c["text"] for c in expected["citations"]]
    assert sum(not a["abstained"] for a in serial) > len(questions) // 3  # real answers compared


def test_threads_share_one_conversation_free_search(saved_shipped: Path) -> None:
    shared = Index.load(saved_shipped)
    questions = ems_questions()
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(
            pool.map(lambda q: [h.passage.id for h in shared.search(q, k=5)], questions)
        )
    assert threaded == [[h.passage.id for h in shared.search(q, k=5)] for q in questions]


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from emsqa.index import Index

    folder, stop = Path(sys.argv[1]), Path(sys.argv[2])
    index = Index.load(folder)  # built by the test's first use; saving it again is what races
    print("ready", flush=True)
    saves = 0
    while not stop.exists():
        index.save(folder)
        saves += 1
    print(saves, flush=True)
    """
)

READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from emsqa import api
    from emsqa.errors import IndexFormatError
    from emsqa.index import Index

    folder, seconds = Path(sys.argv[1]), float(sys.argv[2])
    loads, failures, via_api = 0, [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            index = Index.load(folder)
            assert index.n_passages > 0 and not index.ask("What is an EMT?").abstained
            loads += 1
        except IndexFormatError as exc:
            failures.append(str(exc))
        api.default_index.cache_clear()
        assert not api.default_index().ask("What is an EMT?").abstained
        via_api += 1
    print(json.dumps({
        "loads": loads, "failures": failures[:3], "n_failures": len(failures),
        "via_api": via_api, "rebuilt": "sklearn" in sys.modules,
    }))
    """
)


def test_one_process_saves_the_cache_while_another_loads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    api.default_index.cache_clear()
    try:
        api.default_index()  # the first use builds and caches it
    finally:
        api.default_index.cache_clear()
    (folder,) = (cache / "emsqa").glob("shipped-*")
    env = dict(os.environ, PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(cache))
    stop = tmp_path / "stop"
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as writer:
        try:
            assert writer.stdout is not None
            ready = writer.stdout.readline().strip() == "ready"
            started = time.monotonic()
            if ready:
                reader = subprocess.run(
                    [sys.executable, "-c", READER, str(folder), "3"],
                    capture_output=True,
                    text=True,
                    env=env,
                    timeout=120,
                )
        finally:
            stop.touch()
            out, err = writer.communicate(timeout=60)
    assert ready and writer.returncode == 0, f"the writer failed: {err[-2000:]}"
    saves = int(out.split()[-1])
    assert reader.returncode == 0, reader.stderr[-2000:]
    report = json.loads(reader.stdout)
    assert report["n_failures"] == 0, report
    assert not report["rebuilt"], (
        "default_index() found the cache damaged and rebuilt it; cache entries: "
        f"{sorted(p.name for p in (cache / 'emsqa').iterdir())}"
    )
    assert report["loads"] >= 10 and report["via_api"] >= 10, report
    assert saves >= 5, f"only {saves} saves in {time.monotonic() - started:.1f} s"
    assert Index.load(folder).n_passages > 0
