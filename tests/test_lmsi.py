"""LMSI data: self-consistent samples kept by the gold or the majority answer, with answer-only copies."""

from __future__ import annotations

import pytest

from tripost.lmsi import self_consistent_examples
from tripost.tasks import Example, get_task

from .test_editing import GOLD_TEXT, Q, WRONG, WRONG_FINAL


@pytest.fixture(scope="module")
def task():
    return get_task("multistep_arithmetic")


def test_correct_keeps_gold_answer_rationales_once_plus_an_answer_only_copy(task):
    window = [Example(Q, "4", "l2_d2", True)]
    samples = [[GOLD_TEXT, WRONG, GOLD_TEXT, "garbage", WRONG]]
    examples, stats = self_consistent_examples(task, window, samples, keep="correct")
    prompt = task.prompt(Q)
    assert [e.text for e in examples] == [prompt + GOLD_TEXT, prompt + "(Final response) So the answer is 4.\n"]
    assert [e.kind for e in examples] == ["rationale", "answer_only"]
    assert all(e.prompt_chars == len(prompt) for e in examples)
    assert stats == {"samples": 5, "unparsed": 1, "questions_kept": 1, "rationales_kept": 1, "majority_right": 1,
                     "examples": 2}


def test_majority_needs_no_label_and_can_be_wrong(task):
    window = [Example(Q, "4", "l2_d2", True)]
    samples = [[WRONG, GOLD_TEXT, WRONG]]
    examples, stats = self_consistent_examples(task, window, samples, keep="majority")
    assert examples[0].text.endswith(WRONG) and examples[1].text.endswith("So the answer is 5.\n")
    assert stats["majority_right"] == 0
    # An inconsistent rationale (its steps do not give its answer) is never kept.
    examples, stats = self_consistent_examples(task, window, [[WRONG_FINAL, WRONG_FINAL]], keep="majority")
    assert examples == [] and stats["questions_kept"] == 0


def test_bad_keep_names_the_key(task):
    with pytest.raises(ValueError, match="baselines.lmsi.keep"):
        self_consistent_examples(task, [], [], keep="best")


def test_lmsi_stage_through_the_cli(tmp_path):
    """The LMSI stage in a debug=fast run: every window question sampled, the samples saved and
    counted (the untrained model's samples are rarely kept: that is the slow test's part)."""
    import json

    from .test_cli import run_cli

    run_cli("debug=fast", "tripost.num_iterations=0", "baselines.ft_si_demo=false", "baselines.lmsi.enabled=true",
            "baselines.lmsi.samples=3", f"hydra.run.dir={tmp_path}")
    samples = [json.loads(line) for line in open(tmp_path / "lmsi" / "samples.jsonl")]
    assert len(samples) == 8 and all(len(r["samples"]) == 3 for r in samples)  # window_size 8 in debug=fast
    stats = json.loads((tmp_path / "lmsi" / "stats.json").read_text())
    assert stats["samples"] == 24 and stats["examples"] == stats["rationales_kept"] + stats["questions_kept"]


@pytest.mark.slow
def test_lmsi_row_end_to_end(tmp_path):
    """A model that memorises its window (as in the resume test, 100 epochs: about 4 minutes)
    samples parseable rationales, which train the lmsi row."""
    import json

    from .test_cli import check_run_dir, run_cli
    from .test_resume import ARGS

    run_cli(*ARGS, "tripost.num_iterations=0", "baselines.ft_si_demo=false", "baselines.lmsi.enabled=true",
            "baselines.lmsi.samples=4", "baselines.lmsi.temperature=0.5", f"hydra.run.dir={tmp_path}")
    stats = json.loads((tmp_path / "lmsi" / "stats.json").read_text())
    assert stats["samples"] == 16 * 4 and stats["rationales_kept"] > 0
    assert stats["examples"] == stats["rationales_kept"] + stats["questions_kept"]
    row = check_run_dir(tmp_path, "lmsi", "multistep_arithmetic", 42)
    assert row["train_examples"] == stats["examples"]
    samples = [json.loads(line) for line in open(tmp_path / "lmsi" / "samples.jsonl")]
    assert len(samples) == 16 and all(len(r["samples"]) == 4 for r in samples)
