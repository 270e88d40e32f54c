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


# ---------------------------------------------------------------- reliability: dead experts, bad replies, budgets

FAST = ["debug=fast", "tripost.window_size=12", "tripost.num_iterations=0"]  # ft SI. demo: the expert's whole work


def openai_args(server, tmp_path, *more: str) -> list[str]:
    return ["verifier=openai", f"verifier.base_url={server.url}", "verifier.api_key_env=TRIPOST_TEST_KEY",
            f"verifier.cache.path={tmp_path / 'cache.sqlite'}", "verifier.concurrency=4", "verifier.shots=2", *more]


def cached_replies(path) -> list[str]:
    import sqlite3

    with sqlite3.connect(path) as db:
        return [r[0] for r in db.execute("SELECT reply FROM replies")]


def stop_line(proc, prefix: str) -> str:
    """The one line of stderr that says why the run stopped."""
    lines = [line for line in proc.stderr.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Could not override" not in proc.stderr
    return lines[0]


def run_printed(command: str, more: str, expect: tuple[int, ...]):
    """The resume command a stop printed, run as printed with ``<more>`` replaced."""
    import shlex
    import subprocess
    import sys

    from .conftest import ROOT

    argv = shlex.split(command.replace("<more>", more))
    assert argv[:2] == ["python", "run.py"], command
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *argv[2:]], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, env={**__import__("os").environ, "WANDB_MODE": "disabled"})
    assert proc.returncode in expect, proc.stderr[-3000:]
    assert not [line for line in proc.stderr.splitlines() if line.startswith("error:")], proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def scripted_run(tmp_path_factory):
    """The scripted expert's run of FAST: what every openai run of these tests must end up with."""
    run_dir = tmp_path_factory.mktemp("scripted")
    run_cli(*FAST, f"hydra.run.dir={run_dir}")
    return collected_files(run_dir)


def test_a_dead_expert_stops_the_pass_unrecorded_and_resume_asks_only_what_is_missing(tmp_path, scripted_run, monkeypatch):
    monkeypatch.setenv("TRIPOST_TEST_KEY", KEY)
    run_dir, cache = tmp_path / "run", tmp_path / "cache.sqlite"
    dying = start_server("word_sort", die_after=16)  # the 12 expert attempts of pass 0, then 4 FBK, then dead
    try:
        proc = run_cli(*FAST, *openai_args(dying, tmp_path, "verifier.max_retries=1"), f"hydra.run.dir={run_dir}", expect=4)
    finally:
        dying.shutdown()
    line = stop_line(proc, "error:")
    assert "is unreachable" in line and "max_unreachable_share=0.2" in line and f"resume={run_dir}" in line
    pass_dir = run_dir / "ft_si_demo" / "pass_0"
    assert (pass_dir / "rollouts.jsonl").is_file()  # the attempts, all answered before it died
    assert not (pass_dir / "edited.jsonl").exists() and not (run_dir / "ft_si_demo" / "stats.json").exists()
    assert dying.requests == 16 and len(cached_replies(cache)) == 16  # every answered reply is kept

    healthy = start_server("word_sort")
    try:
        run_cli(f"resume={run_dir}", "verifier=openai", f"verifier.base_url={healthy.url}")
    finally:
        healthy.shutdown()
    assert 0 < healthy.requests == len(cached_replies(cache)) - 16  # only what was missing was asked
    assert collected_files(run_dir) == scripted_run  # and no trajectory was lost
    stats = json.loads((run_dir / "ft_si_demo" / "stats.json").read_text())
    assert "expert_error" not in stats["dropped_by_reason"]


