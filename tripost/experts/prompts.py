"""Few-shot prompts of an LLM expert (FBK, IMP and ATT), and reading the replies.

Our own prompts, for any Task: the demonstrations are built from the task's own generated
questions and gold rationales, with one error injected into the attempt (``Task.inject_error``)
and the scripted expert's feedback and update on it, so a new task needs no prompt writing.

Every request, chat or completion, is laid out in blocks with marker lines of their own
(``[QUESTION]``, ``[ATTEMPT]``, ``[FEEDBACK]``, then ``[YOUR FEEDBACK]``, ``[UPDATED ATTEMPT]`` or
``[YOUR ATTEMPT]``), so the question, attempt and feedback can be read back out of a final request:
our OpenAI-compatible test server answers from them (``tripost.experts.server_parsing``).

Replies:
- FBK: three lines ``Earliest error step: (3)`` / ``Error segment: "..."`` / ``Error reason: ...``,
  or the single line ``Earliest error step: none`` when the attempt is correct
  (``Earliest error step: unreadable`` plus a reason line: the attempt cannot be read as steps).
- IMP: the updated attempt body, step lines ending with the ``(Final response) ...`` line. A chat
  reply gives the whole body; a completion continues after the kept steps the prompt ends
  with. ``merge_update`` turns either into the full updated attempt.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import cached_property

from tripost.experts.base import ExpertError
from tripost.experts.scripted import ScriptedExpert
from tripost.formats import ANSWER_HEADER, FINAL_STEP, UPDATE_HEADER, Feedback, Step, parse_step, split_steps
from tripost.tasks import Task

FBK, IMP, ATT = "fbk", "imp", "att"  # feedback, improvement, and the expert's own attempts (ft SI. demo)

QUESTION_MARK = "[QUESTION]"
ATTEMPT_MARK = "[ATTEMPT]"
FEEDBACK_MARK = "[FEEDBACK]"
FBK_SLOT = "[YOUR FEEDBACK]"
IMP_SLOT = "[UPDATED ATTEMPT]"
ATT_SLOT = "[YOUR ATTEMPT]"
MARKERS = (QUESTION_MARK, ATTEMPT_MARK, FEEDBACK_MARK, FBK_SLOT, IMP_SLOT, ATT_SLOT)  # each on a line of its own

# A completion model would go on to invent the next example: stop where it would begin.
COMPLETION_STOP = [QUESTION_MARK]

FBK_INSTRUCTIONS = f"""\
You check step-by-step answers. Each request gives a question after {QUESTION_MARK} and an attempt \
after {ATTEMPT_MARK}: numbered steps such as (1), (2), (2.1), and a last line "(Final response) ...".
Find the earliest step that is wrong. Reply with exactly three lines:
Earliest error step: (k)
Error segment: "the wrong part of that step, copied exactly"
Error reason: why it is wrong, in one sentence
Write the step id as it appears in the attempt, e.g. (3), (3.2) or (Final response).
If every step and the final response are correct, reply with the single line:
Earliest error step: none
If the attempt cannot be read as numbered steps at all, reply "Earliest error step: unreadable" \
and an "Error reason:" line."""

IMP_INSTRUCTIONS = f"""\
You correct step-by-step answers. Each request gives a question after {QUESTION_MARK}, an attempt \
after {ATTEMPT_MARK}, and after {FEEDBACK_MARK} the earliest wrong step of the attempt, the wrong \
part of it and why it is wrong.
Write the updated attempt after {IMP_SLOT}: copy the steps before the wrong step unchanged, write \
the wrong step again correctly, and continue step by step in the same format, one step per line, \
up to the last line "(Final response) So the answer is ...". Write nothing else."""


ATT_INSTRUCTIONS = f"""\
You answer questions step by step. Each request gives a question after {QUESTION_MARK}. Write your \
answer after {ATT_SLOT}: numbered steps such as (1), (2), (2.1), one step per line, in the same \
format as the examples, up to the last line "(Final response) So the answer is ...". Write nothing else."""


@dataclass(frozen=True)
class Demo:
    """One worked example: a question, its gold rationale, a wrong attempt, FBK on it, IMP's update."""

    question: str
    gold: str
    attempt: str
    feedback: Feedback
    update: str


