"""Interactive editing on hand-made trajectories: each branch of SPEC 2.1, and post-processing."""

from __future__ import annotations

import random

import pytest

from tripost.editing import (
    DROPPED, EDITED, FBK_UNPARSABLE, FEEDBACK_ONLY, FORMAT_ERROR, KEPT, NO_POSITIVE, NOT_LEGITIMATE, UNFINISHED,
    edit_trajectory, feedbacks_agree, is_legitimate_update, made_no_progress, step_key,
)
from tripost.experts.scripted import ScriptedExpert
from tripost.formats import Feedback, parse_feedback
from tripost.postprocess import GOLD, IMPROVEMENT, TERMINAL, gold_examples, rebalance, split_into_turns
from tripost.tasks import get_task
from tripost.training.data import TrainExample

Q = "((7 - -1 + -1) - (2 * 3 - 3)) ="
GOLD_TEXT = (
    '(1) This equation can be written as "(A - B)", where A = (7 - -1 + -1) and B = (2 * 3 - 3).\n'
    "(2) Let's calculate A = (7 - -1 + -1) = ((7 - -1) + -1) = (8 + -1) = 7.\n"
    "(3) Let's calculate B = (2 * 3 - 3) = ((2 * 3) - 3) = (6 - 3) = 3.\n"
    "(4) Then, the final equation is (A - B) = (7 - 3) = 4.\n"
    "(Final response) So the answer is 4.\n"
)
WRONG = GOLD_TEXT.replace("(6 - 3) = 3.", "(6 - 3) = 2.").replace("(7 - 3) = 4", "(7 - 2) = 5").replace(
    "answer is 4", "answer is 5"
)
WRONG_FINAL = GOLD_TEXT.replace("answer is 4", "answer is 3")
POSITIVE = "Step (1) to step (4) are correct. The final response is also correct."


@pytest.fixture(scope="module")
def task():
    return get_task("multistep_arithmetic")


def expert(task, rate=0.0, seed=0):
    return ScriptedExpert(task, imp_error_rate=rate, seed=seed)


def test_gold_text_is_what_the_task_writes(task):
    assert task.gold_attempt(Q) == GOLD_TEXT and task.gold_rationale(Q) == GOLD_TEXT.rstrip("\n")
    assert task.check(Q, WRONG).is_error and task.check(Q, WRONG).step == "3"


def test_correct_trajectory_is_kept_with_positive_feedback_added(task):
    res = edit_trajectory(task, expert(task), Q, "4", GOLD_TEXT)
    assert res.status == KEPT and len(res.turns) == 1
    assert res.turns[0].feedback == POSITIVE


def test_wrong_attempt_without_feedback_is_edited_from_the_error_step(task):
    res = edit_trajectory(task, expert(task), Q, "4", WRONG)
    assert res.status == EDITED and res.edit_point == 0 and res.updates == 1
    first, second = res.turns
    assert first.attempt == WRONG
    fb = parse_feedback(first.feedback)
    assert fb.is_error and fb.step == "3"
    assert first.feedback.startswith("Step (1) to step (2) are correct. In step (3) the part")
    assert second.attempt == GOLD_TEXT and second.feedback == POSITIVE


def test_agreeing_own_feedback_keeps_the_models_update(task):
    fb = task.check(Q, WRONG)
    from tripost.trajectory import feedback_text

    own = feedback_text(fb, WRONG)
    third = GOLD_TEXT.replace("(7 - 3) = 4", "(7 - 3) = 3").replace("answer is 4", "answer is 3")
    text = f"{WRONG}Feedback: {own}\nUpdated Answer: Let's think step by step.{task.info}\n{third}Feedback: {POSITIVE}\n"
    res = edit_trajectory(task, expert(task), Q, "4", text)
    # the model's own first feedback agreed with FBK, so its update is kept; its second feedback
    # (positive on a wrong attempt) disagrees, so that is the edit point
    assert res.status == EDITED and res.edit_point == 1
    assert res.turns[0].feedback == own and res.turns[1].attempt == third
    assert parse_feedback(res.turns[1].feedback).step == "4"
    assert res.turns[-1].attempt == GOLD_TEXT


def test_disagreeing_own_feedback_is_the_edit_point(task):
    wrong_own = 'In step (1) the part "A" is incorrect. This is because nothing'
    text = f"{WRONG}Feedback: {wrong_own}\nUpdated Answer: Let's think step by step.{task.info}\n{WRONG_FINAL}"
    res = edit_trajectory(task, expert(task), Q, "4", text)
    assert res.status == EDITED and res.edit_point == 0 and len(res.turns) == 2
    assert parse_feedback(res.turns[0].feedback).step == "3"  # FBK's feedback replaced the model's
    assert res.turns[1].attempt == GOLD_TEXT


