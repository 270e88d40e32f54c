"""Your own dataset (``task=custom``): questions and answers from a JSONL file, checked by the LLM expert.

    OPENAI_API_KEY=sk-... python run.py task=custom task.path=/path/items.jsonl verifier=openai

The file: one JSON object per line,

    {"question": "...", "answer": "18", "rationale": "(1) ...\\n(2) ...\\n(Final response) So the answer is 18.",
     "split": "train"}

- ``question`` (text) and ``answer`` (text or a number) are required;
- ``rationale`` (optional) is the gold rationale in SPEC 4's step format: numbered steps
  "(1) ...", "(2) ...", then "(Final response) So the answer is X." (lines joined by "\\n");
  its final answer must be the item's answer (read by ``answer_pattern``, compared by
  ``normalize``), else the item is skipped and counted when the file is loaded;
- ``split`` (optional) is "train" or "test". Items without one are split by position: the last
  ``test_share`` of them (at least one, when there are two or more) are test questions.

Cells: "train" (seen: trained on) and "test" (not seen: held out, only tested; results.json
reports them as the "test" cell, in its "unseen" and "total" columns). A question the file at
``path`` does not hold (e.g. from another file given as ``task.test.path``) is a test question.

There is no question generator (``generate`` refuses: the questions come from ``task.path``).

Answers: ``answer_pattern`` (a regex, case-insensitive) is searched in the last
"(Final response)" line; its group 1 (else the whole match) is the answer, compared after
``normalize``:
- ``number``: the first number in it, commas between digit groups and currency signs dropped,
  canonical: "1,234" -> "1234", "$5" -> "5", "3.50" -> "3.5", "-0.0" -> "0";
- ``exact``: case, spacing and a final full stop ignored: " New  York." -> "new york";
- ``option``: the option letter: "(B)", "B", "b)", "(b) 12 apples" -> "(B)".

Questions without a rationale: tripost trains on gold rationales (ft rationale, and as the
reference of TriPosT's post-processing), so a training item without one is left out of
training altogether and counted in results.json (``data.train.skipped``: "no gold rationale");
test items need none. The expert does not write missing rationales.

Checking (``find_error``). No program checks a step of your data, so runs use the LLM expert
(``verifier=openai``); ``verifier=scripted`` is refused at start-up (``verifier`` is read from
the run's config through ``impl.verifier``). ``check`` still works, for the diagnosis of the
model's own feedback, the expert's few-shot demonstrations (an error injected into a gold
rationale, ``Task.inject_error``) and our OpenAI-compatible test server
(``tripost.experts.server``, which answers FBK and IMP with the scripted expert):
- the attempt is correct when its final answer matches the gold answer (the answer only: a
  right answer for a wrong reason passes);
- else the error is at the first numbered step that departs from the gold rationale, when the
  attempt follows the gold rationale up to there and that step is a close variant of gold's
  (at least half of its words in common): the differing words with one word of context on each
  side are the error segment;
- else (no rationale, or the attempt went its own way) at the "(Final response)" step.

A subclass with a real program checker (see the README, "Your own dataset") overrides
``find_error`` and sets ``program_checker = True``; verifier=scripted is then allowed.

``is_consistent`` (SPEC 6): the attempt has numbered steps, and with ``normalize: number`` the
answer's number appears in one of them (else the editor asks the expert about the attempt).
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import random
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tripost.config import ConfigError
from tripost.formats import FINAL_STEP, Feedback, Step, final_response, split_steps
from tripost.tasks.base import Cell, Example, Task, Unreadable

log = logging.getLogger("tripost")

NORMALIZERS = ("number", "exact", "option")
SPLITS = ("train", "test")
SCRIPTED_EXPERT = "tripost.experts.scripted.ScriptedExpert"
SIMILAR = 0.5  # a step whose words are at least this close to gold's is a variant of it (difflib ratio)

_CURRENCY = re.compile(r"[$€£¥₹]")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d+)?|\.\d+)")
_OPTION_PAREN = re.compile(r"\(\s*([A-Za-z])\s*\)")
_OPTION_BARE = re.compile(r"^\s*(?:option\s+)?([A-Za-z])(?:\s*[).:]\s*.*|\s*)$", re.I | re.S)


def normalize_number(text: str) -> str | None:
    """The first number of ``text``, canonical ("1,234" -> "1234", "$5" -> "5", "3.50" -> "3.5"); None if none."""
    text = _THOUSANDS.sub("", _CURRENCY.sub("", str(text))).replace("\u2212", "-")  # a typographic minus
    m = _NUMBER.search(text)
    if m is None:
        return None
    try:
        value = Decimal(m.group(0))
    except InvalidOperation:
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def normalize_exact(text: str) -> str | None:
    """Case, spacing and a final full stop ignored: " New  York." -> "new york"; None if empty."""
    out = " ".join(str(text).split()).casefold().rstrip(".").strip()
    return out or None


def normalize_option(text: str) -> str | None:
    """The option letter as "(B)": from "(B)", "(b) 12 apples", "B", "b)", "Option B"; None if none."""
    text = str(text)
    m = _OPTION_PAREN.search(text) or _OPTION_BARE.match(text)
    return f"({m.group(1).upper()})" if m else None


_NORMALIZE = {"number": normalize_number, "exact": normalize_exact, "option": normalize_option}


def share_held_out(share: float, n: int) -> int:
    """How many of ``n`` items without a "split" key are test items: ``share`` of them rounded
    half up, and, with a share above 0 and two items or more, at least one and not all."""
    held = math.floor(share * n + 0.5)
    return min(max(held, 1), n - 1) if share > 0 and n >= 2 else held


def question_text(question: str) -> str:
    """A question as prompts show it (as tripost/data.py reads one): stripped, without "Q:"."""
    text = str(question).strip()
    return text[2:].strip() if text.startswith("Q:") else text


def question_key(question: str) -> str:
    """A question as the task looks it up: its text with spacing collapsed."""
    return " ".join(question_text(question).split())


@dataclass
class Item:
    """What the file says about one question."""

    question: str
    answer: str
    rationale: str | None  # canonical step lines (no final newline), or None
    split: str  # "train" | "test"
    problem: str | None = None  # why loading must skip it (a bad rationale or split)


class CustomTask(Task):
    """Questions, answers and (optional) rationales of your own JSONL file (module docstring)."""

    name = "custom"
    answer_types = (str, int, float)
    program_checker = False  # True in a subclass whose find_error is a real program: verifier=scripted allowed
    has_solver = False  # gold answers are the file's own: no solver of the task's to compare them with

    def __init__(self, path: str | None = None, answer_pattern: str = r"the answer is[:\s]*(.+?)\.?\s*$",
                 normalize: str = "number", test_share: float = 0.2, info: str = "", verifier: str | None = None):
        if verifier == SCRIPTED_EXPERT and not self.program_checker:
            raise ConfigError(
                "config key 'verifier': task=custom has no program that checks its steps; use verifier=openai "
                "(the LLM expert), or a CustomTask subclass with a checker (program_checker = True)")
        if normalize not in NORMALIZERS:
            raise ConfigError(f"config key 'task.impl.normalize': {normalize!r} is not one of {list(NORMALIZERS)}")
        try:
            self.pattern = re.compile(str(answer_pattern), re.IGNORECASE)
        except re.error as e:
            raise ConfigError(f"config key 'task.impl.answer_pattern': not a valid regular expression ({e})") from None
        try:
            test_share = float(test_share)
        except (TypeError, ValueError):
            test_share = -1.0
        if not 0.0 <= test_share < 1.0:
            raise ConfigError(f"config key 'task.impl.test_share': {test_share} is not in [0, 1)")
        self.normalize, self.test_share, self.info = normalize, test_share, str(info or "")
        self._normalizer = _NORMALIZE[normalize]
        self.path = str(path) if path else None
        self._cells = [Cell("train", seen=True), Cell("test", seen=False)]
        self._items: dict[str, Item] = {}  # question key -> item: the file's, and any loaded from files
        if self.path:
            self._read(Path(self.path))

    # ------------------------------------------------------------------ the file
    def _read(self, path: Path) -> None:
        """Every readable item of the file, split into train and test. Unreadable rows are left to
        the loader (tripost/data.py), which skips and counts them with their reason."""
        if not path.is_file():
            raise ConfigError(f"config key 'task.path': data file not found: {path}")
        items: list[Item] = []
        duplicates = 0
        with open(path, "rb") as f:
            for raw in f:
                try:
                    row = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    continue
                if not isinstance(row, dict) or not isinstance(row.get("question"), str):
                    continue
                value = next((row[k] for k in ("answer", "correct_answer") if k in row), None)
                try:
                    answer = self.answer_from_data(value)
                except ValueError:
                    continue
                key = question_key(row["question"])
                if not key:
                    continue
                if key in self._items:
                    duplicates += 1
                    continue
                item = Item(row["question"], answer, None, "")
                rationale = row.get("rationale")
                if rationale not in (None, ""):
                    try:
                        item.rationale = self.canonical_rationale(rationale, answer)
                    except ValueError as e:
                        item.problem = str(e)
                split = row.get("split")
                if split is not None and split not in SPLITS:
                    item.problem = f'"split" must be one of {list(SPLITS)}, not {split!r}'
                item.split = split if split in SPLITS else ""
                self._items[key] = item
                items.append(item)
        free = [it for it in items if not it.split and not it.problem]
        held = share_held_out(self.test_share, len(free))
        for i, item in enumerate(free):
            item.split = "test" if i >= len(free) - held else "train"
        usable = [it for it in items if not it.problem]
        counts = {s: sum(1 for it in usable if it.split == s) for s in SPLITS}
        if not any(it.split == "train" and it.rationale for it in usable):
            raise ConfigError(f"config key 'task.path': {path} has no training item with a rationale ({len(items)} "
                              f"readable items, {counts['train']} for training); ft rationale trains on them: see "
                              "tripost/tasks/custom.py for the format")
        if self.test_share > 0 and not counts["test"]:
            raise ConfigError(f"config key 'task.impl.test_share': {path} has too few items to hold some out as test "
                              "questions; add items, mark some \"split\": \"test\", or give task.test.path")
        if duplicates:
            log.warning("task custom: %d questions of %s appear more than once; the first of each is used", duplicates, path)
        log.info("task custom: %s: %d training and %d test items (%d training items without a rationale)", path,
                 counts["train"], counts["test"], sum(1 for it in usable if it.split == "train" and not it.rationale))

    def canonical_rationale(self, rationale: Any, answer: str) -> str:
        """A gold rationale as SPEC 4's step lines joined by "\\n"; ValueError naming what is wrong
        (not text, not step lines, no final response, or a final answer other than ``answer``)."""
        if not isinstance(rationale, str):
            raise ValueError(f"rationale is a {type(rationale).__name__}, not text")
        steps = split_steps(rationale.replace("\r\n", "\n"))
        if not steps:
            raise ValueError('the rationale is not step lines "(1) ...", ..., "(Final response) ..." (SPEC 4)')
        if steps[-1].id != FINAL_STEP or any(s.id == FINAL_STEP for s in steps[:-1]):
            raise ValueError('the rationale does not end with its one "(Final response) ..." line')
        text = "\n".join(Step(s.id, s.text.strip()).line for s in steps)
        said = self.parse_answer(text)
        if not self.answers_match(said, answer):
            found = "no answer" if said is None else said
            raise ValueError(f"the rationale's final response gives {found}, not the answer {answer} "
                             "(read by task.impl.answer_pattern)")
        return text

    def _item(self, question: str) -> Item | None:
        return self._items.get(question_key(question))

    # ------------------------------------------------------------------ questions
    def cells(self) -> list[Cell]:
        return list(self._cells)

    def cell_of(self, question: str) -> Cell | None:
        """The file's split of the question; a question the file does not hold is a test question."""
        item = self._item(question)
        return self._cells[0] if item is not None and item.split == "train" else self._cells[1]

    def generate(self, cells: list[Cell], n_per_cell: int, seed: int) -> list[Example]:
        raise ConfigError("config key 'task.train.source' (or task.test.source): task=custom has no question "
                          "generator; its questions come from the file task.path (source=file)")

    def sample(self, cell: Cell, rng: random.Random) -> Example:
        """A random question of the cell that has a rationale (the expert's few-shot demonstrations)."""
        pool = [it for it in self._items.values() if it.split == cell.name and it.rationale and not it.problem]
        if not pool:
            where = self.path or "the loaded files"
            raise RuntimeError(f"task custom: no {cell.name} item of {where} has a rationale (few-shot demonstrations "
                               "need some)")
        item = rng.choice(pool)
        return Example(question_text(item.question), item.answer, cell.name, cell.seen, item.rationale)

    def example_from_file(
        self, question: str, answer: str, rationale: str | None = None, cell: str | None = None
    ) -> Example:
        """As the base class; the rationale is checked (ValueError: the loader skips the item and
        says why) and kept in its canonical form, and the question's answer and rationale are
        remembered (questions from another file than ``path`` too)."""
        answer = self.normalize_answer(answer)
        item = self._item(question)
        if item is not None and item.problem:
            raise ValueError(item.problem)
        if rationale:
            rationale = self.canonical_rationale(rationale, answer)
        elif item is not None and item.rationale and self.answers_match(answer, item.answer):
            rationale = item.rationale
        example = super().example_from_file(question, answer, rationale, cell)
        if item is None:
            self._items[question_key(question)] = Item(question, answer, rationale, example.cell)
        elif rationale and not item.rationale and self.answers_match(answer, item.answer):
            item.rationale = rationale
        return example

    # ------------------------------------------------------------------ text
    def gold_answer(self, question: str) -> str:
        item = self._item(question)
        if item is None:
            raise ValueError(f"no gold answer: the question is not in {self.path or 'a loaded file'}")
        return item.answer

    def gold_rationale(self, question: str) -> str:
        item = self._item(question)
        if item is None or not item.rationale:
            raise ValueError("no gold rationale: the file gives none for this question")
        return item.rationale

    def parse_answer(self, attempt: str) -> str | None:
        line = final_response(attempt) if isinstance(attempt, str) else None
        m = self.pattern.search(line) if line is not None else None
        if m is None:
            return None
        raw = m.group(1) if m.re.groups else m.group(0)
        return self._normalizer(raw) if raw is not None else None

    def normalize_answer(self, answer: str) -> str:
        """A gold answer in canonical form; ValueError when it has none (e.g. no number in it)."""
        out = self._normalizer(str(answer))
        if out is None:
            raise ValueError(f"{str(answer)[:40]!r} is not a {self.normalize} answer (task.impl.normalize)")
        return out

    def answer_from_data(self, value: Any) -> str:
        """As the base class, and a JSON number is written out in full (1e21 -> "1000000000000000000000")."""
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"gold answer {value!r} is not a finite number")
            value = format(Decimal(repr(value)), "f")
        return super().answer_from_data(value)

    def answers_match(self, predicted: str | None, gold: str) -> bool:
        if predicted is None:
            return False
        try:
            return self.normalize_answer(predicted) == self.normalize_answer(gold)
        except ValueError:
            return False

    def is_consistent(self, attempt: str, answer: str, question: str | None = None) -> bool:
        steps = split_steps(attempt) if isinstance(attempt, str) else None
        numbered = [s for s in steps or [] if s.id != FINAL_STEP]
        if not numbered:
            return False
        if self.normalize != "number":
            return True
        try:
            target = self.normalize_answer(answer)
        except ValueError:
            return False
        text = _THOUSANDS.sub("", _CURRENCY.sub("", " ".join(s.text for s in numbered)))
        return any(normalize_number(n) == target for n in _NUMBER.findall(text))

    # ------------------------------------------------------------------ checking
    def find_error(self, question: str, attempt: str) -> Feedback:
        """The answer-level check, pointed at the first step that departs from the gold rationale
        where one can be found (module docstring)."""
        item = self._item(question)
        if item is None:
            raise Unreadable(f"the question is not in {self.path or 'a loaded file'}: no gold answer to check against")
        steps = split_steps(attempt) if isinstance(attempt, str) else None
        if not steps:
            raise Unreadable("the attempt is empty or a line of it is not a step")
        if steps[-1].id != FINAL_STEP or any(s.id == FINAL_STEP for s in steps[:-1]):
            raise Unreadable("the attempt does not end with its one (Final response) line")
        final = steps[-1]
        said = self.parse_answer(attempt)
        if self.answers_match(said, item.answer):
            return Feedback.correct()
        if item.rationale:
            departure = self._departure(steps[:-1], split_steps(item.rationale)[:-1])
            if departure is not None:
                return departure
        if said is None:
            return Feedback.error(FINAL_STEP, final.text or "(empty)",
                                  "the final response gives no answer in the expected form (\"So the answer is ...\")")
        m = self.pattern.search(final.text)
        shown = (m.group(1) if m.re.groups and m.group(1) else m.group(0)).strip() or final.text
        segment = shown if shown in final.text else final.text
        return Feedback.error(FINAL_STEP, segment, f"{shown} is not the correct answer")

    @staticmethod
    def _departure(mine: list[Step], gold: list[Step]) -> Feedback | None:
        """The error at the first step of ``mine`` that differs from gold's, when the steps before
        are gold's and it is a close variant of gold's step; None otherwise."""
        for own, ref in zip(mine, gold):
            a, b = own.text.split(), ref.text.split()
            if a == b:
                continue
            if own.id != ref.id:
                return None
            matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
            if matcher.ratio() < SIMILAR:
                return None
            _, i1, i2, j1, j2 = next(op for op in matcher.get_opcodes() if op[0] != "equal")
            segment = " ".join(a[max(i1 - 1, 0):min(max(i2, i1 + 1) + 1, len(a))])
            expected = " ".join(b[max(j1 - 1, 0):min(max(j2, j1 + 1) + 1, len(b))])
            if not segment or segment not in own.text:
                segment = own.text
            reason = f'a correct solution has "{expected}" here' if expected else "a correct solution does not have it"
            return Feedback.error(own.id, segment, reason)
        return None


__all__ = ["CustomTask", "normalize_exact", "normalize_number", "normalize_option", "question_key", "question_text"]
