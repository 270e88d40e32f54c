"""Word sorting (BIG-Bench): generator, gold rationales, parser and scripted checker.

The rationale reads each word's first character and its index (code point minus 96, so
"a" = 1 and "'" = -57), orders by it with ties in brackets ("?"), then re-sorts each tied
group by the next character. The format is the reference's, byte for byte (SPEC 4, 9):

- a top-level tied group gets step (n) "Now sort this subpart ...", (n.1) "We now have: ...";
- a tie left inside it is re-sorted one level deeper, (n.j) then (n.j.1), ..., with its own
  "Hence" (n.j.m) before the level above continues; when a subpart holds several such ties,
  the reference gives each re-sort the same id (n.j), and the subpart's Hence comes after
  them as if they had been numbered (n.j), (n.j+1), ...;
- when a whole subpart is still tied on the next character, the same level goes on
  comparing the following one: (n.2) "Now sort this subpart [same words] ...", (n.3) ...;
- every level ends with "Hence, we have ..." giving its words in order.

Words come from the english-words package, shipped with it.
"""

from __future__ import annotations

import random
import re
from functools import cached_property

from tripost.formats import FINAL_STEP, Feedback, Step, final_response, split_steps
from tripost.tasks.base import Cell, Example, Task, Unreadable

HEADER = "Sort the following words alphabetically:"
ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
            "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth"]


def ordinal(k: int) -> str:
    """Name of the (k+1)-th character position: 0 -> "first"; past the list, "17th"."""
    return ORDINALS[k] if k < len(ORDINALS) else f"{k + 1}th"


SEEN_SIZES, UNSEEN_SIZES = range(2, 8), range(8, 21)

_LETTERS = re.compile(r'"([^"]+)"="([^"]?)" \((-?\d+)\)')
_FIRST = re.compile(r"^The first letter: (.+)\.$")
_NOW = re.compile(r"^We now have: (.+)\.$")
_SUBPART = re.compile(r"^Now sort this subpart \[(.+?)\] by looking at their (\w+) letters: (.+)\.$")
_HENCE = re.compile(r"^Hence, we have (.+)\.$")
_ITEM = re.compile(r'^\((-?\d+)\) (?:"([^"]+)"|\[(.+)\])$')

# A word that has run out of characters sorts before every character (Python's sorted() puts
# "car" before "car'"), so it gets an index below any code point minus 96: as if it ended in
# NUL. The reference never shows this case (none of its words is a prefix of another).
EXHAUSTED_INDEX = -96

Groups = list[list[str]]  # the current order: groups of words still tied, in order


def letter(word: str, k: int) -> str:
    return word[k] if k < len(word) else ""


def index(ch: str) -> int:
    """The reference's index of a compared character: its code point minus 96 ("a" = 1)."""
    return ord(ch) - 96 if ch else EXHAUSTED_INDEX


def _describe(word: str, k: int) -> str:
    """What the k-th character of a word is, for a feedback reason."""
    ch = letter(word, k)
    return f'the {ordinal(k)} letter of "{word}" is "{ch}" ({index(ch)})' if ch else f'"{word}" has no {ordinal(k)} letter'


def _index_reason(ch: str) -> str:
    if "a" <= ch <= "z":
        return f'"{ch}" is letter {index(ch)} of the alphabet'
    return f'the index of "{ch}" is {index(ch)} (its code point minus 96)'


# ---------------------------------------------------------------- the gold rationale's texts


def _quote(words: list[str]) -> str:
    return '"' + words[0] + '"' if len(words) == 1 else "[" + " ? ".join(f'"{w}"' for w in words) + "]"


def _letters_text(words: list[str], k: int) -> str:
    return ", ".join(f'"{w}"="{letter(w, k)}" ({index(letter(w, k))})' for w in words)


def _split_by_letter(words: list[str], k: int) -> list[tuple[int, list[str]]]:
    """(index, words) groups by the k-th character, in index order; ties keep the question's order."""
    keys = sorted({index(letter(w, k)) for w in words})
    out = []
    for i in keys:
        group = [w for w in words if index(letter(w, k)) == i]
        if len(group) > 1 and len(set(group)) == 1:
            # a repeated word never separates from itself: its copies are ordered, not tied
            out += [(i, [w]) for w in group]
        else:
            out.append((i, group))
    return out


def _order_text(split: list[tuple[int, list[str]]]) -> str:
    return " < ".join(f"({i}) {_quote(g)}" for i, g in split)


def _hence_text(groups: Groups) -> str:
    return " < ".join(_quote(g) for g in groups)


def _subpart_text(group: list[str], k: int) -> str:
    return f"Now sort this subpart {_quote(group)} by looking at their {ordinal(k)} letters: {_letters_text(group, k)}."


