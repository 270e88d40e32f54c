"""task=custom: a dataset of the user's own (a JSONL of question, answer, optional rationale),
its answer extraction and normalisers, loading, the answer-level checker behind our test
server, and one end-to-end run through the real CLI with verifier=openai against that server."""

from __future__ import annotations

import json
import random

import pytest

from tripost.config import ConfigError
from tripost.data import load_file
from tripost.experts.prompts import PromptBuilder, parse_fbk_reply, parse_imp_reply
from tripost.experts.server import ScriptedAnswerer, start_server
from tripost.formats import FINAL_STEP, Feedback, split_steps
from tripost.tasks import get_task
from tripost.tasks.base import as_attempt
from tripost.tasks.custom import normalize_exact, normalize_number, normalize_option

from .test_cli import run_cli

# Hand-written grade-school word problems. The last two items (no "split") are the test items
# (test_share 0.2 of 8, rounded); "Sam walks" has no rationale, so it is left out of training.
ITEMS = [
    {"question": "Tom has 3 boxes with 6 pencils in each box. How many pencils does Tom have?", "answer": "18",
     "rationale": "(1) There are 3 boxes and each box holds 6 pencils.\n(2) 3 * 6 = 18.\n(Final response) So the answer is 18."},
    {"question": "A shirt costs $12 and a hat costs $7. How much do the shirt and the hat cost together?", "answer": "$19",
     "rationale": "(1) The shirt costs $12 and the hat costs $7.\n(2) 12 + 7 = 19.\n(Final response) So the answer is $19."},
    {"question": "Mia had 25 stickers. She gave 8 to her brother and 4 to her friend. How many stickers are left?",
     "answer": 13,
     "rationale": "(1) Mia gave away 8 + 4 = 12 stickers.\n(2) 25 - 12 = 13.\n(Final response) So the answer is 13."},
    {"question": "A baker makes 4 trays of 12 muffins and sells 30 of them. How many muffins are left?", "answer": "18",
     "rationale": "(1) The baker makes 4 * 12 = 48 muffins.\n(2) 48 - 30 = 18.\n(Final response) So the answer is 18."},
    {"question": "A farm has 1,250 chickens and buys 750 more. How many chickens does the farm have now?",
     "answer": "2,000", "rationale": "(1) 1,250 + 750 = 2,000.\n(Final response) So the answer is 2,000."},
    {"question": "Sam walks 2.5 km to school and 2.5 km back every day. How many km does he walk in 3 days?",
     "answer": 15},
    {"question": "Lena buys 3 notebooks at $1.50 each. How much does she spend?", "answer": 4.5,
     "rationale": "(1) 3 * 1.50 = 4.50.\n(Final response) So the answer is $4.50."},
    {"question": "A class of 28 students splits into teams of 4. How many teams are there?", "answer": 7},
]


def write_items(path, items=ITEMS):
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


@pytest.fixture()
def items_file(tmp_path):
    return write_items(tmp_path / "items.jsonl")


@pytest.fixture()
def task(items_file):
    return get_task("custom", path=str(items_file))


def test_answer_extraction_and_normalisers(task):
    assert [normalize_number(s) for s in ("1,234", "$5", "3.50", "-0.0", "$1,234.50 a week", "12 apples", "none")] \
        == ["1234", "5", "3.5", "0", "1234.5", "12", None]
    assert normalize_exact("  New   York. ") == "new york" and normalize_exact(" . ") is None
    assert [normalize_option(s) for s in ("(B)", "B", "b)", "(c) 12 apples", "option d", "a banana")] \
        == ["(B)", "(B)", "(B)", "(C)", "(D)", None]

    assert task.parse_answer("(1) 3 * 6 = 18.\n(Final response) So the answer is 1,018.\n") == "1018"
    assert task.parse_answer("(1) x\n(Final response) So the answer is: $4.50.\n") == "4.5"
    assert task.parse_answer("(1) 3 * 6 = 18.\n(Final response) I do not know.\n") is None
    assert task.parse_answer("(1) 3 * 6 = 18.\n") is None  # no final response line
    assert task.answers_match("18", "18.0") and not task.answers_match(None, "18")

    exact = get_task("custom", normalize="exact", answer_pattern=r"answer:\s*(.+)$")
    assert exact.parse_answer("(1) x\n(Final response) Answer:  Paris.\n") == "paris"
    option = get_task("custom", normalize="option")
    assert option.parse_answer("(1) x\n(Final response) So the answer is (b).\n") == "(B)"
    with pytest.raises(ConfigError, match="task.impl.normalize"):
        get_task("custom", normalize="fuzzy")
    with pytest.raises(ConfigError, match="task.impl.answer_pattern"):
        get_task("custom", answer_pattern="(unclosed")


