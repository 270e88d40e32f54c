"""Logical deduction (BIG-Bench style): generator, solver, gold rationales and the checker.

A question puts three, five or seven objects in a fixed order along the axis of a scene
(books on a shelf and birds on a branch: left to right; golfers: first to last; fruits:
cheapest to most expensive; vehicles: oldest to newest), states facts about the order ("The
owl is to the left of the robin", "Eve finished second-to-last", "The apples are the
cheapest") that fix it uniquely, and asks which option, one per object, holds.

Orderings ("patterns") are written from one end of the axis to the other, e.g.
``(left) ? owl ?? robin (right)``: "?" is exactly one unnamed object and "??" zero or more.
A pattern stands for every order it matches, and is the conjunction of its links: between
two neighbouring items (an object or an end) lie exactly as many objects as "?" there, or at
least as many when there is a "??" too. The rationale (SPEC 4), one step a line:

- one *reading* step per statement, in the question's order (the checker takes any of the
  question's statements, in any order): the statement quoted, then its pattern:
  ``(1) "The owl is the second from the left": (left) ? owl ?? (right).``
- *combining* steps: ``(4) Combining (1) and (3): (left) ? owl ?? robin ?? (right).`` The
  new pattern must follow from the cited steps; the last one is the full order, with no "?".
- one *choice* step: ``(6) In this order, the owl is the second from the left, which is
  option (B).`` and then ``(Final response) So the answer is (B).``

A full example (a question in BIG-Bench's phrasing and its gold rationale)::

    Q: The following paragraphs each describe a set of three objects arranged in a fixed
    order. The statements are logically consistent within each paragraph. On a branch, there
    are three birds: a crow, a hawk, and an owl. The owl is to the left of the crow. The hawk
    is to the left of the owl.
    Options:
    (A) The crow is the second from the left
    (B) The hawk is the second from the left
    (C) The owl is the second from the left
    Answer: Let's think step by step. Let "??" stand for 0 or more objects and "?" for exactly 1 object.
    (1) "The owl is to the left of the crow": (left) ?? owl ?? crow ?? (right).
    (2) "The hawk is to the left of the owl": (left) ?? hawk ?? owl ?? (right).
    (3) Combining (1) and (2): (left) hawk owl crow (right).
    (4) In this order, the owl is the second from the left, which is option (C).
    (Final response) So the answer is (C).

The checker also reads the phrasing of the paper's LLM-written rationales (SPEC 9), which a
model fine-tuned on the paper's files writes; the generator never does::

    (1) The owl is to the left of the crow: "(right) ?? crow ?? owl ?? (left)".
    (3) There are in total three birds: a crow, a hawk, and an owl.
    (4) Combining (1) and (2) we get the following ordering: "(left) ?? hawk ?? owl ?? crow ?? (right)".
    (5) Combining (3) and (4) we get the following ordering: "(left) hawk owl crow (right)".
    (6) According to this ordering, the bird that is the second from the left is the owl.
    (Final response) The owl is the second from the left. So The answer is (C).

There an ordering may run from either end, under other labels of the ends ("(above)",
"(least expensive)"), name objects for short ("gray" for "gray book"); the count step rules
out nothing; the choice step names no letter, needs only an ordering that settles its claim,
and the final response picks the letter and restates its option.

Every check is exact: all n! orders (5040 for seven objects) are enumerated once per n and a
set of orders is an int bitmask, so "this pattern means the same as the statement" and "this
pattern follows from those steps" are comparisons of masks. The checker (SPEC 5) reports the
earliest wrong step: a quote that is no statement of the question, a pattern that does not
mean what its statement says (the segment is its first wrong link), a combination that cites
no earlier ordering or does not follow from the cited ones, a choice made before the full
order is known, a claim that is false in that order or an option that does not say it, and a
final answer that is not the chosen option. Statements and options are read in our phrasing
and in BIG-Bench's, for any scene whose statements use one of the four axes' phrases.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from tripost.formats import FINAL_STEP, Feedback, Step, final_response, split_steps
from tripost.tasks.base import Cell, Example, Task, Unreadable, numbered_steps

SEEN_SIZES, UNSEEN_SIZES = (3, 5), (7,)
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
WORD_NUMBERS = {word: n for n, word in NUMBER_WORDS.items()}
ORDINALS = ("", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth")
LETTERS = "ABCDEFGHI"
PREAMBLE = ("The following paragraphs each describe a set of {count} objects arranged in a fixed order. "
            "The statements are logically consistent within each paragraph.")


def cell_name(n: int) -> str:
    return f"o{n}"


# =================================================================== facts and axes


@dataclass(frozen=True)
class Fact:
    """What a statement or an option says, with positions counted from the start of the axis.

    "before": object ``a`` comes before object ``b``; "at": object ``a`` is at position ``k``
    (0 = the start). ``from_end`` and ``flipped`` only choose the wording ("second from the
    right", "the robin is to the right of the owl"), so they take no part in equality.
    """

    kind: str
    a: int
    b: int = -1
    k: int = -1
    from_end: bool = field(default=False, compare=False)
    flipped: bool = field(default=False, compare=False)

    @classmethod
    def before(cls, a: int, b: int, flipped: bool = False) -> Fact:
        return cls("before", a, b=b, flipped=flipped)

    @classmethod
    def at(cls, a: int, k: int, from_end: bool = False) -> Fact:
        return cls("at", a, k=k, from_end=from_end)

    def holds(self, order: tuple[int, ...]) -> bool:
        """Whether the fact is true of an order (object indices from the start of the axis)."""
        if self.kind == "before":
            return order.index(self.a) < order.index(self.b)
        return order[self.k] == self.a


@dataclass(frozen=True)
class Axis:
    """The direction objects are ordered along, and every phrase that talks about it."""

    start: str  # end labels of patterns: "(left) ... (right)"
    stop: str
    verbs: str  # regex of the verbs statements use: "is|are" or "finished"
    before: str  # "X <before> Y": X comes first
    after: str
    first: str  # the start position; counted positions use nth ("the {} from the left")
    nth: str
    last: str
    nth_last: str
    also_before: tuple[str, ...] = ()  # other phrasings we read (never write)
    also_after: tuple[str, ...] = ()
    # Other labels of the two ends that orderings may carry: the paper's LLM-written rationales
    # label them freely ("(above) ... (below)", "(most expensive) ... (least expensive)").
    start_labels: tuple[str, ...] = ()
    stop_labels: tuple[str, ...] = ()

    def end_of(self, label: str) -> str | None:
        """Which end an ordering's label names: "start", "stop", or None for neither."""
        label = _clean(label).lower()
        if label in (self.start, *self.start_labels):
            return "start"
        if label in (self.stop, *self.stop_labels):
            return "stop"
        return None

    def position_phrase(self, k: int, n: int, from_end: bool) -> str:
        count = n - k if from_end else k + 1  # 1 = the end itself
        if count == 1:
            return self.last if from_end else self.first
        return (self.nth_last if from_end else self.nth).format(ORDINALS[count])

    def positions(self, n: int) -> dict[str, tuple[int, bool]]:
        """Every position phrase of n objects: phrase -> (k, from_end)."""
        table: dict[str, tuple[int, bool]] = {}
        for k in range(n):
            for from_end in (False, True):
                count = n - k if from_end else k + 1
                table[(self.nth_last if from_end else self.nth).format(ORDINALS[count])] = (k, from_end)
        for k in range(n):  # the plain words win over "the first from the left"
            for from_end in (False, True):
                table[self.position_phrase(k, n, from_end)] = (k, from_end)
        return table

    def relations(self) -> list[tuple[str, bool]]:
        """(phrase, whether the subject comes after the other object), longest phrases first."""
        pairs = [(p, False) for p in (self.before, *self.also_before)] + [(p, True) for p in (self.after, *self.also_after)]
        return sorted(pairs, key=lambda pair: -len(pair[0]))


LEFT_RIGHT = Axis("left", "right", "is|are", "to the left of", "to the right of",
                  "the leftmost", "the {} from the left", "the rightmost", "the {} from the right",
                  start_labels=("leftmost",), stop_labels=("rightmost",))
FINISH = Axis("first", "last", "finished", "above", "below", "first", "{}", "last", "{}-to-last",
              also_before=("ahead of", "before"), also_after=("behind", "after"),
              start_labels=("above", "top", "best"), stop_labels=("below", "bottom", "worst"))
PRICE = Axis("cheapest", "most expensive", "is|are", "less expensive than", "more expensive than",
             "the cheapest", "the {}-cheapest", "the most expensive", "the {}-most expensive",
             also_before=("cheaper than",), also_after=("pricier than",),
             start_labels=("least expensive", "less expensive", "cheap", "cheaper", "least"),
             stop_labels=("expensive", "more expensive", "most"))
AGE = Axis("oldest", "newest", "is|are", "older than", "newer than",
           "the oldest", "the {}-oldest", "the newest", "the {}-newest",
           start_labels=("old", "older"), stop_labels=("new", "newer"))
AXES = (LEFT_RIGHT, FINISH, PRICE, AGE)


@dataclass(frozen=True)
class Voice:
    """How a question words its facts: "The owl is ...", "The apples are ...", "Eve finished ..."."""

    axis: Axis
    article: bool
    verb: str

    def mention(self, name: str, capital: bool = False) -> str:
        if not self.article:
            return name
        return f"{'The' if capital else 'the'} {name}"

    def say(self, fact: Fact, names: tuple[str, ...], capital: bool = True) -> str:
        """The fact as a sentence without its period."""
        if fact.kind == "before":
            first, relation, second = (fact.b, self.axis.after, fact.a) if fact.flipped else (fact.a, self.axis.before, fact.b)
            return f"{self.mention(names[first], capital)} {self.verb} {relation} {self.mention(names[second])}"
        phrase = self.axis.position_phrase(fact.k, len(names), fact.from_end)
        return f"{self.mention(names[fact.a], capital)} {self.verb} {phrase}"


def _clean(text: str) -> str:
    return " ".join(text.strip().rstrip(".").split())


def _find_name(text: str, names: tuple[str, ...]) -> int:
    """The index of the object a text names ("the blue jay", "Eve"); ValueError if none."""
    words = _clean(text).lower()
    if words.startswith("the "):
        words = words[4:]
    lowered = [name.lower() for name in names]
    if words not in lowered:
        raise ValueError(f'"{_clean(text)}" is not one of the objects ({", ".join(names)})')
    return lowered.index(words)


def _word_forms(word: str) -> set[str]:
    """A noun with its likely other number: "pears"/"pear", "peaches"/"peach", "kiwi"/"kiwis"."""
    forms = {word, word + "s", word + "es"}
    if word.endswith("s"):
        forms.add(word[:-1])
    if word.endswith("es"):
        forms.add(word[:-2])
    return forms


@lru_cache(maxsize=4096)
def name_aliases(names: tuple[str, ...]) -> dict[tuple[str, ...], int]:
    """Every way an ordering or a claim may write an object, as lowercase words -> its index.

    The paper's rationales write "gray" for "gray book" (the noun every name shares) and
    sometimes "watermelon" for "watermelons"; an alias that two objects share names neither,
    and a full name always names its object."""
    lowered = [tuple(name.lower().split()) for name in names]
    shared = len({words[-1] for words in lowered}) == 1 and all(len(words) > 1 for words in lowered)
    found: dict[tuple[str, ...], set[int]] = {}
    for i, words in enumerate(lowered):
        for base in (words, words[:-1]) if shared else (words,):
            for last in _word_forms(base[-1]):
                found.setdefault(base[:-1] + (last,), set()).add(i)
    aliases = {alias: objs.pop() for alias, objs in found.items() if len(objs) == 1}
    aliases.update({words: i for i, words in enumerate(lowered)})
    return aliases


def read_fact(sentence: str, names: tuple[str, ...], axis: Axis) -> tuple[Fact, Voice]:
    """The fact a sentence states about the order, and how it is worded; ValueError if unreadable."""
    text = _clean(sentence)
    m = re.match(rf"^(.+?) ({axis.verbs}) (.+)$", text, flags=re.I)
    if m is None:
        raise ValueError(f'"{text}" says nothing about the order')
    subject = _find_name(m.group(1), names)
    voice = Voice(axis, m.group(1).lower().startswith("the "), m.group(2).lower())
    rest = m.group(3).lower()
    for phrase, later in axis.relations():
        if rest.startswith(phrase + " "):
            other = _find_name(rest[len(phrase) + 1:], names)
            if other == subject:
                raise ValueError(f'"{text}" compares an object with itself')
            return (Fact.before(other, subject, flipped=True) if later else Fact.before(subject, other)), voice
    position = axis.positions(len(names)).get(rest)
    if position is None:
        raise ValueError(f'"{text}" says nothing about the order')
    return Fact.at(subject, *position), voice


# =================================================================== orders as bitmasks


class Orders:
    """Every order of n objects (n! of them), and sets of orders as int bitmasks (bit i: order i)."""

    def __init__(self, n: int):
        self.n = n
        self.by_position = np.array(list(itertools.permutations(range(n))), dtype=np.int16)
        self.position = np.argsort(self.by_position, axis=1).astype(np.int16)  # [order, object] -> position
        self.count = len(self.by_position)
        self.everything = (1 << self.count) - 1
        self._links: dict[tuple, int] = {}

    def _pack(self, flags: np.ndarray) -> int:
        return int.from_bytes(np.packbits(flags, bitorder="little").tobytes(), "little")

    def link(self, left: int | None, right: int | None, gap: tuple[int, bool]) -> int:
        """Orders with exactly gap[0] objects between ``left`` and ``right`` (None: an end), or
        at least that many when gap[1]."""
        key = (left, right, gap)
        if key not in self._links:
            low = -1 if left is None else self.position[:, left]
            high = self.n if right is None else self.position[:, right]
            between = np.asarray(high - low - 1)
            flags = between >= gap[0] if gap[1] else between == gap[0]
            self._links[key] = self._pack(np.broadcast_to(flags, (self.count,)))
        return self._links[key]

    def fact(self, fact: Fact) -> int:
        if fact.kind == "before":
            return self.link(fact.a, fact.b, (0, True))
        return self.link(None, fact.a, (fact.k, False))

    def members(self, mask: int) -> np.ndarray:
        raw = np.frombuffer(mask.to_bytes((self.count + 7) // 8, "little"), dtype=np.uint8)
        return np.nonzero(np.unpackbits(raw, bitorder="little")[: self.count])[0]

    def first(self, mask: int) -> tuple[int, ...]:
        """The first order of a non-empty set, as object indices from the start."""
        return tuple(int(x) for x in self.by_position[(mask & -mask).bit_length() - 1])


@lru_cache(maxsize=None)
def orders_of(n: int) -> Orders:
    return Orders(n)


# =================================================================== patterns

Gap = tuple[int, bool]  # (exactly this many "?", and a "??" too)


@dataclass(frozen=True)
class Pattern:
    """Objects in axis order and the gaps around them: len(objects) + 1 gaps, ends included."""

    objects: tuple[int, ...]
    gaps: tuple[Gap, ...]

    @classmethod
    def full(cls, order: tuple[int, ...]) -> Pattern:
        return cls(tuple(order), ((0, False),) * (len(order) + 1))

    def links(self) -> list[tuple[int | None, int | None, Gap]]:
        items = (None, *self.objects, None)
        return [(items[i], items[i + 1], gap) for i, gap in enumerate(self.gaps)]

    def mask(self, orders: Orders) -> int:
        mask = orders.everything
        for left, right, gap in self.links():
            mask &= orders.link(left, right, gap)
        return mask

    def is_full(self, n: int) -> bool:
        return len(self.objects) == n and all(gap == (0, False) for gap in self.gaps)


def fact_pattern(fact: Fact, n: int) -> Pattern:
    """The pattern a statement is read as; a position counts from the end it is phrased from."""
    if fact.kind == "before":
        return Pattern((fact.a, fact.b), ((0, True),) * 3)
    if fact.from_end:
        return Pattern((fact.a,), ((0, True), (n - 1 - fact.k, False)))
    return Pattern((fact.a,), ((fact.k, False), (0, True)))


def render_pattern(pattern: Pattern, names: tuple[str, ...], axis: Axis) -> str:
    parts = [f"({axis.start})"]
    for i, (count, open_) in enumerate(pattern.gaps):
        parts += ["?"] * count + (["??"] if open_ else [])
        if i < len(pattern.objects):
            parts.append(names[pattern.objects[i]])
    parts.append(f"({axis.stop})")
    return " ".join(parts)


def summarize(orders: Orders, mask: int, objects: set[int]) -> Pattern | None:
    """The one pattern over ``objects`` that stands for exactly the orders of ``mask``, if any."""
    chosen = sorted(objects)
    positions = orders.position[orders.members(mask)][:, chosen]
    ranked = np.argsort(positions[0])
    positions = positions[:, ranked]
    if len(chosen) > 1 and not (np.diff(positions, axis=1) > 0).all():
        return None  # the objects are not always in the same order
    count = len(positions)
    bounded = np.hstack([np.full((count, 1), -1), positions, np.full((count, 1), orders.n)])
    between = np.diff(bounded, axis=1) - 1
    low, high = between.min(axis=0), between.max(axis=0)
    pattern = Pattern(tuple(chosen[i] for i in ranked), tuple((int(lo), bool(hi > lo)) for lo, hi in zip(low, high)))
    return pattern if pattern.mask(orders) == mask else None


# =================================================================== questions


@dataclass(frozen=True)
class Puzzle:
    """A question read: its objects, axis, statements and options, each with its fact."""

    names: tuple[str, ...]
    voice: Voice
    statements: tuple[str, ...]  # as written, without the period
    facts: tuple[Fact, ...]
    options: tuple[tuple[str, str, Fact | None], ...]  # (letter, text, fact or None if unreadable)

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def axis(self) -> Axis:
        return self.voice.axis

    @property
    def orders(self) -> Orders:
        return orders_of(self.n)

    def solutions(self) -> int:
        mask = self.orders.everything
        for fact in self.facts:
            mask &= self.orders.fact(fact)
        return mask

    def solution(self) -> tuple[int, ...]:
        mask = self.solutions()
        if mask.bit_count() != 1:
            raise ValueError(f"the statements allow {mask.bit_count()} orders, not one")
        return self.orders.first(mask)

    def answer(self) -> tuple[str, str]:
        """(letter, text) of the one option true of the solution."""
        order = self.solution()
        right = [(letter, text) for letter, text, fact in self.options if fact is not None and fact.holds(order)]
        if len(right) != 1:
            raise ValueError(f"{len(right)} options hold, not one")
        return right[0]

    def pattern_text(self, pattern: Pattern) -> str:
        return render_pattern(pattern, self.names, self.axis)


_PREAMBLE = re.compile(r"^The following paragraphs each describe a set of (\w+) objects arranged in a fixed order\."
                       r"\s*The statements are logically consistent within each paragraph\.\s*", flags=re.I)
_SENTENCE_END = re.compile(r"(?<=\.)\s+")
_LIST_SPLIT = re.compile(r",\s*(?:and\s+)?|\s+and\s+")
_OPTION = re.compile(r"^\(([A-Z])\)\s*(.+?)\.?$")


def normalize_question(text: str) -> str:
    """One paragraph, then "Options:" and one "(X) ..." line each (BIG-Bench files vary)."""
    head, sep, tail = text.strip().partition("Options:")
    head = " ".join(head.split())
    if not sep:
        return head
    options = [" ".join(o.split()) for o in re.split(r"\s*(?=\([A-Z]\)\s)", tail) if o.strip()]
    return head + "\nOptions:\n" + "\n".join(options)


def _read_names(intro: str) -> tuple[str, ...]:
    items = [x.strip() for x in _LIST_SPLIT.split(_clean(intro.split(":", 1)[1])) if x.strip()]
    names = tuple(re.sub(r"^(?:an?|the)\s+", "", item, flags=re.I) for item in items)
    if len({name.lower() for name in names}) != len(names) or len(names) < 2:
        raise ValueError("the objects are not a list of distinct names")
    return names


@lru_cache(maxsize=4096)
def parse_question(question: str) -> Puzzle:
    """A question (ours or BIG-Bench's) read into a Puzzle; ValueError if it cannot be read."""
    text = normalize_question(question)
    head, _, options_text = text.partition("\nOptions:\n")
    m = _PREAMBLE.match(head)
    body = head[m.end():] if m else head
    sentences = [s for s in _SENTENCE_END.split(body) if s.strip()]
    intro_at = next((i for i, s in enumerate(sentences) if ":" in s), None)
    if intro_at is None:
        raise ValueError("the question lists no objects")
    names = _read_names(sentences[intro_at])
    if m and WORD_NUMBERS.get(m.group(1).lower()) != len(names):
        raise ValueError(f"the question announces {m.group(1)} objects but lists {len(names)}")
    statements = tuple(_clean(s) for s in sentences[intro_at + 1:])
    if not statements:
        raise ValueError("the question states nothing about the order")
    options = [(o.group(1), o.group(2)) for o in map(_OPTION.match, options_text.split("\n")) if o]
    failures = []
    for axis in AXES:  # the axis whose phrases read every statement
        read = []
        try:
            for statement in statements:
                read.append(read_fact(statement, names, axis))
        except ValueError as e:
            failures.append((len(read), str(e)))
            continue
        return Puzzle(names, read[0][1], statements, tuple(fact for fact, _ in read),
                      tuple((letter, body, _fact_or_none(body, names, axis)) for letter, body in options))
    raise ValueError(max(failures)[1])  # what the axis that read the most statements stumbled on


def _fact_or_none(text: str, names: tuple[str, ...], axis: Axis) -> Fact | None:
    try:
        return read_fact(text, names, axis)[0]
    except ValueError:
        return None


# =================================================================== scenes (the generator's)


@dataclass(frozen=True)
class Scene:
    key: str  # "books", ...: recorded in an Example's meta
    intro: str  # "On a shelf, there are {count} books: {items}."
    pool: tuple[str, ...]
    voice: Voice
    listed_with_article: bool  # "a white book" or "apples"

    def list_text(self, names: list[str]) -> str:
        items = [f"{'an' if n[0] in 'aeiou' else 'a'} {n}" if self.listed_with_article else n for n in names]
        return ", ".join(items[:-1]) + f", and {items[-1]}"


_COLORS = ("white", "green", "orange", "red", "gray", "purple", "blue", "black", "brown", "yellow")
SCENES = (
    Scene("books", "On a shelf, there are {count} books: {items}.", tuple(f"{c} book" for c in _COLORS), Voice(LEFT_RIGHT, True, "is"), True),
    Scene("birds", "On a branch, there are {count} birds: {items}.",
          ("blue jay", "quail", "falcon", "owl", "raven", "robin", "crow", "hummingbird", "cardinal", "hawk"),
          Voice(LEFT_RIGHT, True, "is"), True),
    Scene("golfers", "In a golf tournament, there were {count} golfers: {items}.",
          ("Amy", "Eli", "Eve", "Ana", "Rob", "Ada", "Dan", "Joe", "Mel", "Mya"), Voice(FINISH, False, "finished"), False),
    Scene("fruits", "A fruit stand sells {count} fruits: {items}.",
          ("apples", "peaches", "mangoes", "kiwis", "plums", "pears", "watermelons", "oranges", "loquats", "cantaloupes"),
          Voice(PRICE, True, "are"), False),
    Scene("vehicles", "In an antique car show, there are {count} vehicles: {items}.",
          ("sedan", "convertible", "bus", "motorcycle", "truck", "tractor", "minivan", "limousine", "station wagon", "hatchback"),
          Voice(AGE, True, "is"), True),
)


def _nearer_end(k: int, n: int, rng: random.Random) -> bool:
    """Phrase a position from its nearer end, either end for the middle one (as BIG-Bench does)."""
    from_start, from_end = k + 1, n - k
    return from_end < from_start or (from_end == from_start and rng.random() < 0.5)


def choose_facts(order: tuple[int, ...], rng: random.Random, relation_share: float = 0.75) -> list[Fact]:
    """True facts of ``order``, added at random until they fix it, then thinned to a minimal set."""
    n = len(order)
    orders = orders_of(n)
    position = {obj: p for p, obj in enumerate(order)}
    relations = [Fact.before(a, b) for a in range(n) for b in range(n) if position[a] < position[b]]
    places = [Fact.at(obj, position[obj]) for obj in range(n)]
    chosen, mask = [], orders.everything
    while mask.bit_count() > 1:
        fact = rng.choice(relations if rng.random() < relation_share else places)
        if mask & orders.fact(fact) != mask:  # only facts that rule something out
            chosen.append(fact)
            mask &= orders.fact(fact)
    rng.shuffle(chosen)
    for fact in list(chosen):  # drop what the others already imply: no redundant statement
        rest = [f for f in chosen if f is not fact]
        together = orders.everything
        for f in rest:
            together &= orders.fact(f)
        if together.bit_count() == 1:
            chosen = rest
    return [replace(f, flipped=rng.random() < 0.5) if f.kind == "before" else replace(f, from_end=_nearer_end(f.k, n, rng))
            for f in chosen]


# =================================================================== the gold rationale

INFO = ' Let "??" stand for 0 or more objects and "?" for exactly 1 object.'

_REFS = r"(?P<refs>\(\d+\)(?:(?:,| and|, and) \(\d+\))*)"
_READING = re.compile(r'^"(?P<quote>[^"]+)": (?P<pattern>.+)\.$')
_COMBINING = re.compile(rf"^Combining {_REFS}: (?P<pattern>.+)\.$")
_CHOICE = re.compile(r"^In this order, (?P<claim>.+), which is option \((?P<letter>[A-Z])\)\.$")
# The paper's phrasing (SPEC 9), which the checker reads and the generator never writes:
#   (1) The pears are less expensive than the plums: "(most expensive) ?? plums ?? pears ?? (least expensive)".
#   (3) There are in total three fruits: pears, plums, and kiwis.
#   (4) Combining (1) and (2) we get the following ordering: "(most expensive) ?? plums ?? pears ?? kiwis ?? (least expensive)".
#   (6) According to this ordering, the fruit that is the second-most expensive is the pears.
#   (Final response) The pears are the second-most expensive. So The answer is (A).
_PAPER_READING = re.compile(r'^(?P<quote>[^":]+): "(?P<pattern>[^"]+)"\.?$')
_PAPER_COMBINING = re.compile(rf'^Combining {_REFS} we get the following(?: ordering)?:+ "(?P<pattern>[^"]+)"\.?$')
_PAPER_TOTAL = re.compile(r"^(?:There are (?:in total )?(?P<count>\w+) [^:]+|The (?P<count_>\w+) [^:]+ are): (?P<list>.+?)\.?$")
_PAPER_CHOICE = re.compile(r"^(?:According to (?:this|the) (?:ordering|ranking),|This ordering (?:implies|shows) that) (?P<claim>.+?)\.?$")
_ANSWER_PART = re.compile(r"So the answer is.*$", flags=re.I)
_ORDER_TEXT = re.compile(r"^\((?P<start>[^()]*)\)(?P<body>.*?)\((?P<stop>[^()]*)\)$")
_ANSWER = re.compile(r"answer is:?\s*\(?([A-Z])\)?\s*\.?\s*$")


def reading_text(statement: str, pattern_text: str) -> str:
    return f'"{statement}": {pattern_text}.'


def refs_text(ids: list[str]) -> str:
    refs = [f"({i})" for i in ids]
    return refs[0] if len(refs) == 1 else ", ".join(refs[:-1]) + " and " + refs[-1]


def combining_text(ids: list[str], pattern_text: str) -> str:
    return f"Combining {refs_text(ids)}: {pattern_text}."


def claim_text(option_text: str) -> str:
    """An option's sentence as the middle of a sentence: "The owl is ..." -> "the owl is ..."."""
    return "t" + option_text[1:] if option_text.startswith("The ") else option_text


def choice_text(claim: str, letter: str) -> str:
    return f"In this order, {claim}, which is option ({letter})."


@dataclass(frozen=True)
class Derivation:
    """The gold rationale's numbered steps: texts, and the pattern of each reading or combining step."""

    texts: tuple[str, ...]
    patterns: tuple[Pattern | None, ...]
    letter: str

    def rationale(self) -> str:
        """Step lines and the final response, joined by newlines; no newline at the end (SPEC 9)."""
        lines = [f"({i}) {text}" for i, text in enumerate(self.texts, start=1)]
        return "\n".join(lines + [f"({FINAL_STEP}) So the answer is ({self.letter})."])


def _pair_rank(pair, latest: str | None, objects: dict[str, set[int]]) -> tuple:
    """Which pair to combine first: one with the newest combination (a growing chain reads best),
    then one sharing an object, then the most telling (fewest orders left), then the earliest."""
    (i, _), (j, _), mask, _ = pair
    return (latest not in (i, j), not objects[i] & objects[j], mask.bit_count(), int(i), int(j))


def _combinable(orders: Orders, active: list[tuple[str, int]], objects: dict[str, set[int]]) -> list:
    """Pairs of active steps whose conjunction one pattern can say exactly."""
    pairs = []
    for (i, mi), (j, mj) in itertools.combinations(active, 2):
        both = mi & mj
        pattern = Pattern.full(orders.first(both)) if both.bit_count() == 1 else summarize(orders, both, objects[i] | objects[j])
        if pattern is not None:
            pairs.append(((i, mi), (j, mj), both, pattern))
    return pairs


def _drop_implied(active: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Steps another active step implies add nothing: leave them out of later combinations."""
    kept: list[tuple[str, int]] = []
    for i, (sid, mask) in enumerate(active):
        implied = any(other & ~mask == 0 and (other != mask or j < i) for j, (_, other) in enumerate(active) if j != i)
        if not implied:
            kept.append((sid, mask))
    return kept


@lru_cache(maxsize=4096)
def derive(question: str) -> Derivation:
    """The gold steps: read each statement, combine pairs of orderings (the newest one first,
    then pairs sharing an object) whenever one pattern says their conjunction exactly, and
    when no pair does, combine all that is left into the full order (the solution is unique)."""
    puzzle = parse_question(question)
    orders, n = puzzle.orders, puzzle.n
    solution = puzzle.solution()
    letter, option = puzzle.answer()
    texts, patterns, active, objects = [], [], [], {}
    for statement, fact in zip(puzzle.statements, puzzle.facts):
        pattern = fact_pattern(fact, n)
        texts.append(reading_text(statement, puzzle.pattern_text(pattern)))
        patterns.append(pattern)
        sid = str(len(texts))
        active.append((sid, pattern.mask(orders)))
        objects[sid] = set(pattern.objects)
    latest = None
    while True:
        active = _drop_implied(active)
        if len(active) == 1 and patterns[int(active[0][0]) - 1].is_full(n):
            break
        pairs = sorted(_combinable(orders, active, objects), key=lambda p: _pair_rank(p, latest, objects))
        if pairs:
            (i, _), (j, _), mask, pattern = pairs[0]
            cited = [i, j]
        else:
            cited, pattern = [sid for sid, _ in active], Pattern.full(solution)
            mask = pattern.mask(orders)
        texts.append(combining_text(cited, puzzle.pattern_text(pattern)))
        patterns.append(pattern)
        latest = str(len(texts))
        objects[latest] = set(pattern.objects)
        active = [(sid, m) for sid, m in active if sid not in cited] + [(latest, mask)]
    texts.append(choice_text(claim_text(option), letter))
    patterns.append(None)
    return Derivation(tuple(texts), tuple(patterns), letter)


# =================================================================== checking


class _StepError(Exception):
    """A wrong step: the part of it that is wrong and why."""

    def __init__(self, segment: str, reason: str):
        super().__init__(reason)
        self.segment, self.reason = segment, reason


def read_pattern(text: str, puzzle: Puzzle) -> tuple[Pattern, list[str]]:
    """A written ordering and the text of each of its links, both from the start of the axis;
    _StepError if it names wrong objects or ends, Unreadable if it is no ordering at all.

    Either end may come first ("(most expensive) ?? plums ?? pears ?? (cheapest)" reads as
    "(cheapest) ?? pears ?? plums ?? (most expensive)"), and objects may be written by any of
    their aliases ("gray" for "gray book"), as in the paper's rationales."""
    axis, names = puzzle.axis, puzzle.names
    m = _ORDER_TEXT.match(text.strip())
    if m is None:
        raise Unreadable(f'"{text}" is not an ordering from ({axis.start}) to ({axis.stop})')
    text = m.group()
    backwards = _backwards(m.group("start"), m.group("stop"), axis)
    tokens = [(t.group(), t.start() + m.start("body"), t.end() + m.start("body")) for t in re.finditer(r"\S+", m.group("body"))]
    aliases = name_aliases(names)
    longest = max(len(key) for key in aliases)
    spans = [(m.start("start") - 1, m.end("start") + 1)]
    found: list[int] = []
    gaps: list[Gap] = []
    count, open_, i = 0, False, 0
    while i < len(tokens):
        token = tokens[i][0]
        if token in ("?", "??"):
            count, open_ = (count + 1, open_) if token == "?" else (count, True)
            i += 1
            continue
        size = next((s for s in range(min(longest, len(tokens) - i), 0, -1) if tuple(t[0].lower() for t in tokens[i:i + s]) in aliases), 0)
        if not size:
            end = next((j for j in range(i, len(tokens)) if tokens[j][0] in ("?", "??")), len(tokens))
            unknown = text[tokens[i][1]:tokens[end - 1][2]]
            raise _StepError(unknown, f'"{unknown}" is not one of the objects ({", ".join(names)})')
        obj = aliases[tuple(t[0].lower() for t in tokens[i:i + size])]
        if obj in found:
            raise _StepError(text, f"the {names[obj]} is written twice" if puzzle.voice.article else f"{names[obj]} is written twice")
        found.append(obj)
        gaps.append((count, open_))
        spans.append((tokens[i][1], tokens[i + size - 1][2]))
        count, open_, i = 0, False, i + size
    gaps.append((count, open_))
    spans.append((m.start("stop") - 1, m.end("stop") + 1))
    links = [text[spans[j][0]:spans[j + 1][1]] for j in range(len(spans) - 1)]
    if backwards:
        found, gaps, links = found[::-1], gaps[::-1], links[::-1]
    return Pattern(tuple(found), tuple(gaps)), links


def _backwards(start: str, stop: str, axis: Axis) -> bool:
    """Whether an ordering labelled (start) ... (stop) runs from the axis's stop end to its start
    end; _StepError on the first label that does not name the end it should."""
    reason = f"an ordering here goes from ({axis.start}) to ({axis.stop})"
    first, last = axis.end_of(start), axis.end_of(stop)
    if first is None:
        raise _StepError(f"({start})", reason)
    if last is None or last == first:
        raise _StepError(f"({stop})", reason)
    return first == "stop"


# Words a claim may wrap around an object and a position: "the fruit that is ... is the pears".
_FILLER = frozenset("the a an that who which is are was were finished finishes one so".split())
_KINDS = frozenset("book books bird birds vehicle vehicles car cars golfer golfers person people player players "
                   "fruit fruits object objects".split())


def _claim_words(text: str) -> list[str]:
    """Lowercase words of a claim, hyphenated words split, asides in brackets left out."""
    return re.findall(r"[a-z0-9']+", re.sub(r"\([^()]*\)", " ", text.lower()).replace("-", " "))


def _position_key(words: list[str]) -> tuple[str, ...]:
    return tuple(w for w in words if w not in _FILLER and w not in _KINDS)


def _split_names(words: list[str], aliases: dict[tuple[str, ...], int]) -> tuple[set[int], list[str]]:
    """The objects a claim's words name (longest alias first) and the words left over."""
    longest = max(len(key) for key in aliases)
    named, rest, i = set(), [], 0
    while i < len(words):
        size = next((s for s in range(min(longest, len(words) - i), 0, -1) if tuple(words[i:i + s]) in aliases), 0)
        if size:
            named.add(aliases[tuple(words[i:i + size])])
        else:
            rest.append(words[i])
        i += max(size, 1)
    return named, rest


def _find_position(words: list[str], axis: Axis, n: int) -> tuple[int, bool] | None:
    """The position phrase among a claim's words: the longest one found ("second to last" over
    "last"), None if there is none, or another phrase elsewhere names another position. Words
    around it are tolerated: the paper's claims carry asides like "(the one at the top of this list"."""
    keys = {_position_key(_claim_words(phrase)): place for phrase, place in axis.positions(n).items()}
    words = list(_position_key(words))
    found = sorted(((len(key), start, place) for key, place in keys.items()
                    for start in range(len(words) - len(key) + 1) if tuple(words[start:start + len(key)]) == key), reverse=True)
    if not found:
        return None
    size, start, place = found[0]
    others = {p for s, st, p in found[1:] if st + s <= start or st >= start + size}
    return place if others <= {place} else None


def read_claim(claim: str, puzzle: Puzzle) -> Fact:
    """The position a claim of the paper's choice step (or final response) states, in any word
    order: "the fruit that is the second-most expensive is the pears", "the leftmost book is the
    red book", "Ana finished last"; ValueError unless it names one object and one position."""
    named, rest = _split_names(_claim_words(claim), name_aliases(puzzle.names))
    if len(named) != 1:
        raise ValueError(f'"{claim}" names {len(named) or "none"} of the objects, not one')
    place = _find_position(rest, puzzle.axis, puzzle.n)
    if place is None:
        raise ValueError(f'"{claim}" names no one position of the {puzzle.n}')
    return Fact.at(named.pop(), *place)


def _first_unimplied_link(orders: Orders, pattern: Pattern, links: list[str], given: int) -> tuple[str, int]:
    """The first link of ``pattern`` that ``given`` orders do not all satisfy, and those breaking it."""
    for (left, right, gap), text in zip(pattern.links(), links):
        breaking = given & ~orders.link(left, right, gap)
        if breaking:
            return text, breaking
    raise AssertionError("every link is implied")


def _steps_word(ids: list[str]) -> str:
    return f"step{'s' if len(ids) > 1 else ''} {refs_text(ids)}"


def _check_claim(puzzle: Puzzle, fact: Fact, given: int, claim: str, previous_id: str) -> list[str]:
    """The letters of the options that say ``fact``; _StepError if some order the step before
    allows (``given``) breaks it, or if no option says it."""
    orders = puzzle.orders
    breaking = given & ~orders.fact(fact)
    if breaking:
        order = orders.first(breaking)
        truth = replace(fact, a=order[fact.k]) if fact.kind == "at" else replace(fact, a=fact.b, b=fact.a)
        said = puzzle.voice.say(truth, puzzle.names, capital=False)
        if given.bit_count() == 1:
            raise _StepError(claim, f"in this order, {said}")
        raise _StepError(claim, f"step ({previous_id}) also allows {puzzle.pattern_text(Pattern.full(order))}, where {said}")
    saying = [letter for letter, _, option in puzzle.options if option == fact]
    if not saying:
        raise _StepError(claim, "no option says this")
    return saying


def _restatement(final_text: str) -> str:
    """What a final response says before "So the answer is": the paper's restate the option."""
    part = _ANSWER_PART.search(final_text)
    return _clean(final_text[:part.start()]) if part else ""


def _content(text: str) -> list[str]:
    return [w for w in _claim_words(text) if w not in _FILLER]


def _same_word(a: str, b: str) -> bool:
    """The same word up to number: "watermelon" and "watermelons" (the paper's rationales mix them)."""
    return b in _word_forms(a) or a in _word_forms(b)


class LogicalDeduction(Task):
    """BIG-Bench logical deduction: cells o3 and o5 (seen), o7 (unseen)."""

    name = "logical_deduction"
    info = INFO

    def __init__(self, relation_share: float = 0.75):
        if not 0.0 <= relation_share <= 1.0:
            raise ValueError(f"relation_share must be in [0, 1], got {relation_share}")
        self.relation_share = relation_share

    # ------------------------------------------------------------------ questions
    def cells(self) -> list[Cell]:
        return [Cell(cell_name(n), n in SEEN_SIZES, {"n_objects": n}) for n in (*SEEN_SIZES, *UNSEEN_SIZES)]

    def sample(self, cell: Cell, rng: random.Random) -> Example:
        n = int(cell.params["n_objects"])
        scene = rng.choice(SCENES)
        names = tuple(rng.sample(scene.pool, n))  # the listed order; the true order is another draw
        order = tuple(rng.sample(range(n), n))
        facts = choose_facts(order, rng, self.relation_share)
        asked = rng.randrange(n)
        from_end = _nearer_end(asked, n, rng)
        options = [scene.voice.say(Fact.at(obj, asked, from_end), names) for obj in range(n)]
        paragraph = " ".join([PREAMBLE.format(count=NUMBER_WORDS[n]), scene.intro.format(count=NUMBER_WORDS[n], items=scene.list_text(list(names))),
                              *(scene.voice.say(f, names) + "." for f in facts)])
        question = paragraph + "\nOptions:\n" + "\n".join(f"({LETTERS[i]}) {text}" for i, text in enumerate(options))
        answer = f"({LETTERS[order[asked]]})"
        return Example(question, answer, cell.name, cell.seen, self.gold_rationale(question),
                       meta={"scene": scene.key, "statements": len(facts)})

    def normalize_question(self, text: str) -> str:
        return normalize_question(text)

    def cell_of(self, question: str) -> Cell:
        """The cell of a question by its number of objects; ValueError saying why when the question
        cannot be read, does not fix one answer, or orders a number of objects no cell holds."""
        try:
            puzzle = parse_question(question)
            puzzle.answer()  # a question the solver cannot answer belongs to no cell
        except ValueError as e:
            raise ValueError(f"no {self.name} cell: {e}") from None
        found = next((c for c in self.cells() if c.params["n_objects"] == puzzle.n), None)
        if found is None:
            sizes = ", ".join(str(c.params["n_objects"]) for c in self.cells())
            raise ValueError(f"no {self.name} cell: the question orders {puzzle.n} objects; the cells hold {sizes}")
        return found

    # ------------------------------------------------------------------ text
    def gold_answer(self, question: str) -> str:
        return f"({parse_question(question).answer()[0]})"

    def gold_rationale(self, question: str) -> str:
        return derive(question).rationale()

    def normalize_answer(self, answer: str) -> str:
        m = re.match(r"^\s*\(?([A-Za-z])\)?(?:\W|$)", str(answer))
        return f"({m.group(1).upper()})" if m else str(answer).strip()

    def parse_answer(self, attempt: str) -> str | None:
        line = final_response(attempt) if isinstance(attempt, str) else None
        m = _ANSWER.search(line) if line else None
        return f"({m.group(1)})" if m else None

    def is_consistent(self, attempt: str, answer: str, question: str | None = None) -> bool:
        """SPEC 6: the last two lines carry the chosen option's content (the question is not at hand
        here: ``check`` does the rest).

        Our phrasing: the choice step names the option the final response gives, its claim's object
        appears in the full order before it, and that order has no "?" left. The paper's phrasing:
        the final response restates the option ("The pears are the second-most expensive. So The
        answer is (A).") and every content word of that restatement appears in the choice step
        ("According to this ordering, the fruit that is the second-most expensive is the pears.")."""
        steps = split_steps(attempt) if isinstance(attempt, str) else None
        if not steps or len(steps) < 3 or steps[-1].id != FINAL_STEP:
            return False
        answer = self.normalize_answer(answer)
        if self.parse_answer(attempt) != answer:
            return False
        if choice := _CHOICE.match(steps[-2].text):
            order = steps[-3].text.split(": ", 1)[-1]
            subject = re.match(r"^(?:the )?(.+?) (?:is|are|finished) ", choice.group("claim"), flags=re.I)
            return (f"({choice.group('letter')})" == answer and "?" not in order
                    and subject is not None and subject.group(1).lower() in order.lower())
        if _PAPER_CHOICE.match(steps[-2].text):
            restated, found = _content(_restatement(steps[-1].text)), _content(steps[-2].text)
            return bool(restated) and all(any(_same_word(w, x) for x in found) for w in restated)
        return False

    # ------------------------------------------------------------------ checking
    def find_error(self, question: str, attempt: str) -> Feedback:
        try:
            puzzle = parse_question(question)
        except ValueError as e:
            raise Unreadable(f"cannot read the question ({e})") from None
        return self._check(puzzle, attempt)

    @staticmethod
    def _steps(attempt: str) -> tuple[list[Step], Step]:
        numbered, final = numbered_steps(attempt)
        if len(numbered) < 2 or not (_CHOICE.match(numbered[-1].text) or _PAPER_CHOICE.match(numbered[-1].text)):
            raise Unreadable("the last numbered step does not choose an option")
        return numbered, final

    def _check(self, puzzle: Puzzle, attempt: str) -> Feedback:
        """Every ordering step in turn, then the choice, then the final response (SPEC 5)."""
        numbered, final = self._steps(attempt)
        known: dict[str, tuple[Pattern | None, int]] = {}  # orderings written so far: step id -> (pattern, orders)
        for step in numbered[:-1]:
            try:
                known[step.id] = self._check_ordering(puzzle, step, known)
            except _StepError as e:
                return Feedback.error(step.id, e.segment, e.reason)
        choice = numbered[-1]
        try:
            saying = self._check_choice(puzzle, choice.text, known[numbered[-2].id], numbered[-2].id)
        except _StepError as e:
            return Feedback.error(choice.id, e.segment, e.reason)
        return self._check_final(puzzle, final, saying, choice.id)

    def _check_ordering(self, puzzle: Puzzle, step: Step, known: dict[str, tuple[Pattern | None, int]]) -> tuple[Pattern | None, int]:
        """A step before the choice, in our phrasing or the paper's: its pattern and orders."""
        # combining first: the paper's reading step ('<statement>: "<ordering>".') would match it too
        if m := _COMBINING.match(step.text) or _PAPER_COMBINING.match(step.text):
            return self._check_combining(puzzle, m.group("refs"), m.group("pattern"), known)
        if m := _READING.match(step.text) or _PAPER_READING.match(step.text):
            return self._check_reading(puzzle, m.group("quote"), m.group("pattern"))
        if m := _PAPER_TOTAL.match(step.text):
            return self._check_total(puzzle, m)
        raise Unreadable(f"step ({step.id}) neither reads a statement nor combines orderings")

    @staticmethod
    def _check_reading(puzzle: Puzzle, quote: str, pattern_text: str) -> tuple[Pattern, int]:
        """A quoted statement of the question and a pattern meaning exactly what it says."""
        wanted = _clean(quote).lower()
        index = next((i for i, s in enumerate(puzzle.statements) if s.lower() == wanted), None)
        if index is None:
            raise _StepError(quote, f'the question says no "{_clean(quote)}"')
        orders, fact = puzzle.orders, puzzle.facts[index]
        pattern, links = read_pattern(pattern_text, puzzle)
        mask, meant = pattern.mask(orders), orders.fact(fact)
        if mask != meant:
            wrong = _first_unimplied_link(orders, pattern, links, meant)[0] if meant & ~mask else pattern_text
            raise _StepError(wrong, f"the statement means {puzzle.pattern_text(fact_pattern(fact, puzzle.n))}")
        return pattern, mask

    @staticmethod
    def _check_combining(puzzle: Puzzle, refs: str, pattern_text: str, known: dict[str, tuple[Pattern | None, int]]) -> tuple[Pattern, int]:
        """A pattern that every order allowed by the cited steps matches."""
        ids = re.findall(r"\((\d+)\)", refs)
        orders = puzzle.orders
        given = orders.everything
        for sid in ids:
            if sid not in known:
                raise _StepError(f"({sid})", f"step ({sid}) is not an ordering written before this step")
            given &= known[sid][1]
        pattern, links = read_pattern(pattern_text, puzzle)
        mask = pattern.mask(orders)
        if given & ~mask:
            wrong, breaking = _first_unimplied_link(orders, pattern, links, given)
            if not given & mask:
                raise _StepError(wrong, f"this contradicts {_steps_word(ids)}")
            other = Pattern.full(orders.first(breaking))
            raise _StepError(wrong, f"this does not follow from {_steps_word(ids)}: they also allow {puzzle.pattern_text(other)}")
        return pattern, mask

    @staticmethod
    def _check_total(puzzle: Puzzle, m: re.Match) -> tuple[None, int]:
        """The paper's "There are in total three fruits: ..." step: the count and the objects. It
        rules out no order (every order already has exactly these objects), but later steps may
        cite it, so it is an ordering of all orders."""
        count = m.group("count") or m.group("count_")
        if WORD_NUMBERS.get(count.lower(), int(count) if count.isdigit() else None) != puzzle.n:
            raise _StepError(count, f"the question lists {NUMBER_WORDS.get(puzzle.n, puzzle.n)} objects")
        aliases, listed = name_aliases(puzzle.names), []
        for item in filter(None, (x.strip() for x in _LIST_SPLIT.split(m.group("list")))):
            words = tuple(re.sub(r"^(?:an?|the)\s+", "", item, flags=re.I).lower().split())
            if words not in aliases:
                raise _StepError(item, f'"{item}" is not one of the objects ({", ".join(puzzle.names)})')
            listed.append(aliases[words])
        if sorted(listed) != list(range(puzzle.n)):
            raise _StepError(m.group("list"), f"the objects are {', '.join(puzzle.names)}")
        return None, puzzle.orders.everything

    @staticmethod
    def _check_choice(puzzle: Puzzle, text: str, previous: tuple[Pattern | None, int], previous_id: str) -> list[str]:
        """A claim that follows from the ordering of the step before, and the letters of the options
        that say it: the letter the step names (our phrasing) or every such option (the paper's,
        whose choice step names no letter; the final response picks it). Our "In this order, ..."
        needs the full order; the paper's "According to this ordering, ..." only needs the
        ordering to settle the claim (its rationales often stop at "(left) ? ? owl robin crow (right)")."""
        pattern, given = previous
        if m := _CHOICE.match(text):
            if pattern is None or not pattern.is_full(puzzle.n):
                raise _StepError("In this order", f"step ({previous_id}) does not give the full order yet")
            claim = m.group("claim")
            try:
                fact = read_fact(claim, puzzle.names, puzzle.axis)[0]
            except ValueError as e:
                raise _StepError(claim, str(e)) from None
            saying = _check_claim(puzzle, fact, given, claim, previous_id)
            letter = m.group("letter")
            if letter not in saying:
                raise _StepError(f"option ({letter})", f"this is option ({saying[0]})")
            return [letter]
        claim = _PAPER_CHOICE.match(text).group("claim")
        try:
            fact = read_claim(claim, puzzle)
        except ValueError as e:
            raise _StepError(claim, str(e)) from None
        return _check_claim(puzzle, fact, given, claim, previous_id)

    def _check_final(self, puzzle: Puzzle, final: Step, saying: list[str], choice_id: str) -> Feedback:
        """The final response gives an option the choice step found, and restates (when it restates
        anything, as the paper's do) what that option says."""
        answer = self.parse_answer(final.line)
        if answer is None:
            raise Unreadable("the final response gives no option")
        letter = answer[1]
        if letter not in saying:
            part = _ANSWER_PART.search(final.text)
            return Feedback.error(FINAL_STEP, part.group() if part else final.text, f"step ({choice_id}) chose option ({saying[0]})")
        restated = _restatement(final.text)
        if restated:
            text, option = next((text, fact) for x, text, fact in puzzle.options if x == letter)
            try:
                same = read_claim(restated, puzzle) == option
            except ValueError:
                same = False
            if not same:
                return Feedback.error(FINAL_STEP, restated, f'option ({letter}) says "{text}"')
        return Feedback.correct()

    # ------------------------------------------------------------------ wrong attempts
    def inject_error(self, question: str, rng: random.Random, tries: int = 20) -> str | None:
        """A plausible wrong attempt the checker flags at the changed step, with a wrong answer:
        a statement misread (relation reversed, position off by one or counted from the other
        end), a combination that does not follow (two objects swapped, a gap changed), a claim
        about the wrong object, or a final response naming another option. The steps after the
        changed one are gold's, except the choice, which picks a wrong option."""
        try:
            puzzle, gold = parse_question(question), derive(question)
        except ValueError:
            return None
        texts = list(gold.texts) + [f"So the answer is ({gold.letter})."]
        ids = [str(i) for i in range(1, len(gold.texts) + 1)] + [FINAL_STEP]
        choice_at = len(gold.texts) - 1
        wrong_options = [(letter, text) for letter, text, _ in puzzle.options if letter != gold.letter]
        for _ in range(tries):
            k = rng.randrange(len(texts))
            letter, option = rng.choice(wrong_options)
            changed = list(texts)
            if k < choice_at:
                new = self._misstep(puzzle, gold, k, rng)
                if new is None:
                    continue
                changed[k] = new
            if k <= choice_at:
                changed[choice_at] = choice_text(claim_text(option), letter)
            changed[-1] = f"So the answer is ({letter})."
            attempt = "".join(Step(sid, text).line + "\n" for sid, text in zip(ids, changed))
            fb = self.check(question, attempt)
            if fb.is_error and fb.step == ids[k] and not self.answers_match(self.parse_answer(attempt), gold.letter):
                return attempt
        return None

    @staticmethod
    def _misstep(puzzle: Puzzle, gold: Derivation, k: int, rng: random.Random) -> str | None:
        """Step k of the gold rationale (a reading or combining step) with a wrong pattern."""
        n, pattern = puzzle.n, gold.patterns[k]
        if k < len(puzzle.facts):
            fact = puzzle.facts[k]
            if fact.kind == "before":
                wrong = [fact_pattern(Fact.before(fact.b, fact.a), n), Pattern((fact.a, fact.b), ((0, True), (0, False), (0, True)))]
            else:
                wrong = [fact_pattern(Fact.at(fact.a, k2, fact.from_end), n) for k2 in (fact.k - 1, fact.k + 1) if 0 <= k2 < n]
                wrong.append(fact_pattern(Fact.at(fact.a, n - 1 - fact.k, not fact.from_end), n))
            return reading_text(puzzle.statements[k], puzzle.pattern_text(rng.choice(wrong)))
        objects, gaps = list(pattern.objects), list(pattern.gaps)
        if len(objects) > 1 and rng.random() < 0.6:
            i = rng.randrange(len(objects) - 1)
            objects[i], objects[i + 1] = objects[i + 1], objects[i]
        else:
            i = rng.randrange(len(gaps))
            count, open_ = gaps[i]
            gaps[i] = (count + 1, open_) if open_ or count == 0 or rng.random() < 0.5 else (count - 1, open_)
        prefix = gold.texts[k].split(": ", 1)[0]
        return f"{prefix}: {puzzle.pattern_text(Pattern(tuple(objects), tuple(gaps)))}."
