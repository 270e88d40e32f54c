"""Date understanding: generator, calendar, solver, gold rationales, parsing, consistency, the checker,
injected errors, BIG-Bench phrasing and parity with the API expert
(the gold policy scores 100% through the CLI in tests/test_cli.py)."""

from __future__ import annotations

import json
import random
from datetime import date

import pytest
from omegaconf import OmegaConf

from tripost.data import _question_text, load_bigbench
from tripost.experts.openai_expert import OpenAIExpert
from tripost.experts.scripted import ScriptedExpert
from tripost.experts.server import start_server
from tripost.formats import FINAL_STEP, parse_feedback, render_feedback, split_steps
from tripost.tasks import get_task
from tripost.tasks.date_understanding import Offset, find_date, read_target, solve

from .conftest import ROOT

BIGBENCH_FILE = ROOT / "tests" / "data" / "date_understanding_bigbench.json"

Q = (
    "Yesterday was April 30, 2021. What is the date tomorrow in MM/DD/YYYY?\n"
    "Options:\n(A) 05/02/2021\n(B) 05/01/2021\n(C) 04/30/2021\n(D) 05/03/2021\n(E) 05/02/2020"
)
GOLD = (
    "(1) Yesterday is April 30, 2021, which is 04/30/2021.\n"
    "(2) Today is 1 day after yesterday, 04/30/2021, which is 05/01/2021.\n"
    "(3) Tomorrow is 1 day after today, 05/01/2021, which is 05/02/2021.\n"
    "(4) 05/02/2021 is option (A).\n"
    "(Final response) So the answer is (A).\n"
)
XMAS = (
    "Today is Christmas Eve of 1937. What is the date 10 days ago in MM/DD/YYYY?\n"
    "Options:\n(A) 12/14/2026\n(B) 12/14/1950\n(C) 12/14/2007\n(D) 12/14/1937\n(E) 07/14/1938\n(F) 12/14/1988"
)
XMAS_GOLD = (
    "(1) Today is Christmas Eve of 1937, which is 12/24/1937.\n"
    "(2) The date 10 days ago is 10 days before today, 12/24/1937, which is 12/14/1937.\n"
    "(3) 12/14/1937 is option (D).\n"
    "(Final response) So the answer is (D).\n"
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
    assert task.gold_rationale(XMAS) == XMAS_GOLD and task.cell_of(XMAS).name == "s2"


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
    ("Jan 21, 2011", date(2011, 1, 21)), ("21 January 2011", date(2011, 1, 21)), ("01/21/2011", date(2011, 1, 21)),
    ("1/21/2011", date(2011, 1, 21)), ("2011-01-21", date(2011, 1, 21)), ("the 21st of January 2011", date(2011, 1, 21)),
    ("Sept. 1st, 2021", date(2021, 9, 1)), ("Christmas Eve of 1937", date(1937, 12, 24)),
    ("New Year's Eve of 1999", date(1999, 12, 31)), ("Independence Day of 1976", date(1976, 7, 4)),
    ("Halloween of 1990", date(1990, 10, 31)), ("Valentine's Day of 2012", date(2012, 2, 14)),
    ("Thanksgiving of 2001", date(2001, 11, 22)), ("the last day of February in 1900", date(1900, 2, 28)),
    ("the last day of February in 2000", date(2000, 2, 29)), ("the last day of Feburary in 2004", date(2004, 2, 29)),
    ("the first Monday of 2019", date(2019, 1, 7)), ("the first Monday of March 2019", date(2019, 3, 4)),
    ("the last Friday of May 2020", date(2020, 5, 29)), ("the last day of the first quarter of 2008", date(2008, 3, 31)),
    ("the second day of the third month of 1966", date(1966, 3, 2)), ("the palindrome day of 2020", date(2020, 2, 2)),
    ("the last day of 1899", date(1899, 12, 31)),
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


# ------------------------------------------------------------------ the checker


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


@pytest.mark.parametrize("question, gold, old, new, step, segment, reason", [
    # a given day dated wrongly: a holiday, a written date misread, words not the question's
    (XMAS, XMAS_GOLD, "which is 12/24/1937.", "which is 12/25/1937.", "1", "which is 12/25/1937", "Christmas Eve of 1937 is 12/24/1937"),
    (Q, GOLD, "which is 04/30/2021.", "which is 04/03/2021.", "1", "which is 04/03/2021", "April 30, 2021 is 04/30/2021"),
    (Q, GOLD, "April 30, 2021, which is 04/30/2021", "April 13, 2021, which is 04/13/2021", "1", "April 13, 2021", "gives yesterday as"),
    # a day that is not the next one of the plan, or found the wrong way
    (Q, GOLD, "(2) Today is 1 day after yesterday, 04/30/2021, which is 05/01/2021.",
     "(2) Tomorrow is 2 days after yesterday, 04/30/2021, which is 05/02/2021.", "2", "Tomorrow", "the next day to find is today"),
    (Q, GOLD, "(2) Today is 1 day after yesterday, 04/30/2021,", "(2) Today is May 1, 2021,", "2", "May 1, 2021", "does not give today"),
    (XMAS, XMAS_GOLD, "(1) Today is Christmas Eve of 1937,", "(1) Today is 0 days after yesterday, 12/24/1937,", "1",
     "0 days after yesterday", "gives today as Christmas Eve"),
    # an offset misread: amount, direction, starting day
    (Q, GOLD, "Today is 1 day after yesterday, 04/30/2021, which is 05/01/2021",
     "Today is 2 days after yesterday, 04/30/2021, which is 05/02/2021", "2", "2 days after", "1 day after yesterday"),
    (XMAS, XMAS_GOLD, "10 days before today, 12/24/1937, which is 12/14/1937", "10 days after today, 12/24/1937, which is 01/03/1938",
     "2", "10 days after", "10 days before today"),
    (Q, GOLD, "Tomorrow is 1 day after today, 05/01/2021", "Tomorrow is 1 day after Friday, 05/01/2021", "3", "Friday", "1 day after today"),
    # an earlier date carried forward wrongly, an offset computed wrongly, an impossible date
    (Q, GOLD, "yesterday, 04/30/2021, which is 05/01/2021", "yesterday, 04/29/2021, which is 04/30/2021", "2",
     "yesterday, 04/29/2021", "yesterday is 04/30/2021 (step (1))"),
    (Q, GOLD, "today, 05/01/2021, which is 05/02/2021", "today, 05/01/2021, which is 05/03/2021", "3", "which is 05/03/2021",
     "1 day after 05/01/2021 is 05/02/2021"),
    (Q, GOLD, "which is 05/01/2021.", "which is 04/31/2021.", "2", "which is 04/31/2021", "not a real date"),
    # too few or too many steps
    (Q, GOLD, "(3) Tomorrow is 1 day after today, 05/01/2021, which is 05/02/2021.\n(4) 05/02/2021 is option (A).",
     "(3) 05/01/2021 is option (B).", "3", "05/01/2021 is option (B).", "tomorrow is not found yet"),
    (Q, GOLD, "(4) 05/02/2021 is option (A).",
     "(4) The date one week from tomorrow is 1 week after tomorrow, 05/02/2021, which is 05/09/2021.\n(5) 05/02/2021 is option (A).",
     "4", None, "already found"),
    # the option step and the final response
    (Q, GOLD, "(4) 05/02/2021 is option (A).", "(4) 05/03/2021 is option (D).", "4", "05/03/2021", "found tomorrow to be 05/02/2021"),
    (Q, GOLD, "(4) 05/02/2021 is option (A).", "(4) 05/02/2021 is option (B).", "4", "option (B)",
     "option (B) is 05/01/2021; 05/02/2021 is option (A)"),
    (Q, GOLD, "(4) 05/02/2021 is option (A).", "(4) 05/02/2021 is option (G).", "4", "option (G)", "there is no option (G)"),
    (Q, GOLD, "So the answer is (A).", "So the answer is (B).", FINAL_STEP, "(B)", "step (4) chose option (A)"),
])
def test_checker_finds_each_kind_of_error(task, question, gold, old, new, step, segment, reason):
    attempt = edit(gold, old, new)
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


@pytest.mark.parametrize("attempt", [
    "", "   ", "garbage", "(1) hello there\n(Final response) So the answer is (A).\n",
    GOLD.replace("(Final response) So the answer is (A).\n", ""),
    GOLD.replace("(2) Today", "(3) Today"),
    GOLD.replace("(4) 05/02/2021 is option (A).\n", ""),  # no option step
    GOLD.replace("So the answer is (A).", "So the answer is 05/02/2021."),
    GOLD.replace("(3) Tomorrow is", "Then tomorrow is"),
    GOLD[:80],
])
def test_malformed_attempts_are_unparsable_not_exceptions(task, attempt):
    assert task.check(Q, attempt).is_unparsable


@pytest.mark.parametrize("question", ["What is this?", "Today is a nice day. What is the date tomorrow in MM/DD/YYYY?",
                                      Q.replace("(A) 05/02/2021", "(A) 05/09/2021")])  # no option holds the answer
def test_unreadable_questions_are_unparsable(task, question):
    assert task.check(question, GOLD).is_unparsable
    assert task.cell_of(question) is None


# ------------------------------------------------------------------ answers and consistency


def test_parse_and_normalize_answers(task):
    assert task.parse_answer(GOLD) == "(A)"
    assert task.parse_answer("(1) x\n(Final response) So the answer is B.\n") is None
    assert task.parse_answer("no final response") is None
    for target in ("(A)", " (A) ", "A", "a", "(A) 05/02/2021", "(a)."):
        assert task.normalize_answer(target) == "(A)"
        assert task.answers_match(task.parse_answer(GOLD), target)
    assert task.normalize_answer("05/02/2021") == "05/02/2021"  # a bare date is no option letter: never matches
    one_line = "Yesterday was April 30, 2021.  What is the date tomorrow in MM/DD/YYYY? Options: (A) 05/02/2021 (B) 05/01/2021"
    assert task.normalize_question(one_line) == (
        "Yesterday was April 30, 2021. What is the date tomorrow in MM/DD/YYYY?\nOptions:\n(A) 05/02/2021\n(B) 05/01/2021")


def test_consistency_is_the_option_step(task):
    assert task.is_consistent(GOLD, "(A)")
    assert not task.is_consistent(GOLD, "(B)")
    assert not task.is_consistent(edit(GOLD, "(4) 05/02/2021 is", "(4) 05/03/2021 is"), "(A)")  # not the date found
    assert not task.is_consistent(GOLD.replace("(4) 05/02/2021 is option (A).\n", ""), "(A)")
    assert not task.is_consistent("(Final response) So the answer is (A).\n", "(A)")


# ------------------------------------------------------------------ BIG-Bench phrasing


def test_bigbench_phrased_questions(task, tmp_path):
    """Coverage of the solver on hand-written questions in BIG-Bench date_understanding phrasing.

    Measured: 31 of 32 written alongside the solver (the miss: a work anniversary dated by "Dec 2, her
    second day at work"), and 18 of 18 written afterwards and not used to change it ("held_out"),
    which mostly ask other days of the same stories: 49 of 50 in all."""
    examples = json.loads(BIGBENCH_FILE.read_text())["examples"]
    solved = {True: 0, False: 0}
    readable = []
    for ex in examples:
        question = _question_text(task, ex["input"])
        cell = task.cell_of(question)
        if cell is not None and task.gold_answer(question) == ex["target"]:
            solved[bool(ex.get("held_out"))] += 1
            readable.append(ex)
            assert task.check(question, task.gold_rationale(question)).is_correct
    assert len(examples) == 50 and sum(1 for ex in examples if ex.get("held_out")) == 18
    assert solved[False] >= 31 and solved[True] >= 18
    # the file's format loads as a test set (the readable questions; an unreadable one fails loading)
    path = tmp_path / "task.json"
    path.write_text(json.dumps({"examples": readable}))
    loaded = load_bigbench(task, path)
    assert [e.answer for e in loaded] == [ex["target"] for ex in readable]
    assert {e.cell for e in loaded} == {"s1", "s2", "s3"}


def test_bigbench_rationale_example(task):
    question = ask("Jane was born on the last day of Feburary in 2000. Today is her 16-year-old birthday.",
                   "one year ago from today", "02/28/2015", "03/01/2015", "02/28/2016", "02/27/2015")
    assert task.gold_rationale(question) == (
        "(1) Jane's birth date is the last day of Feburary in 2000, which is 02/29/2000.\n"
        "(2) Today is 16 years after Jane's birth date, 02/29/2000, which is 02/29/2016.\n"
        "(3) The date one year ago from today is 1 year before today, 02/29/2016, which is 02/28/2015.\n"
        "(4) 02/28/2015 is option (A).\n"
        "(Final response) So the answer is (A).\n"
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
    cfg = {"name": "openai", "base_url": server.url, "api_key_env": KEY_ENV, "shots": 2, "max_retries": 2, "timeout_s": 5,
           "backoff_base_s": 0.01, "backoff_max_s": 0.05, "cache": {"path": None, "mode": "off"}}
    expert = OpenAIExpert(OmegaConf.create(cfg), task)
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
