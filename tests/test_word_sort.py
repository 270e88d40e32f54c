"""Word sorting: generator, gold rationales, parsing, consistency and the checker."""

from __future__ import annotations

import pytest

from tripost.tasks import get_task

Q = "Sort the following words alphabetically:\nList: dot damp apple"
GOLD = (
    '(1) The first letter: "dot"="d" (4), "damp"="d" (4), "apple"="a" (1).\n'
    '(2) We now have: (1) "apple" < (4) ["dot" ? "damp"].\n'
    '(3) Now sort this subpart ["dot" ? "damp"] by looking at their second letters: "dot"="o" (15), "damp"="a" (1).\n'
    '(3.1) We now have: (1) "damp" < (15) "dot".\n'
    '(3.2) Hence, we have "damp" < "dot".\n'
    '(4) Hence, we have "apple" < "damp" < "dot".\n'
    "(Final response) So the answer is: apple damp dot.\n"
)
Q2 = "Sort the following words alphabetically:\nList: bead bear bat cat cow"


@pytest.fixture(scope="module")
def task():
    return get_task("word_sort")


def test_exact_gold_rationale(task):
    assert task.gold_rationale(Q) == GOLD
    assert task.gold_rationale("Sort the following words alphabetically:\nList: cat dog").splitlines()[2] == (
        '(3) Hence, we have "cat" < "dog".'
    )


def test_nested_ties(task):
    lines = task.gold_rationale(Q2).splitlines()
    assert lines[4] == '(3.2) Now sort this subpart ["bead" ? "bear"] by looking at their third letters: "bead"="a" (1), "bear"="a" (1).'
    assert lines[8] == '(3.6) Hence, we have "bat" < "bead" < "bear".'
    assert lines[-2] == '(5) Hence, we have "bat" < "bead" < "bear" < "cat" < "cow".'
    assert task.check(Q2, task.gold_rationale(Q2)).is_correct


def test_generation_is_deterministic_and_covers_cells(task):
    a = task.generate(task.cells(), 3, seed=1)
    assert a == task.generate(task.cells(), 3, seed=1)
    assert [e.question for e in a] != [e.question for e in task.generate(task.cells(), 3, seed=2)]
    assert {e.cell for e in a} == {f"n{k}" for k in range(2, 21)}
    for e in a:
        assert task.cell_of(e.question).name == e.cell
        words = e.question.split("List: ")[1].split()
        assert len(set(words)) == len(words) and e.seen == (len(words) <= 7)


def test_gold_rationales_are_correct_and_consistent(task):
    for e in task.generate(task.cells(), 15, seed=5):
        assert task.check(e.question, e.rationale).is_correct, e.rationale
        assert task.is_consistent(e.rationale, e.answer)
        words = e.question.split("List: ")[1].split()
        assert task.parse_answer(e.rationale) == e.answer == " ".join(sorted(words))


def test_bigbench_one_line_phrasing(task):
    one_line = "Sort the following words alphabetically: List: dot damp apple"
    assert task.normalize_question(one_line) == Q
    assert task.cell_of(one_line).name == "n3"
    assert task.normalize_answer(" Apple  damp dot. ") == "apple damp dot"


def test_consistency_needs_a_hence_without_ties(task):
    assert not task.is_consistent(GOLD.replace('(4) Hence, we have "apple" < "damp" < "dot"', '(4) Hence, we have "apple" < ["damp" ? "dot"]'), "x")
    assert not task.is_consistent("(1) x\n(Final response) So the answer is: a b.\n", "a b")


@pytest.mark.parametrize(
    "q, old, new, step, segment, reason",
    [
        (Q, '"dot"="d" (4), "damp"', '"dot"="d" (5), "damp"', "1", '"dot"="d" (5)', "letter 4"),
        (Q, '"dot"="d" (4), "damp"', '"dot"="e" (5), "damp"', "1", '"dot"="e" (5)', 'is "d"'),
        (Q, ', "apple"="a" (1).\n(2)', ".\n(2)", "1", None, '"apple" is missing'),
        (Q, ', "apple"="a" (1).\n(2)', ', "apple"="a" (1), "pear"="p" (16).\n(2)', "1", '"pear"', "not in the list"),
        (Q, '(1) "apple" < (4) ["dot" ? "damp"]', '(4) ["dot" ? "damp"] < (1) "apple"', "2", '(4) ["dot" ? "damp"] < (1) "apple"', "not smaller"),
        (Q, 'this subpart ["dot" ? "damp"]', 'this subpart ["dot" ? "apple"]', "3", '["dot" ? "apple"]', "not a tied group"),
        (Q, '"dot"="o" (15), "damp"="a" (1).', '"dot"="t" (20), "damp"="a" (1).', "3", '"dot"="t" (20)', "second letter"),
        (Q, '(3.2) Hence, we have "damp" < "dot"', '(3.2) Hence, we have "dot" < "damp"', "3.2", '"dot" < "damp"', "comes before"),
        (Q, '(4) Hence, we have "apple" < "damp" < "dot"', '(4) Hence, we have "damp" < "apple" < "dot"', "4", '"damp" < "apple"', "comes before"),
        (Q, "So the answer is: apple damp dot.", "So the answer is: apple dot damp.", "Final response", None, "concluded order"),
    ],
)
def test_checker_finds_each_kind_of_error(task, q, old, new, step, segment, reason):
    gold = task.gold_rationale(q)
    assert old in gold
    fb = task.check(q, gold.replace(old, new))
    assert fb.is_error, fb
    assert fb.step == step and (segment is None or fb.segment == segment) and reason in fb.reason


@pytest.mark.parametrize("attempt", ["", "garbage", GOLD[:150], GOLD.replace("(3.1) We now have", "(3.1) We have"),
                                     GOLD.replace("(Final response) So the answer is: apple damp dot.\n", "")])
def test_malformed_attempts_are_unparsable_not_exceptions(task, attempt):
    assert task.check(Q, attempt).is_unparsable


def test_check_never_raises_whatever_the_checker_hits(monkeypatch):
    """Task.check (the one place for SPEC 5's rule): any error of a task's checker is unparsable."""
    from tripost.tasks.word_sort import WordSort

    def broken(self, question, attempt):
        raise TypeError("boom")

    monkeypatch.setattr(WordSort, "_check", broken)
    fb = WordSort().check("Sort the following words alphabetically:\nList: b a", "(1) x\n")
    assert fb.is_unparsable and fb.reason == "cannot read the attempt (TypeError: boom)"
