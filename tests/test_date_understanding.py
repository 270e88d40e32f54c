"""Date understanding: generator, calendar, solver (and the stories it once misread), gold rationales,
parsing, consistency, the checker in our phrasing and in the paper's (SPEC 9), injected errors,
BIG-Bench Hard shapes and parity with the API expert (the gold policy scores 100% through the CLI
in tests/test_cli.py). Every question and rationale here is our own, written in those shapes."""

from __future__ import annotations

import json
import random
from datetime import date

import pytest
from omegaconf import OmegaConf

from tripost.data import load_bigbench, question_text
from tripost.experts.openai_expert import OpenAIExpert
from tripost.experts.scripted import ScriptedExpert
from tripost.experts.server import start_server
from tripost.formats import FINAL_STEP, parse_feedback, render_feedback, split_steps
from tripost.tasks import get_task
from tripost.tasks.date_understanding import Offset, QuestionError, find_date, read_target, solve

from .conftest import ROOT

BIGBENCH_FILE = ROOT / "tests" / "data" / "date_understanding_bigbench.json"

# Our own questions and dates, in BIG-Bench Hard's shapes.
Q = (
    "Yesterday was March 3, 2017. What is the date tomorrow in MM/DD/YYYY?\n"
    "Options:\n(A) 03/05/2017\n(B) 03/04/2017\n(C) 03/03/2017\n(D) 03/06/2017\n(E) 03/05/2016"
)
GOLD = (  # a rationale in the reference's format: no newline at the end
    "(1) Yesterday is March 3, 2017, which is 03/03/2017.\n"
    "(2) Today is 1 day after yesterday, 03/03/2017, which is 03/04/2017.\n"
    "(3) Tomorrow is 1 day after today, 03/04/2017, which is 03/05/2017.\n"
    "(4) 03/05/2017 is option (A).\n"
    "(Final response) So the answer is (A)."
)
HALLOWEEN = (
    "Today is Halloween of 1953. What is the date 10 days ago in MM/DD/YYYY?\n"
    "Options:\n(A) 10/21/2026\n(B) 10/21/1950\n(C) 10/21/2007\n(D) 10/21/1953\n(E) 05/21/1954\n(F) 10/21/1988"
)
HALLOWEEN_GOLD = (
    "(1) Today is Halloween of 1953, which is 10/31/1953.\n"
    "(2) The date 10 days ago is 10 days before today, 10/31/1953, which is 10/21/1953.\n"
    "(3) 10/21/1953 is option (D).\n"
    "(Final response) So the answer is (D)."
)
# The same question answered in the paper's phrasing (SPEC 9): an LLM's sentences, no option step.
HALLOWEEN_PAPER = (
    "(1) If today is Halloween of 1953, then today's date is October 31, 1953.\n"
    "(2) 10 days before today is October 21, 1953, that is 10/21/1953.\n"
    "(Final response) So the answer is (D)."
)


@pytest.fixture(scope="module")
def task():
    return get_task("date_understanding")


def ask(context: str, target: str, answer: str, *others: str) -> str:
    """A question whose option (A) is ``answer``."""
    options = "\n".join(f"({chr(65 + i)}) {d}" for i, d in enumerate([answer, *others]))
    return f"{context} What is the date {target} in MM/DD/YYYY?\nOptions:\n{options}"


def option_dates(question: str) -> list[str]:
    return [line[4:] for line in question.split("\n") if line.startswith("(")]


# ------------------------------------------------------------------ questions and cells


def test_cells(task):
    assert [(c.name, c.seen) for c in task.cells()] == [("s1", True), ("s2", True), ("s3", False), ("s4", False)]
    assert task.cell("s3").params == {"steps": 3}


def test_generation_is_deterministic_with_one_correct_option(task):
    a = task.generate(task.cells(), 40, seed=1)
    assert a == task.generate(task.cells(), 40, seed=1)
    assert [e.question for e in a] != [e.question for e in task.generate(task.cells(), 40, seed=2)]
    assert {e.cell for e in a} == {"s1", "s2", "s3", "s4"}
    for e in a:
        dates = option_dates(e.question)
        assert 5 <= len(dates) <= 6 and len(set(dates)) == len(dates)
        solution = solve(e.question)
        right = [d for d in dates if d == solution.answer_date.strftime("%m/%d/%Y")]
        assert len(right) == 1 and e.answer == f"({chr(65 + dates.index(right[0]))})"
        assert task.cell_of(e.question).name == e.cell and e.seen == (e.cell in ("s1", "s2"))
        today = [s for s in solution.steps if s.name == "today"]
        if today:  # the generator's own today agrees with the solver's reading of the question
            assert today[0].date.strftime("%m/%d/%Y") == e.meta["today"]


