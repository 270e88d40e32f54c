"""Multistep arithmetic: generator, cells, gold rationales, answer parsing, consistency and FBK."""

from __future__ import annotations

import random

import pytest

from tripost.formats import FINAL_STEP, parse_feedback, render_feedback, split_steps
from tripost.tasks import get_task
from tripost.tasks.multistep_arithmetic import MultistepArithmetic, ParseError, evaluate, parse

Q = "((7 - -1 + -1) - (2 * 3 - 3)) ="
GOLD = (
    '(1) This equation can be written as "(A - B)", where A = (7 - -1 + -1) and B = (2 * 3 - 3).\n'
    "(2) Let's calculate A = (7 - -1 + -1) = ((7 - -1) + -1) = (8 + -1) = 7.\n"
    "(3) Let's calculate B = (2 * 3 - 3) = ((2 * 3) - 3) = (6 - 3) = 3.\n"
    "(4) Then, the final equation is (A - B) = (7 - 3) = 4.\n"
    "(Final response) So the answer is 4."  # the reference's rationales end without a newline
)
Q22 = "(((1 + 2 * 3) - (4 - 5 - 6)) * ((-7 * 8 + 9) + (2 - -3 * 4)))"
GOLD22 = (
    '(1) This equation can be written as "((A - B) * (C + D))", where A = (1 + 2 * 3), B = (4 - 5 - 6),'
    " C = (-7 * 8 + 9) and D = (2 - -3 * 4).\n"
    "(2) Let's calculate A = (1 + 2 * 3) = (1 + (2 * 3)) = (1 + 6) = 7.\n"
    "(3) Let's calculate B = (4 - 5 - 6) = ((4 - 5) - 6) = (-1 - 6) = -7.\n"
    "(4) Let's calculate C = (-7 * 8 + 9) = ((-7 * 8) + 9) = (-56 + 9) = -47.\n"
    "(5) Let's calculate D = (2 - -3 * 4) = (2 - (-3 * 4)) = (2 - -12) = 14.\n"
    "(6) Then, the final equation is ((A - B) * (C + D)) = ((7 - -7) * (-47 + 14)) = (14 * (-47 + 14))"
    " = (14 * -33) = -462.\n"
    "(Final response) So the answer is -462."
)


@pytest.fixture(scope="module")
def task():
    return get_task("multistep_arithmetic")


def py_eval(question: str) -> int:
    return eval(question.strip().removesuffix("="))  # independent evaluation, in the test only


# ------------------------------------------------------------------ questions and cells


def test_cells_names_order_and_seen(task):
    cells = task.cells()
    assert [c.name for c in cells] == [
        "l3_d2", "l4_d2", "l3_d2x2", "l4_d2x2",
        "l5_d2", "l6_d2", "l5_d2x2", "l6_d2x2", "l3_d2x2x2", "l4_d2x2x2", "l5_d2x2x2", "l6_d2x2x2",
    ]
    assert [c.seen for c in cells] == [True] * 4 + [False] * 8
    assert task.cell("l4_d2x2").params == {"length": 4, "depth": [2, 2]}
    assert task.cell("l6_d2x2x2").params == {"length": 6, "depth": [2, 2, 2]}
    assert isinstance(task, MultistepArithmetic) and task.name == "multistep_arithmetic"


def test_generation_is_deterministic_and_covers_cells(task):
    a = task.generate(task.cells(), 5, seed=1)
    assert a == task.generate(task.cells(), 5, seed=1)
    assert [e.question for e in a] != [e.question for e in task.generate(task.cells(), 5, seed=2)]
    assert {e.cell for e in a} == {c.name for c in task.cells()} and len(a) == 60
    for e in a:
        cell = task.cell_of(e.question)
        assert cell is not None and cell.name == e.cell and e.seen == cell.seen
        assert e.question.endswith(" =") and e.rationale == task.gold_rationale(e.question)
        operands = [int(t) for t in e.question.replace("(", " ").replace(")", " ").split() if t.lstrip("-").isdigit()]
        groups = 2 ** len(cell.params["depth"])
        assert len(operands) == groups * cell.params["length"] and all(-9 <= x <= 9 for x in operands)
    # sample uses only the rng it is given
    cell = task.cell("l3_d2x2")
    assert task.sample(cell, random.Random(5)) == task.sample(cell, random.Random(5))


