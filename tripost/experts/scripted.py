"""The scripted expert: the task's checker as FBK, the gold rationale as IMP (SPEC 5).

As the writer of attempts (the "ft SI. demo" baseline) it gives the gold rationale, with an
injected error in a share ``attempt_error_rate`` of the questions.

IMP keeps the attempt's steps before the error step and continues with the gold rationale
from that step on. ``imp_error_rate`` makes IMP err on purpose, half the time each way, so the
editor's failure and no-progress paths run for real (the draw depends on the seed, question and
attempt only, so edits running in parallel come out the same in any order):
- "unfinished": the update loses its "(Final response)" line (not a legitimate update);
- "unfixed": the wrong step is kept as it was (the same error again: no progress).
"""

from __future__ import annotations

import random

from tripost.experts.base import Expert
from tripost.formats import FINAL_STEP, Feedback, error_position, split_steps
from tripost.tasks import Task


class ScriptedExpert(Expert):
    def __init__(self, task: Task, imp_error_rate: float = 0.0, seed: int = 0, attempt_error_rate: float = 0.5):
        for name, rate in (("imp_error_rate", imp_error_rate), ("attempt_error_rate", attempt_error_rate)):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {rate}")
        self.task, self.imp_error_rate, self.seed = task, imp_error_rate, seed
        self.attempt_error_rate = attempt_error_rate

    def attempt(self, question: str) -> str:
        """The gold rationale, with one injected error (of a kind the checker reports) in a
        share ``attempt_error_rate`` of the questions."""
        rng = random.Random(f"{self.seed}\0attempt\0{question}")
        if rng.random() < self.attempt_error_rate:
            wrong = self.task.inject_error(question, rng)
            if wrong is not None:
                return wrong
        return self.task.gold_attempt(question)

    def reseed(self, seed: int) -> None:
        self.seed = seed

    def feedback(self, question: str, attempt: str) -> Feedback:
        return self.task.check(question, attempt)

    def improve(self, question: str, attempt: str, feedback: Feedback) -> str | None:
        if not feedback.is_error:
            return None
        steps = split_steps(attempt)
        gold = split_steps(self.task.gold_attempt(question))
        if steps is None or gold is None:
            return None
        cut = error_position(steps, feedback.step, feedback.segment)
        if cut is None:
            return None
        kept = steps[:cut]
        if [s.id for s in kept] == [s.id for s in gold[:cut]]:
            rest = gold[cut:]  # the kept steps are gold's (the checker passed them): continue by position
        else:  # a differently shaped prefix: continue with the gold steps whose ids are not kept
            kept_ids = {s.id for s in kept}
            rest = [s for s in gold if s.id not in kept_ids]
        if feedback.step == FINAL_STEP:
            rest = [s for s in gold if s.id == FINAL_STEP]
        new = kept + rest
        rng = random.Random(f"{self.seed}\0{question}\0{attempt}")
        if self.imp_error_rate and rng.random() < self.imp_error_rate:
            if rng.random() < 0.5:
                new = [s for s in new if s.id != FINAL_STEP]  # unfinished
            else:
                new = new[:cut] + [steps[cut]] + new[cut + 1:]  # unfixed
        return "".join(s.line + "\n" for s in new)
