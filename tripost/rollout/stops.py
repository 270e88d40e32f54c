"""Every stop rule of generation, in one place.

A stop rule reads a continuation's text so far and returns the index to cut it at, or None to
go on. Engines check the rules only after a token that holds a newline, since the rules are
about whole lines (a new "Q:" is seen when its line ends), which keeps the check cheap; the
final text is cut at the earliest point any rule gives, so a sequence that ran on a little
past its stop comes back the same.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable

from tripost.formats import parse_feedback

if TYPE_CHECKING:
    import torch

StopRule = Callable[[str], "int | None"]  # text -> index to cut at, or None to go on

NEW_QUESTION = "\nQ:"  # a model that starts a new question has finished the one it was asked


def cut_at_new_question(text: str) -> int | None:
    """Every continuation: cut before a new "Q:" line (the newline is kept)."""
    i = text.find(NEW_QUESTION)
    return None if i < 0 else i + 1


def after_final_response(text: str) -> int | None:
    """Plain attempts (evaluation, LMSI samples): cut after the first complete "(Final response)" line."""
    i = text.find("(Final response)")
    if i < 0:
        return None
    j = text.find("\n", i)
    return None if j < 0 else j + 1


def positive_feedback_done(text: str) -> int | None:
    """Self-improvement (rollouts, inference): cut after the first complete positive feedback line."""
    for m in re.finditer(r"Feedback: [^\n]*\n", text):
        if parse_feedback(m.group(0)).is_correct:
            return m.end()
    return None


def stop_at_strings(strings: list[str], include: bool) -> StopRule:
    """An API request's ``stop`` strings as a rule: cut at the first of them (after it when ``include``)."""

    def rule(text: str) -> int | None:
        found = [(i, s) for s in strings if (i := text.find(s)) >= 0]
        if not found:
            return None
        i, s = min(found)
        return i + len(s) if include else i

    return rule


def stop_rules(stop: StopRule | None) -> list[StopRule]:
    """Every continuation stops at a new question; ``stop`` adds the caller's own rule."""
    return [cut_at_new_question] + ([stop] if stop else [])


def should_stop(text: str, rules: list[StopRule]) -> bool:
    """Whether any rule has a cut point in ``text``: the continuation has ended by itself."""
    return any(rule(text) is not None for rule in rules)


def cut(text: str, rules: list[StopRule]) -> str:
    """The text up to the earliest cut point of the rules (all of it when none fires)."""
    points = [p for p in (rule(text) for rule in rules) if p is not None]
    return text[: min(points)] if points else text


_NEWLINE_IDS: dict[int, torch.Tensor] = {}


def newline_token_ids(tokenizer) -> torch.Tensor:
    """Ids of the tokens whose text contains a newline: the only tokens after which a rule can
    newly fire, so engines decode and check only then (computed once per tokenizer)."""
    import torch  # here, not at the top: the served client and the gold policy need no torch

    key = id(tokenizer)
    if key not in _NEWLINE_IDS:
        vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        ids = [i for i, t in enumerate(vocab) if "\n" in tokenizer.convert_tokens_to_string([t])]
        _NEWLINE_IDS[key] = torch.tensor(ids, dtype=torch.long)
    return _NEWLINE_IDS[key]