def test_garbage_replies_are_not_cached_so_a_rerun_edits_their_trajectories(tmp_path, scripted_run, monkeypatch):
    from tripost.openai_server import GARBAGE, FaultPlan

    monkeypatch.setenv("TRIPOST_TEST_KEY", KEY)
    cache = tmp_path / "cache.sqlite"
    faulty = start_server("word_sort", faults=FaultPlan(["garbage", "empty"], rate=0.25, seed=3))
    try:
        run_cli(*FAST, *openai_args(faulty, tmp_path), f"hydra.run.dir={tmp_path / 'faulty'}")
    finally:
        faulty.shutdown()
    stats = json.loads((tmp_path / "faulty" / "ft_si_demo" / "stats.json").read_text())
    assert stats["dropped_by_reason"]["expert_error"] > 0 and sum(faulty.stats()["faults_injected"].values()) > 0
    assert all(reply.strip() and reply != GARBAGE for reply in cached_replies(cache))

    healthy = start_server("word_sort")
    try:
        run_cli(*FAST, *openai_args(healthy, tmp_path), f"hydra.run.dir={tmp_path / 'rerun'}")
    finally:
        healthy.shutdown()
    assert healthy.requests > 0  # what was garbage is asked again ...
    assert collected_files(tmp_path / "rerun") == scripted_run  # ... and those trajectories are edited


def test_the_budget_is_the_runs_so_resumes_do_not_spend_it_again(tmp_path, scripted_run, server, monkeypatch):
    monkeypatch.setenv("TRIPOST_TEST_KEY", KEY)
    run_dir = tmp_path / "run"
    cap = ["verifier.max_cost_usd=0.001", "verifier.concurrency=1"]
    run_cli(*FAST, *openai_args(server, tmp_path, *cap), f"hydra.run.dir={run_dir}", expect=3)
    spend_file = run_dir / "expert_spend.json"
    paid, spent = server.requests, json.loads(spend_file.read_text())["spent_usd"]
    assert paid > 0 and spent >= 0.001

    for again in ([], [], ["verifier=openai", "verifier.max_cost_usd=0.001"]):  # the same cap, three times
        proc = run_cli(f"resume={run_dir}", *again, expect=3)
        assert "stopped: expert budget spent" in stop_line(proc, "stopped:")
        assert server.requests == paid and json.loads(spend_file.read_text())["spent_usd"] == spent

    run_cli(f"resume={run_dir}", "verifier=openai", "verifier.max_cost_usd=1")  # raising the cap is explicit
    assert server.requests > paid and json.loads(spend_file.read_text())["spent_usd"] > spent
    assert collected_files(run_dir) == scripted_run


def test_the_printed_resume_command_works_as_printed(tmp_path, server, monkeypatch):
    monkeypatch.setenv("TRIPOST_TEST_KEY", KEY)
    run_dir = tmp_path / "run"
    run_cli(*FAST, *openai_args(server, tmp_path, "verifier.max_cost_usd=0.001", "verifier.concurrency=1"),
            f"hydra.run.dir={run_dir}", expect=3)
    # Resumed without naming the group, the run stops again: its command must still name the run's own.
    proc = run_cli(f"resume={run_dir}", expect=3)
    command = stop_line(proc, "stopped:").split("resume with: ", 1)[1].strip()
    assert "verifier=openai" in command.split() and "verifier.max_cost_usd=<more>" in command.split()
    run_printed(command, "0.0015", expect=(0, 3))  # a little more: it may stop again, by the budget only
    run_printed(command, "1", expect=(0,))
    assert (run_dir / "ft_si_demo" / "stats.json").is_file()


@pytest.mark.parametrize("where", ["kernel fs", "read-only dir"])
def test_a_cache_path_that_cannot_be_opened_is_one_line(where, tmp_path, server, monkeypatch):
    import os

    monkeypatch.setenv("TRIPOST_TEST_KEY", KEY)
    if where == "kernel fs":
        if not os.path.isdir("/sys"):
            pytest.skip("no /sys")
        path = "/sys/tripost_cache.sqlite"  # sysfs makes no file, not even for root
    else:
        if os.geteuid() == 0:
            pytest.skip("root ignores file modes")
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        path = locked / "cache.sqlite"
    proc = run_cli("debug=fast", "verifier=openai", f"verifier.base_url={server.url}", "verifier.api_key_env=TRIPOST_TEST_KEY",
                   f"verifier.cache.path={path}", f"hydra.run.dir={tmp_path / 'run'}", expect=2)
    line = stop_line(proc, "error:")
    assert line.startswith(f"error: config key 'verifier.cache.path': cannot open {path}")
    assert not (tmp_path / "run" / "ft_rationale").exists()  # refused before any training