def test_constructor_options():
    small = MultistepArithmetic(min_operand=1, max_operand=3, operators="+")
    ex = small.sample(small.cell("l5_d2"), random.Random(0))
    assert "-" not in ex.question and "*" not in ex.question and small.check(ex.question, ex.rationale).is_correct
    with pytest.raises(ValueError):
        MultistepArithmetic(min_operand=3, max_operand=1)
    with pytest.raises(ValueError):
        MultistepArithmetic(operators="/")


def test_cell_of_bigbench_phrasing_and_unknown_shapes(task):
    assert task.cell_of("((-1 + 2 + 9 * 5) - (-2 + -4 + -4 * -7)) =").name == "l4_d2"
    assert task.cell_of("((1 + 2 + 3) - (4 + 5 + 6))").name == "l3_d2"
    assert task.cell_of("  ((1 + 2 + 3) - (4 + 5 + 6)) =  ").name == "l3_d2"
    assert task.cell_of("Q: ((1 + 2 + 3) - (4 + 5 + 6)) =").name == "l3_d2"
    assert task.cell_of(Q22).name == "l3_d2x2"
    assert task.cell_of("((1+2+3+4+5)*(1-2-3-4-5)) =").name == "l5_d2"
    assert task.cell_of("((1 + 2 + 3) - (4 + 5))") is None  # unequal groups
    assert task.cell_of("((1 + 2 + 3) - ((1 + 2 + 3) * (4 + 5 + 6)))") is None  # unbalanced tree
    assert task.cell_of("((1 + 2) - (4 + 5))") is None  # length 2 is no cell
    assert task.cell_of("(1 + 2 + 3)") is None
    assert task.cell_of("((1 + 2 + 3) - (4 + 5 + 6)") is None
    assert task.cell_of("((1 + 2 + 3) (4 + 5 + 6))") is None
    assert task.cell_of("((1 + 2 + 3) - 4 * (4 + 5 + 6))") is None
    assert task.cell_of("what is 2 + 2?") is None and task.cell_of("") is None


# ------------------------------------------------------------------ gold rationales


def test_exact_gold_rationale(task):
    assert task.gold_rationale(Q) == GOLD
    assert task.gold_answer(Q) == "4"
    assert task.gold_rationale(Q22) == GOLD22
    assert task.gold_answer(Q22) == str(py_eval(Q22)) == "-462"
    assert task.info.startswith(" ") and task.info.endswith(".") and "\n" not in task.info
    assert task.prompt(Q) == f"Q: {Q}\nAnswer: Let's think step by step.{task.info}\n"


def test_gold_rationale_special_groups(task):
    r = task.gold_rationale("((2 + 3 * 4 - 5) - (2 * 3)) =")
    assert "A = (2 + 3 * 4 - 5) = ((2 + (3 * 4)) - 5) = ((2 + 12) - 5) = (14 - 5) = 9." in r
    assert "B = (2 * 3) = 6." in r  # its parenthesised form is the written one: not repeated
    assert "(A - B) = (9 - 6) = 3." in r
    # a question with unusual spacing from a file: canonical rationale, still checked correct
    q = "((1+2*-3) * (4 -5 - -6))"
    assert "A = (1 + 2 * -3)" in task.gold_rationale(q) and task.check(q, task.gold_rationale(q)).is_correct