def test_gold_rationales_pass_the_checker_in_every_cell(task):
    for e in task.generate(task.cells(), 150, seed=5):
        assert task.check(e.question, e.rationale).is_correct, (e.question, e.rationale)
        assert task.is_consistent(e.rationale, e.answer)
        assert task.parse_answer(e.rationale) == e.answer == task.gold_answer(e.question)
        steps = split_steps(e.rationale)
        reasoning = len(steps) - 2  # less the option step and the final response
        assert e.cell == f"s{min(reasoning, 4)}" and steps[-2].text.endswith(f"is option {e.answer}.")


def test_exact_gold_rationales(task):
    assert task.gold_rationale(Q) == GOLD and task.gold_answer(Q) == "(A)" and task.cell_of(Q).name == "s3"
    assert task.gold_rationale(HALLOWEEN) == HALLOWEEN_GOLD and task.cell_of(HALLOWEEN).name == "s2"


def test_gold_rationale_has_no_final_newline_and_gold_attempt_has(task):
    """SPEC 9: no rationale ends with a newline; inside a trajectory every attempt line does."""
    assert not task.gold_rationale(Q).endswith("\n")
    assert task.gold_attempt(Q) == GOLD + "\n"
    for e in task.generate(task.cells(), 5, seed=3):
        assert not e.rationale.endswith("\n") and task.check(e.question, e.rationale).is_correct


# ------------------------------------------------------------------ calendar


@pytest.mark.parametrize("start, offset, expected", [
    (date(2020, 1, 31), Offset(1, "month", 1), date(2020, 2, 29)),  # leap year: month end clamps to the 29th
    (date(2021, 1, 31), Offset(1, "month", 1), date(2021, 2, 28)),
    (date(2021, 3, 31), Offset(1, "month", -1), date(2021, 2, 28)),
    (date(2016, 2, 29), Offset(1, "year", -1), date(2015, 2, 28)),
    (date(2000, 2, 29), Offset(16, "year", 1), date(2016, 2, 29)),
    (date(1999, 12, 31), Offset(1, "day", 1), date(2000, 1, 1)),
    (date(1900, 3, 1), Offset(1, "day", -1), date(1900, 2, 28)),  # 1900 is not a leap year
    (date(2000, 2, 28), Offset(1, "day", 1), date(2000, 2, 29)),  # 2000 is
    (date(2021, 12, 15), Offset(1, "month", 1), date(2022, 1, 15)),
    (date(2021, 1, 15), Offset(13, "month", -1), date(2019, 12, 15)),
    (date(2021, 12, 29), Offset(1, "week", 1), date(2022, 1, 5)),
])
def test_offsets(start, offset, expected):
    assert offset.apply(start) == expected


@pytest.mark.parametrize("words, expected", [
    ("Jan 17, 2013", date(2013, 1, 17)), ("17 January 2013", date(2013, 1, 17)), ("01/17/2013", date(2013, 1, 17)),
    ("1/17/2013", date(2013, 1, 17)), ("2013-01-17", date(2013, 1, 17)), ("the 17th of January 2013", date(2013, 1, 17)),
    ("Sept. 4th, 2019", date(2019, 9, 4)), ("Christmas Eve of 1948", date(1948, 12, 24)),
    ("New Year's Eve of 1999", date(1999, 12, 31)), ("Independence Day of 1976", date(1976, 7, 4)),
    ("Halloween of 1990", date(1990, 10, 31)), ("Valentine's Day of 2012", date(2012, 2, 14)),
    ("Thanksgiving of 2001", date(2001, 11, 22)), ("the last day of February in 1900", date(1900, 2, 28)),
    ("the last day of February in 2000", date(2000, 2, 29)), ("the last day of Feburary in 2004", date(2004, 2, 29)),
    ("the first Monday of 2019", date(2019, 1, 7)), ("the first Monday of March 2019", date(2019, 3, 4)),
    ("the last Friday of May 2020", date(2020, 5, 29)), ("the last day of the third quarter of 1999", date(1999, 9, 30)),
    ("the third day of the eleventh month of 1975", date(1975, 11, 3)), ("the palindrome day of 2011", date(2011, 11, 2)),
    ("the last day of 1923", date(1923, 12, 31)),
])
def test_date_words(words, expected):
    found = find_date(f"It is {words} today.")
    assert found is not None and found.date == expected and found.text == words


