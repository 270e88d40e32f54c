"""The gold policy: writes the task's gold rationale for every prompt.

Evaluating it must give 100% accuracy, which checks questions, formats and parsing end to end.
"""

from __future__ import annotations

from typing import Callable

from tripost.formats import ANSWER_HEADER
from tripost.rollout.policy import Completion, Policy, Sampling
from tripost.rollout.stops import StopRule, after_final_response
from tripost.tasks import Task


def question_of(prompt: str) -> str:
    """The question of a prompt "Q: <question>\\nAnswer: ..." (the question may span lines)."""
    body = prompt[len("Q: ") :] if prompt.startswith("Q: ") else prompt
    return body.split("\n" + ANSWER_HEADER, 1)[0]


class GoldPolicy(Policy):
    def __init__(self, task: Task):
        self.task = task

    def complete(
        self,
        prompts: list[str],
        sampling: Sampling | None = None,  # unused: the gold rationale is the same however one samples
        stop: StopRule | None = after_final_response,
        progress: Callable[[int], None] | None = None,
        seed: int | None = None,
    ) -> list[Completion]:
        out = []
        for p in prompts:
            out.append(Completion(self._attempt(question_of(p)), finished=True))
            if progress:
                progress(1)
        return out

    def _attempt(self, question: str) -> str:
        # A question the task's solver cannot answer (e.g. a BIG-Bench Hard date item none of
        # whose options holds the right date) gets no answer: it is scored wrong, not a crash.
        try:
            return self.task.gold_attempt(question)
        except Exception:  # noqa: BLE001
            return ""