def test_many_gold_rationales_are_correct_and_consistent(task):
    for e in task.generate(task.cells(), 25, seed=7):
        assert task.check(e.question, e.rationale).is_correct, e.rationale
        assert task.is_consistent(e.rationale, e.answer)
        assert task.parse_answer(e.rationale) == e.answer == task.gold_answer(e.question)
        assert int(e.answer) == py_eval(e.question)
        assert e.rationale.endswith(f"(Final response) So the answer is {e.answer}.")
        assert task.gold_attempt(e.question) == e.rationale + "\n"
        steps = split_steps(e.rationale)
        assert [s.id for s in steps] == [str(i) for i in range(1, len(steps))] + [FINAL_STEP]
        assert len(steps) == 2 ** len(task.cell(e.cell).params["depth"]) + 3


def test_expression_parser():
    assert evaluate(parse("2 + 3 * 4 - 5")) == 9 == py_eval("2 + 3 * 4 - 5")
    assert evaluate(parse("7 - -1 + -1")) == 7
    assert evaluate(parse("7 -1")) == 6  # a minus after an operand is binary
    for bad in ["(1 + 2", "1 + 2)", "1 +", "* 2", "", "1 2", "(1 + x)", "1 / 2"]:
        with pytest.raises(ParseError):
            parse(bad)


# ------------------------------------------------------------------ answers and consistency


def test_answer_parsing_and_consistency(task):
    assert task.parse_answer("(Final response) So the answer is -12.") == "-12"
    assert task.parse_answer("(Final response) So the answer is +5.") == "5"
    assert task.parse_answer("(Final response) So the answer is 05.") == "5"
    assert task.parse_answer("(Final response) So the answer is 1.\n(Final response) So the answer is 2.") == "2"
    assert task.parse_answer("(Final response) So the answer is x.") is None
    assert task.parse_answer("(1) x\n") is None and task.parse_answer("") is None
    assert task.normalize_answer(" 007 ") == "7" and task.normalize_answer("-3.") == "-3"
    assert task.answers_match(task.parse_answer(GOLD), "04")
    assert task.is_consistent(GOLD, "4") and task.is_consistent(GOLD, "+4")
    assert not task.is_consistent(GOLD, "5")
    assert not task.is_consistent(GOLD.replace("= 4.\n(Final", "= 5.\n(Final"), "4")
    assert not task.is_consistent("(Final response) So the answer is 4.\n", "4")
    assert not task.is_consistent(GOLD, "four")


# ------------------------------------------------------------------ the checker


def _drop_step3(text: str) -> str:
    return text.replace("(3) Let's calculate B = (2 * 3 - 3) = ((2 * 3) - 3) = (6 - 3) = 3.\n", "").replace(
        "(4) Then", "(3) Then"
    )


