"""verifier=openai end to end through the real CLI and the real openai client, against our own
OpenAI-compatible server (the scripted expert behind HTTP on 127.0.0.1): the same trajectories
as verifier=scripted, and a repeated run answered from the cache with zero requests."""

from __future__ import annotations

import json

import pytest

from tripost.experts.server import start_server

from .test_cli import run_cli

KEY = "sk-test-DO-NOT-LEAK-4242"


def collected_files(run_dir) -> dict[str, str]:
    """Every file the expert's work decides: edits, training examples (not timings or usage)."""
    names = ["rollouts.jsonl", "edited.jsonl"]
    files = {str(p.relative_to(run_dir)): p.read_text() for n in names for p in run_dir.glob(f"*/pass_*/{n}")}
    files.update({str(p.relative_to(run_dir)): p.read_text() for p in run_dir.glob("*/train.jsonl")})
    return files


@pytest.fixture()
def server():
    s = start_server("word_sort")
    yield s
    s.shutdown()


def test_openai_expert_run_matches_scripted_and_reruns_from_cache(tmp_path, server, monkeypatch):
    monkeypatch.setenv("TRIPOST_TEST_KEY", KEY)
    cache = tmp_path / "cache.sqlite"
    common = ["debug=fast", "tripost.window_size=12"]
    openai = ["verifier=openai", f"verifier.base_url={server.url}", "verifier.api_key_env=TRIPOST_TEST_KEY",
              f"verifier.cache.path={cache}", "verifier.concurrency=4", "verifier.shots=2"]
    run_cli(*common, f"hydra.run.dir={tmp_path / 'scripted'}")
    run_cli(*common, *openai, f"hydra.run.dir={tmp_path / 'first'}")
    first_requests = server.requests
    assert first_requests > 0

    scripted, first = collected_files(tmp_path / "scripted"), collected_files(tmp_path / "first")
    assert "ft_si_demo/pass_0/edited.jsonl" in first
    assert first == scripted
    edited = [json.loads(line) for line in first["ft_si_demo/pass_0/edited.jsonl"].splitlines()]
    assert any(r["status"] == "edited" for r in edited)  # FBK and IMP went over HTTP for real
    usage = json.loads((tmp_path / "first" / "ft_si_demo" / "stats.json").read_text())["expert"]
    assert usage["total"]["calls"] > 0

    run_cli(*common, *openai, f"hydra.run.dir={tmp_path / 'second'}")
    assert server.requests == first_requests  # every reply came from the cache
    assert collected_files(tmp_path / "second") == first
    usage = json.loads((tmp_path / "second" / "ft_si_demo" / "stats.json").read_text())["expert"]
    assert usage["total"]["calls"] == 0 and usage["total"]["cache_hits"] > 0

    # The key is read from the environment only: never in configs, logs, stats or the cache.
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_missing_key_fails_at_start_up_in_one_line(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    from .conftest import ROOT

    env = {k: v for k, v in os.environ.items() if k != "TRIPOST_ABSENT_KEY"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "debug=fast", "verifier=openai", "verifier.api_key_env=TRIPOST_ABSENT_KEY",
         f"hydra.run.dir={tmp_path}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "TRIPOST_ABSENT_KEY" in errors[0]
    assert not (tmp_path / "ft_rationale").exists()  # it failed before any training


def test_dry_run_estimates_without_calls_or_key(tmp_path, server):
    proc = run_cli("debug=fast", "verifier=openai", f"verifier.base_url={server.url}", "verifier.dry_run=true",
                   "verifier.api_key_env=TRIPOST_ABSENT_KEY", f"verifier.cache.path={tmp_path / 'c.sqlite'}",
                   f"hydra.run.dir={tmp_path}")
    assert "dry run: about" in proc.stdout and server.requests == 0
    estimate = json.loads((tmp_path / "expert_estimate.json").read_text())
    assert estimate["calls"] > 0 and estimate["cost_usd"] > 0


def test_spent_budget_stops_the_run_cleanly(tmp_path, server, monkeypatch):
    import os
    import subprocess
    import sys

    from .conftest import ROOT

    monkeypatch.setenv("TRIPOST_TEST_KEY", KEY)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "debug=fast", "tripost.window_size=12", "verifier=openai",
         f"verifier.base_url={server.url}", "verifier.api_key_env=TRIPOST_TEST_KEY", "verifier.concurrency=1",
         f"verifier.cache.path={tmp_path / 'c.sqlite'}", "verifier.max_cost_usd=0.001", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT, env={**os.environ, "WANDB_MODE": "disabled"}, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "stopped: expert budget spent" in proc.stderr and "resume=" in proc.stderr
    rows = json.loads((tmp_path / "run" / "results.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["ft_rationale"]  # what finished before is kept
    assert 0 < server.requests < 100


def test_faults_drop_only_their_trajectories(tmp_path, monkeypatch):
    """Rate limits, server errors and timeouts are retried; garbage replies drop just their
    trajectory (counted as expert_error); every other trajectory is as in the scripted run."""
    from tripost.experts.server import FaultPlan

    monkeypatch.setenv("TRIPOST_TEST_KEY", KEY)
    faulty = start_server("word_sort", faults=FaultPlan(["429", "500", "timeout", "garbage"], rate=0.15, seed=1),
                          timeout_sleep=3.0)
    try:
        common = ["debug=fast", "tripost.window_size=12"]
        run_cli(*common, f"hydra.run.dir={tmp_path / 'scripted'}")
        run_cli(*common, "verifier=openai", f"verifier.base_url={faulty.url}", "verifier.api_key_env=TRIPOST_TEST_KEY",
                f"verifier.cache.path={tmp_path / 'c.sqlite'}", "verifier.concurrency=4", "verifier.shots=2",
                "verifier.timeout_s=1", "verifier.max_retries=3",
                f"hydra.run.dir={tmp_path / 'faulty'}")
        injected = faulty.stats()["faults_injected"]
    finally:
        faulty.shutdown()
    assert injected.get("429") and injected.get("500") and injected.get("garbage")
    path = "ft_si_demo/pass_0/edited.jsonl"
    want = [json.loads(line) for line in (tmp_path / "scripted" / path).read_text().splitlines()]
    got = [json.loads(line) for line in (tmp_path / "faulty" / path).read_text().splitlines()]
    assert len(got) == len(want)
    lost = [g for g, w in zip(got, want) if g != w]
    assert lost and all(g["status"] == "dropped" and g["reason"] == "expert_error" for g in lost)
    assert len(lost) < len(got)
    stats = json.loads((tmp_path / "faulty" / "ft_si_demo" / "stats.json").read_text())
    assert stats["dropped_by_reason"]["expert_error"] == len(lost)
    assert stats["expert"]["total"]["retries"] > 0