def _child(prefix: str, j: int) -> str:
    """Id of the j-th step of a level: "3" at the top (prefix ""), "3.2" inside step (3)."""
    return f"{prefix}.{j}" if prefix else str(j)


def _resolve(group: list[str], k: int, step_id: str) -> tuple[list[str], list[str]]:
    """The lines that order one tied group from its k-th characters on, the first one being
    step ``step_id``, and the group's order."""
    lines = [f"({step_id}) {_subpart_text(group, k)}"]
    split = _split_by_letter(group, k)
    lines.append(f"({_child(step_id, 1)}) We now have: {_order_text(split)}.")
    j = 1
    while len(split) == 1:  # the whole subpart still tied: this level compares the next character
        k += 1
        split = _split_by_letter(group, k)
        lines.append(f"({_child(step_id, j + 1)}) {_subpart_text(group, k)}")
        lines.append(f"({_child(step_id, j + 2)}) We now have: {_order_text(split)}.")
        j += 2
    rest, order = _finish_level(split, k + 1, step_id, j)
    return lines + rest, order


def _finish_level(split: list[tuple[int, list[str]]], k: int, prefix: str, j: int) -> tuple[list[str], list[str]]:
    """The rest of one level after its last "We now have" (step j of the level): a re-sort of
    each tied group, compared from their k-th characters, then the level's "Hence"."""
    lines: list[str] = []
    order: list[str] = []
    resorts = 0
    for _, group in split:
        if len(group) > 1:
            # the reference numbers the top level's re-sorts (3), (4), ..., but gives every
            # re-sort inside a subpart the same id, the one after the "We now have" (3.2, 3.2)
            sub_lines, sub_order = _resolve(group, k, _child(prefix, j + 1 + (0 if prefix else resorts)))
            lines += sub_lines
            order += sub_order
            resorts += 1
        else:
            order += group
    lines.append(f"({_child(prefix, j + 1 + resorts)}) Hence, we have {_hence_text([[w] for w in order])}.")
    return lines, order


def _list_of(question: str) -> list[str] | None:
    """The words after "List:" (on its line or the same one, BIG-Bench's phrasing); None without it."""
    m = re.search(r"List:\s*(.*)$", question, flags=re.S)
    return m.group(1).split() if m else None


def _quotable(words: list[str]) -> list[str]:
    """The words, or ValueError for one the rationale cannot hold: every step quotes words in
    double quotes, so a word with one could not be read back. Any other character is compared
    like a letter, by its code point."""
    for w in words:
        if '"' in w:
            raise ValueError(f"word {w!r} contains a double quote, which the rationale format cannot quote")
    return words


def _parse_quoted(text: str) -> list[str]:
    return re.findall(r'"([^"]+)"', text)


_GROUP_FORM = '["word" ? "word" ? ...]'


def _parse_group(text: str) -> list[str] | None:
    """The words of a tied group's inside, '"a" ? "b"'; None unless it reads exactly so."""
    words = _parse_quoted(text)
    return words if words and " ? ".join(f'"{w}"' for w in words) == text else None


def _stray_text(text: str) -> str | None:
    """The first part of a letters list that is not a '"word"="c" (i)' entry or the ", "
    between two, so that no garbage hides between entries; None when there is none."""
    end = 0
    for n, m in enumerate(_LETTERS.finditer(text)):
        gap = text[end:m.start()]
        if gap != ("" if n == 0 else ", "):
            return gap.strip(", ") or gap
        end = m.end()
    return text[end:] or None


def _replace(groups: Groups, old: list[str], new: Groups) -> Groups:
    pos = groups.index(old)
    return groups[:pos] + new + groups[pos + 1:]


class _Walk:
    """The checker's reading position in an attempt's numbered steps."""

    def __init__(self, steps: list[Step]):
        self.steps, self.pos = steps, 0

    def take(self, step_id: str) -> Step:
        """The next step, which must be step ``step_id`` (else the attempt is unreadable)."""
        if self.pos >= len(self.steps):
            raise ValueError(f"the steps end before step ({step_id})")
        step = self.steps[self.pos]
        if step.id != step_id:
            raise ValueError(f"step ({step.id}) is out of sequence: step ({step_id}) was expected")
        self.pos += 1
        return step

    def peek(self) -> Step:
        if self.pos >= len(self.steps):
            raise ValueError("the steps end before the last Hence")
        return self.steps[self.pos]

    def next_id(self) -> str | None:
        return self.steps[self.pos].id if self.pos < len(self.steps) else None


