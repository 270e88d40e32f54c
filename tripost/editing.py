"""Interactive trajectory editing (SPEC 2.1): the expert corrects the model's own mistakes.

For one question and the model's trajectory:
- a final answer that is right and consistent: keep the trajectory (positive feedback added
  when the model wrote none);
- otherwise FBK checks each attempt in order; the edit point is the first attempt whose own
  feedback is missing, unparsable or disagrees with FBK; the rest is discarded;
- from the edit point IMP rewrites the attempt and FBK checks it, up to ``max_updates``
  times, until FBK says correct.
Every outcome that is not kept or edited is a drop with a reason, counted by the caller. The
"no filtering" ablation (``filter_failed=False``) keeps two kinds of failed edits instead: an
update that breaks the rules of SPEC 5 (checked by FBK and continued like any other), and a
trajectory still wrong after ``max_updates`` updates (status *unfinished*: its improvement
turns train, it has no terminal example).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import wraps

from tripost.experts import Expert, ExpertError
from tripost.formats import FINAL_STEP, Feedback, error_position, final_response, parse_feedback, split_steps
from tripost.tasks import Task
from tripost.trajectory import Turn, feedback_text, parse_trajectory

KEPT, EDITED, FEEDBACK_ONLY, DROPPED = "kept", "edited", "feedback_only", "dropped"
UNFINISHED = "unfinished"  # edited, but the last feedback is not positive (only without filtering)

# Drop reasons, as counted in stats.json.
FORMAT_ERROR = "format_error"  # no attempt could be read from the model's output
FBK_UNPARSABLE = "fbk_unparsable"  # FBK could not read an attempt (malformed steps)
IMP_FAILED = "imp_failed"  # IMP wrote no update
TOO_LONG = "too_long"  # an attempt over the length limit
NOT_LEGITIMATE = "not_legitimate"  # an update that breaks the rules of SPEC 5
NO_POSITIVE = "no_positive_feedback"  # still wrong after max_updates updates
EXPERT_ERROR = "expert_error"  # the expert gave no usable reply (see ExpertError)


@dataclass
class EditResult:
    status: str  # kept | edited | feedback_only | unfinished | dropped
    turns: list[Turn] = field(default_factory=list)
    reason: str | None = None  # why it was dropped
    edit_point: int | None = None  # index of the first edited attempt
    updates: int = 0  # IMP calls made


def step_key(step_id: str) -> tuple:
    """Order of step ids: (1) < (2) < (2.1) < (3) < (Final response)."""
    if step_id == FINAL_STEP:
        return (float("inf"),)
    return tuple(int(x) for x in step_id.split("."))


def feedbacks_agree(own: Feedback | None, fbk: Feedback) -> bool:
    """The model's own feedback agrees with FBK: both positive, or the same error step and one
    error segment containing the other."""
    if own is None or own.is_unparsable or own.kind != fbk.kind:
        return False
    if own.is_correct:
        return True
    if own.step != fbk.step:
        return False
    a, b = own.segment or "", fbk.segment or ""
    return a in b or b in a


def made_no_progress(old: Feedback, new: Feedback) -> bool:
    """The new error is earlier than the old one, or at the same step with the same segment."""
    if not new.is_error:
        return False
    if step_key(new.step) < step_key(old.step):
        return True
    return new.step == old.step and new.segment == old.segment


def is_legitimate_update(previous: str, update: str, old: Feedback) -> bool:
    """SPEC 5: the update finishes with a final response, differs from the previous attempt,
    keeps the steps before the error step, and changes the error step so that it no longer
    contains the old error segment."""
    last = update.strip().split("\n")[-1] if update.strip() else ""
    if not last.startswith(f"({FINAL_STEP})") or "the answer is" not in last:
        return False
    if update.strip() == previous.strip():
        return False
    before, after = split_steps(previous), split_steps(update)
    if before is None or after is None:
        return False
    at = error_position(before, old.step, old.segment)  # by position: step ids may repeat
    if at is None or before[:at] != after[:at]:
        return False
    # the rewritten step: where it was, or later when the update inserted missing steps before it
    new_at = next((i for i in range(at, len(after)) if after[i].id == old.step), None)
    if new_at is None:
        return False
    new_text = after[new_at].text
    return new_text != before[at].text and (old.segment or "") not in new_text


def _drop_on_expert_error(edit):
    """An expert that fails on a trajectory (ExpertError) drops it, reason ``expert_error``."""

    @wraps(edit)
    def guarded(*args, **kwargs) -> EditResult:
        try:
            return edit(*args, **kwargs)
        except ExpertError:
            return EditResult(DROPPED, reason=EXPERT_ERROR)

    return guarded


@_drop_on_expert_error
def edit_trajectory(
    task: Task,
    expert: Expert,
    question: str,
    answer: str,
    continuation: str,
    max_updates: int = 5,
    max_attempt_chars: int = 4000,
    filter_failed: bool = True,
) -> EditResult:
    """Edit one model trajectory (the text after the prompt) into a training trajectory."""
    turns = [t for t in parse_trajectory(continuation).turns if t.attempt.strip()]
    if not turns:
        return EditResult(DROPPED, reason=FORMAT_ERROR)
    if any(len(t.attempt) > max_attempt_chars for t in turns):
        return EditResult(DROPPED, reason=TOO_LONG)

    last = turns[-1]
    own_last = parse_feedback(last.feedback) if last.feedback is not None else None
    right = task.answers_match(task.parse_answer(last.attempt), answer) and task.is_consistent(last.attempt, answer, question)
    if right and (own_last is None or own_last.is_correct):
        if own_last is None:
            last = Turn(last.attempt, feedback_text(Feedback.correct(), last.attempt))
        return EditResult(KEPT, turns=turns[:-1] + [last])

    # Find the edit point: the first attempt whose own feedback does not agree with FBK.
    edited: list[Turn] = []
    for i, turn in enumerate(turns):
        fbk = expert.feedback(question, turn.attempt)
        if fbk.is_unparsable:
            return EditResult(DROPPED, reason=FBK_UNPARSABLE, edit_point=i)
        own = parse_feedback(turn.feedback) if turn.feedback is not None else None
        is_last = i == len(turns) - 1
        if feedbacks_agree(own, fbk) and not fbk.is_correct and not is_last:
            edited.append(turn)  # the model found its own error; its update is checked next
            continue
        edited.append(Turn(turn.attempt, feedback_text(fbk, turn.attempt)))
        if fbk.is_correct:
            return EditResult(EDITED, turns=edited, edit_point=i)
        return _improve(task, expert, question, edited, fbk, i, max_updates, max_attempt_chars, filter_failed)
    raise AssertionError("unreachable: the last turn always ends the loop")


def _improve(task, expert, question, turns, fbk, edit_point, max_updates, max_attempt_chars,
             filter_failed=True) -> EditResult:
    current, current_fb = turns[-1].attempt, fbk
    for update in range(1, max_updates + 1):
        new = expert.improve(question, current, current_fb)
        if new is None or not new.strip():
            return EditResult(DROPPED, reason=IMP_FAILED, edit_point=edit_point, updates=update)
        if len(new) > max_attempt_chars:
            return EditResult(DROPPED, reason=TOO_LONG, edit_point=edit_point, updates=update)
        if final_response(new) is None or new.strip() == current.strip():
            return EditResult(DROPPED, reason=NOT_LEGITIMATE, edit_point=edit_point, updates=update)
        new_fb = expert.feedback(question, new)
        if new_fb.is_unparsable:
            return EditResult(DROPPED, reason=FBK_UNPARSABLE, edit_point=edit_point, updates=update)
        if made_no_progress(current_fb, new_fb):
            return EditResult(FEEDBACK_ONLY, turns=turns[:1], edit_point=edit_point, updates=update)
        if filter_failed and not is_legitimate_update(current, new, current_fb):
            return EditResult(DROPPED, reason=NOT_LEGITIMATE, edit_point=edit_point, updates=update)
        turns.append(Turn(new, feedback_text(new_fb, new)))
        if new_fb.is_correct:
            return EditResult(EDITED, turns=turns, edit_point=edit_point, updates=update)
        current, current_fb = new, new_fb
    if not filter_failed:
        return EditResult(UNFINISHED, turns=turns, edit_point=edit_point, updates=max_updates)
    return EditResult(DROPPED, reason=NO_POSITIVE, edit_point=edit_point, updates=max_updates)
