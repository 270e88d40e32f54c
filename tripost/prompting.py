"""The prompting baselines of SPEC 8: the starting model, not fine-tuned, answers with a few-shot
prefix of worked examples; with self-improvement prompting the examples are trajectories that
find and fix their own error. Both are scored by the same self-improvement inference.
"""

from __future__ import annotations

from typing import Callable

from tripost.experts.prompts import build_demos
from tripost.formats import Feedback
from tripost.rollout.policy import Completion, Policy, Sampling
from tripost.rollout.stops import StopRule, after_final_response
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


class PrefixedPolicy(Policy):
    """A policy whose every prompt starts with a fixed prefix (the continuation is unchanged).

    It does not close ``policy``: the phase that opened it does."""

    def __init__(self, policy: Policy, prefix: str):
        self.policy, self.prefix = policy, prefix

    def complete(
        self,
        prompts: list[str],
        sampling: Sampling,
        stop: StopRule | None = after_final_response,
        progress: Callable[[int], None] | None = None,
        seed: int | None = None,
    ) -> list[Completion]:
        return self.policy.complete([self.prefix + p for p in prompts], sampling, stop=stop, progress=progress, seed=seed)
