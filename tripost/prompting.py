"""The prompting baselines of SPEC 8: the starting model, not fine-tuned, answers with a few-shot
prefix of worked examples; with self-improvement prompting the examples are trajectories that
find and fix their own error. Both are scored by the same self-improvement inference.
"""

from __future__ import annotations

from tripost.experts.prompts import build_demos
from tripost.formats import Feedback
from tripost.tasks import Task
from tripost.trajectory import Turn, feedback_text, render_turns


def few_shot_prefix(task: Task, shots: int, self_improve: bool, seed: int = 0) -> str:
    """``shots`` worked examples from the task's own questions, each a prompt and its answer:
    the gold rationale, or (``self_improve``) a wrong attempt, its feedback, the update and a
    positive feedback."""
    parts = []
    for demo in build_demos(task, shots, seed):
        if self_improve:
            turns = [Turn(demo.attempt, feedback_text(demo.feedback, demo.attempt)),
                     Turn(demo.update, feedback_text(Feedback.correct(), demo.update))]
        else:
            turns = [Turn(demo.gold, None)]
        parts.append(task.prompt(demo.question) + render_turns(turns, task.info) + "\n")
    return "".join(parts)


class PrefixedPolicy:
    """A policy whose every prompt starts with a fixed prefix (the continuation is unchanged)."""

    def __init__(self, policy, prefix: str):
        self.policy, self.prefix = policy, prefix

    def complete(self, prompts, *args, **kwargs):
        return self.policy.complete([self.prefix + p for p in prompts], *args, **kwargs)