# =================================================================== demonstrations


def build_demos(task: Task, shots: int, seed: int = 0) -> list[Demo]:
    """``shots`` demonstrations from the task's own seen questions, the same for the same seed.

    Each has an attempt with one injected error the scripted checker reports, that checker's
    feedback, and the scripted update (the kept steps, then the gold rationale)."""
    scripted = ScriptedExpert(task)
    rng = random.Random(f"tripost-demos\0{task.name}\0{seed}")
    cells = task.seen_cells()
    demos: list[Demo] = []
    questions: set[str] = set()
    for _ in range(50 * max(shots, 1)):
        if len(demos) >= shots:
            break
        example = task.sample(rng.choice(cells), rng)
        if example.question in questions:
            continue
        wrong = task.inject_error(example.question, rng)
        if wrong is None:
            continue
        feedback = task.check(example.question, wrong)
        update = scripted.improve(example.question, wrong, feedback)
        if not feedback.is_error or update is None:
            continue
        questions.add(example.question)
        demos.append(Demo(example.question, task.gold_attempt(example.question), wrong, feedback, update))
    if len(demos) < shots:
        raise RuntimeError(f"task {task.name}: found only {len(demos)} of {shots} few-shot demonstrations")
    return demos


# =================================================================== replies


def render_fbk_reply(feedback: Feedback) -> str:
    """The FBK reply text for a feedback (what demonstrations show and our server answers)."""
    if feedback.is_correct:
        return "Earliest error step: none"
    reason = " ".join((feedback.reason or "").split("\n"))
    if feedback.is_unparsable:
        return f"Earliest error step: unreadable\nError reason: {reason}"
    return f'Earliest error step: ({feedback.step})\nError segment: "{feedback.segment}"\nError reason: {reason}'


def _label_pattern(label: str) -> re.Pattern:
    # Tolerates list bullets and markdown bold around the label ("**Error reason:** ...").
    return re.compile(rf"^\s*(?:[-*]\s+)?(?:\*\*|__)?{label}\s*(?:\*\*|__)?\s*:\s*(?:\*\*|__)?\s*(.*?)\s*$", re.I)


_STEP_LABEL = _label_pattern("earliest error step")
_SEGMENT_LABEL = _label_pattern("error segment")
_REASON_LABEL = _label_pattern("error reason")
_NO_ERROR = re.compile(r"^(none|no error|no errors|n/?a|nothing|correct|all correct|-)$", re.I)
_STEP_ID = re.compile(r"\(?\s*(\d+(?:\.\d+)*|final response)\s*\)?", re.I)
_REFUSAL = re.compile(r"^\W*(i'?m sorry|i am sorry|sorry|i can(?:no|')t|i am unable|i'?m unable|i won'?t|as an ai)", re.I)
_QUOTES = {'"': '"', "\u201c": "\u201d", "'": "'", "`": "`"}


def _strip_fences(text: str) -> str:
    """The reply without markdown code-fence lines (```), which chat models like to add."""
    return "\n".join(line for line in text.split("\n") if not line.strip().startswith("```"))


def _labelled(lines: list[str], pattern: re.Pattern) -> str | None:
    for line in lines:
        m = pattern.match(line)
        if m:
            return m.group(1)
    return None


def _unquote(segment: str) -> str:
    """The segment without one pair of surrounding quotes (the segment itself may hold quotes)."""
    if len(segment) >= 2 and _QUOTES.get(segment[0]) == segment[-1]:
        return segment[1:-1]
    return segment


def _snippet(text: str) -> str:
    return repr(text.strip()[:80])