def test_the_file_gives_answers_rationales_and_the_split(task, tmp_path):
    assert [c.name for c in task.cells()] == ["train", "test"] and [c.name for c in task.seen_cells()] == ["train"]
    cells = [task.cell_of(item["question"]).name for item in ITEMS]
    assert cells == ["train"] * 6 + ["test"] * 2
    assert task.cell_of("A question from another file?").name == "test"
    assert task.gold_answer(ITEMS[1]["question"]) == "19" and task.gold_answer(ITEMS[6]["question"]) == "4.5"
    assert task.gold_rationale(ITEMS[0]["question"]).endswith("(Final response) So the answer is 18.")
    with pytest.raises(ValueError, match="no gold rationale"):
        task.gold_rationale(ITEMS[5]["question"])
    with pytest.raises(ConfigError, match="task.path"):
        task.generate(task.cells(), 5, seed=0)

    # an item's own "split" wins over its position
    marked = [dict(ITEMS[0], split="test")] + ITEMS[1:]
    other = get_task("custom", path=str(write_items(tmp_path / "marked.jsonl", marked)))
    assert other.cell_of(ITEMS[0]["question"]).name == "test"
    assert other.cell_of(ITEMS[-1]["question"]).name == "test" and other.cell_of(ITEMS[-3]["question"]).name == "train"

    with pytest.raises(ConfigError, match="task.path"):
        get_task("custom", path=str(tmp_path / "absent.jsonl"))
    with pytest.raises(ConfigError, match="config key 'verifier'"):
        get_task("custom", path=str(tmp_path / "items.jsonl"), verifier="tripost.experts.scripted.ScriptedExpert")


def test_loading_through_the_jsonl_layout_skips_and_counts(task, tmp_path):
    bad = [
        {"question": "Ben has 5 apples and eats 2. How many are left?", "answer": "3",
         "rationale": "(1) 5 - 2 = 3.\n(Final response) So the answer is 4."},  # its rationale says 4
        {"question": "Ben has 6 pears. How many are left?", "answer": "six"},  # not a number
        {"question": "Ben has 7 plums. How many are left?", "answer": "7", "rationale": "5 - 2 = 3."},  # not steps
    ]
    path = write_items(tmp_path / "mixed.jsonl", ITEMS + bad)
    task = get_task("custom", path=str(path), test_share=0.0)
    loaded = load_file(task, path, "jsonl", split=None)
    assert loaded.report.loaded == len(ITEMS) and loaded.report.items == len(ITEMS) + 3
    assert sum(loaded.report.skipped.values()) == 3 and loaded.report.disagreements == 0
    assert any("rationale's final response gives 4" in s for s in loaded.report.skip_examples)
    by_question = {e.question: e for e in loaded.examples}
    assert by_question[ITEMS[1]["question"]].answer == "19" and by_question[ITEMS[4]["question"]].answer == "2000"
    assert by_question[ITEMS[5]["question"]].rationale is None
    assert {e.cell for e in loaded.examples} == {"train"}  # test_share 0: every item trains