ERRORS = [
    # 1. the decomposition does not reproduce the question
    ("A = (7 - -1 + -1) and", "A = (7 - 1 + -1) and", "1", "A = (7 - 1 + -1)",
     "A = (7 - 1 + -1) does not match the question"),
    ('"(A - B)"', '"(A + B)"', "1", "(A + B)", "(A + B) does not match the question"),
    ('"(A - B)"', '"(A - B"', "1", "(A - B", "(A - B is not a valid expression"),
    ("and B = (2 * 3 - 3).", "and A = (2 * 3 - 3).", "1", "A = (2 * 3 - 3)", "A is defined twice"),
    (" and B = (2 * 3 - 3).", ".", "1", "(A - B)", "B is used in (A - B) but not defined"),
    ("and B = (2 * 3 - 3).", "and B = (2 * 3 - 3) and C = (1 + 1).", "1", "C = (1 + 1)", "C is not used in (A - B)"),
    # 2. neighbours of an "=" chain differ in value
    ("(8 + -1) = 7.", "(8 + -1) = 6.", "2", "(8 + -1) = 6", "there is a calculation error, since 7 is not equal to 6"),
    ("= (8 + -1) =", "= (9 + -1) =", "2", "((7 - -1) + -1) = (9 + -1)",
     "there is a calculation error, since 7 is not equal to 8"),
    ("= ((2 * 3) - 3) = (6 - 3)", "= (2 * (3 - 3)) = (6 - 3)", "3", "(2 * 3 - 3) = (2 * (3 - 3))",
     "there is a calculation error, since 3 is not equal to 0"),
    # 3. an item of a chain is not a valid expression
    ("((7 - -1) + -1) = (8 + -1)", "((7 - -1) + -1) = (8 + -1))", "2", "(8 + -1))", "(8 + -1)) is not a valid expression"),
    ("= (6 - 3) = 3.", "= (6 - ) = 3.", "3", "(6 - )", "(6 - ) is not a valid expression"),
    ("= (6 - 3) = 3.", "= (6 - 3) = 3 =.", "3", "3 =", "3 = is not a valid expression"),
    # 4. a group step calculates something other than its definition, or an undefined letter
    ("Let's calculate B = (2 * 3 - 3)", "Let's calculate B = (2 * 3 - 4)", "3", "B = (2 * 3 - 4)",
     "B is defined as (2 * 3 - 3) in step (1)"),
    ("Let's calculate B", "Let's calculate C", "3", "C = (2 * 3 - 3)", "C is not defined in step (1)"),
    # 5. the final equation
    ("(A - B) = (7 - 3) = 4", "(A - B) = (7 - 2) = 5", "4", "(7 - 2)", "B = 3 was calculated in step (3), not 2"),
    ("(A - B) = (7 - 3) = 4", "(A - B) = 5", "4", "5", "substituting the values calculated before gives (7 - 3), not 5"),
    ("(A - B) = (7 - 3) = 4", "(A + B) = (7 + 3) = 10", "4", "(A + B)",
     "the final equation should be (A - B) as in step (1)"),
    ("(A - B) = (7 - 3) = 4", "(A - C) = (7 - 3) = 4", "4", "(A - C)", "C has not been calculated before"),
    ("(7 - 3) = 4.", "(7 - 3) = 5.", "4", "(7 - 3) = 5", "there is a calculation error, since 4 is not equal to 5"),
    ("(7 - 3) = 4.", "(7 - 3).", "4", "(7 - 3)", "(7 - 3) is not calculated down to one number"),
    # 6. the final response differs from the last computed value
    ("So the answer is 4.", "So the answer is 5.", "Final response", "So the answer is 5.",
     "the last calculated value is 4, not 5"),
]


@pytest.mark.parametrize("old, new, step, segment, reason", ERRORS)
def test_checker_finds_each_kind_of_error(task, old, new, step, segment, reason):
    assert old in GOLD
    attempt = GOLD.replace(old, new)
    fb = task.check(Q, attempt)
    assert fb.is_error, fb
    assert (fb.step, fb.segment, fb.reason) == (step, segment, reason)
    # the segment is part of the step it names, and the feedback line reads back the same
    line = next(s for s in split_steps(attempt) if s.id == step)
    assert segment in line.text and not reason.endswith(".")
    ids = [s.id for s in split_steps(attempt)]
    back = parse_feedback(render_feedback(fb, ids))
    assert (back.step, back.segment, back.reason) == (step, segment, reason)


def test_final_equation_with_a_variable_never_computed(task):
    fb = task.check(Q, _drop_step3(GOLD))
    assert (fb.kind, fb.step, fb.segment, fb.reason) == ("error", "3", "(A - B)", "B has not been calculated before")


def test_two_by_two_errors(task):
    assert task.check(Q22, GOLD22).is_correct
    wrong_sub = GOLD22.replace("((7 - -7) * (-47 + 14))", "((7 - -7) * (-47 + 41))")
    fb = task.check(Q22, wrong_sub)
    assert (fb.step, fb.segment, fb.reason) == ("6", "((7 - -7) * (-47 + 41))", "D = 14 was calculated in step (5), not 41")
    wrong_c = GOLD22.replace("C = (-7 * 8 + 9) and", "C = (-7 * 8 - 9) and")
    fb = task.check(Q22, wrong_c)
    assert (fb.step, fb.segment) == ("1", "C = (-7 * 8 - 9)")
    wrong_tpl = GOLD22.replace('"((A - B) * (C + D))"', '"((A - B) * (C - D))"')
    assert (task.check(Q22, wrong_tpl).step, task.check(Q22, wrong_tpl).segment) == ("1", "((A - B) * (C - D))")
    reduce_error = GOLD22.replace("(14 * -33) = -462", "(14 * -33) = -463")
    assert reduce_error != GOLD22
    fb = task.check(Q22, reduce_error)
    assert (fb.step, fb.segment, fb.reason) == ("6", "(14 * -33) = -463", "there is a calculation error, since -462 is not equal to -463")


