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
    "(Final response) So the answer is: apple damp dot."  # no newline at the end (SPEC 9)
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
    assert lines[5:9] == [  # "bead" and "bear" tie again on "a": the same level reads on
        '(3.2.1) We now have: (1) ["bead" ? "bear"].',
        '(3.2.2) Now sort this subpart ["bead" ? "bear"] by looking at their fourth letters: "bead"="d" (4), "bear"="r" (18).',
        '(3.2.3) We now have: (4) "bead" < (18) "bear".',
        '(3.2.4) Hence, we have "bead" < "bear".',
    ]
    assert lines[9] == '(3.3) Hence, we have "bat" < "bead" < "bear".'
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
                                     GOLD.replace("(Final response) So the answer is: apple damp dot.", "")])
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


# ---------------------------------------------------------------- the reference's exact format (SPEC 9)

# Two ties inside one tie: inside a subpart the reference gives every re-sort the same id, the
# one after its "We now have" (both are (3.2)), and numbers the subpart's Hence after all of them.
Q3 = "Sort the following words alphabetically:\nList: plum pear apple plus peach"
GOLD3 = "\n".join([
    '(1) The first letter: "plum"="p" (16), "pear"="p" (16), "apple"="a" (1), "plus"="p" (16), "peach"="p" (16).',
    '(2) We now have: (1) "apple" < (16) ["plum" ? "pear" ? "plus" ? "peach"].',
    '(3) Now sort this subpart ["plum" ? "pear" ? "plus" ? "peach"] by looking at their second letters: '
    '"plum"="l" (12), "pear"="e" (5), "plus"="l" (12), "peach"="e" (5).',
    '(3.1) We now have: (5) ["pear" ? "peach"] < (12) ["plum" ? "plus"].',
    '(3.2) Now sort this subpart ["pear" ? "peach"] by looking at their third letters: "pear"="a" (1), "peach"="a" (1).',
    '(3.2.1) We now have: (1) ["pear" ? "peach"].',
    '(3.2.2) Now sort this subpart ["pear" ? "peach"] by looking at their fourth letters: "pear"="r" (18), "peach"="c" (3).',
    '(3.2.3) We now have: (3) "peach" < (18) "pear".',
    '(3.2.4) Hence, we have "peach" < "pear".',
    '(3.2) Now sort this subpart ["plum" ? "plus"] by looking at their third letters: "plum"="u" (21), "plus"="u" (21).',
    '(3.2.1) We now have: (21) ["plum" ? "plus"].',
    '(3.2.2) Now sort this subpart ["plum" ? "plus"] by looking at their fourth letters: "plum"="m" (13), "plus"="s" (19).',
    '(3.2.3) We now have: (13) "plum" < (19) "plus".',
    '(3.2.4) Hence, we have "plum" < "plus".',
    '(3.4) Hence, we have "peach" < "pear" < "plum" < "plus".',
    '(4) Hence, we have "apple" < "peach" < "pear" < "plum" < "plus".',
    "(Final response) So the answer is: apple peach pear plum plus.",
])

# An apostrophe is compared like any character: its index is its code point minus 96.
Q4 = "Sort the following words alphabetically:\nList: ivy it's itself"
GOLD4 = "\n".join([
    '(1) The first letter: "ivy"="i" (9), "it\'s"="i" (9), "itself"="i" (9).',
    '(2) We now have: (9) ["ivy" ? "it\'s" ? "itself"].',
    '(3) Now sort this subpart ["ivy" ? "it\'s" ? "itself"] by looking at their second letters: '
    '"ivy"="v" (22), "it\'s"="t" (20), "itself"="t" (20).',
    '(3.1) We now have: (20) ["it\'s" ? "itself"] < (22) "ivy".',
    '(3.2) Now sort this subpart ["it\'s" ? "itself"] by looking at their third letters: "it\'s"="\'" (-57), "itself"="s" (19).',
    '(3.2.1) We now have: (-57) "it\'s" < (19) "itself".',
    '(3.2.2) Hence, we have "it\'s" < "itself".',
    '(3.3) Hence, we have "it\'s" < "itself" < "ivy".',
    '(4) Hence, we have "it\'s" < "itself" < "ivy".',
    "(Final response) So the answer is: it's itself ivy.",
])


@pytest.mark.parametrize("q, gold", [(Q3, GOLD3), (Q4, GOLD4)])
def test_ties_inside_ties_and_non_letters_in_the_reference_format(task, q, gold):
    assert task.gold_rationale(q) == gold
    assert task.check(q, gold).is_correct and task.is_consistent(gold, task.gold_answer(q))
    assert task.parse_answer(gold) == task.gold_answer(q)


def test_no_trailing_newline_but_attempts_end_lines(task):
    for q in (Q, Q3, Q4):
        assert not task.gold_rationale(q).endswith("\n")
        attempt = task.gold_attempt(q)
        assert attempt == task.gold_rationale(q) + "\n" and task.check(q, attempt).is_correct