class WordSort(Task):
    name = "word_sort"
    info = ""
    answer_types = (str, list)  # the reference's files hold the answer as a list of words

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
        """The question's words; ValueError when there are none or one cannot be quoted."""
        words = _list_of(question)
        if words is None:
            raise ValueError("no 'List:' in the question")
        if not words:
            raise ValueError("the question's list has no words")
        return _quotable(words)

    def reference_fields(self, example: Example) -> dict:
        """The paper's files give the sorted words as a JSON list (raw pool and meta_data)."""
        fields = super().reference_fields(example)
        words = example.answer.split()
        fields["answer"], fields["answer_fields"] = words, {"correct_answer": words}
        return fields

    def cell_of(self, question: str) -> Cell | None:
        """The cell of the question's word count; None without a list or outside 2-20 words,
        ValueError (with the reason) for a word the format cannot hold."""
        words = _list_of(question)
        if not words:
            return None
        n = len(_quotable(words))
        return next((c for c in self.cells() if c.params["n_words"] == n), None)

    # ------------------------------------------------------------------ text
    def gold_answer(self, question: str) -> str:
        return " ".join(sorted(self._words(question)))

    def gold_rationale(self, question: str) -> str:
        words = self._words(question)
        split = _split_by_letter(words, 0)
        lines = [f"(1) The first letter: {_letters_text(words, 0)}.", f"(2) We now have: {_order_text(split)}."]
        rest, order = _finish_level(split, 1, "", 2)
        lines += rest
        lines.append(f"({FINAL_STEP}) So the answer is: {' '.join(order)}.")
        return "\n".join(lines)

    def normalize_answer(self, answer: str) -> str:
        # All final periods go, the sentence's and a last word's alike ("st."): the parsed and
        # the gold answer then compare the same whichever of them carries the sentence's period.
        return " ".join(answer.strip().rstrip(".").lower().split())

    def parse_answer(self, attempt: str) -> str | None:
        line = final_response(attempt)
        if not line or "the answer is:" not in line:
            return None
        return self.normalize_answer(line.split("the answer is:", 1)[1])

    def is_consistent(self, attempt: str, answer: str, question: str | None = None) -> bool:
        """SPEC 6: some "Hence" line and none with a tie "?" (a "?" inside a quoted word is no tie)."""
        hence = [s.text for s in split_steps(attempt) or [] if s.text.startswith("Hence")]
        return bool(hence) and not any("?" in re.sub(r'"[^"]*"', "", h) for h in hence)

    # ------------------------------------------------------------------ checking
    def find_error(self, question: str, attempt: str) -> Feedback:
        try:
            return self._check(question, attempt)
        except (ValueError, KeyError, IndexError) as e:
            raise Unreadable(f"cannot read the attempt ({e})") from None

    def _check(self, question: str, attempt: str) -> Feedback:
        words = self._words(question)
        steps = split_steps(attempt)
        if not steps or steps[-1].id != FINAL_STEP or len(steps) < 4:
            return Feedback.unparsable("the attempt has no numbered steps and final response")
        walk = _Walk(steps[:-1])

        m = _FIRST.match(walk.take("1").text)
        if not m:
            return Feedback.unparsable("step (1) does not list first letters")
        if fb := self._check_letters("1", m.group(1), words, 0):
            return fb
        m = _NOW.match(walk.take("2").text)
        if not m:
            return Feedback.unparsable("step (2) is not an ordering")
        fb, groups = self._check_order("2", m.group(1), words, 0)
        if fb:
            return fb
        depth = {tuple(g): 1 for g in groups}  # a group's next character to compare
        fb, groups = self._check_level(walk, "", 3, groups, depth)
        if fb:
            return fb
        if walk.next_id() is not None:
            raise ValueError(f"step ({walk.next_id()}) follows the last Hence")

        answer = self.parse_answer(attempt)
        if answer is None:
            return Feedback.unparsable("the final response gives no answer")
        if any(len(g) > 1 for g in groups):
            return Feedback.error(FINAL_STEP, steps[-1].text, "the order is not finished: some words are still tied")
        concluded = [w for g in groups for w in g]
        if answer != self.normalize_answer(" ".join(concluded)):
            return Feedback.error(FINAL_STEP, steps[-1].text, f"the concluded order is {' '.join(concluded)}")
        return Feedback.correct()

    def _check_level(self, walk: _Walk, prefix: str, j: int, groups: Groups, depth: dict,
                     pending: list[str] | None = None) -> tuple[Feedback | None, Groups]:
        """Steps j, j+1, ... of one level (ids under ``prefix``) up to the level's Hence.

        ``groups`` is the level's order so far; ``pending`` a group whose "We now have" must
        come next. A re-sort of a tied group either opens a level below (its next step is
        numbered ".1" under it) or, as the reference does when a whole subpart stayed tied,
        continues this level. Returns (feedback or None, the level's order).
        """
        last_now = None  # number of the level's last "We now have" step
        while True:
            sid = _child(prefix, j)
            step = walk.peek()
            if prefix and last_now is not None and step.id == _child(prefix, last_now + 1) and _SUBPART.match(step.text):
                sid = step.id  # the reference's numbering: inside a subpart every re-sort has this id
            step = walk.take(sid)
            if pending is not None:
                if not (m := _NOW.match(step.text)):
                    raise ValueError(f"step ({sid}) should order the subpart {_quote(pending)}")
                k = depth[tuple(pending)]
                fb, sub = self._check_order(sid, m.group(1), pending, k)
                if fb:
                    return fb, []
                groups = _replace(groups, pending, sub)
                depth.update({tuple(g): k + 1 for g in sub})
                pending, last_now = None, j
            elif m := _HENCE.match(step.text):
                return self._check_hence(sid, m.group(1), groups), groups
            elif m := _SUBPART.match(step.text):
                group = _parse_group(m.group(1))
                if group is None:
                    return Feedback.error(sid, f"[{m.group(1)}]", f"a tied group reads {_GROUP_FORM}"), []
                if fb := self._check_subpart(sid, m, group, groups, depth):
                    return fb, []
                if walk.next_id() == _child(sid, 1):
                    fb, sub = self._check_level(walk, sid, 1, [group], depth, pending=group)
                    if fb:
                        return fb, []
                    groups = _replace(groups, group, sub)
                else:
                    pending = group
            else:
                raise ValueError(f"step ({sid}) is neither a subpart, an ordering nor a Hence")
            j += 1

    def _check_subpart(self, step_id: str, m: re.Match, group: list[str], groups: Groups, depth: dict) -> Feedback | None:
        """A "Now sort this subpart" step: a tied group of the level, compared on its next character."""
        if len(group) < 2 or group not in groups:
            return Feedback.error(step_id, f"[{m.group(1)}]", "this subpart is not a tied group of the previous step")
        k = depth[tuple(group)]
        if m.group(2) != ordinal(k):
            return Feedback.error(step_id, f"their {m.group(2)} letters", f"the next letters to compare are the {ordinal(k)} ones")
        return self._check_letters(step_id, m.group(3), group, k)

    def _check_letters(self, step_id: str, text: str, words: list[str], k: int) -> Feedback | None:
        entries = _LETTERS.findall(text)
        if not entries:
            raise ValueError(f"step ({step_id}) lists no letters")
        if stray := _stray_text(text):
            return Feedback.error(step_id, stray, 'the letters should read "word"="letter" (index), separated by commas')
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
                return Feedback.error(step_id, f'"{w}"="{ch}" ({i})', _describe(w, k))
            if int(i) != index(ch):
                return Feedback.error(step_id, f'"{w}"="{ch}" ({i})', _index_reason(ch))
        return None

    def _check_order(self, step_id: str, text: str, words: list[str], k: int) -> tuple[Feedback | None, Groups]:
        """A "We now have" ordering of ``words`` by their k-th characters."""
        groups: Groups = []
        prev = None
        for item in (x.strip() for x in text.split(" < ")):
            m = _ITEM.match(item)
            if not m:
                raise ValueError(f"step ({step_id}) has an unreadable item {item!r}")
            i = int(m.group(1))
            group = [m.group(2)] if m.group(2) else _parse_group(m.group(3))
            if group is None:
                return Feedback.error(step_id, item, f"a tied group reads {_GROUP_FORM}"), []
            for w in group:
                if w not in words:
                    return Feedback.error(step_id, f'"{w}"', f'"{w}" is not in the list'), []
                if index(letter(w, k)) != i:
                    return Feedback.error(step_id, item, _describe(w, k)), []
            # equal indices only for copies of one repeated word, which stay apart (see _split_by_letter)
            repeated = prev is not None and i == prev[0] and len(group) == 1 and prev[2] == group
            if prev is not None and i <= prev[0] and not repeated:
                return Feedback.error(step_id, f"{prev[1]} < {item}", f"{prev[0]} is not smaller than {i}"), []
            groups.append(group)
            prev = (i, item, group)
        flat = [w for g in groups for w in g]
        for w in words:
            if flat.count(w) < words.count(w):
                return Feedback.error(step_id, text, f'"{w}" is missing'), []
            if flat.count(w) > words.count(w):
                return Feedback.error(step_id, f'"{w}"', f'"{w}" appears more than once'), []
        return None, groups

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
