"""Multistep arithmetic: generator, gold rationales, parsing, consistency and the checker."""

from __future__ import annotations

import pytest

from tripost.tasks import get_task

Q = "((7 - -1 + -1) - (2 * 3 - 3)) ="
GOLD = (
    '(1) This equation can be written as "(A - B)", where A = (7 - -1 + -1) and B = (2 * 3 - 3).\n'
    "(2) Let's calculate A = (7 - -1 + -1) = ((7 - -1) + -1) = (8 + -1) = 7.\n"
    "(3) Let's calculate B = (2 * 3 - 3) = ((2 * 3) - 3) = (6 - 3) = 3.\n"
    "(4) Then, the final equation is (A - B) = (7 - 3) = 4.\n"
    "(Final response) So the answer is 4.\n"
)


@pytest.fixture(scope="module")
def task():
    return get_task("multistep_arithmetic")


def test_exact_gold_rationale(task):
    assert task.gold_rationale(Q) == GOLD
    assert task.gold_answer(Q) == "4"
    assert task.prompt(Q).startswith(f"Q: {Q}\nAnswer: Let's think step by step. Recall")


def test_generation_is_deterministic_and_covers_cells(task):
    a = task.generate(task.cells(), 5, seed=1)
    assert a == task.generate(task.cells(), 5, seed=1)
    assert [e.question for e in a] != [e.question for e in task.generate(task.cells(), 5, seed=2)]
    assert {e.cell for e in a} == {c.name for c in task.cells()} and len(task.cells()) == 12
    assert {c.name for c in task.seen_cells()} == {"l3_d2", "l4_d2", "l3_d2x2", "l4_d2x2"}
    for e in a:
        assert task.cell_of(e.question).name == e.cell
        assert e.seen == task.cell(e.cell).seen


def test_gold_rationales_are_correct_and_consistent(task):
    for e in task.generate(task.cells(), 25, seed=7):
        assert task.check(e.question, e.rationale).is_correct, e.rationale
        assert task.is_consistent(e.rationale, e.answer)
        assert task.parse_answer(e.rationale) == e.answer
        assert int(e.answer) == eval(e.question.removesuffix("="))  # independent evaluation (test only)


def test_bigbench_phrasing_and_unknown_shapes(task):
    assert task.cell_of("((-1 + 2 + 9 * 5) - (-2 + -4 + -4 * -7)) =").name == "l4_d2"
    assert task.cell_of("((1 + 2 + 3) - (4 + 5 + 6))").name == "l3_d2"
    assert task.cell_of("((1 + 2 + 3) - (4 + 5))") is None  # unequal groups
    assert task.cell_of("(1 + 2 + 3)") is None
    assert task.cell_of("what is 2 + 2?") is None


def test_answer_parsing_and_consistency(task):
    assert task.parse_answer("(Final response) So the answer is -12.") == "-12"
    assert task.parse_answer("(Final response) So the answer is +05.") == "5"
    assert task.parse_answer("(1) x\n") is None
    assert task.normalize_answer(" 007 ") == "7"
    assert not task.is_consistent(GOLD.replace("= 4.\n(Final", "= 5.\n(Final"), "4")


@pytest.mark.parametrize(
    "old, new, step, segment, reason",
    [
        ("A = (7 - -1 + -1) and", "A = (7 - 1 + -1) and", "1", "A = (7 - 1 + -1)", "does not match the question"),
        ('"(A - B)"', '"(A + B)"', "1", "(A + B)", "does not match the question"),
        ("(8 + -1) = 7.", "(8 + -1) = 6.", "2", "(8 + -1) = 6", "there is a calculation error, since 7 is not equal to 6"),
        ("((7 - -1) + -1) = (8 + -1)", "((7 - -1) + -1) = (8 + -1))", "2", "(8 + -1))", "is not a valid expression"),
        ("Let's calculate B = (2 * 3 - 3)", "Let's calculate B = (2 * 3 - 4)", "3", "B = (2 * 3 - 4)", "was defined as"),
        ("Let's calculate B", "Let's calculate C", "3", "C = (2 * 3 - 3)", "C is not defined in step (1)"),
        ("(A - B) = (7 - 3) = 4", "(A - B) = (7 - 2) = 5", "4", "(7 - 2)", "does not use the values"),
        ("So the answer is 4.", "So the answer is 5.", "Final response", "So the answer is 5.", "last calculated value is 4"),
    ],
)
def test_checker_finds_each_kind_of_error(task, old, new, step, segment, reason):
    assert old in GOLD
    fb = task.check(Q, GOLD.replace(old, new))
    assert fb.is_error, fb
    assert (fb.step, fb.segment) == (step, segment)
    assert reason in fb.reason


def test_final_equation_with_a_variable_never_computed(task):
    attempt = GOLD.replace("(3) Let's calculate B = (2 * 3 - 3) = ((2 * 3) - 3) = (6 - 3) = 3.\n", "").replace("(4) Then", "(3) Then")
    fb = task.check(Q, attempt)
    assert fb.is_error and fb.step == "3" and fb.segment == "B" and "not been calculated" in fb.reason


@pytest.mark.parametrize("attempt", ["", "garbage", GOLD[:120], "(1) hello\n(Final response) So the answer is 4.\n",
                                     GOLD.replace("(Final response) So the answer is 4.\n", "")])
def test_malformed_attempts_are_unparsable_not_exceptions(task, attempt):
    assert task.check(Q, attempt).is_unparsable