def test_impossible_written_dates_are_not_dates():
    assert find_date("Today is 02/30/2021.") is None and find_date("Today is Feb 29, 2021.") is None


@pytest.mark.parametrize("context, target, answer", [
    ("Today is the last day of February in 2000.", "tomorrow", "03/01/2000"),
    ("Today is the last day of February in 1900.", "tomorrow", "03/01/1900"),
    ("Today is Jan 31, 2020.", "one month from today", "02/29/2020"),
    ("Today is Mar 31, 2021.", "a month ago", "02/28/2021"),
    ("Today is Mar 31, 2021.", "a month and a day ago", "02/27/2021"),
    ("Today is New Year's Eve of 1999.", "24 hours later", "01/01/2000"),
    ("Tomorrow is New Year's Day of 2000.", "one week ago", "12/24/1999"),
    ("Today is 2016-02-29.", "one year ago from today", "02/28/2015"),
    ("Today is Halloween of 2021.", "one week from yesterday", "11/06/2021"),
])
def test_solver_at_calendar_edges(task, context, target, answer):
    question = ask(context, target, answer, "01/01/1800", "01/02/1800", "01/03/1800", "01/04/1800")
    assert task.gold_answer(question) == "(A)"
    assert task.check(question, task.gold_rationale(question)).is_correct


def test_asked_days():
    name, links = read_target("a month and a day ago")
    assert name == "the date a month and a day ago"
    assert [(x.name, x.offset.text, x.source) for x in links] == [
        ("the date a month ago", "1 month before", "today"),
        ("the date a month and a day ago", "1 day before", "the date a month ago"),
    ]
    name, links = read_target("one week from yesterday")
    assert [(x.name, x.offset.text, x.source) for x in links] == [
        ("yesterday", "1 day before", "today"), ("the date one week from yesterday", "1 week after", "yesterday")]
    assert read_target("24 hours later")[1][0].offset == Offset(1, "day", 1)
    assert read_target("today") == ("today", [])


def test_a_day_already_found_is_reused(task):
    question = ask("Yesterday was 3/3/2003.", "one week from yesterday", "03/10/2003", "03/11/2003", "03/09/2003", "03/10/2002")
    assert task.gold_rationale(question).splitlines()[:2] == [
        "(1) Yesterday is 3/3/2003, which is 03/03/2003.",
        "(2) The date one week from yesterday is 1 week after yesterday, 03/03/2003, which is 03/10/2003.",
    ]
    assert task.cell_of(question).name == "s2"


# ------------------------------------------------------------------ stories the solver once misread


@pytest.mark.parametrize("context, target, answer, wrong", [
    # used up one a day from the day of buying: today is 30 days after it (09/02/2021), not the buying day
    ("On Aug 3rd, 2021 Rosa bought 30 apples. She ate one per day. Today she ran out of apples.", "one week from today",
     "09/09/2021", "08/10/2021"),
    ("Hugo bought 12 muffins on Jan 20th, 1999. He ate two per day. Today he ran out of muffins.", "yesterday",
     "01/25/1999", "01/19/1999"),
    # the anniversary counts from the first day at work, the day before the "second day" (09/14/2011), not Sep 15 of 2011
    ("Ella got her job in 2011. Today is her 4-year work anniversary. She still remembers that on Sep 15, her second "
     "day at work, she lost her badge.", "tomorrow", "09/15/2015", "09/16/2011"),
    ("Noah got his job on 3/14/2005. Today is his 10-year work anniversary.", "today", "03/14/2015", "03/14/2005"),
    # "coming in 36 hours": 12/29 of the old year, as BIG-Bench Hard and the paper's rationales have it, not 12/30
    ("2031 is coming in 36 hours.", "one week from today", "01/05/2031", "01/06/2031"),
    ("2000 is coming in 36 hours.", "today", "12/29/1999", "12/30/1999"),
    ("2000 is coming in 3 days.", "today", "12/29/1999", "12/28/1999"),
])
def test_stories_once_misread(task, context, target, answer, wrong):
    question = ask(context, target, answer, wrong, "01/03/1800", "01/04/1800")
    assert task.gold_answer(question) == "(A)"
    assert task.check(question, task.gold_rationale(question)).is_correct


