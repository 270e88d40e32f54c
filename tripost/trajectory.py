"""Self-improvement trajectories: attempt, feedback, updated attempt, feedback, ... (SPEC 4).

A trajectory is what follows the prompt: the first attempt's step lines, then for each turn
a "Feedback: ..." line, and, when the feedback found an error, an "Updated Answer: ..."
header with the next attempt's steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tripost.formats import FEEDBACK_PREFIX, UPDATE_HEADER, Feedback, render_feedback, split_steps


@dataclass
class Turn:
    attempt: str  # attempt body: step lines, each ending in "\n"
    feedback: str | None = None  # feedback text after "Feedback: ", None if the model wrote none


@dataclass
class Trajectory:
    turns: list[Turn] = field(default_factory=list)

    @property
    def attempts(self) -> list[str]:
        return [t.attempt for t in self.turns]

    def render(self, info: str = "") -> str:
        return render_turns(self.turns, info)


def render_turns(turns: list[Turn], info: str = "") -> str:
    """The continuation text of a trajectory (without the prompt)."""
    out = []
    for i, turn in enumerate(turns):
        if i > 0:
            out.append(f"{UPDATE_HEADER}{info}\n")
        out.append(turn.attempt)
        if turn.feedback is not None:
            out.append(f"{FEEDBACK_PREFIX}{turn.feedback}\n")
    return "".join(out)


def parse_trajectory(text: str) -> Trajectory:
    """Split a continuation into turns; stops at a new "Q:" line. Never raises."""
    turns: list[Turn] = []
    lines: list[str] = []
    feedback: str | None = None
    started = True  # the first attempt starts right after the prompt

    def flush():
        if lines or feedback is not None:
            turns.append(Turn("".join(lines), feedback))

    for raw in text.split("\n"):
        line = raw.strip()
        if line.startswith("Q:"):
            break
        if line.startswith(UPDATE_HEADER.split(":")[0] + ":"):
            flush()
            lines, feedback, started = [], None, True
        elif line.startswith(FEEDBACK_PREFIX.strip()):
            if feedback is not None:  # a second feedback without an update: a new turn
                flush()
                lines = []
            feedback = line[len(FEEDBACK_PREFIX.strip()) :].strip()
            started = False
        elif line and started:
            lines.append(line + "\n")
    flush()
    return Trajectory(turns)


def feedback_text(feedback: Feedback, attempt: str) -> str:
    """Render a checker's feedback for this attempt (step ids taken from the attempt)."""
    steps = split_steps(attempt) or []
    return render_feedback(feedback, [s.id for s in steps])
