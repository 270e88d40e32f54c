"""Multistep arithmetic (BIG-Bench): generator, gold rationales, parser and scripted checker.

A question is a tree: innermost groups of ``length`` operands (-9..9, operators + - *),
combined pairwise over ``depth`` levels, e.g. depth [2]: "((7 - -1 + -1) - (2 * 3 - 3)) =".
The rationale names the groups A, B, ..., computes each with full parenthesisation, then the
outer equation (SPEC 4). The checker reports the first wrong step (SPEC 5).
"""

from __future__ import annotations

import random
import re
import string
from typing import Union

from tripost.formats import FINAL_STEP, Feedback, final_response, split_steps
from tripost.tasks.arithmetic_expr import ParseError, evaluate, parse, reduction_chain, substitute, tokenize
from tripost.tasks.base import Cell, Example, Task

LENGTHS = (3, 4, 5, 6)
DEPTHS = (1, 2, 3)  # levels above the innermost groups: [2], [2,2], [2,2,2]
SEEN_LENGTHS, SEEN_DEPTHS = (3, 4), (1, 2)

# A question's shape: a flat group (list of tokens) or a pair (left, op, right).
Shape = Union[list, tuple]

_DECOMPOSE = re.compile(r'^This equation can be written as "(.+)", where (.+)\.$')
_DEFINITION = re.compile(r"([A-Z]) = (\([^()]*\))")
_CALCULATE = re.compile(r"^Let's calculate ([A-Z]) = (.+)\.$")
_FINAL_EQ = re.compile(r"^Then, the final equation is (.+)\.$")
_ANSWER = re.compile(r"the answer is (-?\+?\d+)\.?\s*$")


def cell_name(length: int, depth: int) -> str:
    return f"l{length}_d{'x'.join(['2'] * depth)}"


def _structure(text: str) -> Shape:
    """Nested shape of a question's parentheses; raises ParseError on anything else."""
    tokens = tokenize(text)
    pos = 0

    def node():
        nonlocal pos
        if pos >= len(tokens) or tokens[pos] != "(":
            raise ParseError("expected (")
        pos += 1
        items: list = []
        while pos < len(tokens) and tokens[pos] != ")":
            if tokens[pos] == "(":
                items.append(node())
            else:
                items.append(tokens[pos])
                pos += 1
        if pos >= len(tokens):
            raise ParseError("missing )")
        pos += 1
        if all(isinstance(x, str) for x in items):
            return items  # a flat group
        if len(items) == 3 and not isinstance(items[0], str) and not isinstance(items[2], str):
            return (items[0], items[1], items[2])
        raise ParseError("mixed group")

    shape = node()
    if pos != len(tokens):
        raise ParseError("trailing tokens")
    return shape


def _groups(shape: Shape) -> list[list[str]]:
    if isinstance(shape, list):
        return [shape]
    return _groups(shape[0]) + _groups(shape[2])


def _template(shape: Shape, letters: list[str]) -> str:
    if isinstance(shape, list):
        return letters.pop(0)
    return f"({_template(shape[0], letters)} {shape[1]} {_template(shape[2], letters)})"


def _render(shape: Shape) -> str:
    if isinstance(shape, list):
        return "(" + " ".join(shape) + ")"
    return f"({_render(shape[0])} {shape[1]} {_render(shape[2])})"


def _depth_and_length(shape: Shape) -> tuple[int, int] | None:
    if isinstance(shape, list):
        if len(shape) % 2 == 0 or any(shape[i] not in "+-*" for i in range(1, len(shape), 2)):
            return None
        return 0, (len(shape) + 1) // 2
    left, right = _depth_and_length(shape[0]), _depth_and_length(shape[2])
    if left is None or left != right or shape[1] not in "+-*":
        return None
    return left[0] + 1, left[1]


def _expression(question: str) -> str:
    return question.strip().removesuffix("=").strip()


def _norm(expr: str) -> str:
    return re.sub(r"\s+", "", expr)