def test_first_error_wins(task):
    attempt = GOLD.replace("(8 + -1) = 7", "(8 + -1) = 6").replace("(6 - 3) = 3", "(6 - 3) = 2")
    assert task.check(Q, attempt).step == "2"


def test_equivalent_writing_is_accepted(task):
    swapped = (
        '(1) This equation can be written as "(A - B)", where A = (7 - -1 + -1), B = (2 * 3 - 3).\n'
        "(2) Let's calculate B = (2 * 3 - 3) = 3.\n"
        "(3) Let's calculate A = (7 - -1 + -1) = 7.\n"
        "(4) Then, the final equation is (A - B) = (7 - 3) = 4.\n"
        "(Final response) So the answer is 4.\n"
    )
    assert task.check(Q, swapped).is_correct
    assert task.check(Q.removesuffix(" ="), GOLD).is_correct


@pytest.mark.parametrize(
    "attempt",
    [
        "",
        "   \n",
        "garbage",
        GOLD[:120],
        GOLD.replace("\n(Final response) So the answer is 4.", ""),  # missing final line
        GOLD.replace("So the answer is 4.", "So the answer is four."),
        "(1) hello\n(Final response) So the answer is 4.\n",
        GOLD.replace("(4) Then", "(5) Then"),  # numbering
        GOLD.replace("(4) Then, the final equation is (A - B) = (7 - 3) = 4.\n", ""),  # no final equation
        GOLD.replace("(2) Let's", "(2) Now let's"),
        GOLD + "\nsome trailing words\n",
        "(1) " + "(" * 5000 + "\n(Final response) So the answer is 4.\n",
        None,
    ],
)
def test_malformed_attempts_are_unparsable_not_exceptions(task, attempt):
    assert task.check(Q, attempt).is_unparsable


def test_unknown_question_is_unparsable(task):
    assert task.check("what is 2 + 2?", GOLD).is_unparsable


def test_truncations_and_mutations_never_raise(task):
    for cut in range(len(GOLD)):
        fb = task.check(Q, GOLD[:cut])
        expect_correct = cut >= GOLD.index("is 4.") + len("is 4")
        assert fb.is_correct if expect_correct else fb.is_unparsable, (cut, fb)
    rng = random.Random(0)
    alphabet = "0123456789-+*() =ABX."
    for e in task.generate(task.seen_cells(), 15, seed=3):
        text = e.rationale
        for _ in range(5):
            i = rng.randrange(len(text))
            mutated = text[:i] + rng.choice(alphabet) + text[i + 1:]
            fb = task.check(e.question, mutated)
            assert fb.kind in ("correct", "error", "unparsable")
            if fb.is_error:
                line = next(s for s in split_steps(mutated) if s.id == fb.step)
                assert fb.segment and fb.segment in line.text and fb.reason
            if fb.is_correct:
                assert task.parse_answer(mutated) == e.answer


# ------------------------------------------------------------------ the reference's exact format (SPEC 9)

