"""logger=wandb offline: per-iteration statistics logged, grouped by task and experiment, and a
failed job still closes its run, marked failed."""

from __future__ import annotations

import os
import subprocess
import sys

from .conftest import ROOT


def run(tmp_path, *args):
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run([sys.executable, str(ROOT / "run.py"), "debug=fast", "logger=wandb", f"hydra.run.dir={tmp_path}", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_wandb_offline_logs_iteration_statistics(tmp_path):
    proc = run(tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [record] = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    data = record.read_bytes()
    assert b"tripost/data/examples" in data and b"tripost/data/trajectories/dropped" in data
    debug = next((tmp_path / "wandb").glob("offline-run-*/logs/debug.log")).read_text()
    assert "'group': 'word_sort-tiny'" in debug and "'job_type': 'seed42'" in debug
    assert "got exitcode: 0" in debug


def test_a_failed_job_closes_its_run_marked_failed(tmp_path):
    proc = run(tmp_path, "+trainer.no_such_arg=1")
    assert proc.returncode != 0
    debug = next((tmp_path / "wandb").glob("offline-run-*/logs/debug.log")).read_text()
    assert "finishing run" in debug and "got exitcode: 1" in debug
