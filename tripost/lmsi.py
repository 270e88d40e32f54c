"""LMSI (Huang et al. 2022, "Large Language Models Can Self-Improve"), the baseline of SPEC 8:
the model samples several rationales per question at a high temperature; the rationales whose
answer is the gold one (``keep=correct``) or the most frequent one (``keep=majority``, no
labels needed) are kept, de-duplicated, and each question also gets an answer-only copy
(the prompt, then the final response alone); the model is fine-tuned on them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from tripost.formats import FINAL_STEP, split_steps
from tripost.tasks import Example, Task
from tripost.training.data import TrainExample


def self_consistent_examples(task: Task, window: list[Example], samples: list[list[str]], keep: str) -> tuple[list[TrainExample], dict[str, Any]]:
    """Training examples from ``samples[i]``, the rationales sampled for ``window[i]``."""
    if keep not in ("correct", "majority"):
        raise ValueError(f"config key 'baselines.lmsi.keep': {keep!r} is not one of ['correct', 'majority']")
    examples: list[TrainExample] = []
    stats: Counter = Counter(dict.fromkeys(("samples", "unparsed", "questions_kept", "rationales_kept", "majority_right"), 0))
    for ex, rationales in zip(window, samples, strict=True):
        answers = [task.parse_answer(r) for r in rationales]
        parsed = [a for a in answers if a is not None]
        stats["samples"] += len(rationales)
        stats["unparsed"] += len(rationales) - len(parsed)
        if not parsed:
            continue
        target = task.normalize_answer(ex.answer) if keep == "correct" else Counter(parsed).most_common(1)[0][0]
        prompt = task.prompt(ex.question)
        kept = sorted({r for r, a in zip(rationales, answers)
                       if a == target and split_steps(r) is not None and task.is_consistent(r, a, ex.question)})
        if not kept:
            continue
        stats["questions_kept"] += 1
        stats["rationales_kept"] += len(kept)
        stats["majority_right"] += int(task.answers_match(target, ex.answer))
        examples += [TrainExample(text=prompt + r, prompt_chars=len(prompt), kind="rationale") for r in kept]
        # The answer-only copy: the final response line of a kept rationale, without the steps.
        final = next(line for line in kept[0].split("\n") if line.startswith(f"({FINAL_STEP})"))
        examples.append(TrainExample(text=prompt + final + "\n", prompt_chars=len(prompt), kind="answer_only"))
    stats["examples"] = len(examples)
    return examples, dict(stats)
