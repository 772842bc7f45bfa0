"""The bounded fuzz run CI executes (docs/fuzzing.md): 1,500 mutants of the corpus with a fixed
seed on two worker processes, and not one crash, hang or memory blow-up. Plus checks that the
fuzzer itself works: deterministic cases, real mutations, and an oracle that does flag failures."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dissect.errors import CaptureError
from tests.fuzz import harness
from tests.fuzz.capfile import parse, serialize
from tests.fuzz.mutate import DEFAULT_CORPUS, Options, fuzz, load_corpus
from tests.fuzz.mutators import Corpus, make_case

SMOKE_SEED = 20240601
SMOKE_COUNT = 1500


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return Corpus(load_corpus([str(DEFAULT_CORPUS)]))


def test_fuzz_smoke_no_crash_hang_or_memory(tmp_path: Path) -> None:
    t0 = time.monotonic()
    stats = fuzz(Options(seed=SMOKE_SEED, count=SMOKE_COUNT, workers=2, time_limit=10.0, hard_limit=30.0,
                         rss_limit_mb=500, html_every=300, crash_dir=str(tmp_path / "crashes"), quiet=True))
    elapsed = time.monotonic() - t0
    assert stats.cases == SMOKE_COUNT
    detail = "\n\n".join(f"case {f.index} ({f.seed_file}: {f.mutations}) {f.status} {f.signature}\n{f.error}"
                         for f in {f.signature: f for f in stats.findings}.values())
    assert not stats.findings, f"{len(stats.findings)} findings, replay with --seed {SMOKE_SEED} --case N\n{detail}"
    assert stats.max_rss_kb < 500 * 1024
    assert elapsed < 120, stats.report()


def test_cases_are_deterministic_and_mutated(corpus: Corpus) -> None:
    changed = 0
    for i in range(200):
        a = make_case(corpus, 5, i)
        assert a == make_case(corpus, 5, i)
        data, name, what = a
        assert what
        changed += data != corpus.raw[corpus.names.index(name)]
    assert changed >= 190  # a mutation may undo itself now and then, not often
    assert make_case(corpus, 5, 0)[0] != make_case(corpus, 6, 0)[0]


def test_capture_model_round_trips(corpus: Corpus) -> None:
    for name, raw in zip(corpus.names, corpus.raw, strict=True):
        assert serialize(parse(raw))[0] == raw, name


def test_oracle_flags_crashes_hangs_and_rejections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    harness.install_alarm()
    cap = str(DEFAULT_CORPUS / "ws_basic.pcap")
    out = str(tmp_path / "out")
    assert harness.run_case(cap, out, 10, 500 * 1024).status == harness.OK

    def boom(*args: object, **kwargs: object) -> None:
        raise KeyError("boom")

    def refused(*args: object, **kwargs: object) -> None:
        raise CaptureError("not a capture")

    def spin(*args: object, **kwargs: object) -> None:
        while True:
            pass

    monkeypatch.setattr(harness, "dissect_file", boom)
    r = harness.run_case(cap, out, 10, 500 * 1024)
    assert r.status == harness.CRASH and "KeyError" in r.signature and "boom" in r.error
    monkeypatch.setattr(harness, "dissect_file", refused)
    assert harness.run_case(cap, out, 10, 500 * 1024).status == harness.REJECTED
    monkeypatch.setattr(harness, "dissect_file", spin)
    r = harness.run_case(cap, out, 0.2, 500 * 1024)
    assert r.status == harness.HANG and r.seconds < 5


def test_contract_checks_catch_a_broken_csv(tmp_path: Path) -> None:
    from dissect.api import run
    from dissect.output.writers import MemoryCollector, ReportWriter

    out = tmp_path / "out"
    collector = MemoryCollector()
    writer = ReportWriter(str(out))
    res = run(str(DEFAULT_CORPUS / "ws_basic.pcap"), [collector, writer])
    writer.close()
    harness.check_outputs(collector, str(out), "csv", res.summary)
    with open(out / "ws_frames.csv", "a") as f:
        f.write("1,2,3\n")
    with pytest.raises(harness.ContractError):
        harness.check_outputs(collector, str(out), "csv", res.summary)


def test_driver_reports_hangs_from_workers(tmp_path: Path) -> None:
    """The whole path (workers, SIGALRM, the parent's bookkeeping) with an impossible time limit."""
    stats = fuzz(Options(seed=1, count=6, workers=2, time_limit=1e-5, hard_limit=30.0, crash_dir=str(tmp_path),
                         quiet=True))
    assert stats.cases == 6
    assert stats.hangs >= 1
    saved = list(tmp_path.glob("*.txt"))
    assert saved and "status: hang" in saved[0].read_text()
