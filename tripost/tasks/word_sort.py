"""Word sorting (BIG-Bench): generator, gold rationales, parser and scripted checker.

The rationale reads each word's first letter and its alphabet index, orders by it with ties
in brackets ("?"), then re-sorts each tied group by the next letter in sub-steps until no
tie is left (SPEC 4). Words come from the english-words package, shipped with it.
"""

from __future__ import annotations

import random
import re
from functools import cached_property

from tripost.formats import FINAL_STEP, Feedback, final_response, split_steps
from tripost.tasks.base import Cell, Example, Task, Unreadable

HEADER = "Sort the following words alphabetically:"
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
            "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth"]


def ordinal(k: int) -> str:
    """Name of the (k+1)-th letter position: 0 -> "first"; past the list, "17th"."""
    return ORDINALS[k] if k < len(ORDINALS) else f"{k + 1}th"


SEEN_SIZES, UNSEEN_SIZES = range(2, 8), range(8, 21)

_LETTERS = re.compile(r'"([^"]+)"="([a-z]?)" \((\d+)\)')
_FIRST = re.compile(r"^The first letter: (.+)\.$")
_NOW = re.compile(r"^We now have: (.+)\.$")
_SUBPART = re.compile(r"^Now sort this subpart \[(.+?)\] by looking at their (\w+) letters: (.+)\.$")
_HENCE = re.compile(r"^Hence, we have (.+)\.$")
_ITEM = re.compile(r'^\((\d+)\) (?:"([^"]+)"|\[(.+)\])$')

Groups = list[list[str]]  # the current order: groups of words still tied, in order


def letter(word: str, k: int) -> str:
    return word[k] if k < len(word) else ""


def index(ch: str) -> int:
    return ord(ch) - ord("a") + 1 if ch else 0


def _quote(words: list[str]) -> str:
    return '"' + words[0] + '"' if len(words) == 1 else "[" + " ? ".join(f'"{w}"' for w in words) + "]"


def _letters_text(words: list[str], k: int) -> str:
    return ", ".join(f'"{w}"="{letter(w, k)}" ({index(letter(w, k))})' for w in words)


def _split_by_letter(words: list[str], k: int) -> tuple[Groups, list[int]]:
    """Words grouped by their k-th letter, in letter order; ties keep the question's order."""
    keys = sorted({index(letter(w, k)) for w in words})
    groups = [[w for w in words if index(letter(w, k)) == i] for i in keys]
    # identical words never separate: treat them as ordered
    out, idx = [], []
    for g, i in zip(groups, keys):
        if len(g) > 1 and len(set(g)) == 1:
            out += [[w] for w in g]
            idx += [i] * len(g)
        else:
            out.append(g)
            idx.append(i)
    return out, idx


def _order_text(groups: Groups, indices: list[int]) -> str:
    return " < ".join(f"({i}) {_quote(g)}" for g, i in zip(groups, indices))


def _hence_text(groups: Groups) -> str:
    return " < ".join(_quote(g) for g in groups)


def _resolve(group: list[str]) -> tuple[list[str], list[str]]:
    """Step texts that fully order one tied group (known equal on 1 letter), and the order.

    Texts: "Now sort this subpart ...", "We now have: ...", again for any tie left (the
    leftmost first), and a last "Hence, we have ..." with the subpart in order.
    """
    texts: list[str] = []
    local: Groups = [group]
    depth = {tuple(group): 1}
    while any(len(g) > 1 for g in local):
        pos = next(i for i, g in enumerate(local) if len(g) > 1)
        g, k = local[pos], depth[tuple(local[pos])]
        sub, sub_idx = _split_by_letter(g, k)
        texts.append(f"Now sort this subpart {_quote(g)} by looking at their {ordinal(k)} letters: {_letters_text(g, k)}.")
        texts.append(f"We now have: {_order_text(sub, sub_idx)}.")
        local = local[:pos] + sub + local[pos + 1:]
        depth.update({tuple(x): k + 1 for x in sub})
    ordered = [w for g in local for w in g]
    texts.append(f"Hence, we have {_hence_text(local)}.")
    return texts, ordered