def test_work_anniversary_rationale(task):
    question = ask("Ella got her job in 2011. Today is her 4-year work anniversary. She still remembers that on Sep 15, "
                   "her second day at work, she lost her badge.", "tomorrow", "09/15/2015", "09/16/2015", "09/15/2011")
    assert task.gold_rationale(question) == (
        "(1) Ella's second day at work is Sep 15 of 2011, which is 09/15/2011.\n"
        "(2) Ella's first day at work is 1 day before Ella's second day at work, 09/15/2011, which is 09/14/2011.\n"
        "(3) Today is 4 years after Ella's first day at work, 09/14/2011, which is 09/14/2015.\n"
        "(4) Tomorrow is 1 day after today, 09/14/2015, which is 09/15/2015.\n"
        "(5) 09/15/2015 is option (A).\n"
        "(Final response) So the answer is (A)."
    )
    assert task.cell_of(question).name == "s4"


def test_year_coming_in_hours_rationale(task):
    question = ask("2031 is coming in 36 hours.", "tomorrow", "12/30/2030", "12/31/2030")
    assert task.gold_rationale(question).splitlines()[:2] == [
        "(1) The last day of 2030 is December 31, 2030, which is 12/31/2030.",
        "(2) Today is 2 days before the last day of 2030, 12/31/2030, which is 12/29/2030.",
    ]


# ------------------------------------------------------------------ the checker (our phrasing)


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


@pytest.mark.parametrize("question, gold, old, new, step, segment, reason", [
    # a given day dated wrongly: a holiday, a written date misread, words not the question's
    (HALLOWEEN, HALLOWEEN_GOLD, "which is 10/31/1953.", "which is 11/01/1953.", "1", "which is 11/01/1953",
     "Halloween of 1953 is 10/31/1953"),
    (Q, GOLD, "which is 03/03/2017.", "which is 03/30/2017.", "1", "which is 03/30/2017", "March 3, 2017 is 03/03/2017"),
    (Q, GOLD, "March 3, 2017, which is 03/03/2017", "March 13, 2017, which is 03/13/2017", "1", "March 13, 2017", "gives yesterday as"),
    # a day that is not the next one of the plan, or found the wrong way
    (Q, GOLD, "(2) Today is 1 day after yesterday, 03/03/2017, which is 03/04/2017.",
     "(2) Tomorrow is 2 days after yesterday, 03/03/2017, which is 03/05/2017.", "2", "Tomorrow", "the next day to find is today"),
    (Q, GOLD, "(2) Today is 1 day after yesterday, 03/03/2017,", "(2) Today is March 4, 2017,", "2", "March 4, 2017", "does not give today"),
    (HALLOWEEN, HALLOWEEN_GOLD, "(1) Today is Halloween of 1953,", "(1) Today is 0 days after yesterday, 10/31/1953,", "1",
     "0 days after yesterday", "gives today as Halloween"),
    # an offset misread: amount, direction, starting day
    (Q, GOLD, "Today is 1 day after yesterday, 03/03/2017, which is 03/04/2017",
     "Today is 2 days after yesterday, 03/03/2017, which is 03/05/2017", "2", "2 days after", "1 day after yesterday"),
    (HALLOWEEN, HALLOWEEN_GOLD, "10 days before today, 10/31/1953, which is 10/21/1953",
     "10 days after today, 10/31/1953, which is 11/10/1953", "2", "10 days after", "10 days before today"),
    (Q, GOLD, "Tomorrow is 1 day after today, 03/04/2017", "Tomorrow is 1 day after Friday, 03/04/2017", "3", "Friday", "1 day after today"),
    # an earlier date carried forward wrongly, an offset computed wrongly, an impossible date
    (Q, GOLD, "yesterday, 03/03/2017, which is 03/04/2017", "yesterday, 03/02/2017, which is 03/03/2017", "2",
     "yesterday, 03/02/2017", "yesterday is 03/03/2017 (step (1))"),
    (Q, GOLD, "today, 03/04/2017, which is 03/05/2017", "today, 03/04/2017, which is 03/06/2017", "3", "which is 03/06/2017",
     "1 day after 03/04/2017 is 03/05/2017"),
    (Q, GOLD, "which is 03/04/2017.", "which is 02/30/2017.", "2", "which is 02/30/2017", "not a real date"),
    # too few or too many steps
    (Q, GOLD, "(3) Tomorrow is 1 day after today, 03/04/2017, which is 03/05/2017.\n(4) 03/05/2017 is option (A).",
     "(3) 03/04/2017 is option (B).", "3", "03/04/2017 is option (B).", "tomorrow is not found yet"),
    (Q, GOLD, "(4) 03/05/2017 is option (A).",
     "(4) The date one week from tomorrow is 1 week after tomorrow, 03/05/2017, which is 03/12/2017.\n(5) 03/05/2017 is option (A).",
     "4", None, "already found"),
    # the option step and the final response
    (Q, GOLD, "(4) 03/05/2017 is option (A).", "(4) 03/06/2017 is option (D).", "4", "03/06/2017", "found tomorrow to be 03/05/2017"),
    (Q, GOLD, "(4) 03/05/2017 is option (A).", "(4) 03/05/2017 is option (B).", "4", "option (B)",
     "option (B) is 03/04/2017; 03/05/2017 is option (A)"),
    (Q, GOLD, "(4) 03/05/2017 is option (A).", "(4) 03/05/2017 is option (G).", "4", "option (G)", "there is no option (G)"),
    (Q, GOLD, "So the answer is (A).", "So the answer is (B).", FINAL_STEP, "(B)", "step (4) chose option (A)"),
])
def test_checker_finds_each_kind_of_error(task, question, gold, old, new, step, segment, reason):
    assert_error_at(task, question, edit(gold, old, new), step, segment, reason)


