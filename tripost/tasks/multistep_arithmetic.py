"""Multistep arithmetic (BIG-Bench style): generator, gold rationales, parsing and the checker.

A question is a tree of integer expressions, e.g. ``((7 - -1 + -1) - (2 * 3 - 3)) =``:
innermost groups of ``length`` operands (-9..9, operators + - *) combined pairwise over the
levels of ``depth`` ([2]: two groups, [2, 2]: four, [2, 2, 2]: eight).

The gold rationale (SPEC 4) names the innermost groups A, B, ... in step (1), computes one
group per step with full parenthesisation (multiplication first, then left to right),
reducing exactly one operation per "=" in the reference's order (``reduction_chain``), and ends
with the outer equation, reduced the same way, byte for byte as the paper's data (SPEC 9).
The scripted checker (SPEC 5) walks the steps in order and reports the first failure.

Arithmetic is exact (Python ints) and expressions are read by a small parser of our own,
never by ``eval``. Expression trees are plain values: an ``int`` (a number), a ``str`` (a
variable "A".."Z") or a tuple ``(op, left, right)``.
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass
from typing import Union

from tripost.formats import FINAL_STEP, Feedback, final_response, parse_step
from tripost.tasks.base import Cell, Example, Task, Unreadable, numbered_steps

LENGTHS = (3, 4, 5, 6)
DEPTHS = ((2,), (2, 2), (2, 2, 2))
SEEN_LENGTHS = (3, 4)
SEEN_DEPTHS = ((2,), (2, 2))
OPERATORS = "+-*"
DOMAIN = (-9, 9)  # BIG-Bench's operands; questions with others belong to no cell


def cell_name(length: int, depth) -> str:
    """"l3_d2", "l4_d2x2", "l6_d2x2x2"."""
    return f"l{length}_d{'x'.join(map(str, depth))}"


# =================================================================== expressions


class ParseError(ValueError):
    """Text that is not a valid expression."""


Node = Union[int, str, tuple]  # number, variable, (op, left, right)

# "-3" is a number when the sign touches the digits; a binary minus stands alone ("7 - -3")
_TOKEN = re.compile(r"\s*(-?\d+|[-+*()]|[A-Z])")
_INT = re.compile(r"[+-]?\d+")


def tokenize(text: str) -> list[str]:
    """Tokens of an expression; numbers are normalised ("07" -> "7")."""
    out: list[str] = []
    text = text.rstrip()
    pos, end = 0, len(text)
    while pos < end:
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ParseError(f"unexpected character {text[pos:pos + 1]!r}")
        tok = m.group(1)
        pos = m.end()
        if tok[0] == "-" and len(tok) > 1:
            if out and (out[-1] == ")" or out[-1][-1].isdigit() or out[-1].isalpha()):
                out.append("-")  # "7 -1" / "7-1": after an operand a minus is binary
                tok = tok[1:]
            out.append(str(int(tok)))
        elif tok[0].isdigit():
            out.append(str(int(tok)))
        else:
            out.append(tok)
    return out


def parse_tokens(tokens: list[str], allow_vars: bool = False) -> Node:
    """Expression tree; multiplication binds first, then left to right; parentheses kept as groups."""
    pos = 0
    n = len(tokens)

    def atom() -> Node:
        nonlocal pos
        if pos >= n:
            raise ParseError("unexpected end")
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            node = sum_()
            if pos >= n or tokens[pos] != ")":
                raise ParseError("missing )")
            pos += 1
            return node
        if tok[-1].isdigit():
            return int(tok)
        if allow_vars and tok.isalpha():
            return tok
        raise ParseError(f"unexpected {tok!r}")

    def prod() -> Node:
        nonlocal pos
        node = atom()
        while pos < n and tokens[pos] == "*":
            pos += 1
            node = ("*", node, atom())
        return node

    def sum_() -> Node:
        nonlocal pos
        node = prod()
        while pos < n and tokens[pos] in ("+", "-"):
            op = tokens[pos]
            pos += 1
            node = (op, node, prod())
        return node

    node = sum_()
    if pos != n:
        raise ParseError(f"unexpected {tokens[pos]!r}")
    return node


def parse(text: str, allow_vars: bool = False) -> Node:
    return parse_tokens(tokenize(text), allow_vars)


def evaluate(node: Node, env: dict[str, int] | None = None) -> int:
    if isinstance(node, tuple):
        op, left, right = node
        return _apply(op, evaluate(left, env), evaluate(right, env))
    if isinstance(node, str):
        if env is None or node not in env:
            raise KeyError(node)
        return env[node]
    return node


def render(node: Node) -> str:
    """Fully parenthesised text: "((2 + (3 * 4)) - 5)"; negative numbers as "-3"."""
    if isinstance(node, tuple):
        return f"({render(node[1])} {node[0]} {render(node[2])})"
    return str(node)


def _apply(op: str, a: int, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def _ready(node: Node, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    """Paths (child indices 1/2) to the operations whose two operands are numbers, left to right."""
    if not isinstance(node, tuple):
        return []
    if isinstance(node[1], int) and isinstance(node[2], int):
        return [path]
    return _ready(node[1], path + (1,)) + _ready(node[2], path + (2,))


def _at(node: Node, path: tuple[int, ...]) -> Node:
    for i in path:
        node = node[i]
    return node


def _reduce_at(node: Node, path: tuple[int, ...]) -> Node:
    """``node`` with the operation at ``path`` replaced by its value."""
    if not path:
        return _apply(*node)
    op, left, right = node
    if path[0] == 1:
        return (op, _reduce_at(left, path[1:]), right)
    return (op, left, _reduce_at(right, path[1:]))


def reduction_chain(node: Node) -> list[str]:
    """Renderings from ``node`` down to one number, one operation reduced per item (SPEC 9).

    The order is the reference's: in rounds, each operation whose operands are both numbers at
    the start of the round, left to right; then the next round. This is not "always the leftmost
    reducible operation": in ``(((6 - -4) + -9) + (6 * 7))`` the reference reduces "6 - -4",
    then "6 * 7" (ready in the same round), and only then "10 + -9".

    The reference replaces an operation's text everywhere in the line, so operations written
    identically in the same round, e.g. the two "(2 * 1)" of ``(((2 * 1) + -4) - ((2 * 1) * -9))``,
    are reduced together at the first one's turn, and the later one's turn repeats the line
    unchanged. We reproduce that, to be byte-identical to its rationales.
    """
    chain = [render(node)]
    while isinstance(node, tuple):
        ready = _ready(node)  # ready operations never contain one another: paths stay valid
        for path in ready:
            target = _at(node, path)
            if isinstance(target, tuple):  # else already reduced with an identical twin
                for twin in ready:
                    if _at(node, twin) == target:
                        node = _reduce_at(node, twin)
            chain.append(render(node))
    return chain


def substitute(node: Node, env: dict[str, int]) -> Node:
    if isinstance(node, tuple):
        return (node[0], substitute(node[1], env), substitute(node[2], env))
    if isinstance(node, str):
        return env[node]
    return node


def variables(node: Node) -> list[str]:
    if isinstance(node, tuple):
        return variables(node[1]) + variables(node[2])
    return [node] if isinstance(node, str) else []


# =================================================================== question shapes


@dataclass(frozen=True)
class Group:
    """An innermost group as written: numbers and operators, e.g. ("7", "-", "-1", "+", "-1")."""

    tokens: tuple[str, ...]

    @property
    def text(self) -> str:
        return "(" + " ".join(self.tokens) + ")"

    @property
    def length(self) -> int:
        return (len(self.tokens) + 1) // 2


@dataclass(frozen=True)
class Pair:
    """Two sub-trees combined: (left op right)."""

    left: Shape
    op: str
    right: Shape

    @property
    def text(self) -> str:
        return f"({self.left.text} {self.op} {self.right.text})"


Shape = Union[Group, Pair]


def question_expression(question: str) -> str:
    """The expression of a question: without a leading "Q:" and the trailing "="."""
    text = question.strip()
    if text.startswith("Q:"):
        text = text[2:]
    text = text.strip()
    if text.endswith("="):
        text = text[:-1]
    return text.strip()


def question_shape(question: str) -> Shape:
    """The tree of a question's parentheses; ParseError if it is not a tree of flat groups."""
    tokens = tokenize(question_expression(question))
    pos = 0
    n = len(tokens)

    def node() -> Shape:
        nonlocal pos
        if pos >= n or tokens[pos] != "(":
            raise ParseError("expected (")
        pos += 1
        items: list = []
        while pos < n and tokens[pos] != ")":
            if tokens[pos] == "(":
                items.append(node())
            else:
                items.append(tokens[pos])
                pos += 1
        if pos >= n:
            raise ParseError("missing )")
        pos += 1
        if all(isinstance(x, str) for x in items):
            ok = len(items) % 2 == 1 and all(
                (x[-1].isdigit() if i % 2 == 0 else x in OPERATORS) for i, x in enumerate(items)
            )
            if not ok:
                raise ParseError("a group is not numbers joined by + - *")
            return Group(tuple(items))
        if len(items) == 3 and not isinstance(items[0], str) and items[1] in OPERATORS and not isinstance(items[2], str):
            return Pair(items[0], items[1], items[2])
        raise ParseError("a group mixes numbers and sub-groups")

    shape = node()
    if pos != n:
        raise ParseError("text after the expression")
    return shape


