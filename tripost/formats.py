"""The text formats every task shares (SPEC section 4): prompts, steps and feedback.

Tasks own what goes *inside* a step; this module owns the frame around the steps, so a
trajectory written by any task reads the same and parses the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ANSWER_HEADER = "Answer: Let's think step by step."
UPDATE_HEADER = "Updated Answer: Let's think step by step."
FEEDBACK_PREFIX = "Feedback: "
FINAL_STEP = "Final response"
POSITIVE_MARKER = "final response is also correct"

# "(3) text", "(3.2) text" or "(Final response) text"; the id keeps its dots.
_STEP_LINE = re.compile(r"^\((\d+(?:\.\d+)*|Final response)\) ?(.*)$")


def format_prompt(question: str, info: str = "") -> str:
    """The prompt a model continues: question, then the answer header and the task's info."""
    return f"Q: {question}\n{ANSWER_HEADER}{info}\n"


def format_attempt(steps: list[tuple[str, str]]) -> str:
    """Render (step id, text) pairs as attempt lines, e.g. [("1", "x"), ("Final response", "y")]."""
    return "".join(f"({sid}) {text}\n" for sid, text in steps)


@dataclass(frozen=True)
class Step:
    id: str  # "1", "3.2" or "Final response"
    text: str  # the content after "(id) "

    @property
    def line(self) -> str:
        return f"({self.id}) {self.text}"


def parse_step(line: str) -> Step | None:
    m = _STEP_LINE.match(line.strip())
    return Step(m.group(1), m.group(2)) if m else None


def split_steps(attempt: str) -> list[Step] | None:
    """Parse an attempt body into steps; None if any non-empty line is not a step line.

    The attempt body is what follows the "Answer: ..." header line: numbered steps and a
    "(Final response)" line.
    """
    steps = []
    for line in attempt.strip("\n").split("\n"):
        if not line.strip():
            continue
        step = parse_step(line)
        if step is None:
            return None
        steps.append(step)
    return steps


def error_position(steps: list[Step], step_id: str | None, segment: str | None) -> int | None:
    """Index of the step a feedback points at: the first step with that id whose text holds the
    error segment, else the first with that id; None if no step has it. Ids can repeat (the
    reference's word-sort rationales number every re-sort of a subpart (3.2)), so edits cut by
    position, not by id."""
    with_id = [i for i, s in enumerate(steps) if s.id == step_id]
    if not with_id:
        return None
    return next((i for i in with_id if segment and segment in steps[i].text), with_id[0])


def final_response(attempt: str) -> str | None:
    """Text of the last "(Final response)" line of an attempt, or None."""
    found = None
    for line in attempt.split("\n"):
        step = parse_step(line)
        if step is not None and step.id == FINAL_STEP:
            found = step.text
    return found


# ---------------------------------------------------------------- feedback grammar


@dataclass(frozen=True)
class Feedback:
    """One feedback line, positive or pointing at the earliest wrong step.

    ``kind`` is "correct", "error" or "unparsable". An unparsable result is never an
    exception: a checker that cannot read an attempt returns it with a reason.
    """

    kind: Literal["correct", "error", "unparsable"]
    step: str | None = None
    segment: str | None = None
    reason: str | None = None

    @property
    def is_correct(self) -> bool:
        return self.kind == "correct"

    @property
    def is_error(self) -> bool:
        return self.kind == "error"

    @property
    def is_unparsable(self) -> bool:
        return self.kind == "unparsable"

    @classmethod
    def correct(cls) -> Feedback:
        return cls("correct")

    @classmethod
    def error(cls, step: str, segment: str, reason: str) -> Feedback:
        return cls("error", step, segment, reason)

    @classmethod
    def unparsable(cls, reason: str) -> Feedback:
        return cls("unparsable", reason=reason)


def _range_prefix(step_ids: list[str]) -> str:
    if not step_ids:
        return ""
    if len(step_ids) == 1:
        return f"Step ({step_ids[0]}) is correct."
    return f"Step ({step_ids[0]}) to step ({step_ids[-1]}) are correct."


def render_feedback(feedback: Feedback, step_ids: list[str]) -> str:
    """The one-line feedback text (without "Feedback: ") for an attempt with these step ids.

    ``step_ids`` are the attempt's numbered step ids in order ("Final response" excluded).
    """
    numbered = [s for s in step_ids if s != FINAL_STEP]
    if feedback.is_correct:
        prefix = _range_prefix(numbered)
        return f"{prefix} The final response is also correct.".strip()
    if not feedback.is_error:
        raise ValueError(f"cannot render a {feedback.kind} feedback")
    if feedback.step == FINAL_STEP:
        before = numbered
    else:
        before = numbered[: numbered.index(feedback.step)] if feedback.step in numbered else []
    prefix = _range_prefix(before)
    body = (
        f'In step ({feedback.step}) the part "{feedback.segment}" is incorrect. '
        f"This is because {feedback.reason}"
    )
    if not body.endswith("."):
        body += "."
    return f"{prefix} {body}".strip()


_ERROR_STEP = re.compile(r"In step \((\d+(?:\.\d+)*|Final response)\) the part")
_ERROR_SEGMENT = re.compile(r'the part "(.*)" is incorrect')
_REASON = re.compile(r"because (.*)$")


def parse_feedback(text: str) -> Feedback:
    """Read a feedback line back; anything outside the grammar is "unparsable"."""
    text = text.strip()
    if text.startswith(FEEDBACK_PREFIX.strip()):
        text = text[len(FEEDBACK_PREFIX.strip()) :].strip()
    if not text:
        return Feedback.unparsable("empty feedback")
    if "\n" in text:
        return Feedback.unparsable("feedback spans more than one line")
    if POSITIVE_MARKER in text:
        return Feedback.correct()
    step = _ERROR_STEP.search(text)
    segment = _ERROR_SEGMENT.search(text)
    reason = _REASON.search(text)
    if "is incorrect" not in text or not (step and segment and reason):
        return Feedback.unparsable("feedback names no step, segment and reason")
    return Feedback.error(step.group(1), segment.group(1), reason.group(1).rstrip("."))
