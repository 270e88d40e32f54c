"""The TriPosT window: spread over the training cells, and with tripost.window_held_out left
out of every gold rationale the model trains on, so its rollouts show the errors it makes on
new questions."""

from __future__ import annotations

import json

from .test_cli import run_cli


def _questions(path) -> list[str]:
    return [json.loads(line)["question"] for line in open(path)]


def test_generated_training_questions_are_shuffled_so_a_window_spreads_over_the_cells():
    """Generated cell after cell, a window of the first 800 of 4000 word-sort questions was
    two-word lists alone, which the model sorted 91% of the time."""
    from collections import Counter

    from .test_config import make_cfg
    from tripost.questions import train_examples
    from tripost.tasks import build_task

    cfg = make_cfg("/tmp/unused", "task.train.size=600")
    train, _ = train_examples(cfg, build_task(cfg.task), {})
    assert len(train) == 600 and len({e.question for e in train}) == 600
    cells = Counter(e.cell for e in train[:120])
    assert set(cells) == {"n2", "n3", "n4", "n5", "n6", "n7"} and max(cells.values()) < 40, cells
    again, _ = train_examples(make_cfg("/tmp/unused", "task.train.size=600"), build_task(cfg.task), {})
    assert [e.question for e in again] == [e.question for e in train]  # the same for the same seed


def test_window_and_gold_questions_split_the_training_questions():
    from omegaconf import OmegaConf

    from tripost.questions import gold_questions, window_of

    train = list(range(10))
    cfg = lambda size, held_out: OmegaConf.create({"tripost": {"window_size": size, "window_held_out": held_out}})  # noqa: E731
    assert window_of(cfg(3, True), train) == [7, 8, 9] and gold_questions(cfg(3, True), train) == list(range(7))
    assert window_of(cfg(3, False), train) == [0, 1, 2] and gold_questions(cfg(3, False), train) == train
    assert window_of(cfg(None, False), train) == train


def test_a_run_attempts_the_last_questions_and_trains_ft_rationale_on_the_others(tmp_path):
    run_cli("debug=fast", "tripost.window_held_out=true", "baselines.ft_si_demo=false", f"hydra.run.dir={tmp_path}")
    train = [json.loads(line) for line in open(tmp_path / "data" / "train.jsonl")]
    prompts = [r["question"].removeprefix("Q: ") for r in train]
    window = set(prompts[-8:])  # window_size 8 in debug=fast
    attempted = set(_questions(tmp_path / "iter_1" / "pass_0" / "rollouts.jsonl"))
    assert {q.removeprefix("Q: ") for q in attempted} == window
    ft = json.loads((tmp_path / "ft_rationale" / "train_stats.json").read_text())
    assert ft["examples"] == len(train) - 8


def test_held_out_needs_a_window_size(tmp_path):
    proc = run_cli("debug=fast", "tripost.window_held_out=true", "tripost.window_size=null", f"hydra.run.dir={tmp_path}",
                   expect=2)
    assert "config key 'tripost.window_held_out': needs tripost.window_size" in proc.stdout + proc.stderr