def shape_groups(shape: Shape) -> list[Group]:
    if isinstance(shape, Group):
        return [shape]
    return shape_groups(shape.left) + shape_groups(shape.right)


def shape_template(shape: Shape, letters) -> Node:
    """The tree over the groups: each group replaced by the next letter."""
    if isinstance(shape, Group):
        return next(letters)
    return (shape.op, shape_template(shape.left, letters), shape_template(shape.right, letters))


def shape_cell(shape: Shape) -> tuple[int, tuple[int, ...]] | None:
    """(length, depth) of a balanced tree of equal-length groups; None otherwise."""
    if isinstance(shape, Group):
        return shape.length, ()
    left, right = shape_cell(shape.left), shape_cell(shape.right)
    if left is None or left != right:
        return None
    return left[0], (2,) + left[1]


def _align(template: Node, shape: Shape, out: list[tuple[str, Shape]]) -> bool:
    """Match a template tree to the question's tree; collect (variable, sub-tree) pairs."""
    if isinstance(template, str):
        out.append((template, shape))
        return True
    if isinstance(template, tuple) and isinstance(shape, Pair) and template[0] == shape.op:
        return _align(template[1], shape.left, out) and _align(template[2], shape.right, out)
    return False


def _same(text: str, tokens: list[str]) -> bool:
    try:
        return tokenize(text) == tokens
    except ParseError:
        return False