def parse_fbk_reply(text: str, attempt: str) -> Feedback:
    """The FBK reply as a Feedback of our grammar.

    Raises ExpertError on an empty reply, a refusal, a reply outside the three-line format, or a
    step id the attempt does not have."""
    if not text or not text.strip():
        raise ExpertError("FBK reply is empty")
    lines = _strip_fences(text).strip().split("\n")
    value = _labelled(lines, _STEP_LABEL)
    if value is None:
        if _REFUSAL.match(lines[0]):
            raise ExpertError(f"FBK refused: {_snippet(text)}")
        raise ExpertError(f"FBK reply has no 'Earliest error step:' line: {_snippet(text)}")
    value = value.strip().rstrip(".").strip("*").strip()
    if _NO_ERROR.match(value):
        return Feedback.correct()
    reason = _labelled(lines, _REASON_LABEL)
    if value.lower().startswith("unreadable"):
        return Feedback.unparsable(reason or "the expert cannot read the attempt")
    m = _STEP_ID.fullmatch(value) or _STEP_ID.search(value)
    if m is None:
        raise ExpertError(f"FBK reply names no step: {_snippet(value)}")
    step = FINAL_STEP if m.group(1).lower() == FINAL_STEP.lower() else m.group(1)
    ids = [s.id for s in split_steps(attempt) or []]
    if step not in ids:
        raise ExpertError(f"FBK reply names step ({step}), which the attempt does not have")
    segment = _labelled(lines, _SEGMENT_LABEL)
    if not segment or not _unquote(segment):
        raise ExpertError("FBK reply has no 'Error segment:' line")
    if not reason:
        raise ExpertError("FBK reply has no 'Error reason:' line")
    return Feedback.error(step, _unquote(segment), reason)


def parse_imp_reply(text: str, role: str = "IMP") -> str:
    """The updated attempt body in an IMP reply (or the attempt in an ATT reply): its step
    lines, each ending in a newline.

    Code fences, an "Updated Answer: ..." header and any chatter before the first step line or
    after the "(Final response)" line are dropped. Raises ExpertError if the reply is empty, has
    no step line, or has a line between its steps that is not a step."""
    if not text or not text.strip():
        raise ExpertError(f"{role} reply is empty")
    steps: list[Step] = []
    for line in _strip_fences(text).split("\n"):
        if not line.strip():
            continue
        step = parse_step(line)
        if step is None:
            if not steps:
                continue  # a header such as "Updated Answer: ..." or a preamble
            raise ExpertError(f"{role} reply has a line that is not a step: {_snippet(line)}")
        steps.append(step)
        if step.id == FINAL_STEP:
            break  # anything after the final response (a feedback, a new question) is not ours
    if not steps:
        if _REFUSAL.match(text.strip()):
            raise ExpertError(f"{role} refused: {_snippet(text)}")
        raise ExpertError(f"{role} reply has no step lines: {_snippet(text)}")
    return "".join(s.line + "\n" for s in steps)


def kept_steps(attempt: str, feedback: Feedback) -> list[Step]:
    """The attempt's steps before the error step: an update keeps them unchanged."""
    steps = split_steps(attempt) or []
    ids = [s.id for s in steps]
    return steps[: ids.index(feedback.step)] if feedback.step in ids else steps


def merge_update(attempt: str, feedback: Feedback, body: str) -> str:
    """The full updated attempt from an IMP reply body: the body itself when it starts again
    from a kept step (a chat reply), else the kept steps followed by it (a completion)."""
    kept = kept_steps(attempt, feedback)
    new = split_steps(body) or []
    if new and new[0].id in {s.id for s in kept}:
        return body
    return "".join(s.line + "\n" for s in kept + new)


# =================================================================== requests


def _body(attempt: str) -> str:
    return attempt.strip("\n")