def assert_error_at(task, question, attempt, step, segment, reason):
    """The checker names ``step``, a segment of that step's text, and a reason; the feedback line
    it renders reads back the same (SPEC 4)."""
    fb = task.check(question, attempt)
    assert fb.is_error, fb
    assert fb.step == step and reason in fb.reason, fb
    assert segment is None or fb.segment == segment, fb
    step_text = next(s.text for s in split_steps(attempt) if s.id == fb.step)
    assert fb.segment in step_text
    ids = [s.id for s in split_steps(attempt)]
    assert parse_feedback(render_feedback(fb, ids)) == fb


def test_equivalent_offsets_are_accepted(task):
    question = ask("Today is 3/3/2003.", "one week ago", "02/24/2003", "02/25/2003", "02/23/2003", "03/10/2003")
    gold = task.gold_rationale(question)
    assert task.check(question, edit(gold, "1 week before today", "7 days before today")).is_correct
    assert task.check(question, edit(gold, "3/3/2003, which is 03/03/2003", "3/3/2003, which is 3/3/2003")).is_correct


def test_attempts_read_with_or_without_a_final_newline(task):
    assert task.check(Q, GOLD).is_correct and task.check(Q, GOLD + "\n").is_correct
    assert task.check(HALLOWEEN, HALLOWEEN_PAPER + "\n").is_correct


@pytest.mark.parametrize("attempt", [
    "", "   ", "garbage", "(1) hello there\n(Final response) So the answer is (A).\n",
    GOLD.replace("(Final response) So the answer is (A).", ""),
    GOLD.replace("(2) Today", "(3) Today"),
    GOLD.replace("So the answer is (A).", "So the answer is 03/05/2017."),
    GOLD.replace("(3) Tomorrow is", "Then tomorrow is"),
    GOLD[:80],
])
def test_malformed_attempts_are_unparsable_not_exceptions(task, attempt):
    assert task.check(Q, attempt).is_unparsable


@pytest.mark.parametrize("question", ["What is this?", "Today is a nice day. What is the date tomorrow in MM/DD/YYYY?",
                                      "Yesterday was March 3, 2017. What is the date tomorrow in MM/DD/YYYY?"])  # no options
def test_unreadable_questions_raise_with_a_reason_and_are_unparsable(task, question):
    assert task.check(question, GOLD).is_unparsable
    with pytest.raises(ValueError) as info:
        task.cell_of(question)
    assert str(info.value)  # the reason, for the loader's skip count


def test_a_question_whose_options_miss_the_answer_is_placed_but_unanswerable(task):
    """BIG-Bench Hard holds such items (wrong targets): its file loads whole; the gold says why not."""
    question = Q.replace("(A) 03/05/2017", "(A) 03/12/2017")
    assert task.cell_of(question).name == "s3"
    with pytest.raises(QuestionError, match="no single option is 03/05/2017"):
        task.gold_answer(question)
    assert task.check(question, GOLD).is_unparsable