def _same_shape_values(written: Node, template: Node, env: dict[str, int]) -> tuple[str, int] | None:
    """Where ``written`` is ``template`` with numbers for variables, the first (variable, number)
    that differs from ``env``; None if all agree or the shapes differ."""
    if isinstance(template, str):
        if isinstance(written, int) and written != env[template]:
            return template, written
        return None
    if isinstance(template, tuple) and isinstance(written, tuple) and written[0] == template[0]:
        return _same_shape_values(written[1], template[1], env) or _same_shape_values(written[2], template[2], env)
    return None


def _same_tree_shape(written: Node, template: Node) -> bool:
    if isinstance(template, str):
        return not isinstance(written, tuple)
    if isinstance(template, tuple) and isinstance(written, tuple):
        return (
            written[0] == template[0]
            and _same_tree_shape(written[1], template[1])
            and _same_tree_shape(written[2], template[2])
        )
    return False


# =================================================================== attempt format

_DECOMPOSE = re.compile(r'^This equation can be written as "([^"]*)", where (.*?)\.?$')
_DEF_SPLIT = re.compile(r",\s*(?:and\s+)?(?=[A-Z] = )|\s+and\s+(?=[A-Z] = )")
_DEFINITION = re.compile(r"^([A-Z]) = (.+)$")
_CALCULATE = re.compile(r"^Let's calculate ([A-Z]) = (.*?)\.?$")
_FINAL_EQ = re.compile(r"^Then, the final equation is (.*?)\.?$")
_ANSWER = re.compile(r"answer is:?\s*([+-]?\d+)\s*\.?\s*$")
_LAST_VALUE = re.compile(r"=\s*([+-]?\d+)\.\s*$")
_NUMBER = re.compile(r"-?\d+")