class PromptBuilder:
    """Chat messages and completion prompts of FBK and IMP requests for one task."""

    def __init__(self, task: Task, shots: int = 3, seed: int = 0):
        if shots < 0:
            raise ValueError(f"shots must be >= 0, got {shots}")
        self.task, self.shots, self.seed = task, shots, seed

    @cached_property
    def demos(self) -> list[Demo]:
        return build_demos(self.task, self.shots, self.seed)

    # ------------------------------------------------------------------ blocks
    def _attempt_block(self, question: str, attempt: str) -> str:
        return f"{QUESTION_MARK}\nQ: {question}\n{ATTEMPT_MARK}\n{ANSWER_HEADER}{self.task.info}\n{_body(attempt)}\n"

    def fbk_block(self, question: str, attempt: str) -> str:
        """One FBK request: question and attempt, ending with the slot line of the reply."""
        return f"{self._attempt_block(question, attempt)}{FBK_SLOT}\n"

    def imp_block(self, question: str, attempt: str, feedback: Feedback) -> str:
        """One IMP request: question, attempt and its feedback, ending with the slot line."""
        return f"{self._attempt_block(question, attempt)}{FEEDBACK_MARK}\n{render_fbk_reply(feedback)}\n{IMP_SLOT}\n"

    def _fbk_demo_pairs(self) -> list[tuple[str, str]]:
        """(request, reply) pairs; the last demo shows a correct attempt when there are two or more,
        so the model sees the "none" reply too."""
        pairs = []
        for i, d in enumerate(self.demos):
            if i == len(self.demos) - 1 and len(self.demos) >= 2:
                pairs.append((self.fbk_block(d.question, d.gold), render_fbk_reply(Feedback.correct())))
            else:
                pairs.append((self.fbk_block(d.question, d.attempt), render_fbk_reply(d.feedback)))
        return pairs

    def _update_header(self) -> str:
        return f"{UPDATE_HEADER}{self.task.info}\n"

    # ------------------------------------------------------------------ FBK
    def fbk_messages(self, question: str, attempt: str) -> list[dict]:
        messages = [{"role": "system", "content": FBK_INSTRUCTIONS}]
        for request, reply in self._fbk_demo_pairs():
            messages += [{"role": "user", "content": request}, {"role": "assistant", "content": reply}]
        return messages + [{"role": "user", "content": self.fbk_block(question, attempt)}]

    def fbk_prompt(self, question: str, attempt: str) -> str:
        shown = "".join(f"{request}{reply}\n\n" for request, reply in self._fbk_demo_pairs())
        return f"{FBK_INSTRUCTIONS}\n\n{shown}{self.fbk_block(question, attempt)}"

    # ------------------------------------------------------------------ IMP
    def imp_messages(self, question: str, attempt: str, feedback: Feedback) -> list[dict]:
        messages = [{"role": "system", "content": IMP_INSTRUCTIONS}]
        for d in self.demos:
            messages += [
                {"role": "user", "content": self.imp_block(d.question, d.attempt, d.feedback)},
                {"role": "assistant", "content": d.update},
            ]
        return messages + [{"role": "user", "content": self.imp_block(question, attempt, feedback)}]

    def imp_prompt(self, question: str, attempt: str, feedback: Feedback) -> str:
        """The completion prompt ends with the update header and the kept steps: the model
        continues from the wrong step (SPEC 5)."""
        shown = "".join(
            f"{self.imp_block(d.question, d.attempt, d.feedback)}{self._update_header()}{d.update}\n" for d in self.demos
        )
        kept = "".join(s.line + "\n" for s in kept_steps(attempt, feedback))
        return f"{IMP_INSTRUCTIONS}\n\n{shown}{self.imp_block(question, attempt, feedback)}{self._update_header()}{kept}"

    # ------------------------------------------------------------------ ATT
    def att_block(self, question: str) -> str:
        """One ATT request: the question, ending with the slot line of the reply."""
        return f"{QUESTION_MARK}\nQ: {question}\n{ATT_SLOT}\n"

    def att_messages(self, question: str) -> list[dict]:
        messages = [{"role": "system", "content": ATT_INSTRUCTIONS}]
        for d in self.demos:
            messages += [{"role": "user", "content": self.att_block(d.question)}, {"role": "assistant", "content": d.gold}]
        return messages + [{"role": "user", "content": self.att_block(question)}]

    def att_prompt(self, question: str) -> str:
        shown = "".join(f"{self.att_block(d.question)}{d.gold}\n" for d in self.demos)
        return f"{ATT_INSTRUCTIONS}\n\n{shown}{self.att_block(question)}"


# =================================================================== measures


def request_text(messages: list[dict] | None = None, prompt: str | None = None) -> str:
    """All the text of a request, for rough token counts (4 characters a token)."""
    if prompt is not None:
        return prompt
    return "".join(str(m.get("content", "")) for m in messages or [])


def approx_tokens(text: str) -> int:
    """A rough token count: 4 characters a token (English text with a BPE tokenizer)."""
    return (len(text) + 3) // 4
