"""The real CLI in subprocesses: a run, a multirun sweep, and DeepSpeed training on CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT


def run_cli(*args: str, timeout: int = 900, expect: int = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == expect, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def check_run_dir(run_dir, method: str, task: str, seed: int) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    assert results["task"] == task and results["seed"] == seed
    row = next(r for r in results["rows"] if r["method"] == method)
    assert set(row) >= {"method", "seen", "unseen", "total", "cells", "n"}
    assert row["n"] == sum(1 for _ in open(run_dir / "data" / "test.jsonl"))
    assert f"| {method} |" in (run_dir / "results.md").read_text()
    return row


def test_fast_end_to_end_run(tmp_path):
    proc = run_cli("debug=fast", f"hydra.run.dir={tmp_path}")
    check_run_dir(tmp_path, "ft_rationale", "word_sort", 42)
    assert f"output dir: {tmp_path}" in proc.stdout
    assert "| ft_rationale |" in proc.stdout
    preds = [json.loads(line) for line in open(tmp_path / "ft_rationale" / "predictions.jsonl")]
    assert preds and set(preds[0]) >= {"question", "cell", "gold", "prediction", "correct", "output"}
    # the trained model and tokenizer load with plain Hugging Face classes
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(tmp_path / "ft_rationale" / "model")
    AutoTokenizer.from_pretrained(tmp_path / "ft_rationale" / "model")
    # ft SI. demo: the scripted expert's own attempts, half with an injected error, edited
    demo = json.loads((tmp_path / "ft_si_demo" / "stats.json").read_text())
    assert demo["window"] == 8 and demo["trajectories"]["edited"] > 0 and demo["improvement"] > 0
    si_keys = {"first_attempt", "si_frequency", "si_contribution", "wrong_to_right", "right_to_wrong"}
    assert set(check_run_dir(tmp_path, "ft_si_demo", "word_sort", 42)) >= si_keys


@pytest.mark.parametrize("task", ["date_understanding", "logical_deduction"])
def test_fast_end_to_end_run_of_the_generated_tasks(tmp_path, task):
    run_cli("debug=fast", f"task={task}", f"hydra.run.dir={tmp_path}")
    for method in ("ft_rationale", "ft_si_demo"):
        check_run_dir(tmp_path, method, task, 42)
    demo = json.loads((tmp_path / "ft_si_demo" / "stats.json").read_text())
    assert demo["trajectories"].get("edited", 0) > 0 and demo["improvement"] > 0  # injected errors, fixed by IMP


@pytest.mark.parametrize("task", ["multistep_arithmetic", "word_sort", "date_understanding", "logical_deduction"])
def test_gold_policy_scores_100(tmp_path, task):
    run_cli("model=gold", f"task={task}", "logger=none", "task.test.per_cell=5", f"hydra.run.dir={tmp_path}")
    row = check_run_dir(tmp_path, "gold", task, 42)
    assert row["total"] == 100.0 and row["seen"] == 100.0 and row["unseen"] == 100.0
    assert all(v == 100.0 for v in row["cells"].values())


def test_multirun_writes_one_dir_per_seed(tmp_path):
    run_cli("-m", "seed=1,2", "debug=fast", f"hydra.sweep.dir={tmp_path}")
    dirs = sorted(p for p in tmp_path.iterdir() if p.is_dir() and (p / "results.json").exists())
    assert [d.name for d in dirs] == ["0_seed1", "1_seed2"]
    for d, seed in zip(dirs, (1, 2)):
        check_run_dir(d, "ft_rationale", "word_sort", seed)
    q1 = (dirs[0] / "data" / "train.jsonl").read_text()
    q2 = (dirs[1] / "data" / "train.jsonl").read_text()
    assert q1 != q2  # the seed reaches data generation


def test_deepspeed_zero2_trains_on_cpu(tmp_path):
    run_cli(
        "debug=fast",
        "trainer=deepspeed_zero2",
        "trainer.accelerator=cpu",
        "trainer.accumulate_grad_batches=1",
        f"hydra.run.dir={tmp_path}",
    )
    stats = json.loads((tmp_path / "ft_rationale" / "train_stats.json").read_text())
    assert stats["steps"] == 3 and stats["final_loss"] > 0
    check_run_dir(tmp_path, "ft_rationale", "word_sort", 42)


def test_bad_config_fails_with_one_line(tmp_path):
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "+sft.lrate=1", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip().splitlines()[0]]
    assert "sft.lrate" in proc.stderr


def test_test_questions_from_a_bigbench_file(tmp_path):
    path = tmp_path / "task.json"
    path.write_text(json.dumps({"examples": [
        {"input": "((-1 + 2 + 9) - (-2 + -4 + -4)) =", "target": "20"},
        {"input": "((1 * 2 - 3 + 4 - 5) * (5 - 6 + 7 * 8 - 1)) =", "target": "-108"},
    ]}))
    run_dir = tmp_path / "run"
    run_cli("model=gold", "task=multistep_arithmetic", "logger=none", "task.test.source=file",
            f"task.test.path={path}", "task.test.format=bigbench", f"hydra.run.dir={run_dir}")
    row = check_run_dir(run_dir, "gold", "multistep_arithmetic", 42)
    assert row["n"] == 2 and row["total"] == 100.0 and set(row["cells"]) == {"l3_d2", "l5_d2"}
