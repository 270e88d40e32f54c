"""tripost.window_held_out: the questions the model attempts are left out of every gold
rationale it trains on, so its rollouts show the errors it makes on new questions."""

from __future__ import annotations

import json

from .test_cli import run_cli


def _questions(path) -> list[str]:
    return [json.loads(line)["question"] for line in open(path)]


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