def _parse_quoted(text: str) -> list[str]:
    return re.findall(r'"([^"]+)"', text)


class WordSort(Task):
    name = "word_sort"
    info = ""

    def __init__(self, word_list: str = "web2", min_word_length: int = 3, max_word_length: int = 8,
                 vocabulary_size: int | None = 2000):
        self.word_list, self.min_len, self.max_len = word_list, min_word_length, max_word_length
        self.vocabulary_size = vocabulary_size

    @cached_property
    def vocabulary(self) -> list[str]:
        from english_words import get_english_words_set

        words = sorted(
            w for w in get_english_words_set([self.word_list], lower=True, alpha=True)
            if self.min_len <= len(w) <= self.max_len and w.isascii() and w.isalpha()
        )
        if self.vocabulary_size:
            words = sorted(random.Random(0).sample(words, min(self.vocabulary_size, len(words))))
        return words

    # ------------------------------------------------------------------ questions
    def cells(self) -> list[Cell]:
        return [Cell(f"n{k}", k in SEEN_SIZES, {"n_words": k}) for k in (*SEEN_SIZES, *UNSEEN_SIZES)]

    def sample(self, cell: Cell, rng: random.Random) -> Example:
        words: list[str] = []
        while len(words) < cell.params["n_words"]:
            w = rng.choice(self.vocabulary)
            if all(not (w.startswith(v) or v.startswith(w)) for v in words):
                words.append(w)
        question = f"{HEADER}\nList: {' '.join(words)}"
        return Example(question, " ".join(sorted(words)), cell.name, cell.seen, self.gold_rationale(question))

    def normalize_question(self, text: str) -> str:
        words = self._words(text)
        return f"{HEADER}\nList: {' '.join(words)}"

    @staticmethod
    def _words(question: str) -> list[str]:
        m = re.search(r"List:\s*(.*)$", question, flags=re.S)
        if not m:
            raise ValueError("no 'List:' in the question")
        return m.group(1).split()

    def cell_of(self, question: str) -> Cell | None:
        try:
            n = len(self._words(question))
        except ValueError:
            return None
        return next((c for c in self.cells() if c.params["n_words"] == n), None)

    # ------------------------------------------------------------------ text
    def gold_answer(self, question: str) -> str:
        return " ".join(sorted(self._words(question)))

    def gold_rationale(self, question: str) -> str:
        words = self._words(question)
        groups, indices = _split_by_letter(words, 0)
        lines = [f"(1) The first letter: {_letters_text(words, 0)}.", f"(2) We now have: {_order_text(groups, indices)}."]
        n = 3
        for group in [g for g in groups if len(g) > 1]:
            # (n) re-sorts one tied group; its sub-steps break ties of ties until none is left
            sub_lines, ordered = _resolve(group)
            lines.append(f"({n}) {sub_lines[0]}")
            lines += [f"({n}.{j}) {text}" for j, text in enumerate(sub_lines[1:], start=1)]
            pos = groups.index(group)
            groups = groups[:pos] + [[w] for w in ordered] + groups[pos + 1:]
            n += 1
        lines.append(f"({n}) Hence, we have {_hence_text(groups)}.")
        lines.append(f"({FINAL_STEP}) So the answer is: {' '.join(w for g in groups for w in g)}.")
        return "\n".join(lines) + "\n"

    def normalize_answer(self, answer: str) -> str:
        return " ".join(answer.strip().rstrip(".").lower().split())

    def parse_answer(self, attempt: str) -> str | None:
        line = final_response(attempt)
        if not line or "the answer is:" not in line:
            return None
        return self.normalize_answer(line.split("the answer is:", 1)[1])

    def is_consistent(self, attempt: str, answer: str) -> bool:
        hence = [s.text for s in split_steps(attempt) or [] if s.text.startswith("Hence")]
        return bool(hence) and not any("?" in h for h in hence)

    # ------------------------------------------------------------------ checking
    def find_error(self, question: str, attempt: str) -> Feedback:
        try:
            return self._check(question, attempt)
        except (ValueError, KeyError, IndexError) as e:
            raise Unreadable(f"cannot read the attempt ({e})") from None

    def _check_letters(self, step_id: str, text: str, words: list[str], k: int) -> Feedback | None:
        entries = _LETTERS.findall(text)
        if not entries:
            raise ValueError(f"step ({step_id}) lists no letters")
        listed = [w for w, _, _ in entries]
        for w in listed:
            if w not in words:
                return Feedback.error(step_id, f'"{w}"', f'"{w}" is not in the list')
            if listed.count(w) > words.count(w):
                return Feedback.error(step_id, f'"{w}"', f'"{w}" appears more than once')
        for w in words:
            if w not in listed:
                return Feedback.error(step_id, text, f'"{w}" is missing')
        for w, ch, i in entries:
            if ch != letter(w, k):
                return Feedback.error(step_id, f'"{w}"="{ch}" ({i})', f'the {ordinal(k)} letter of "{w}" is "{letter(w, k)}"')
            if int(i) != index(ch):
                return Feedback.error(step_id, f'"{w}"="{ch}" ({i})', f'"{ch}" is letter {index(ch)} of the alphabet')
        return None

    def _check_order(self, step_id: str, text: str, words: list[str], k: int) -> tuple[Feedback | None, Groups]:
        """A "We now have" ordering of ``words`` by their k-th letter."""
        items = [x.strip() for x in text.split(" < ")]
        groups, prev = [], None
        for item in items:
            m = _ITEM.match(item)
            if not m:
                raise ValueError(f"step ({step_id}) has an unreadable item {item!r}")
            i = int(m.group(1))
            group = [m.group(2)] if m.group(2) else _parse_quoted(m.group(3))
            for w in group:
                if w not in words:
                    return Feedback.error(step_id, f'"{w}"', f'"{w}" is not in the list'), []
                if index(letter(w, k)) != i:
                    return Feedback.error(step_id, item, f'the {ordinal(k)} letter of "{w}" is "{letter(w, k)}" ({index(letter(w, k))})'), []
            if prev is not None and i <= prev[0]:
                return Feedback.error(step_id, f"{prev[1]} < {item}", f"{prev[0]} is not smaller than {i}"), []
            groups.append(group)
            prev = (i, item)
        flat = [w for g in groups for w in g]
        for w in words:
            if flat.count(w) < words.count(w):
                return Feedback.error(step_id, text, f'"{w}" is missing'), []
            if flat.count(w) > words.count(w):
                return Feedback.error(step_id, f'"{w}"', f'"{w}" appears more than once'), []
        return None, groups

    def _check(self, question: str, attempt: str) -> Feedback:
        words = self._words(question)
        steps = split_steps(attempt)
        if not steps or steps[-1].id != FINAL_STEP or len(steps) < 4:
            return Feedback.unparsable("the attempt has no numbered steps and final response")
        it = iter(steps[:-1])

        step = next(it)
        m = _FIRST.match(step.text)
        if step.id != "1" or not m:
            return Feedback.unparsable("step (1) does not list first letters")
        if fb := self._check_letters("1", m.group(1), words, 0):
            return fb
        step = next(it)
        m = _NOW.match(step.text)
        if step.id != "2" or not m:
            return Feedback.unparsable("step (2) is not an ordering")
        fb, groups = self._check_order("2", m.group(1), words, 0)
        if fb:
            return fb
        depth = {tuple(g): 1 for g in groups}
        numbered, i = steps[:-1], 2
        concluded: list[str] | None = None
        while i < len(numbered):
            step = numbered[i]
            if (m := _HENCE.match(step.text)) and "." not in step.id:
                if fb := self._check_hence(step.id, m.group(1), groups):
                    return fb
                concluded = None if any(len(g) > 1 for g in groups) else [w for g in groups for w in g]
                i += 1
                continue
            if not _SUBPART.match(step.text) or "." in step.id:
                raise ValueError(f"step ({step.id}) is neither a subpart nor a Hence")
            fb, i, local = self._check_subpart(numbered, i, groups, depth)
            if fb:
                return fb
            resorted = {w for g in local for w in g}
            pos = next(p for p, g in enumerate(groups) if set(g) == resorted)
            groups = groups[:pos] + local + groups[pos + 1:]
        answer = self.parse_answer(attempt)
        if answer is None:
            return Feedback.unparsable("the final response gives no answer")
        if concluded is None:
            return Feedback.error(FINAL_STEP, steps[-1].text, "the order is not finished: some words are still tied")
        if answer.split() != concluded:
            return Feedback.error(FINAL_STEP, steps[-1].text, f"the concluded order is {' '.join(concluded)}")
        return Feedback.correct()

    def _check_subpart(self, steps, i: int, groups: Groups, depth: dict) -> tuple[Feedback | None, int, Groups]:
        """Step (n) re-sorting one tied group, and its sub-steps (n.1), (n.2), ... up to its Hence.

        Returns (feedback or None, index of the next step, the group's new order).
        """
        top = steps[i].id
        local: Groups = []
        current: list[str] | None = None
        j = 0
        while True:
            step = steps[i]
            if step.id != (top if j == 0 else f"{top}.{j}"):
                raise ValueError(f"step ({step.id}) is out of sequence after ({top})")
            if m := _SUBPART.match(step.text):
                group = _parse_quoted(m.group(1))
                pool = groups if j == 0 else local
                if len(group) < 2 or group not in pool:
                    return Feedback.error(step.id, f"[{m.group(1)}]", "this subpart is not a tied group of the previous step"), i, []
                k = depth[tuple(group)]
                if m.group(2) != ordinal(k):
                    return Feedback.error(step.id, f"their {m.group(2)} letters",
                                          f"the next letters to compare are the {ordinal(k)} ones"), i, []
                if fb := self._check_letters(step.id, m.group(3), group, k):
                    return fb, i, []
                if j == 0:
                    local = [group]
                current = group
            elif (m := _NOW.match(step.text)) and current is not None:
                k = depth[tuple(current)]
                fb, sub = self._check_order(step.id, m.group(1), current, k)
                if fb:
                    return fb, i, []
                pos = local.index(current)
                local = local[:pos] + sub + local[pos + 1:]
                depth.update({tuple(g): k + 1 for g in sub})
                current = None
            elif (m := _HENCE.match(step.text)) and j > 0:
                return self._check_hence(step.id, m.group(1), local), i + 1, local
            else:
                raise ValueError(f"step ({step.id}) does not continue the subpart of ({top})")
            i, j = i + 1, j + 1
            if i >= len(steps):
                raise ValueError(f"the subpart of ({top}) ends without a Hence")

    def _check_hence(self, step_id: str, text: str, groups: Groups) -> Feedback | None:
        """A Hence must give the order all earlier steps established."""
        expected = _hence_text(groups)
        if text == expected:
            return None
        got = _parse_quoted(text)
        flat = [w for g in groups for w in g]
        position = {w: i for i, g in enumerate(groups) for w in g}
        for w in got:
            if w not in position:
                return Feedback.error(step_id, f'"{w}"', f'"{w}" is not in the list')
        for a, b in zip(got, got[1:]):
            if position[a] > position[b]:
                return Feedback.error(step_id, f'"{a}" < "{b}"', f'"{b}" comes before "{a}"')
        if sorted(got) != sorted(flat):
            return Feedback.error(step_id, text, "not every word appears exactly once")
        return Feedback.error(step_id, text, f"the ties are not those of the previous steps: {expected}")