Q222 = (
    "((((1 - 2 + 3) * (4 * -1 - 2)) - ((3 + 3 * 3) + (0 - 5 - -5)))"
    " + (((2 * 2 * 2) - (-1 + 1 * 6)) * ((9 - 8 + 7) - (6 - 5 * 4)))) = "
)
GOLD222 = (
    '(1) This equation can be written as "(((A * B) - (C + D)) + ((E - F) * (G - H)))", where'
    " A = (1 - 2 + 3), B = (4 * -1 - 2), C = (3 + 3 * 3), D = (0 - 5 - -5), E = (2 * 2 * 2),"
    " F = (-1 + 1 * 6), G = (9 - 8 + 7) and H = (6 - 5 * 4).\n"
    "(2) Let's calculate A = (1 - 2 + 3) = ((1 - 2) + 3) = (-1 + 3) = 2.\n"
    "(3) Let's calculate B = (4 * -1 - 2) = ((4 * -1) - 2) = (-4 - 2) = -6.\n"
    "(4) Let's calculate C = (3 + 3 * 3) = (3 + (3 * 3)) = (3 + 9) = 12.\n"
    "(5) Let's calculate D = (0 - 5 - -5) = ((0 - 5) - -5) = (-5 - -5) = 0.\n"
    "(6) Let's calculate E = (2 * 2 * 2) = ((2 * 2) * 2) = (4 * 2) = 8.\n"
    "(7) Let's calculate F = (-1 + 1 * 6) = (-1 + (1 * 6)) = (-1 + 6) = 5.\n"
    "(8) Let's calculate G = (9 - 8 + 7) = ((9 - 8) + 7) = (1 + 7) = 8.\n"
    "(9) Let's calculate H = (6 - 5 * 4) = (6 - (5 * 4)) = (6 - 20) = -14.\n"
    # rounds: the four innermost pairs left to right, then the two middle ones, then the outer one
    "(10) Then, the final equation is (((A * B) - (C + D)) + ((E - F) * (G - H)))"
    " = (((2 * -6) - (12 + 0)) + ((8 - 5) * (8 - -14)))"
    " = ((-12 - (12 + 0)) + ((8 - 5) * (8 - -14)))"
    " = ((-12 - 12) + ((8 - 5) * (8 - -14)))"
    " = ((-12 - 12) + (3 * (8 - -14)))"
    " = ((-12 - 12) + (3 * 22))"
    " = (-24 + (3 * 22))"
    " = (-24 + 66) = 42.\n"
    "(Final response) So the answer is 42."
)
# The same 2x2 question as GOLD22, written with several operations per "=" (a model may do so).
GOLD22_MULTI = GOLD22.replace(" = (14 * (-47 + 14))", "").replace(
    "(4 - 5 - 6) = ((4 - 5) - 6) = (-1 - 6) = -7", "(4 - 5 - 6) = -7"
)


def test_one_operation_per_equals_in_groups_and_final_equation(task):
    assert task.gold_rationale(Q222) == GOLD222 and task.gold_answer(Q222) == "42" == str(py_eval(Q222))
    assert task.cell_of(Q222).name == "l3_d2x2x2"
    # operations ready in the same round go left to right before the next round: "5 * 2" is
    # reduced before "7 + 2", whose left operand only became a number in this round
    r = task.gold_rationale("((4 - -3 + 2 + 5 * 2) - (3 * 2 + 1 - 3 * 2)) =")
    assert (
        "A = (4 - -3 + 2 + 5 * 2) = (((4 - -3) + 2) + (5 * 2)) = ((7 + 2) + (5 * 2)) = ((7 + 2) + 10)"
        " = (9 + 10) = 19." in r
    )
    # two identical ready operations are reduced together; the second one's turn repeats the line
    assert "B = (3 * 2 + 1 - 3 * 2) = (((3 * 2) + 1) - (3 * 2)) = ((6 + 1) - 6) = ((6 + 1) - 6) = (7 - 6) = 1." in r
    assert r.endswith("(4) Then, the final equation is (A - B) = (19 - 1) = 18.\n(Final response) So the answer is 18.")
    assert task.check("((4 - -3 + 2 + 5 * 2) - (3 * 2 + 1 - 3 * 2)) =", r).is_correct


