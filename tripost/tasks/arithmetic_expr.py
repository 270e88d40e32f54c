"""Integer expressions with + - * and parentheses: parse, evaluate exactly, render, reduce.

Used by the multistep arithmetic task to write and check rationales. No ``eval``: a small
recursive-descent parser with multiplication binding first and left-to-right order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

# a number is "-3" (sign attached); a binary minus always stands alone ("7 - -1")
_TOKEN = re.compile(r"\s*(-?\d+|[A-Z]|[-+*()])")


@dataclass(frozen=True)
class Num:
    value: int

    def render(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Var:
    name: str

    def render(self) -> str:
        return self.name


@dataclass(frozen=True)
class Bin:
    left: "Node"
    op: str
    right: "Node"

    def render(self) -> str:
        return f"({self.left.render()} {self.op} {self.right.render()})"


Node = Union[Num, Var, Bin]


class ParseError(ValueError):
    pass


def tokenize(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ParseError(f"unexpected character {text[pos]!r}")
        tok = m.group(1)
        # "-3" right after an operand is a binary minus and a number written without a space
        if tok[0] == "-" and len(tok) > 1 and tokens and tokens[-1] not in "+-*(":
            raise ParseError("binary minus needs spaces around it")
        tokens.append(tok)
        pos = m.end()
    return tokens


def parse(text: str, allow_vars: bool = False) -> Node:
    """Parse an expression; multiplication binds first, then left to right."""
    tokens = tokenize(text)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        if pos >= len(tokens):
            raise ParseError("unexpected end")
        pos += 1
        return tokens[pos - 1]

    def atom() -> Node:
        tok = take()
        if tok == "(":
            node = sum_()
            if take() != ")":
                raise ParseError("missing )")
            return node
        if re.fullmatch(r"-?\d+", tok):
            return Num(int(tok))
        if allow_vars and re.fullmatch(r"[A-Z]", tok):
            return Var(tok)
        raise ParseError(f"unexpected {tok!r}")

    def prod() -> Node:
        node = atom()
        while peek() == "*":
            take()
            node = Bin(node, "*", atom())
        return node

    def sum_() -> Node:
        node = prod()
        while peek() in ("+", "-"):
            op = take()
            node = Bin(node, op, prod())
        return node

    node = sum_()
    if pos != len(tokens):
        raise ParseError(f"unexpected {tokens[pos]!r}")
    return node


def evaluate(node: Node, env: dict[str, int] | None = None) -> int:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Var):
        if env is None or node.name not in env:
            raise KeyError(node.name)
        return env[node.name]
    a, b = evaluate(node.left, env), evaluate(node.right, env)
    return a + b if node.op == "+" else a - b if node.op == "-" else a * b


def reduce_innermost(node: Node) -> Node:
    """Replace every operation whose operands are both numbers by its value, all at once."""
    if not isinstance(node, Bin):
        return node
    if isinstance(node.left, Num) and isinstance(node.right, Num):
        return Num(evaluate(node))
    return Bin(reduce_innermost(node.left), node.op, reduce_innermost(node.right))


def reduction_chain(node: Node) -> list[str]:
    """Renderings from the fully parenthesised form down to one number."""
    chain = [node.render()]
    while not isinstance(node, Num):
        node = reduce_innermost(node)
        chain.append(node.render())
    return chain


def substitute(node: Node, env: dict[str, int]) -> Node:
    if isinstance(node, Var):
        return Num(env[node.name])
    if isinstance(node, Bin):
        return Bin(substitute(node.left, env), node.op, substitute(node.right, env))
    return node
