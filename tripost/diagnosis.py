"""How well a model criticises and fixes its own greedy first attempt, against the expert (FBK).

For every test question the model's first attempt and its own first feedback are read from its
self-improvement output and compared with the task's scripted checker on the same attempt:

- error detection: the model flags an error (its feedback names a wrong step) where FBK does
  (precision: of the attempts it flags, how many FBK flags too; recall: of the attempts FBK
  flags, how many it flags), and how often it names the same step as FBK;
- fixing: of the flagged attempts FBK agrees are wrong and that the model updated, how often
  the update is right (its answer matches the gold one).

The percentages come overall and by cell; None where nothing was there to count. Every
evaluation writes them (eval.json "diagnosis"; the headline numbers are columns of results).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tripost.formats import parse_feedback
from tripost.tasks import Example, Task
from tripost.trajectory import parse_trajectory


@dataclass
class Counts:
    attempts: int = 0
    model_flags: int = 0  # the model's first feedback names an error
    expert_flags: int = 0  # FBK finds an error (or cannot read the attempt)
    both_flag: int = 0
    same_step: int = 0  # both flag, at the same step
    updated: int = 0  # both flag and the model wrote an update
    fixed: int = 0  # ... and the update's answer is right
    steps: dict = field(default_factory=dict)

    def add(self, model_flag: bool, expert_flag: bool, same_step: bool, updated: bool, fixed: bool) -> None:
        self.attempts += 1
        self.model_flags += model_flag
        self.expert_flags += expert_flag
        both = model_flag and expert_flag
        self.both_flag += both
        self.same_step += both and same_step
        self.updated += both and updated
        self.fixed += both and updated and fixed

    def percentages(self) -> dict[str, Any]:
        def pct(a: int, b: int) -> float | None:
            return round(100.0 * a / b, 2) if b else None

        return {
            "attempts": self.attempts,
            "detect_precision": pct(self.both_flag, self.model_flags),
            "detect_recall": pct(self.both_flag, self.expert_flags),
            "same_step": pct(self.same_step, self.both_flag),
            "fix_rate": pct(self.fixed, self.updated),
            "model_flags": self.model_flags,
            "expert_flags": self.expert_flags,
        }


def diagnose(task: Task, examples: list[Example], outputs: list) -> dict[str, Any]:
    """Detection and fixing of the model's own first attempts (module docstring), overall and by cell."""
    overall, by_cell = Counts(), {}
    for example, output in zip(examples, outputs, strict=True):
        turns = parse_trajectory(output.text).turns
        if not turns:
            continue
        first = turns[0]
        own = parse_feedback(first.feedback) if first.feedback is not None else None
        model_flag = own is not None and own.is_error
        expert = task.check(example.question, first.attempt)
        expert_flag = not expert.is_correct
        same_step = model_flag and expert.is_error and own.step == expert.step
        updated = len(turns) > 1 and bool(turns[1].attempt.strip())
        fixed = updated and task.answers_match(task.parse_answer(turns[1].attempt), example.answer)
        for counts in (overall, by_cell.setdefault(example.cell, Counts())):
            counts.add(model_flag, expert_flag, same_step, updated, fixed)
    return {**overall.percentages(), "by_cell": {cell: c.percentages() for cell, c in sorted(by_cell.items())}}


HEADLINE = ("detect_precision", "detect_recall", "fix_rate")