# ------------------------------------------------------------------ answers and consistency


def test_parse_and_normalize_answers(task):
    assert task.parse_answer(GOLD) == "(A)"
    assert task.parse_answer("(1) x\n(Final response) So the answer is B.\n") is None
    assert task.parse_answer("no final response") is None
    for target in ("(A)", " (A) ", "A", "a", "(A) 03/05/2017", "(a)."):
        assert task.normalize_answer(target) == "(A)"
        assert task.answers_match(task.parse_answer(GOLD), target)
    assert task.normalize_answer("E") == "(E)" and task.answer_from_data("E") == "(E)"  # the paper's bare letters
    assert task.normalize_answer("03/05/2017") == "03/05/2017"  # a bare date is no option letter: never matches
    one_line = "Yesterday was March 3, 2017.  What is the date tomorrow in MM/DD/YYYY? Options: (A) 03/05/2017 (B) 03/04/2017"
    assert task.normalize_question(one_line) == (
        "Yesterday was March 3, 2017. What is the date tomorrow in MM/DD/YYYY?\nOptions:\n(A) 03/05/2017\n(B) 03/04/2017")


def test_consistency_is_the_option_step(task):
    assert task.is_consistent(GOLD, "(A)") and task.is_consistent(GOLD + "\n", "A")
    assert not task.is_consistent(GOLD, "(B)")
    assert not task.is_consistent(edit(GOLD, "(4) 03/05/2017 is", "(4) 03/06/2017 is"), "(A)")  # not the date found
    assert not task.is_consistent(edit(GOLD, "So the answer is (A)", "So the answer is (B)"), "(A)")  # final letter
    assert not task.is_consistent("(Final response) So the answer is (A).\n", "(A)")


def test_consistency_of_the_paper_phrasing(task):
    """SPEC 6: the chosen option's date is in the second-to-last line; the question, when given,
    says which date that is."""
    assert task.is_consistent(HALLOWEEN_PAPER, "D") and task.is_consistent(HALLOWEEN_PAPER, "(D)", question=HALLOWEEN)
    wrong_letter = edit(HALLOWEEN_PAPER, "answer is (D)", "answer is (C)")
    assert task.is_consistent(wrong_letter, "(C)")  # without the question no letter can be checked
    assert not task.is_consistent(wrong_letter, "(C)", question=HALLOWEEN)  # (C) is 10/21/2007
    no_date = edit(HALLOWEEN_PAPER, "October 21, 1953, that is 10/21/1953", "ten days earlier")
    assert not task.is_consistent(no_date, "(D)")


# ------------------------------------------------------------------ the checker (the paper's phrasing)


PAPER_PHRASED = [  # (question, a correct rationale in the paper's phrasing)
    (HALLOWEEN, HALLOWEEN_PAPER),
    (HALLOWEEN, "(1) If today is Halloween of 1953, then 10 days ago is 10/21/1953.\n(Final response) So the answer is (D)."),
    (HALLOWEEN, "(1) Halloween of 1953 is 10/31/1953.\n(2) 10 days before 10/31/1953 is 10/21/1953.\n"
                "(Final response) So the answer is (D)."),
    (Q, "(1) If yesterday was March 3, 2017, then today is March 4, 2017.\n"
        "(2) The date tomorrow is March 5, 2017, that is 03/05/2017.\n(Final response) So the answer is (A)."),
    (Q, "(1) Yesterday was March 3, 2017, so today's date is 3/4/2017.\n(2) 24 hours later from today is 03/05/2017.\n"
        "(Final response) So the answer is (A)."),
    # our own steps without the option step: the reference's format has none
    (Q, GOLD.replace("(4) 03/05/2017 is option (A).\n", "")),
    (ask("In the UK, people usually put the day before the month when formatting the date. Therefore, today is 05/03/1994 "
         "to them.", "tomorrow", "03/06/1994", "05/04/1994", "06/03/1994"),
     "(1) If today is 05/03/1994 in the UK, then today's date is March 5, 1994.\n"
     "(2) The date tomorrow is March 6, 1994, that is 03/06/1994.\n(Final response) So the answer is (A)."),
    (ask("Priya thinks today is 8/2/2011, but Sam thinks today is 8/3/2011. Sam is correct.", "10 days ago", "07/24/2011",
         "07/23/2011", "08/13/2011"),
     "(1) If Priya thinks today is 8/2/2011 but Sam thinks today is 8/3/2011 and Sam is correct, then today's date is "
     "August 3, 2011.\n(2) 10 days ago is July 24, 2011, that is 07/24/2011.\n(Final response) So the answer is (A)."),
    (ask("Today is Jun 14, 1970. Max's dentist visit will be 4 days later.", "yesterday", "06/13/1970", "06/17/1970"),
     "(1) If today is Jun 14, 1970 and Max's dentist visit will be 4 days later, then the visit is on Jun 18, 1970.\n"
     "(2) The date yesterday is Jun 13, 1970, that is 06/13/1970.\n(Final response) So the answer is (A)."),
    (ask("On Aug 3rd, 2021 Rosa bought 30 apples. She ate one per day. Today she ran out of apples.", "tomorrow",
         "09/03/2021", "08/04/2021"),
     "(1) If Rosa bought 30 apples on Aug 3rd, 2021 and ate one per day, then today's date is September 2, 2021.\n"
     "(2) Tomorrow's date is September 3, 2021, that is 09/03/2021.\n(Final response) So the answer is (A)."),
]