def test_the_checker_compares_with_the_gold_answer_and_rationale(task):
    question = ITEMS[3]["question"]
    gold = task.gold_attempt(question)
    assert task.check(question, gold).is_correct
    # right answer: correct (the answer-level check)
    assert task.check(question, "(1) 48 muffins minus 30.\n(Final response) So the answer is 18.\n").is_correct
    # a step close to gold's is the error step, the differing words the segment
    wrong = gold.replace("4 * 12 = 48", "4 * 12 = 46").replace("48 - 30 = 18", "46 - 30 = 16").replace("is 18", "is 16")
    fb = task.check(question, wrong)
    assert fb.is_error and fb.step == "1" and "46" in fb.segment and '"= 48 muffins."' in fb.reason
    # an attempt of its own making: the final response
    fb = task.check(question, "(1) The baker sold some.\n(Final response) So the answer is 20.\n")
    assert fb.is_error and fb.step == FINAL_STEP and fb.segment == "20"
    assert task.check(question, "just text").is_unparsable
    assert task.is_consistent(gold, "18") and not task.is_consistent("(1) 48 - 30.\n(Final response) So the answer is 18.\n", "18")
    # injected errors (the expert's few-shot demonstrations) are found at their own step
    rng, injected = random.Random(0), 0
    for item in ITEMS[:5]:
        attempt = task.inject_error(item["question"], rng)
        if attempt is not None:
            injected += 1
            fb = task.check(item["question"], attempt)
            assert fb.is_error and fb.step != FINAL_STEP and fb.segment in attempt
            assert not task.answers_match(task.parse_answer(attempt), task.gold_answer(item["question"]))
    assert injected >= 3


def test_our_server_answers_fbk_and_imp_from_the_file(task, items_file):
    answerer = ScriptedAnswerer("custom", task_options={"path": str(items_file)})
    prompts = PromptBuilder(task, shots=2)
    question = ITEMS[0]["question"]
    gold = task.gold_attempt(question)
    reply = answerer.answer("chat", {"messages": prompts.fbk_messages(question, gold)})[0].text
    assert parse_fbk_reply(reply, gold).is_correct
    wrong = "(1) There are 3 boxes and each box holds 6 pencils.\n(2) 3 * 6 = 16.\n(Final response) So the answer is 16.\n"
    feedback = parse_fbk_reply(answerer.answer("chat", {"messages": prompts.fbk_messages(question, wrong)})[0].text, wrong)
    assert feedback.is_error and feedback.step == "2"
    update = parse_imp_reply(answerer.answer("chat", {"messages": prompts.imp_messages(question, wrong, feedback)})[0].text)
    assert update == gold and split_steps(update)[0] == split_steps(wrong)[0]
    final_only = Feedback.error(FINAL_STEP, "16", "16 is not the correct answer")
    update = parse_imp_reply(answerer.answer("chat", {"messages": prompts.imp_messages(question, wrong, final_only)})[0].text)
    assert update.endswith("(Final response) So the answer is 18.\n")


def test_a_run_end_to_end_with_the_llm_expert_over_http(tmp_path, items_file, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "dummy")
    server = start_server("custom", task_options={"path": str(items_file)})
    try:
        run_cli("task=custom", f"task.path={items_file}", "verifier=openai", f"verifier.base_url={server.url}",
                f"verifier.cache.path={tmp_path / 'cache.sqlite'}", "verifier.shots=2", "verifier.concurrency=2",
                "debug=fast", "sft.epochs=1", f"hydra.run.dir={tmp_path / 'run'}", timeout=600)
    finally:
        server.shutdown()
    run_dir = tmp_path / "run"
    results = json.loads((run_dir / "results.json").read_text())
    assert results["task"] == "custom"
    methods = [row["method"] for row in results["rows"]]
    assert methods[0] == "ft_rationale" and "ft_si_demo" in methods  # the expert wrote and edited over HTTP
    assert all(row["n"] == 2 and set(row["cells"]) == {"test"} for row in results["rows"])
    assert results["data"]["train"]["skipped"] == {"no gold rationale: the task's solver cannot answer it": 1}
    assert server.requests > 0
    train = [json.loads(line) for line in (run_dir / "data" / "train.jsonl").read_text().splitlines()]
    assert len(train) == 5 and all(split_steps(as_attempt(r["rationale"])) for r in train)

    # the scripted expert has no program to check these steps: refused at start-up, in one line
    proc = run_cli("task=custom", f"task.path={items_file}", "debug=fast", f"hydra.run.dir={tmp_path / 'scripted'}",
                   expect=2)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "config key 'verifier'" in errors[0] and "verifier=openai" in errors[0]
    assert not (tmp_path / "scripted" / "ft_rationale").exists()