class MultistepArithmetic(Task):
    name = "multistep_arithmetic"
    info = (
        " Recall the order of operations: first compute inside parentheses, then"
        " multiplication, then addition and subtraction from left to right."
    )

    def __init__(self, min_operand: int = -9, max_operand: int = 9):
        self.min_operand, self.max_operand = min_operand, max_operand

    # ------------------------------------------------------------------ questions
    def cells(self) -> list[Cell]:
        seen = [Cell(cell_name(length, d), True, {"length": length, "depth": [2] * d})
                for d in SEEN_DEPTHS for length in SEEN_LENGTHS]
        unseen = [Cell(cell_name(length, d), False, {"length": length, "depth": [2] * d})
                  for d in DEPTHS for length in LENGTHS if not (d in SEEN_DEPTHS and length in SEEN_LENGTHS)]
        return seen + unseen

    def _random_shape(self, length: int, depth: int, rng: random.Random) -> Shape:
        if depth == 0:
            items = [str(rng.randint(self.min_operand, self.max_operand))]
            for _ in range(length - 1):
                items += [rng.choice("+-*"), str(rng.randint(self.min_operand, self.max_operand))]
            return items
        return (self._random_shape(length, depth - 1, rng), rng.choice("+-*"), self._random_shape(length, depth - 1, rng))

    def sample(self, cell: Cell, rng: random.Random) -> Example:
        depth = len(cell.params["depth"])
        shape = self._random_shape(cell.params["length"], depth, rng)
        question = _render(shape) + " ="
        return Example(question, self.gold_answer(question), cell.name, cell.seen, self.gold_rationale(question))

    def cell_of(self, question: str) -> Cell | None:
        try:
            found = _depth_and_length(_structure(_expression(question)))
        except ParseError:
            return None
        if found is None or found[0] == 0:
            return None
        depth, length = found
        name = cell_name(length, depth)
        return next((c for c in self.cells() if c.name == name), None)

    # ------------------------------------------------------------------ text
    def gold_answer(self, question: str) -> str:
        return str(evaluate(parse(_expression(question))))

    def gold_rationale(self, question: str) -> str:
        shape = _structure(_expression(question))
        groups = _groups(shape)
        letters = list(string.ascii_uppercase[: len(groups)])
        template = _template(shape, list(letters))
        written = ["(" + " ".join(g) + ")" for g in groups]
        defs = [f"{L} = {w}" for L, w in zip(letters, written)]
        where = defs[0] if len(defs) == 1 else ", ".join(defs[:-1]) + " and " + defs[-1]
        steps = [f'This equation can be written as "{template}", where {where}.']
        values: dict[str, int] = {}
        for L, w in zip(letters, written):
            chain = reduction_chain(parse(w))
            if chain[0] != w:
                chain = [w] + chain
            values[L] = int(chain[-1])
            steps.append(f"Let's calculate {L} = {' = '.join(chain)}.")
        final = reduction_chain(substitute(parse(template, allow_vars=True), values))
        steps.append(f"Then, the final equation is {template} = {' = '.join(final)}.")
        lines = [f"({i}) {s}" for i, s in enumerate(steps, start=1)]
        lines.append(f"({FINAL_STEP}) So the answer is {final[-1]}.")
        return "\n".join(lines) + "\n"

    def parse_answer(self, attempt: str) -> str | None:
        line = final_response(attempt)
        m = _ANSWER.search(line) if line else None
        return str(int(m.group(1))) if m else None

    def normalize_answer(self, answer: str) -> str:
        answer = answer.strip().rstrip(".")
        try:
            return str(int(answer))
        except ValueError:
            return answer

    def is_consistent(self, attempt: str, answer: str) -> bool:
        steps = [s for s in split_steps(attempt) or [] if s.id != FINAL_STEP]
        return bool(steps) and steps[-1].text.rstrip().endswith(f"= {answer}.")

    # ------------------------------------------------------------------ checking
    def check(self, question: str, attempt: str) -> Feedback:
        try:
            return self._check(question, attempt)
        except (ParseError, KeyError, ValueError, IndexError) as e:
            return Feedback.unparsable(f"cannot read the attempt ({e})")

    def _check(self, question: str, attempt: str) -> Feedback:
        shape = _structure(_expression(question))
        true_groups = ["(" + " ".join(g) + ")" for g in _groups(shape)]
        true_template = _template(shape, list(string.ascii_uppercase[: len(true_groups)]))
        steps = split_steps(attempt)
        if not steps or steps[-1].id != FINAL_STEP or len(steps) < 3:
            return Feedback.unparsable("the attempt has no numbered steps and final response")

        # (1) the decomposition
        first = steps[0]
        m = _DECOMPOSE.match(first.text)
        if first.id != "1" or not m:
            return Feedback.unparsable("step (1) is not a decomposition")
        template, defs_text = m.group(1), m.group(2)
        definitions: dict[str, str] = {}
        for letter, expr in _DEFINITION.findall(defs_text):
            if letter in definitions:
                return Feedback.error("1", f"{letter} = {expr}", f"{letter} is defined twice")
            definitions[letter] = expr
        for i, (letter, expr) in enumerate(definitions.items()):
            if i >= len(true_groups) or _norm(expr) != _norm(true_groups[i]):
                return Feedback.error("1", f"{letter} = {expr}", f"{letter} = {expr} does not match the question")
        if len(definitions) != len(true_groups) or _norm(template) != _norm(true_template):
            return Feedback.error("1", template, f'the equation "{template}" does not match the question')

        # (2) ... one step per group
        values: dict[str, int] = {}
        numbered = steps[1:-1]
        for step in numbered[:-1]:
            m = _CALCULATE.match(step.text)
            if not m:
                return Feedback.unparsable(f"step ({step.id}) is not a calculation")
            letter, chain = m.group(1), m.group(2).split(" = ")
            if letter not in definitions:
                return Feedback.error(step.id, f"{letter} = {chain[0]}", f"{letter} is not defined in step (1)")
            if _norm(chain[0]) != _norm(definitions[letter]):
                return Feedback.error(
                    step.id, f"{letter} = {chain[0]}", f"{letter} was defined as {definitions[letter]} in step (1)"
                )
            error, value = self._check_chain(step.id, chain, {})
            if error:
                return error
            values[letter] = value

        # the final equation
        last = numbered[-1]
        m = _FINAL_EQ.match(last.text)
        if not m:
            return Feedback.unparsable(f"step ({last.id}) is not the final equation")
        chain = m.group(1).split(" = ")
        for letter in re.findall(r"[A-Z]", chain[0]):
            if letter not in values:
                return Feedback.error(last.id, letter, f"{letter} has not been calculated before")
        if _norm(chain[0]) != _norm(template):
            return Feedback.error(last.id, chain[0], f'it should be the equation "{template}" of step (1)')
        if len(chain) < 2:
            return Feedback.error(last.id, chain[0], "the final equation is not calculated")
        expected = substitute(parse(template, allow_vars=True), values).render()
        if _norm(chain[1]) != _norm(expected):
            return Feedback.error(last.id, chain[1], f"it does not use the values calculated before, {expected}")
        error, value = self._check_chain(last.id, chain[1:], {})
        if error:
            return error
        truth = evaluate(parse(_expression(question)))
        if value != truth:
            return Feedback.error(last.id, chain[-1], f"the value of the equation is {truth}, not {value}")

        # the final response
        final = steps[-1]
        answer = self.parse_answer(attempt)
        if answer is None:
            return Feedback.unparsable("the final response gives no number")
        if int(answer) != value:
            return Feedback.error(FINAL_STEP, final.text, f"the last calculated value is {value}, not {answer}")
        return Feedback.correct()

    @staticmethod
    def _check_chain(step_id: str, chain: list[str], env: dict[str, int]) -> tuple[Feedback | None, int]:
        """Neighbours of an "=" chain must be valid and equal; the chain must end in a number."""
        values = []
        for part in chain:
            try:
                values.append(evaluate(parse(part), env))
            except ParseError:
                return Feedback.error(step_id, part, f"{part} is not a valid expression"), 0
        for (a, va), (b, vb) in zip(zip(chain, values), zip(chain[1:], values[1:])):
            if va != vb:
                return (
                    Feedback.error(step_id, f"{a} = {b}", f"there is a calculation error, since {va} is not equal to {vb}"),
                    0,
                )
        if not re.fullmatch(r"-?\d+", chain[-1].strip()):
            return Feedback.error(step_id, chain[-1], f"the calculation is not finished at {chain[-1]}"), 0
        return None, values[-1]
