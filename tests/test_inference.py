"""Self-improvement inference: cleaning, each stop rule, and the metrics, with scripted policies."""

from __future__ import annotations

import pytest

from tripost.inference import SIOutput, clean, self_improve, si_metrics
from tripost.rollout import Completion, Policy, Sampling
from tripost.rollout.stops import positive_feedback_done
from tripost.tasks import get_task

from .test_editing import GOLD_TEXT, POSITIVE, Q, WRONG

UPDATE = "Updated Answer: Let's think step by step.{info}\n"


class ScriptedPolicy(Policy):
    """Returns the next prepared continuation for each prompt; records the prompts it got.

    A reply ending in "<limit>" stands for an output cut at the token limit; the others ended
    by themselves (EOS or the stop rule).
    """

    def __init__(self, replies: list[str]):
        self.replies, self.prompts = list(replies), []

    def complete(self, prompts, sampling, stop=None, progress=None, seed=None):
        self.prompts += prompts
        out = []
        for _ in prompts:
            text = self.replies.pop(0)
            at_limit = text.endswith("<limit>")
            text = text.removesuffix("<limit>")
            cut = stop(text) if stop else None
            out.append(Completion(text[:cut] if cut is not None else text, cut is not None or not at_limit))
        return out


@pytest.fixture(scope="module")
def task():
    return get_task("multistep_arithmetic")


def fb_line(task, attempt):
    from tripost.trajectory import feedback_text

    return "Feedback: " + feedback_text(task.check(Q, attempt), attempt) + "\n"


def test_clean_keeps_recognised_lines_only():
    text = "(1) a\n(2) b\nsomething else\n(3) c\n"
    assert clean(text) == ("(1) a\n(2) b\n", True)
    assert clean("(1) a\n(1) a again\n") == ("(1) a\n", True)  # repeated step id
    assert clean("(1) a\nQ: next\n") == ("(1) a\n", True)
    assert clean("(1) a\n(2) unfinish") == ("(1) a\n", True)
    assert clean("(1) a\nFeedback: x\n") == ("(1) a\nFeedback: x\n", False)


def test_positive_feedback_stop_rule():
    text = f"(1) a\nFeedback: {POSITIVE}\nmore"
    assert text[: positive_feedback_done(text)].endswith(POSITIVE + "\n")
    assert positive_feedback_done("Feedback: In step (1) the part \"a\" is incorrect. This is because b.\n") is None


def test_stops_at_positive_feedback_with_update(task):
    reply = WRONG + fb_line(task, WRONG) + UPDATE.format(info=task.info) + GOLD_TEXT + f"Feedback: {POSITIVE}\nQ: junk\n"
    (out,) = self_improve(ScriptedPolicy([reply]), task, [Q], Sampling())
    assert out.first_answer == "5" and out.final_answer == "4" and out.updates == 1 and out.rounds == 1
    assert out.text.endswith(POSITIVE + "\n")


def test_continues_when_cut_then_stops(task):
    # round 1 ends after the negative feedback (as if cut at the token limit): fed back, continued
    first = WRONG + fb_line(task, WRONG)
    third = "(1) nothing new<limit>"
    second = UPDATE.format(info=task.info) + GOLD_TEXT + f"Feedback: {POSITIVE}\n"
    policy = ScriptedPolicy([first + "<limit>", second, third])
    (out,) = self_improve(policy, task, [Q], Sampling(), max_continuations=3)
    assert out.rounds == 2 and out.final_answer == "4"
    assert policy.prompts[1] == task.prompt(Q) + first  # the cleaned text was fed back


def test_stops_on_no_progress_and_repeats_and_bound(task):
    same = WRONG + fb_line(task, WRONG) + UPDATE.format(info=task.info) + WRONG + fb_line(task, WRONG)
    (out,) = self_improve(ScriptedPolicy([same + "<limit>", "never used"]), task, [Q], Sampling(), max_continuations=3)
    assert out.rounds == 1 and out.final_answer == "5"  # the same attempt and error again
    repeat = "(1) x\n(1) x\n<limit>"
    (out,) = self_improve(ScriptedPolicy([repeat, "never used"]), task, [Q], Sampling(), max_continuations=3)
    assert out.rounds == 1 and out.text == "(1) x\n"
    endless = [WRONG + fb_line(task, WRONG) + "<limit>"] * 5
    (out,) = self_improve(ScriptedPolicy(endless), task, [Q], Sampling(), max_continuations=2)
    assert out.rounds == 2  # bounded
    (out,) = self_improve(ScriptedPolicy([WRONG + fb_line(task, WRONG), "x"]), task, [Q], Sampling(), max_continuations=3)
    assert out.rounds == 1  # the model ended by itself (EOS) after a negative feedback


def test_si_metrics(task):
    examples = task.generate(task.seen_cells(), 1, seed=0)[:4]
    gold = [e.answer for e in examples]
    wrong = str(int(gold[0]) + 1)
    outputs = [
        SIOutput("", gold[0], gold[0], 0, 1),  # right, no update
        SIOutput("", wrong, gold[1], 1, 1) if wrong != gold[1] else SIOutput("", "x", gold[1], 1, 1),  # wrong -> right
        SIOutput("", gold[2], "nope", 1, 1),  # right -> wrong
        SIOutput("", "nope", "nope", 0, 1),  # wrong, no update
    ]
    m = si_metrics(task, examples, outputs)
    assert m["total"] == 50.0 and m["first_attempt"] == 50.0
    assert m["si_frequency"] == 50.0 and m["wrong_to_right"] == 25.0 and m["right_to_wrong"] == 25.0
    assert m["si_contribution"] == 50.0  # one of the two correct answers was wrong at first