def test_rationale_has_no_trailing_newline_attempt_has_one(task):
    for q in (Q, Q22, Q222):
        rationale = task.gold_rationale(q)
        assert not rationale.endswith("\n") and task.gold_attempt(q) == rationale + "\n"
        assert task.check(q, rationale).is_correct and task.check(q, task.gold_attempt(q)).is_correct
        assert task.is_consistent(rationale, task.gold_answer(q))


def test_checker_accepts_one_and_several_operations_per_equals(task):
    assert task.check(Q22, GOLD22).is_correct
    assert GOLD22_MULTI != GOLD22 and task.check(Q22, GOLD22_MULTI).is_correct
    assert task.is_consistent(GOLD22_MULTI, "-462")
    assert task.check(Q222, GOLD222).is_correct


def test_checker_finds_calculation_errors_in_one_operation_steps(task):
    wrong_group = GOLD222.replace("(6 - (5 * 4)) = (6 - 20)", "(6 - (5 * 4)) = (6 - 21)")
    fb = task.check(Q222, wrong_group)
    assert (fb.step, fb.segment, fb.reason) == (
        "9", "(6 - (5 * 4)) = (6 - 21)", "there is a calculation error, since -14 is not equal to -15"
    )
    wrong_final = GOLD222.replace(" = ((-12 - 12) + (3 * 22))", " = ((-12 - 12) + (3 * 21))", 1)
    fb = task.check(Q222, wrong_final)
    assert (fb.step, fb.segment, fb.reason) == (
        "10", "((-12 - 12) + (3 * (8 - -14))) = ((-12 - 12) + (3 * 21))",
        "there is a calculation error, since 42 is not equal to 39",
    )
    # the earliest wrong step wins even when the final equation is also wrong
    both = wrong_final.replace("(-1 + 3) = 2.", "(-1 + 3) = 3.")
    assert task.check(Q222, both).step == "2"


def test_questions_as_files_write_them(task):
    # raw pool: "Q: <expression> = " (trailing space); BIG-Bench Hard: "<expression> ="
    for q in ("Q: " + Q22 + " = ", Q22 + " =", Q22 + " = ", Q22):
        assert task.cell_of(q).name == "l3_d2x2" and task.gold_rationale(q) == GOLD22
        assert task.gold_answer(q) == "-462"
    five = "((1 - 2 * 3 + 4 - 5) * (-6 + 7 - 8 * 9 + 0)) = "
    assert task.cell_of("Q: " + five).name == "l5_d2"
    six = "((1 - 2 * 3 + 4 - 5 + 6) - (-6 + 7 - 8 * 9 + 0 + 1)) ="
    assert task.cell_of(six).name == "l6_d2" and task.check(six, task.gold_rationale(six)).is_correct


def test_int_gold_answer_via_answer_from_data(task):
    assert task.answer_from_data(-462) == "-462" == task.answer_from_data("-462") == task.answer_from_data(" -462 ")
    ex = task.example_from_file(Q22, task.answer_from_data(-462))
    assert (ex.answer, ex.cell, ex.seen) == ("-462", "l3_d2x2", True)
    assert task.answers_match(task.parse_answer(GOLD22), ex.answer)
    for bad in (None, True, {"a": 1}, ""):
        with pytest.raises(ValueError):
            task.answer_from_data(bad)


def test_operands_outside_the_domain_are_refused_with_a_reason(task):
    for q in ("((12 + 2 + 3) - (4 + 5 + 6)) =", "((1 + 2 + 3) - (4 + 5 + -10)) ="):
        with pytest.raises(ValueError, match=r"operand -?1\d is outside -9\.\.9"):
            task.cell_of(q)
        with pytest.raises(ValueError, match="outside"):
            task.example_from_file(q, "0")
        with pytest.raises(ValueError, match="outside"):
            task.example_from_file(q, "0", cell="l3_d2")  # a named cell does not let it through
    wide = MultistepArithmetic(min_operand=-20, max_operand=20)  # its own range is its domain
    assert wide.cell_of("((12 + 2 + 3) - (4 + 5 + 6)) =").name == "l3_d2"
