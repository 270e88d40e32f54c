"""Resume: a run killed (SIGKILL, a real subprocess) right after each stage, then resumed,
ends with the same results as an uninterrupted run, and loses or duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT

# A model that learns the format within seconds, so that the TriPosT iteration has data to
# train on (its attempts parse, are wrong, and are edited by the scripted expert).
ARGS = [
    "debug=fast",
    "task=multistep_arithmetic",
    "task.train.cells=[l3_d2]",
    "task.train.size=32",
    "model.arch.hidden_size=64",
    "model.arch.num_layers=2",
    "model.arch.num_heads=4",
    "model.arch.intermediate_size=256",
    "trainer.max_steps=-1",
    "sft.epochs=100",
    "sft.lr=3e-3",
    "sft.batch_size=8",
    "eval.max_new_tokens=300",
    "tripost.max_new_tokens=300",
    "tripost.window_size=16",
    "tripost.temperature=0.5",
]

# Files that mark the end of each stage, in the order the run writes them.
STAGES = [
    "data/test.jsonl",
    "init_model/config.json",
    "ft_rationale/model/config.json",
    "ft_rationale/eval.json",
    "ft_si_demo/pass_0/rollouts.jsonl",
    "ft_si_demo/stats.json",
    "ft_si_demo/model/config.json",
    "ft_si_demo/eval.json",
    "iter_1/pass_0/rollouts.jsonl",
    "iter_1/pass_0/edited.jsonl",
    "iter_1/stats.json",
    "iter_1/model/config.json",
]


def _env():
    return {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}


def run_to_end(*args: str) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]


def run_until(marker: Path, *args: str) -> bool:
    """Start the run, SIGKILL it as soon as ``marker`` exists; False if it finished first."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        if marker.exists():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.02)
    proc.wait()
    return False


def rows(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "results.json").read_text())["rows"]


@pytest.mark.slow
def test_killed_after_every_stage_and_resumed_matches_uninterrupted(tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    run_to_end(*ARGS, f"hydra.run.dir={reference}")
    assert {r["method"] for r in rows(reference)} == {"ft_rationale", "ft_si_demo", "tripost_t1"}

    assert run_until(killed / STAGES[0], *ARGS, f"hydra.run.dir={killed}")
    kills = 1
    for stage in STAGES[1:]:
        if (killed / stage).exists():
            continue  # this stage finished before the kill landed
        kills += run_until(killed / stage, f"resume={killed}")
    run_to_end(f"resume={killed}")
    assert kills >= 4

    assert rows(killed) == rows(reference)
    for name in ["data/train.jsonl", "ft_si_demo/train.jsonl", "iter_1/train.jsonl", "iter_1/pass_0/edited.jsonl", "iter_1/predictions.jsonl"]:
        assert (killed / name).read_text() == (reference / name).read_text(), name
    assert not list(killed.rglob(".*.tmp"))  # no half-written file or directory left behind