@pytest.mark.parametrize(
    "q, old, new, step, segment, reason",
    [
        # the first (3.2) block's ordering, three levels down
        (Q3, '(3.2.3) We now have: (3) "peach" < (18) "pear"', '(3.2.3) We now have: (18) "pear" < (3) "peach"',
         "3.2.3", '(18) "pear" < (3) "peach"', "not smaller"),
        # the second (3.2) block's letters
        (Q3, '"plum"="m" (13), "plus"="s" (19)', '"plum"="m" (13), "plus"="s" (20)', "3.2.2", '"plus"="s" (20)', "letter 19"),
        # the second (3.2) block's Hence
        (Q3, '(3.2.4) Hence, we have "plum" < "plus"', '(3.2.4) Hence, we have "plus" < "plum"', "3.2.4", '"plus" < "plum"', "comes before"),
        # the subpart's Hence, after both inner ones
        (Q3, '(3.4) Hence, we have "peach" < "pear" < "plum"', '(3.4) Hence, we have "pear" < "peach" < "plum"',
         "3.4", '"pear" < "peach"', "comes before"),
        # a non-letter's index
        (Q4, '"it\'s"="\'" (-57)', '"it\'s"="\'" (0)', "3.2", '"it\'s"="\'" (0)', "code point minus 96"),
        (Q4, '(3.2.1) We now have: (-57) "it\'s"', '(3.2.1) We now have: (-50) "it\'s"', "3.2.1", '(-50) "it\'s"', '"\'" (-57)'),
    ],
)
def test_checker_finds_errors_in_nested_steps(task, q, old, new, step, segment, reason):
    gold = task.gold_rationale(q)
    assert gold.count(old) == 1
    fb = task.check(q, gold.replace(old, new))
    assert fb.is_error, fb
    assert fb.step == step and fb.segment == segment and reason in fb.reason, fb


def test_checker_needs_a_well_formed_level(task):
    # a subpart's steps out of sequence, or a Hence missing at the end of a level: unreadable
    assert task.check(Q3, GOLD3.replace("(3.2.3) We now have: (3)", "(3.2.5) We now have: (3)")).is_unparsable
    assert task.check(Q4, GOLD4.replace('(3.2.2) Hence, we have "it\'s" < "itself".\n', "")).is_unparsable
    # garbage between the letters of a step, or in a tied group, is an error of that step
    fb = task.check(Q4, GOLD4.replace('"ivy"="i" (9), "it\'s"', '"ivy"="i" (9), "-" (45), "it\'s"'))
    assert fb.is_error and fb.step == "1" and fb.segment == '"-" (45)'
    fb = task.check(Q4, GOLD4.replace('(3.1) We now have: (20) ["it\'s" ? "itself"]', '(3.1) We now have: (20) ["it\'s" "itself"]'))
    assert fb.is_error and fb.step == "3.1"


def test_prefixes_and_repeated_words(task):
    """A word that ran out of letters has index -96 (below every character, as sorted() has it);
    copies of one word are ordered, not tied. The reference has neither; this is our own choice."""
    q = "Sort the following words alphabetically:\nList: ham hamper ham"
    gold = task.gold_rationale(q)
    assert ('(3.4) Now sort this subpart ["ham" ? "hamper" ? "ham"] by looking at their fourth letters: '
            '"ham"="" (-96), "hamper"="p" (16), "ham"="" (-96).') in gold
    assert '(3.5) We now have: (-96) "ham" < (-96) "ham" < (16) "hamper".' in gold
    assert task.check(q, gold).is_correct and task.parse_answer(gold) == "ham ham hamper" == task.gold_answer(q)
    fb = task.check(q, gold.replace('(-96) "ham" < (-96) "ham" < (16)', '(-96) "ham" < (-96) "hamper" < (16)'))
    assert fb.is_error and fb.step == "3.5"


def test_answers_from_data_files(task):
    assert task.answer_types == (str, list)
    assert task.answer_from_data(["apple", "damp", "dot"]) == "apple damp dot"
    assert task.answer_from_data("apple damp dot") == "apple damp dot"
    assert task.answers_match(task.parse_answer(GOLD4), " ".join(["it's", "itself", "ivy"]))
    for bad in ([], [1, 2], None, {"a": 1}, True):
        with pytest.raises(ValueError):
            task.answer_from_data(bad)


def test_cells_and_questions_that_cannot_be_handled(task):
    assert task.cell_of("Sort the following words alphabetically:\nList: it's r&b o.k").name == "n3"
    assert task.cell_of("Sort the following words alphabetically:\nList: solo") is None
    assert task.cell_of("Sort the following words alphabetically:\nList: " + " ".join(f"w{i}" for i in range(21))) is None
    assert task.cell_of("What is 2 + 2?") is None
    with pytest.raises(ValueError, match="double quote"):
        task.cell_of('Sort the following words alphabetically:\nList: say "hi"')
    with pytest.raises(ValueError):
        task.example_from_file("Sort the following words alphabetically:\nList: solo", "solo")


def test_a_question_mark_inside_a_word_is_no_tie(task):
    q = "Sort the following words alphabetically:\nList: why? who"
    gold = task.gold_rationale(q)
    assert task.check(q, gold).is_correct and task.is_consistent(gold, task.gold_answer(q))


def test_an_error_in_a_repeated_step_id_is_fixed_by_position():
    """The reference repeats ids ((3.2) twice in GOLD3): the scripted expert cuts the attempt at the
    flagged step by position, and the update is legitimate and judged correct."""
    from tripost.editing import is_legitimate_update
    from tripost.experts.scripted import ScriptedExpert
    from tripost.tasks.word_sort import WordSort

    task = WordSort()
    wrong = GOLD3.replace('"plus"="s" (19)', '"plus"="s" (20)') + "\n"
    fb = task.check(Q3, wrong)
    assert fb.is_error and fb.step == "3.2.2" and "(20)" in fb.segment
    update = ScriptedExpert(task).improve(Q3, wrong, fb)
    assert update == task.gold_attempt(Q3)
    assert is_legitimate_update(wrong, update, fb) and task.check(Q3, update).is_correct