def test_unparsable_own_feedback_is_the_edit_point(task):
    text = f"{WRONG}Feedback: this is all fine I think\nUpdated Answer: Let's think step by step.{task.info}\n{WRONG_FINAL}"
    res = edit_trajectory(task, expert(task), Q, "4", text)
    assert res.status == EDITED and res.edit_point == 0 and res.turns[-1].attempt == GOLD_TEXT


def test_unreadable_attempts_are_dropped(task):
    assert edit_trajectory(task, expert(task), Q, "4", "").reason == FORMAT_ERROR
    res = edit_trajectory(task, expert(task), Q, "4", "(1) blah\n(2) so what\n")
    assert res.status == DROPPED and res.reason == FBK_UNPARSABLE


class _Scripted:
    """An expert whose IMP returns prepared attempts, to reach each branch exactly."""

    def __init__(self, task, updates):
        self.task, self.updates = task, list(updates)

    def feedback(self, q, attempt):
        return self.task.check(q, attempt)

    def improve(self, q, attempt, fb):
        return self.updates.pop(0) if self.updates else None


def test_no_progress_gives_a_feedback_only_example(task):
    same_error = WRONG.replace("(7 - 2) = 5", "(7 - 2) = 6")  # step 3 still wrong, same segment
    res = edit_trajectory(task, _Scripted(task, [same_error]), Q, "4", WRONG)
    assert res.status == FEEDBACK_ONLY and len(res.turns) == 1
    assert parse_feedback(res.turns[0].feedback).step == "3"
    (ex,) = split_into_turns(task, Q, res)
    assert ex.kind == IMPROVEMENT and not ex.eos and ex.text.endswith(res.turns[0].feedback + "\n")


def test_illegitimate_update_and_imp_failure_are_dropped(task):
    no_final = "".join(line + "\n" for line in GOLD_TEXT.splitlines()[:-1])
    assert edit_trajectory(task, _Scripted(task, [no_final]), Q, "4", WRONG).reason == NOT_LEGITIMATE
    assert edit_trajectory(task, _Scripted(task, [WRONG]), Q, "4", WRONG).reason == NOT_LEGITIMATE
    # a correct update that also rewrites step (2), before the error step (3): FBK accepts it, SPEC 5 does not
    changed_before = GOLD_TEXT.replace("= (8 + -1) = 7.", "= (8 - 1) = 7.")
    assert task.check(Q, changed_before).is_correct
    assert edit_trajectory(task, _Scripted(task, [changed_before]), Q, "4", WRONG).reason == NOT_LEGITIMATE
    assert edit_trajectory(task, _Scripted(task, []), Q, "4", WRONG).status == DROPPED


def test_still_wrong_after_max_updates_is_dropped(task):
    # each update fixes step 3 but leaves a new, later error: progress, never correct
    later = GOLD_TEXT.replace("(7 - 3) = 4", "(7 - 3) = 5").replace("answer is 4", "answer is 5")
    res = edit_trajectory(task, _Scripted(task, [later]), Q, "4", WRONG, max_updates=1)
    assert res.status == DROPPED and res.reason == NO_POSITIVE


def test_no_filtering_keeps_an_update_that_rewrites_earlier_steps(task):
    """Correct, but step (2), before the error step, was changed: not legitimate (SPEC 5)."""
    skips = GOLD_TEXT.replace("= ((7 - -1) + -1) = (8 + -1) = 7.", "= ((7 - -1) + -1) = 7.")
    assert edit_trajectory(task, _Scripted(task, [skips]), Q, "4", WRONG).reason == NOT_LEGITIMATE
    res = edit_trajectory(task, _Scripted(task, [skips]), Q, "4", WRONG, filter_failed=False)
    assert res.status == EDITED and [t.attempt for t in res.turns] == [WRONG, skips]


def test_no_filtering_keeps_the_unfinished_edit_as_improvement_turns_only(task):
    """The "no filtering" ablation: the same edit is kept; it trains the update, never an ending."""
    later = GOLD_TEXT.replace("(7 - 3) = 4", "(7 - 3) = 5").replace("answer is 4", "answer is 5")
    res = edit_trajectory(task, _Scripted(task, [later]), Q, "4", WRONG, max_updates=1, filter_failed=False)
    assert res.status == UNFINISHED and [t.attempt for t in res.turns] == [WRONG, later]
    assert not parse_feedback(res.turns[-1].feedback).is_correct
    examples = split_into_turns(task, Q, res)
    assert [e.kind for e in examples] == [IMPROVEMENT] and not examples[0].eos
    assert examples[0].text.endswith(later)


def test_imp_error_rate_exercises_failure_paths(task):
    statuses = {edit_trajectory(task, expert(task, rate=1.0, seed=s), Q, "4", WRONG).status for s in range(20)}
    assert statuses == {DROPPED, FEEDBACK_ONLY}
    with pytest.raises(ValueError):
        ScriptedExpert(task, imp_error_rate=1.5)


