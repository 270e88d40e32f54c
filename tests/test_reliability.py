"""The reliability probes, each through the real CLI: bad input refused at start-up in one line,
bad items skipped and counted, SIGTERM, concurrent runs, resume overrides, failing sweep jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import ROOT

FAST = ["debug=fast", "logger=none"]


def cli(*args: str, timeout: int = 900, cwd=ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    assert proc.returncode == code, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("override, key", [
    ("task.train.size=-5", "task.train.size"),
    ("task.test.per_cell=-1", "task.test.per_cell"),
    ("tripost.num_iterations=-1", "tripost.num_iterations"),
    ("tripost.window_size=-3", "tripost.window_size"),
    ("eval.batch_size=0", "eval.batch_size"),
])
def test_numbers_out_of_range_are_refused_at_start_up(tmp_path, override, key):
    line = one_line_error(cli(*FAST, override, f"hydra.run.dir={tmp_path}"))
    assert line.startswith(f"error: config key '{key}'") and "out of range" in line
    assert not (tmp_path / "results.json").exists() and not (tmp_path / "data").exists()


@pytest.mark.parametrize("which", ["train", "test"])
def test_an_empty_data_file_is_refused_naming_it(tmp_path, which):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    line = one_line_error(cli(*FAST, f"task.{which}.source=file", f"task.{which}.path={empty}",
                              f"hydra.run.dir={tmp_path / 'run'}"))
    assert line == f"error: {empty}: the file is empty"
    assert not (tmp_path / "run" / "results.json").exists()


def test_a_missing_model_directory_is_refused_at_start_up(tmp_path):
    line = one_line_error(cli(*FAST, "model=hf", f"model.name_or_path={tmp_path / 'nope'}", f"hydra.run.dir={tmp_path}"))
    assert line == f"error: config key 'model.name_or_path': no model directory at {tmp_path / 'nope'}"
    assert not (tmp_path / "data").exists()  # refused before any data was made


def test_bad_items_are_skipped_counted_and_named_by_line(tmp_path):
    """Bytes that are not UTF-8, a question that is a number, gold answers that are 42, null or a
    dict, a 1 MB question, out-of-domain operands: each item skipped and counted; the rest runs."""
    good = [{"question": f"(({a} + 2 + 3) - (1 + 2 + 3)) =", "correct_answer": str(a - 1)} for a in range(1, 4)]
    bad = [b'{"question": "((1 + 2 + 3) - (1 + 2 + \xff)) =", "correct_answer": "0"}',
           b'{"question": 7, "correct_answer": "7"}',
           b'{"question": "((1 + 2 + 3) - (1 + 2 + 4)) =", "correct_answer": null}',
           b'{"question": "((1 + 2 + 3) - (1 + 2 + 5)) =", "correct_answer": {"a": 1}}',
           json.dumps({"question": "((1 + 2 + 3) - (1 + 2 + 3)) = " + "9" * 1_000_000, "correct_answer": "0"}).encode(),
           b'{"question": "((12 + 2 + 3) - (1 + 2 + 3)) =", "correct_answer": "11"}']
    path = tmp_path / "test.jsonl"
    path.write_bytes(b"\n".join([json.dumps(g).encode() for g in good] + bad) + b"\n")
    run = tmp_path / "run"
    start = time.monotonic()
    proc = cli("model=gold", "task=multistep_arithmetic", "logger=none", "task.test.source=file", f"task.test.path={path}",
               f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert time.monotonic() - start < 300  # no stall on the 1 MB question (generous: a busy machine)
    results = json.loads((run / "results.json").read_text())
    data = results["data"]["test"]
    assert data["items"] == 9 and data["loaded"] == 3 and sum(data["skipped"].values()) == 6
    kinds = " | ".join(data["skipped"])
    for kind in ("not UTF-8", "question is a int", "null gold answer", "dict gold answer", "question longer than",
                 "operand 12 is outside"):
        assert kind in kinds, kinds
    assert "line 4: not UTF-8" in proc.stdout + proc.stderr  # the log names the line
    assert results["rows"][0]["n"] == 3 and results["rows"][0]["total"] == 100.0


def test_word_sort_with_capitals_punctuation_and_unicode_runs_end_to_end(tmp_path):
    words = [["Zebra", "apple"], ["o'neill", "orange", "opt"], ["élan", "eel", "zoo"], ["it&t", "b.c.", "Ab"]]
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps({"question": "Sort the following words alphabetically:\nList: " + " ".join(w),
                                        "correct_answer": sorted(w)}) + "\n" for w in words))
    run = tmp_path / "run"
    proc = cli("model=gold", "logger=none", "task.test.source=file", f"task.test.path={path}", f"hydra.run.dir={run}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads((run / "results.json").read_text())["rows"][0]
    assert row["n"] == 4 and row["total"] == 100.0  # the task's own gold rationales are judged right


def test_sigterm_during_training_stops_non_zero_and_says_how_to_resume(tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *FAST, "trainer.max_steps=100000", "sft.epochs=1000",
                             f"hydra.run.dir={tmp_path}"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not (tmp_path / "init_model" / "config.json").is_file() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(5)  # well inside ft rationale's training
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, out[-2000:] + err[-2000:]
    assert f"stopped by SIGTERM. Finished stages are saved; resume with: python run.py resume={tmp_path}" in err
    assert not (tmp_path / "ft_rationale" / "train_stats.json").exists()  # the stopped stage is not recorded


def test_two_runs_started_together_get_their_own_dirs(tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled"}
    args = [*FAST, "tripost.num_iterations=0", "baselines.ft_si_demo=false", f"paths.outputs_dir={tmp_path}"]
    procs = [subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args, f"seed={s}"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for s in (1, 2)]
    for p in procs:
        p.communicate(timeout=600)
        assert p.returncode == 0
    runs = sorted((tmp_path / "word_sort" / "runs").iterdir())
    assert len(runs) == 2
    assert sorted(json.loads((r / "results.json").read_text())["seed"] for r in runs) == [1, 2]


def test_a_live_run_dir_is_locked(tmp_path):
    from tripost.cli import lock_run_dir

    lock_run_dir(tmp_path)  # this test process holds the dir, as a live run would
    line = one_line_error(cli(*FAST, f"hydra.run.dir={tmp_path}"))
    assert line == f"error: run dir {tmp_path} is in use by another live run (pid {os.getpid()})"


def test_resume_takes_the_runs_own_groups_and_refuses_a_bad_override_in_one_line(tmp_path):
    first = cli(*FAST, "tripost.num_iterations=0", f"hydra.run.dir={tmp_path}")
    assert first.returncode == 0, first.stderr[-2000:]
    again = cli(f"resume={tmp_path}", "debug=fast", "logger=none")
    assert again.returncode == 0, again.stderr[-2000:]
    line = one_line_error(cli(f"resume={tmp_path}", "task=multistep_arithmetic"))
    assert "config key 'task'" in line and "cannot change on resume" in line
    line = one_line_error(cli(f"resume={tmp_path}", "task.name=multistep_arithmetic"))
    assert line.startswith("error: config key 'task.name'")


@pytest.mark.skipif(os.geteuid() != 0, reason="drops to another user with setpriv (needs root)")
def test_a_read_only_resume_dir_is_one_line(tmp_path):
    """As a user who cannot write the run dir (root writes anywhere, so the run is made by root and
    resumed as nobody)."""
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable]
    env = {**os.environ, "WANDB_MODE": "disabled", "HOME": str(tmp_path)}
    os.chmod(tmp_path, 0o755)
    probe = subprocess.run([*as_nobody, "-c", f"open({str(ROOT / 'run.py')!r}).close(); import tripost"], cwd=tmp_path,
                           env=env, capture_output=True, timeout=120)
    if probe.returncode != 0:  # e.g. a checkout inside a private (mode 700) directory
        pytest.skip("user nobody cannot read this checkout or its virtual environment")
    run = tmp_path / "run"
    assert cli(*FAST, "tripost.num_iterations=0", f"hydra.run.dir={run}").returncode == 0
    proc = subprocess.run([*as_nobody, str(ROOT / "run.py"), f"resume={run}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    line = one_line_error(proc)
    assert line == f"error: config key 'resume': {run} is not writable; copy the run dir elsewhere and resume the copy"


def test_a_failing_job_of_a_joblib_sweep_leaves_its_siblings_to_finish(tmp_path):
    proc = cli("-m", *FAST, "tripost.num_iterations=0", "baselines.ft_si_demo=false", "task.train.size=24,-5",
               "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (tmp_path / "0_seed42" / "results.json").is_file()  # the sibling finished
    summary = json.loads((tmp_path / "sweep_summary.json").read_text())
    assert summary["done"] == ["0_seed42"] and [j["job"] for j in summary["failed"]] == ["1_seed42"]
    assert summary["failed"][0]["exit_code"] == 2 and "task.train.size" in summary["failed"][0]["message"]
    assert "failed: 1_seed42 (exit 2)" in proc.stderr and (tmp_path / "sweep_summary.md").is_file()