class MultistepArithmetic(Task):
    """BIG-Bench multistep arithmetic: 12 cells of (group length, nesting depth)."""

    name = "multistep_arithmetic"
    info = (
        " Remember the order of operations: work out what is inside parentheses first, then do"
        " multiplication, and then addition and subtraction from left to right."
    )

    def __init__(self, min_operand: int = -9, max_operand: int = 9, operators: str = OPERATORS):
        if min_operand > max_operand:
            raise ValueError(f"min_operand {min_operand} > max_operand {max_operand}")
        if not operators or any(op not in OPERATORS for op in operators):
            raise ValueError(f"operators must be a non-empty subset of {OPERATORS!r}, got {operators!r}")
        self.min_operand, self.max_operand, self.operators = min_operand, max_operand, operators
        self._cells = self._make_cells()

    # ------------------------------------------------------------------ questions
    @staticmethod
    def _make_cells() -> list[Cell]:
        def cell(length, depth):
            seen = length in SEEN_LENGTHS and depth in SEEN_DEPTHS
            return Cell(cell_name(length, depth), seen, {"length": length, "depth": list(depth)})

        every = [cell(length, depth) for depth in DEPTHS for length in LENGTHS]
        return [c for c in every if c.seen] + [c for c in every if not c.seen]

    def cells(self) -> list[Cell]:
        return list(self._cells)

    def _random_shape(self, length: int, levels: int, rng: random.Random) -> Shape:
        if levels == 0:
            items = [str(rng.randint(self.min_operand, self.max_operand))]
            for _ in range(length - 1):
                items += [rng.choice(self.operators), str(rng.randint(self.min_operand, self.max_operand))]
            return Group(tuple(items))
        left = self._random_shape(length, levels - 1, rng)
        op = rng.choice(self.operators)
        return Pair(left, op, self._random_shape(length, levels - 1, rng))

    def sample(self, cell: Cell, rng: random.Random) -> Example:
        length, depth = int(cell.params["length"]), list(cell.params["depth"])
        if length < 1 or any(d != 2 for d in depth):
            raise ValueError(f"cell {cell.name}: only pairs of groups (depth entries 2) are supported")
        question = self._random_shape(length, len(depth), rng).text + " ="
        return Example(question, self.gold_answer(question), cell.name, cell.seen, self.gold_rationale(question))

    def reference_fields(self, example: Example) -> dict:
        """The raw pool writes "Q: <expression> = " (a trailing space) and the cell's shape in
        meta_data; training files keep the question as ours ("... =")."""
        fields = super().reference_fields(example)
        cell = self.cell(example.cell)
        fields["question_line"] = f"Q: {example.question.rstrip().rstrip('=').rstrip()} = "
        fields["meta"] = {"depth_levels": list(cell.params["depth"]), "length": cell.params["length"]}
        return fields

    def cell_of(self, question: str) -> Cell | None:
        """The cell of a question of ours or from a file ("Q: " and a trailing "=" allowed); None for
        another shape; ValueError, naming the operand, for an operand outside the task's domain."""
        try:
            shape = question_shape(question)
            found = shape_cell(shape)
        except (ParseError, RecursionError):
            return None
        if found is None or not found[1]:
            return None
        self._check_operands(shape)
        name = cell_name(*found)
        return next((c for c in self._cells if c.name == name), None)

    def _check_operands(self, shape: Shape) -> None:
        """The cells are BIG-Bench's, whose operands are -9..9 (widened to the configured range):
        a question with other operands is out of the domain, so a loader skips it and says why,
        rather than mixing it into a cell's accuracy."""
        low, high = min(DOMAIN[0], self.min_operand), max(DOMAIN[1], self.max_operand)
        for group in shape_groups(shape):
            for number in group.tokens[::2]:
                if not low <= int(number) <= high:
                    raise ValueError(
                        f"operand {number} is outside {low}..{high}, the operands of this task's cells"
                    )

    def example_from_file(
        self, question: str, answer: str, rationale: str | None = None, cell: str | None = None
    ) -> Example:
        """As the base class, and a named cell does not let an out-of-domain operand through."""
        try:
            shape = question_shape(question)
        except (ParseError, RecursionError):
            shape = None  # the base class says the question fits no cell
        if shape is not None:
            self._check_operands(shape)
        return super().example_from_file(question, answer, rationale, cell)

    # ------------------------------------------------------------------ text
    def gold_answer(self, question: str) -> str:
        return str(evaluate(parse(question_expression(question))))

    def gold_rationale(self, question: str) -> str:
        shape = question_shape(question)
        groups = shape_groups(shape)
        if len(groups) > 26:
            raise ValueError("more innermost groups than letters")
        letters = list(string.ascii_uppercase[: len(groups)])
        template = shape_template(shape, iter(letters))
        template_text = render(template)
        defs = [f"{letter} = {g.text}" for letter, g in zip(letters, groups)]
        where = defs[0] if len(defs) == 1 else ", ".join(defs[:-1]) + " and " + defs[-1]
        steps = [f'This equation can be written as "{template_text}", where {where}.']
        values: dict[str, int] = {}
        for letter, group in zip(letters, groups):
            node = parse_tokens(list(group.tokens))
            chain = reduction_chain(node)
            if chain[0] != group.text:
                chain.insert(0, group.text)
            values[letter] = int(chain[-1])
            steps.append(f"Let's calculate {letter} = {' = '.join(chain)}.")
        final = reduction_chain(substitute(template, values))
        if final[0] != template_text:
            final.insert(0, template_text)
        steps.append(f"Then, the final equation is {' = '.join(final)}.")
        lines = [f"({i}) {text}" for i, text in enumerate(steps, start=1)]
        lines.append(f"({FINAL_STEP}) So the answer is {final[-1]}.")
        return "\n".join(lines)  # the reference's rationales end without a newline (SPEC 9)

    def parse_answer(self, attempt: str) -> str | None:
        line = final_response(attempt) if isinstance(attempt, str) else None
        m = _ANSWER.search(line) if line else None
        return str(int(m.group(1))) if m else None

    def normalize_answer(self, answer: str) -> str:
        answer = str(answer).strip().rstrip(".").strip()
        return str(int(answer)) if _INT.fullmatch(answer) else answer

    def is_consistent(self, attempt: str, answer: str, question: str | None = None) -> bool:
        answer = self.normalize_answer(answer)
        if not _INT.fullmatch(answer):
            return False
        numbered = [s for s in map(parse_step, attempt.split("\n")) if s is not None and s.id != FINAL_STEP]
        if not numbered:
            return False
        m = _LAST_VALUE.search(numbered[-1].text)
        return m is not None and int(m.group(1)) == int(answer)

    # ------------------------------------------------------------------ checking
    @staticmethod
    def _read(attempt: str):
        """The attempt's steps by kind; Unreadable if its format is not the rationale's."""
        numbered, final = numbered_steps(attempt)
        if len(numbered) < 2:
            raise Unreadable("the attempt needs a decomposition and a final equation")
        m = _DECOMPOSE.match(numbered[0].text.strip())
        if m is None:
            raise Unreadable("step (1) does not write the equation with named groups")
        template_text, defs_text = m.group(1), m.group(2)
        definitions = []
        for part in _DEF_SPLIT.split(defs_text):
            d = _DEFINITION.match(part.strip())
            if d is None:
                raise Unreadable("step (1) does not define the groups as 'A = (...)'")
            definitions.append((d.group(1), d.group(2).strip()))
        calculations = []
        for step in numbered[1:-1]:
            c = _CALCULATE.match(step.text.strip())
            if c is None:
                raise Unreadable(f"step ({step.id}) does not calculate a group")
            calculations.append((step.id, c.group(1), c.group(2)))
        last = numbered[-1]
        f = _FINAL_EQ.match(last.text.strip())
        if f is None:
            raise Unreadable(f"step ({last.id}) is not the final equation")
        answer = _ANSWER.search(final.text)
        if answer is None:
            raise Unreadable("the final response gives no integer answer")
        return template_text, definitions, calculations, (last.id, f.group(1)), (final.text.strip(), int(answer.group(1)))

    def find_error(self, question: str, attempt: str) -> Feedback:
        try:
            shape = question_shape(question)
        except (ParseError, RecursionError):
            raise Unreadable("the question is not a tree of arithmetic groups") from None
        template_text, definitions, calculations, (final_id, final_body), (final_text, answer) = self._read(attempt)

        # step (1): the decomposition must reproduce the question
        defined: dict[str, str] = {}
        for letter, expr in definitions:
            if letter in defined:
                return Feedback.error("1", f"{letter} = {expr}", f"{letter} is defined twice")
            defined[letter] = expr
        try:
            template = parse(template_text, allow_vars=True)
        except ParseError:
            return Feedback.error("1", template_text, f"{template_text} is not a valid expression")
        pairs: list[tuple[str, Shape]] = []
        if not _align(template, shape, pairs):
            return Feedback.error("1", template_text, f"{template_text} does not match the question")
        targets: dict[str, list[str]] = {}
        for var, sub in pairs:
            tokens = tokenize(sub.text)
            if targets.setdefault(var, tokens) != tokens:
                return Feedback.error("1", template_text, f"{template_text} does not match the question")
        for var in targets:
            if var not in defined:
                return Feedback.error("1", template_text, f"{var} is used in {template_text} but not defined")
        for letter, expr in defined.items():
            if letter not in targets:
                return Feedback.error("1", f"{letter} = {expr}", f"{letter} is not used in {template_text}")
            if not _same(expr, targets[letter]):
                return Feedback.error("1", f"{letter} = {expr}", f"{letter} = {expr} does not match the question")

        # one step per group
        values: dict[str, int] = {}
        computed_in: dict[str, str] = {}
        for step_id, letter, body in calculations:
            parts = body.split(" = ")
            if letter not in defined:
                return Feedback.error(step_id, f"{letter} = {parts[0]}", f"{letter} is not defined in step (1)")
            if not _same(parts[0], targets[letter]):
                return Feedback.error(
                    step_id, f"{letter} = {parts[0]}", f"{letter} is defined as {defined[letter]} in step (1)"
                )
            error, value = self._check_chain(step_id, parts, None)
            if error is not None:
                return error
            values[letter], computed_in[letter] = value, step_id

        # the final equation
        parts = final_body.split(" = ")
        for part in parts:
            try:
                tokens = tokenize(part)
            except ParseError:
                continue  # reported as an invalid expression below
            for tok in tokens:
                if tok.isalpha() and tok not in values:
                    return Feedback.error(final_id, part, f"{tok} has not been calculated before")
        if not _same(parts[0], tokenize(template_text)):
            return Feedback.error(final_id, parts[0], f"the final equation should be {template_text} as in step (1)")
        if len(parts) > 1:
            try:
                written = parse(parts[1], allow_vars=True)
            except ParseError:
                return Feedback.error(final_id, parts[1], f"{parts[1]} is not a valid expression")
            wrong = _same_shape_values(written, template, values)
            if wrong is not None:
                var, number = wrong
                return Feedback.error(
                    final_id, parts[1], f"{var} = {values[var]} was calculated in step ({computed_in[var]}), not {number}"
                )
            if not _same_tree_shape(written, template) and evaluate(written, values) != evaluate(template, values):
                expected = render(substitute(template, values))
                return Feedback.error(
                    final_id, parts[1], f"substituting the values calculated before gives {expected}, not {parts[1]}"
                )
        error, value = self._check_chain(final_id, parts, values)
        if error is not None:
            return error
        truth = evaluate(parse_tokens(tokenize(shape.text)))
        if value != truth:
            return Feedback.error(final_id, parts[-1], f"the value of the question's equation is {truth}, not {value}")

        # the final response
        if answer != value:
            return Feedback.error(FINAL_STEP, final_text, f"the last calculated value is {value}, not {answer}")
        return Feedback.correct()

    @staticmethod
    def _check_chain(step_id: str, parts: list[str], env: dict[str, int] | None) -> tuple[Feedback | None, int]:
        """Every item of an "=" chain must be a valid expression equal to its left neighbour,
        and the chain must end with a number."""
        previous: tuple[str, int] | None = None
        for part in parts:
            try:
                value = evaluate(parse(part, allow_vars=env is not None), env)
            except (ParseError, KeyError):
                segment = part if part.strip() else " = ".join(parts)
                return Feedback.error(step_id, segment, f"{part.strip() or 'an empty part'} is not a valid expression"), 0
            if previous is not None and previous[1] != value:
                return (
                    Feedback.error(
                        step_id,
                        f"{previous[0]} = {part}",
                        f"there is a calculation error, since {previous[1]} is not equal to {value}",
                    ),
                    0,
                )
            previous = (part, value)
        if not _NUMBER.fullmatch(parts[-1].strip()):
            return Feedback.error(step_id, parts[-1], f"{parts[-1]} is not calculated down to one number"), 0
        return None, previous[1]
