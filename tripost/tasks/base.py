"""What every task provides: questions, gold rationales, answer parsing and checking.

A task owns its formats: how a question reads, how its rationale steps read, how the answer
is parsed from the "(Final response)" line, and the scripted feedback checker (SPEC 5-6).
The rest of tripost only sees this interface.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

from tripost.formats import FINAL_STEP, Feedback, Step, format_prompt, split_steps


class Unreadable(Exception):
    """An attempt (or question) a checker cannot read: ``Task.check`` reports it as unparsable."""


def as_attempt(rationale: str) -> str:
    """A rationale (reference format, no final newline) as an attempt body: every line ends in "\\n"."""
    return rationale.rstrip("\n") + "\n"


def numbered_steps(attempt: str) -> tuple[list[Step], Step]:
    """The steps (1), (2), ... of an attempt and its "(Final response)" step, for a checker;
    Unreadable when the attempt does not have that shape (SPEC 4)."""
    if not isinstance(attempt, str) or not attempt.strip():
        raise Unreadable("the attempt is empty")
    steps = split_steps(attempt)
    if steps is None:
        raise Unreadable("a line of the attempt is not a step")
    if not steps or steps[-1].id != FINAL_STEP:
        raise Unreadable("the attempt does not end with a (Final response) line")
    numbered = steps[:-1]
    if [s.id for s in numbered] != [str(i) for i in range(1, len(numbered) + 1)]:
        raise Unreadable("the steps are not numbered (1), (2), ... in order")
    return numbered, steps[-1]


@dataclass(frozen=True)
class Cell:
    """One group of questions of the same shape, reported as its own accuracy column."""

    name: str  # e.g. "l3_d2" or "n5"; stable, used as a key in results.json
    seen: bool  # seen cells are trained on; unseen cells are only tested
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Example:
    """One question with its gold answer and, where known, its gold rationale."""

    question: str  # text after "Q: ", may span lines ("List: ...", "Options: ...")
    answer: str  # gold answer as written in the final response: "4", "a b c", "(E)"
    cell: str
    seen: bool
    rationale: str | None = None  # gold attempt body: step lines then "(Final response) ..."
    meta: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


class Task(ABC):
    """Base class of a task. Subclasses set ``name`` and ``info`` and fill in the methods."""

    name: str = ""
    info: str = ""  # text right after "Let's think step by step." (SPEC 4), often ""

    # ------------------------------------------------------------------ questions
    @abstractmethod
    def cells(self) -> list[Cell]:
        """All cells of the task, seen and unseen, in report order."""

    @abstractmethod
    def sample(self, cell: Cell, rng: random.Random) -> Example:
        """One random question of this cell, with its gold answer and rationale."""

    @abstractmethod
    def cell_of(self, question: str) -> Cell | None:
        """The cell a question belongs to (for questions loaded from files); None if unknown."""

    def generate(self, cells: list[Cell], n_per_cell: int, seed: int) -> list[Example]:
        """``n_per_cell`` distinct questions of every cell, the same for the same seed."""
        rng = random.Random(seed)
        out: list[Example] = []
        for cell in cells:
            questions: set[str] = set()
            for _ in range(100 * n_per_cell):
                if len(questions) == n_per_cell:
                    break
                ex = self.sample(cell, rng)
                if ex.question not in questions:
                    questions.add(ex.question)
                    out.append(ex)
            if len(questions) < n_per_cell:
                raise RuntimeError(f"cell {cell.name}: cannot find {n_per_cell} distinct questions")
        return out

    def seen_cells(self) -> list[Cell]:
        return [c for c in self.cells() if c.seen]

    def cell(self, name: str) -> Cell:
        for c in self.cells():
            if c.name == name:
                return c
        raise KeyError(f"task {self.name} has no cell {name!r}; cells: {[c.name for c in self.cells()]}")

    # ------------------------------------------------------------------ text
    def prompt(self, question: str) -> str:
        return format_prompt(question, self.info)

    @abstractmethod
    def gold_rationale(self, question: str) -> str:
        """The gold rationale of a question in the reference's exact format (SPEC 9): step lines
        and the final response line, joined by newlines, with no newline at the end."""

    def gold_attempt(self, question: str) -> str:
        """The gold rationale as an attempt body inside a trajectory (every line ends in a newline)."""
        return as_attempt(self.gold_rationale(question))

    @abstractmethod
    def gold_answer(self, question: str) -> str:
        """The correct answer to a question, computed by the task's solver."""

    @abstractmethod
    def parse_answer(self, attempt: str) -> str | None:
        """The answer in the attempt's last "(Final response)" line, normalised; None if absent."""

    def answers_match(self, predicted: str | None, gold: str) -> bool:
        return predicted is not None and predicted == self.normalize_answer(gold)

    def normalize_answer(self, answer: str) -> str:
        """Canonical form of a gold answer from a file (e.g. BIG-Bench targets)."""
        return answer.strip()

    # JSON types a data file's gold answer may have for this task (word sort adds list).
    answer_types: tuple[type, ...] = (str, int)

    def answer_from_data(self, value: Any) -> str:
        """A gold answer as a data file holds it (any JSON value), normalised; ValueError naming
        the problem when this task's answers cannot have that type (null, a dict, ...)."""
        if isinstance(value, bool) or not isinstance(value, self.answer_types):
            kind = "null" if value is None else type(value).__name__
            raise ValueError(f"a {kind} gold answer is not a {self.name} answer: {value!r}")
        if isinstance(value, list):
            if not value or not all(isinstance(v, str) for v in value):
                raise ValueError(f"a list gold answer must hold words: {value!r}")
            value = " ".join(value)
        answer = self.normalize_answer(str(value))
        if not answer:
            raise ValueError("gold answer is empty")
        return answer

    @abstractmethod
    def is_consistent(self, attempt: str, answer: str, question: str | None = None) -> bool:
        """SPEC 6: the attempt's content supports its final answer ("right answer, right reason");
        ``question`` where a task needs it (date: the chosen option's date is in the options)."""

    def check(self, question: str, attempt: str) -> Feedback:
        """Scripted FBK (SPEC 5): the earliest wrong step of an attempt, or "correct".

        Never raises on what a model wrote: an attempt ``find_error`` cannot read (it raised
        Unreadable, or anything else) gives ``Feedback.unparsable(reason)``.
        """
        try:
            return self.find_error(question, attempt)
        except Unreadable as e:
            return Feedback.unparsable(str(e))
        except Exception as e:  # a checker never raises on what a model wrote (SPEC 5)
            return Feedback.unparsable(f"cannot read the attempt ({type(e).__name__}: {e})")

    @abstractmethod
    def find_error(self, question: str, attempt: str) -> Feedback:
        """The task's checker behind ``check``: the earliest wrong step, or "correct"; raises
        Unreadable (with the reason) on an attempt not in the rationale's format."""

    def inject_error(self, question: str, rng: random.Random, tries: int = 20) -> str | None:
        """A wrong attempt, of a kind the checker reports: the gold rationale with one step changed
        (a digit replaced, or two words swapped) and a wrong final answer, the steps between as
        in gold. Used where the expert writes the attempts ("ft SI. demo", few-shot demos).
        None when no such change is found. Tasks may override with errors of their own."""
        steps = split_steps(self.gold_rationale(question)) or []
        gold = self.gold_answer(question)
        for _ in range(tries):
            if len(steps) < 2:
                return None
            k = rng.randrange(len(steps) - 1)
            changed, final = _perturb(steps[k].text, rng), _perturb(steps[-1].text, rng)
            if changed in (None, steps[k].text) or final is None:
                continue
            new = {k: changed, len(steps) - 1: final}
            attempt = "".join(Step(s.id, new.get(i, s.text)).line + "\n" for i, s in enumerate(steps))
            fb = self.check(question, attempt)
            if fb.is_error and fb.step == steps[k].id and not self.answers_match(self.parse_answer(attempt), gold):
                return attempt
        return None

    # ------------------------------------------------------------------ files
    def reference_fields(self, example: Example) -> dict[str, Any]:
        """How the paper's files write this example (SPEC 9): ``question_line`` of a raw pool,
        ``question`` of a training file's meta_data, the raw pool's ``answer_fields`` and the
        meta_data's ``answer``, ``formatted_choices`` for options tasks, extra raw-pool ``meta``.
        Options tasks keep the options apart and the answer as a bare letter."""
        question, _, choices = example.question.partition("\nOptions:\n")
        if choices:
            letter = example.answer.strip().strip("()")
            return {"question_line": f"Q: {question}", "question": question, "formatted_choices": choices,
                    "answer": letter, "answer_fields": {"formatted_choices": choices, "correct_choice": letter}, "meta": {}}
        return {"question_line": f"Q: {question}", "question": question, "answer": example.answer,
                "answer_fields": {"correct_answer": example.answer}, "meta": {}}

    def example_from_file(
        self, question: str, answer: str, rationale: str | None = None, cell: str | None = None
    ) -> Example:
        """An Example for a question read from a file; the cell is computed when not given."""
        found = self.cell(cell) if cell else self.cell_of(question)
        if found is None:
            raise ValueError(f"question does not fit any {self.name} cell: {question[:80]!r}")
        return Example(
            question=question,
            answer=self.normalize_answer(answer),
            cell=found.name,
            seen=found.seen,
            rationale=rationale,
        )


def _perturb(text: str, rng: random.Random) -> str | None:
    """One small change to a step's text: a digit replaced by another, else two words swapped."""
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    if digits and rng.random() < 0.7:
        i = rng.choice(digits)
        return text[:i] + rng.choice([d for d in "0123456789" if d != text[i]]) + text[i + 1:]
    words = text.split(" ")
    if len(words) < 2:
        return None
    i, j = sorted(rng.sample(range(len(words)), 2))
    words[i], words[j] = words[j], words[i]
    return " ".join(words)
