"""The diagnosis of a model's own feedback: detection against FBK, same step, fixing."""

from __future__ import annotations

import random
from types import SimpleNamespace

from tripost.diagnosis import diagnose
from tripost.formats import Feedback, render_feedback
from tripost.tasks import get_task
from tripost.tasks.base import numbered_steps
from tripost.trajectory import Turn, render_turns


def output(*turns: Turn) -> SimpleNamespace:
    return SimpleNamespace(text=render_turns(list(turns)))


def test_detection_precision_recall_same_step_and_fix_rate():
    task = get_task("word_sort")
    examples = task.generate(task.seen_cells()[:2], 4, seed=3)
    rng = random.Random(0)
    outputs = []
    for i, e in enumerate(examples):
        gold = task.gold_attempt(e.question)
        ids = [s.id for s in numbered_steps(gold)[0]]
        wrong = task.inject_error(e.question, rng)
        assert wrong is not None
        fbk = task.check(e.question, wrong)
        assert fbk.is_error
        wrong_ids = [s.id for s in numbered_steps(wrong)[0]]
        kind = i % 4
        if kind == 0:  # wrong, flagged at FBK's step, fixed by the update
            outputs.append(output(Turn(wrong, render_feedback(fbk, wrong_ids)), Turn(gold, None)))
        elif kind == 1:  # wrong, flagged at another step, update still wrong
            other = Feedback.error(wrong_ids[0] if wrong_ids[0] != fbk.step else wrong_ids[-1], "x", "a guess")
            outputs.append(output(Turn(wrong, render_feedback(other, wrong_ids)), Turn(wrong, None)))
        elif kind == 2:  # wrong, and the model calls it correct: missed
            outputs.append(output(Turn(wrong, render_feedback(Feedback.correct(), wrong_ids))))
        else:  # right, and the model flags it: a false alarm
            outputs.append(output(Turn(gold, render_feedback(Feedback.error(ids[0], "x", "a guess"), ids))))
    d = diagnose(task, examples, outputs)
    # 8 attempts: kinds 0-2 wrong (6, FBK flags them), kinds 0, 1, 3 flagged by the model (6)
    assert (d["attempts"], d["expert_flags"], d["model_flags"]) == (8, 6, 6)
    assert d["detect_precision"] == round(100 * 4 / 6, 2)  # kinds 0 and 1 of 6 flags
    assert d["detect_recall"] == round(100 * 4 / 6, 2)  # kinds 0 and 1 of 6 wrong attempts
    assert d["same_step"] == 50.0 and d["fix_rate"] == 50.0  # kind 0 of kinds 0 and 1
    assert set(d["by_cell"]) == {e.cell for e in examples}
    assert sum(c["attempts"] for c in d["by_cell"].values()) == 8


def test_nothing_to_count_is_none_not_zero():
    task = get_task("word_sort")
    examples = task.generate(task.seen_cells()[:1], 2, seed=1)
    outputs = [output(Turn(task.gold_attempt(e.question), None)) for e in examples]  # right, no feedback
    d = diagnose(task, examples, outputs)
    assert d["model_flags"] == d["expert_flags"] == 0
    assert d["detect_precision"] is None and d["detect_recall"] is None and d["fix_rate"] is None