def test_helpers():
    assert step_key("2") < step_key("2.1") < step_key("3") < step_key("Final response")
    a = Feedback.error("3", "6 - 3 = 2", "r")
    assert feedbacks_agree(Feedback.error("3", "3 = 2", "x"), a)
    assert not feedbacks_agree(Feedback.error("2", "6 - 3 = 2", "x"), a)
    assert not feedbacks_agree(None, a) and feedbacks_agree(Feedback.correct(), Feedback.correct())
    assert made_no_progress(a, Feedback.error("2", "x", "r")) and made_no_progress(a, a)
    assert not made_no_progress(a, Feedback.error("3", "other", "r")) and not made_no_progress(a, Feedback.correct())
    assert is_legitimate_update(WRONG, GOLD_TEXT, Feedback.error("3", "(6 - 3) = 2", "r"))


def test_split_rebalance_and_gold_counts(task):
    res = edit_trajectory(task, expert(task), Q, "4", WRONG)
    examples = split_into_turns(task, Q, res)
    assert [e.kind for e in examples] == [IMPROVEMENT, TERMINAL]
    imp, term = examples
    assert not imp.eos and term.eos
    assert imp.text.count("Feedback:") == 1 and "Updated Answer:" in imp.text
    assert imp.weight_start == imp.text.index("\nFeedback:")

    def fake(kind, i):
        return TrainExample(f"{kind}{i}", 0, kind=kind)

    pool = [fake(IMPROVEMENT, i) for i in range(6)] + [fake(TERMINAL, i) for i in range(10)]
    kept = rebalance(pool, 1.5, random.Random(0))
    assert sum(e.kind == IMPROVEMENT for e in kept) == 6 and sum(e.kind == TERMINAL for e in kept) == 4  # ceil(6/1.5)
    kept = rebalance(pool, -1, random.Random(0))
    assert sum(e.kind == TERMINAL for e in kept) == 10
    few = [fake(IMPROVEMENT, i) for i in range(30)] + [fake(TERMINAL, i) for i in range(3)]
    assert sum(e.kind == TERMINAL for e in rebalance(few, 1.5, random.Random(0))) == 3

    questions = task.generate(task.seen_cells(), 3, seed=0)
    present: set[str] = set()
    golds = gold_examples(task, questions, 5, present, random.Random(0))
    assert len(golds) == 5 and all(g.kind == GOLD and g.text.endswith("also correct.\n") for g in golds)
    again = gold_examples(task, questions, 20, present, random.Random(1))
    assert len(again) == len(questions) - 5  # the ones already present are skipped


def test_expert_error_drops_the_trajectory_with_its_reason(task):
    from tripost.editing import EXPERT_ERROR
    from tripost.experts import ExpertError

    class RefusingImprover(ScriptedExpert):
        def improve(self, question, attempt, feedback):
            raise ExpertError("refused")

    res = edit_trajectory(task, RefusingImprover(task), Q, "4", WRONG)
    assert res.status == DROPPED and res.reason == EXPERT_ERROR
    # FBK alone still works: a correct trajectory never reaches IMP.
    assert edit_trajectory(task, RefusingImprover(task), Q, "4", GOLD_TEXT).status == KEPT


def test_scripted_imp_errors_do_not_depend_on_call_order(task):
    fb = task.check(Q, WRONG)
    a, b = expert(task, rate=0.5, seed=3), expert(task, rate=0.5, seed=3)
    first = [a.improve(Q, WRONG, fb) for _ in range(3)]
    b.improve(Q, WRONG_FINAL, task.check(Q, WRONG_FINAL))  # another call in between changes nothing
    assert b.improve(Q, WRONG, fb) == first[0] == first[1] == first[2]


def test_an_expert_attempt_that_fails_drops_only_its_question(task, tmp_path):
    from types import SimpleNamespace

    from tripost.editing import EXPERT_ERROR
    from tripost.experts import ExpertError
    from tripost.loop import edit_all, expert_attempts
    from tripost.tasks import Example

    class FlakyWriter(ScriptedExpert):
        def attempt(self, question):
            if question == Q:
                raise ExpertError("garbage")
            return super().attempt(question)

    other = "((1 + 2) * (3 - 4)) ="
    window = [Example(Q, "4", "l2_d2", True), Example(other, task.gold_answer(other), "l2_d2", True)]
    writer = FlakyWriter(task, attempt_error_rate=0.0)
    outputs = expert_attempts(writer, window, tmp_path / "rollouts.jsonl", seed=0)
    assert outputs[0] is None and outputs[1] == task.gold_attempt(other)
    assert expert_attempts(writer, window, tmp_path / "rollouts.jsonl", seed=0) == outputs  # read back
    cfg = SimpleNamespace(max_updates=5, max_attempt_chars=4000, filter_failed_edits=True)
    results = edit_all(task, writer, window, outputs, cfg, tmp_path / "edited.jsonl")
    assert (results[0].status, results[0].reason) == (DROPPED, EXPERT_ERROR)
    assert results[1].status == KEPT