@pytest.mark.parametrize("question, rationale", PAPER_PHRASED)
def test_paper_phrased_rationales_are_correct_and_consistent(task, question, rationale):
    assert task.check(question, rationale).is_correct, task.check(question, rationale)
    assert task.is_consistent(rationale, task.gold_answer(question), question=question)


@pytest.mark.parametrize("old, new, step, segment, reason", [
    # a wrong date in step 1, a wrong offset in step 2, a date that is not the one it restates
    ("today's date is October 31, 1953", "today's date is October 30, 1953", "1", "October 30, 1953",
     "today is 10/31/1953, not October 30, 1953"),
    ("is October 21, 1953, that is 10/21/1953", "is October 20, 1953, that is 10/20/1953", "2", "October 20, 1953",
     "10 days before today is 10/21/1953"),
    ("that is 10/21/1953", "that is 10/12/1953", "2", "10/12/1953", "October 21, 1953 is 10/21/1953"),
    # a date no reasoning from the question reaches, a date no calendar has
    ("today's date is October 31, 1953", "the party was on October 3, 1953", "1", "October 3, 1953",
     "none of the days the question leads to"),
    ("that is 10/21/1953", "that is 10/32/1953", "2", "10/32/1953", "not a real date"),
    # the wrong option letter; a last step that never reaches the asked day
    ("So the answer is (D).", "So the answer is (C).", FINAL_STEP, "(C)",
     "option (C) is 10/21/2007; 10/21/1953, found in step (2), is option (D)"),
    ("(2) 10 days before today is October 21, 1953, that is 10/21/1953.\n", "", "1", "October 31, 1953",
     "the question asks for the date 10 days ago, 10/21/1953"),
    ("that is 10/21/1953.", "that is 10/21/1953, which is option (F).", "2", "option (F)", "option (F) is 10/21/1988"),
])
def test_checker_finds_the_first_error_in_the_paper_phrasing(task, old, new, step, segment, reason):
    assert_error_at(task, HALLOWEEN, edit(HALLOWEEN_PAPER, old, new), step, segment, reason)


def test_our_steps_without_the_option_step_are_checked_step_by_step(task):
    """Our steps in the reference's frame (no option step) still say which day each date is."""
    no_option = GOLD.replace("(4) 03/05/2017 is option (A).\n", "")
    wrong_sum = edit(no_option, "03/03/2017, which is 03/04/2017", "03/03/2017, which is 03/05/2017")
    assert_error_at(task, Q, wrong_sum, "2", "03/05/2017", "1 day after 03/03/2017 is 03/04/2017")
    carried = edit(no_option, "yesterday, 03/03/2017", "yesterday, 03/02/2017")
    assert_error_at(task, Q, carried, "2", "03/02/2017", "yesterday is 03/03/2017")


