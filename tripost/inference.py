"""Self-improvement inference and its metrics (SPEC 7).

The model continues the prompt greedily; its output is cleaned line by line (only recognised
lines, no repeated step id, no repeated line, nothing after a new "Q:"), and fed back until
its last feedback is positive, it stops by itself, it makes no progress, or the number of
continuations runs out. The answer is parsed from the last attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tripost.evaluation import accuracy_table
from tripost.formats import ANSWER_HEADER, FEEDBACK_PREFIX, UPDATE_HEADER, parse_feedback, parse_step
from tripost.rollout import Sampling
from tripost.rollout.stops import positive_feedback_done
from tripost.tasks import Example, Task
from tripost.trajectory import parse_trajectory

_RECOGNISED = (FEEDBACK_PREFIX.strip(), UPDATE_HEADER.split(":")[0] + ":", ANSWER_HEADER.split(":")[0] + ":")


def clean(text: str, previous_line: str = "", previous_step: str | None = None) -> tuple[str, bool]:
    """Keep recognised lines; return (kept text, whether something was cut).

    Cuts at a new "Q:", an unrecognised line, a step id repeating the previous step's id, or a
    line equal to the previous line.
    """
    kept: list[str] = []
    lines = text.split("\n")
    complete = lines if text.endswith("\n") else lines[:-1]  # a last partial line is not kept
    for line in complete:
        if not line.strip():
            continue
        step = parse_step(line)
        recognised = step is not None or line.startswith(_RECOGNISED)
        if not recognised or line.startswith("Q:") or line == previous_line:
            return "".join(kept), True
        if step is not None and step.id == previous_step:
            return "".join(kept), True
        kept.append(line + "\n")
        previous_line = line
        previous_step = step.id if step is not None else None
    return "".join(kept), len(complete) < len(lines) and bool(lines[-1].strip())


@dataclass
class SIOutput:
    text: str  # the cleaned continuation
    first_answer: str | None
    final_answer: str | None
    updates: int  # attempts after the first
    rounds: int  # generation calls made


def self_improve(
    policy, task: Task, questions: list[str], sampling: Sampling, max_continuations: int = 3, progress=None
) -> list[SIOutput]:
    """Run self-improvement inference on every question, batched across questions."""
    prompts = [task.prompt(q) for q in questions]
    texts = [""] * len(questions)
    rounds = [0] * len(questions)
    active = list(range(len(questions)))
    for round_ in range(max(1, max_continuations)):
        if not active:
            break
        # the bar follows the first round, which every question goes through
        outs = policy.complete(
            [prompts[i] + texts[i] for i in active],
            sampling,
            stop=positive_feedback_done,
            progress=progress if round_ == 0 else None,
        )
        still = []
        for i, out in zip(active, outs, strict=True):
            rounds[i] += 1
            prev_lines = texts[i].rstrip("\n").split("\n")
            prev_step = parse_step(prev_lines[-1]) if texts[i] else None
            kept, was_cut = clean(out.text, prev_lines[-1] if texts[i] else "", prev_step.id if prev_step else None)
            texts[i] += kept
            if not (out.finished or _finished(texts[i], kept, was_cut)):
                still.append(i)
        active = still
    return [_summarise(task, t, r) for t, r in zip(texts, rounds, strict=True)]


def _finished(text: str, kept: str, was_cut: bool) -> bool:
    """After an output that ran into the token limit: is there still a reason to stop?"""
    if not kept or was_cut:
        return True  # nothing new, or a repeat / unrecognised line
    if positive_feedback_done(text) is not None:
        return True
    turns = parse_trajectory(text).turns
    feedbacks = [parse_feedback(t.feedback) for t in turns if t.feedback is not None]
    if len(feedbacks) >= 2 and feedbacks[-1].is_error and feedbacks[-2].is_error:
        a, b = feedbacks[-2], feedbacks[-1]
        if (a.step, a.segment) == (b.step, b.segment):
            return True  # no progress
    return len(turns) >= 2 and turns[-1].attempt == turns[-2].attempt  # the same attempt again


def _summarise(task: Task, text: str, rounds: int) -> SIOutput:
    turns = parse_trajectory(text).turns
    attempts = [t.attempt for t in turns if t.attempt.strip()] or [""]
    return SIOutput(
        text=text,
        first_answer=task.parse_answer(attempts[0]),
        final_answer=task.parse_answer(attempts[-1]),
        updates=len(attempts) - 1,
        rounds=rounds,
    )


def si_metrics(task: Task, examples: list[Example], outputs: list[SIOutput]) -> dict[str, Any]:
    """Accuracy table of the final answers plus the self-improvement metrics, in percent."""
    final_ok = [task.answers_match(o.final_answer, e.answer) for e, o in zip(examples, outputs, strict=True)]
    first_ok = [task.answers_match(o.first_answer, e.answer) for e, o in zip(examples, outputs, strict=True)]
    improved = [o.updates > 0 for o in outputs]
    metrics = accuracy_table(task, examples, final_ok)
    n = max(1, len(examples))
    n_correct = sum(final_ok)

    def pct(x: float) -> float:
        return round(100.0 * x, 2)

    metrics.update(
        first_attempt=pct(sum(first_ok) / n),
        si_frequency=pct(sum(improved) / n),
        si_contribution=pct(sum(1 for f, o in zip(first_ok, final_ok) if o and not f) / max(1, n_correct)),
        wrong_to_right=pct(sum(1 for f, o in zip(first_ok, final_ok) if o and not f) / n),
        right_to_wrong=pct(sum(1 for f, o in zip(first_ok, final_ok) if f and not o) / n),
    )
    return metrics


def prediction_records(task: Task, examples: list[Example], outputs: list[SIOutput]) -> list[dict[str, Any]]:
    """One record per test question, for predictions.jsonl: output, answers and correctness."""
    return [
        {
            "question": e.question,
            "cell": e.cell,
            "seen": e.seen,
            "gold": e.answer,
            "prediction": o.final_answer,
            "correct": task.answers_match(o.final_answer, e.answer),
            "first_answer": o.first_answer,
            "updates": o.updates,
            "output": o.text,
        }
        for e, o in zip(examples, outputs, strict=True)
    ]
