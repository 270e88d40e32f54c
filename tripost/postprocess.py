"""Post-processing of edited trajectories into training examples (SPEC 2.2).

- convert to turns: every (attempt_i, feedback_i, attempt_i+1) is an *improvement* example;
  the final (attempt_n, positive feedback) and correct first attempts are *terminal*; a
  feedback-only result gives one (attempt_1, feedback_1) improvement example;
- re-balance with p: all improvement examples and min(ceil(#improvement / p), #terminal)
  random terminal ones (p <= 0: all of them);
- add as many gold-rationale examples (with the positive feedback) as terminal ones kept,
  skipping ones already present.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from tripost.editing import EDITED, FEEDBACK_ONLY, KEPT, UNFINISHED, EditResult
from tripost.formats import Feedback
from tripost.tasks import Example, Task
from tripost.tasks.base import as_attempt
from tripost.training.data import GOLD, IMPROVEMENT, TERMINAL, TrainExample
from tripost.trajectory import Turn, feedback_text, render_turns


def split_into_turns(task: Task, question: str, result: EditResult) -> list[TrainExample]:
    """Training examples of one edited trajectory; only an example ending a trajectory gets EOS."""
    prompt = task.prompt(question)
    turns = result.turns

    def example(ts: list[Turn], kind: str, eos: bool) -> TrainExample:
        return TrainExample(prompt + render_turns(ts, task.info), len(prompt), kind=kind, eos=eos)

    if result.status == FEEDBACK_ONLY:
        return [example(turns[:1], IMPROVEMENT, eos=False)]
    if result.status not in (KEPT, EDITED, UNFINISHED):
        return []
    out = [
        example([turns[i], Turn(turns[i + 1].attempt, None)], IMPROVEMENT, eos=False) for i in range(len(turns) - 1)
    ]
    if result.status != UNFINISHED:  # its last feedback is not positive: nothing to end on
        out.append(example(turns[-1:], TERMINAL, eos=True))
    return out


def rebalance(examples: list[TrainExample], p: float, rng: random.Random) -> list[TrainExample]:
    """Keep all improvement examples and at most ceil(#improvement / p) terminal ones."""
    improvement = [e for e in examples if e.kind == IMPROVEMENT]
    terminal = [e for e in examples if e.kind == TERMINAL]
    if p <= 0:
        return improvement + terminal
    keep = min(math.ceil(len(improvement) / p), len(terminal))
    return improvement + rng.sample(terminal, keep)


def gold_examples(task: Task, examples: list[Example], count: int, present: set[str], rng: random.Random) -> list[TrainExample]:
    """``count`` gold rationales with the positive feedback, none already in ``present``."""
    out = []
    for ex in rng.sample(examples, len(examples)):
        if len(out) >= count:
            break
        prompt = task.prompt(ex.question)
        rationale = as_attempt(ex.rationale) if ex.rationale else task.gold_attempt(ex.question)
        text = prompt + render_turns([Turn(rationale, feedback_text(Feedback.correct(), rationale))], task.info)
        if text not in present:
            out.append(TrainExample(text, len(prompt), kind=GOLD, eos=True))
            present.add(text)
    return out


@dataclass
class Counts:
    improvement: int = 0
    terminal: int = 0
    gold: int = 0

    @classmethod
    def of(cls, examples: list[TrainExample]) -> Counts:
        kinds = [e.kind for e in examples]
        return cls(kinds.count(IMPROVEMENT), kinds.count(TERMINAL), kinds.count(GOLD))