def test_a_misread_story_in_the_paper_phrasing_is_caught(task):
    """The solver's old misreadings, written as the paper's LLM wrote them, are wrong at step 1."""
    eggs = ask("On Aug 3rd, 2021 Rosa bought 30 apples. She ate one per day. Today she ran out of apples.", "tomorrow",
               "09/03/2021", "08/04/2021")
    wrong = ("(1) If Rosa bought 30 apples on Aug 3rd, 2021 and today she ran out of apples, then today's date is Aug 3rd, 2021.\n"
             "(2) The date tomorrow is Aug 4th, 2021, that is 08/04/2021.\n(Final response) So the answer is (B).")
    assert_error_at(task, eggs, wrong, "1", "Aug 3rd, 2021", "today is 09/02/2021")
    assert not task.answers_match(task.parse_answer(wrong), task.gold_answer(eggs))


# ------------------------------------------------------------------ BIG-Bench Hard shapes


def test_bigbench_shaped_questions(task):
    """Hand-written questions in BIG-Bench Hard's shapes (our stories, names and dates; answers
    worked out by hand): every one is placed, answered as the file says, and its gold rationale
    passes the checker; the file loads whole."""
    examples = json.loads(BIGBENCH_FILE.read_text())["examples"]
    assert len(examples) == 46
    for ex in examples:
        question = question_text(task, ex["input"])
        assert task.cell_of(question) is not None
        assert task.gold_answer(question) == ex["target"], question
        assert task.check(question, task.gold_rationale(question)).is_correct, question
    loaded = load_bigbench(task, BIGBENCH_FILE)
    assert [e.answer for e in loaded] == [ex["target"] for ex in examples]
    assert {e.cell for e in loaded} == {"s1", "s2", "s3", "s4"}


def test_birthday_on_a_leap_day_rationale(task):
    question = ask("Ben was born on the last day of Feburary in 2004. Today is his 12-year-old birthday.",
                   "one year ago from today", "02/28/2015", "03/01/2015", "02/28/2016", "02/27/2015")
    assert task.gold_rationale(question) == (
        "(1) Ben's birth date is the last day of Feburary in 2004, which is 02/29/2004.\n"
        "(2) Today is 12 years after Ben's birth date, 02/29/2004, which is 02/29/2016.\n"
        "(3) The date one year ago from today is 1 year before today, 02/29/2016, which is 02/28/2015.\n"
        "(4) 02/28/2015 is option (A).\n"
        "(Final response) So the answer is (A)."
    )


# ------------------------------------------------------------------ injected errors


def test_inject_error_succeeds_and_is_flagged_at_the_changed_step(task):
    examples = task.generate(task.cells(), 60, seed=7)
    rng = random.Random(0)
    scripted = ScriptedExpert(task)
    made = 0
    for e in examples:
        wrong = task.inject_error(e.question, rng)
        if wrong is None:
            continue
        made += 1
        fb = task.check(e.question, wrong)
        changed = next(a.id for a, g in zip(split_steps(wrong), split_steps(e.rationale)) if a.text != g.text)
        assert fb.is_error and fb.step == changed
        assert fb.segment in next(s.text for s in split_steps(wrong) if s.id == fb.step)
        assert not task.answers_match(task.parse_answer(wrong), e.answer)
        update = scripted.improve(e.question, wrong, fb)
        assert task.check(e.question, update).is_correct
    assert made / len(examples) > 0.9  # measured: 100%


# ------------------------------------------------------------------ the API expert


KEY_ENV = "TRIPOST_TEST_OPENAI_KEY"


def test_openai_expert_matches_the_scripted_expert(task, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-tripost-test")
    server = start_server("date_understanding")
    # the shipped verifier settings (conf/verifier/openai.yaml), pointed at the local server
    cfg = OmegaConf.merge(OmegaConf.load(ROOT / "conf" / "verifier" / "openai.yaml"), {
        "base_url": server.url, "api_key_env": KEY_ENV, "shots": 2, "max_retries": 2, "timeout_s": 5,
        "cache": {"path": None, "mode": "off"}})
    expert = OpenAIExpert(cfg, task)
    scripted = ScriptedExpert(task)
    rng = random.Random(3)
    try:
        for e in task.generate(task.cells(), 2, seed=11):
            for attempt in (task.inject_error(e.question, rng), e.rationale):
                fb = expert.feedback(e.question, attempt)
                assert fb == scripted.feedback(e.question, attempt)
                update = expert.improve(e.question, attempt, fb)
                assert update == scripted.improve(e.question, attempt, fb)
                if update is not None:
                    assert expert.feedback(e.question, update).is_correct
    finally:
        expert.close()
        server.shutdown()
