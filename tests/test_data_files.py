"""Loading questions from BIG-Bench JSON and the paper's JSONL, good and malformed files."""

from __future__ import annotations

import json

import pytest

from tripost.data import DataFileError, load_examples, load_file, rationale_file_record, raw_pool_record, to_paper_record
from tripost.io import write_jsonl
from tripost.tasks import get_task


@pytest.fixture(scope="module")
def arithmetic():
    return get_task("multistep_arithmetic")


@pytest.fixture(scope="module")
def word_sort():
    return get_task("word_sort")


def test_bigbench_json(tmp_path, arithmetic):
    path = tmp_path / "task.json"
    path.write_text(
        json.dumps(
            {
                "examples": [
                    {"input": "((-1 + 2 + 9) - (-2 + -4 + -4)) =", "target": "20"},
                    {"input": "((1 * 2 - 3 + 4) * (5 - 6 + 7 * 8)) =", "target": ["165"]},
                ]
            }
        )
    )
    examples = load_examples(arithmetic, path, "bigbench")
    assert [e.answer for e in examples] == ["20", "165"]
    assert [e.cell for e in examples] == ["l3_d2", "l4_d2"]
    assert all(e.seen for e in examples)
    assert arithmetic.gold_answer(examples[1].question) == "165"


def test_bigbench_word_sort_one_line_phrasing(tmp_path, word_sort):
    path = tmp_path / "task.json"
    examples = {"examples": [{"input": "Sort the following words alphabetically: List: pear apple fig", "target": "apple fig pear"}]}
    path.write_text(json.dumps(examples))
    (ex,) = load_examples(word_sort, path, "bigbench")
    assert ex.question == "Sort the following words alphabetically:\nList: pear apple fig"
    assert ex.cell == "n3" and ex.answer == "apple fig pear"


def test_paper_jsonl_round_trip(tmp_path, arithmetic):
    generated = arithmetic.generate(arithmetic.cells(), 2, seed=3)
    path = tmp_path / "train.jsonl"
    write_jsonl(path, [to_paper_record(e) for e in generated])
    loaded = load_examples(arithmetic, path, "jsonl")
    assert [(e.question, e.answer, e.cell, e.rationale) for e in loaded] == [
        (e.question, e.answer, e.cell, e.rationale) for e in generated
    ]


GOOD = '{"question": "((1 + 2 + 3) - (1 + 2 + 3)) =", "correct_answer": "0"}\n'


def test_bad_items_are_skipped_and_counted_with_their_line(tmp_path, arithmetic):
    path = tmp_path / "data.jsonl"
    path.write_bytes(
        GOOD.encode()
        + b"{not json}\n"
        + b'{"question": "((1 + 2 + 3) - (1 + 2 + 3)) ="}\n'
        + b"[1, 2]\n"
        + b'{"question": "hello", "correct_answer": "0"}\n'
        + b'{"question": "((1 + 2 + 3) - (1 + 2 + 3)) = \xff\xfe", "correct_answer": "0"}\n'
        + b'{"question": 42, "correct_answer": "0"}\n'
        + b'{"question": "((1 + 2 + 4) - (1 + 2 + 3)) =", "correct_answer": null}\n'
        + b'{"question": "((1 + 2 + 5) - (1 + 2 + 3)) =", "correct_answer": {"a": 1}}\n'
        + b'{"question": "((1 + 2 + 6) - (1 + 2 + 3)) =", "correct_answer": 3}\n'
    )
    loaded = load_file(arithmetic, path)
    report = loaded.report
    assert [e.answer for e in loaded.examples] == ["0", "3"]  # an int answer is read as the number
    assert report.items == 10 and report.loaded == 2 and sum(report.skipped.values()) == 8
    assert report.skip_examples[0] == "line 2: not valid JSON (Expecting property name enclosed in double quotes)"
    summary = report.summary()
    assert summary.startswith(f"{path}: loaded 2 of 10 (jsonl") and "skipped 8" in summary and "\n" not in summary
    reasons = " ".join(report.skipped)
    for reason in ("missing key", "expected a JSON object", "fit any", "not UTF-8", "question is a int",
                   "gold answer is not a multistep_arithmetic answer"):
        assert reason in reasons, reasons
    with pytest.raises(DataFileError, match="strict") as err:
        load_file(arithmetic, path, strict=True)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("content, message", [
    ('{"question": "hello", "correct_answer": "0"}\n', r"no usable question .*fit any"),
    ('{"examples": 3}', r'an "examples" list'),
    ('{"examples": [', r"data:1: not valid JSON"),
    ('{"examples": [{"input": "((1 + 2 + 3) - (1 + 2 + 3)) ="}]}', r"no usable question .*missing key"),
    ('{"foo": 1}\n', r"cannot tell the layout"),
])
def test_a_file_with_nothing_usable_is_one_line_naming_it(tmp_path, arithmetic, content, message):
    path = tmp_path / "data"
    path.write_text(content)
    with pytest.raises(DataFileError, match=message) as err:
        load_file(arithmetic, path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_file(arithmetic, tmp_path):
    with pytest.raises(DataFileError, match="data file not found"):
        load_examples(arithmetic, tmp_path / "nope.jsonl", "jsonl")


def test_raw_pool_split_and_a_gold_answer_the_solver_contradicts(tmp_path, arithmetic):
    rows = [
        {"question": "Q: ((1 + 2 + 3) - (1 + 2 + 3)) = ", "correct_answer": "0", "meta_data": {"new_split": "train"}},
        {"question": "Q: ((1 + 2 + 4) - (1 + 2 + 3)) = ", "correct_answer": "5", "meta_data": {"new_split": "train"}},
        {"question": "Q: ((1 + 2 + 5) - (1 + 2 + 3)) = ", "correct_answer": "2", "meta_data": {"new_split": "validation"}},
    ]
    path = tmp_path / "raw.jsonl"
    write_jsonl(path, rows)
    train = load_file(arithmetic, path, split="train")
    assert [e.answer for e in train.examples] == ["0", "5"]  # the file's answer is kept ...
    assert train.report.other_split == 1 and train.report.disagreements == 1  # ... and reported
    assert train.report.disagreement_examples == [{"where": "line 2", "file": "5", "solver": "1"}]
    assert "solver disagrees with 1 gold answers" in train.report.summary()
    assert [e.answer for e in load_file(arithmetic, path, split="validation").examples] == ["2"]
    assert len(load_file(arithmetic, path, split=None).examples) == 3


TASKS = ["multistep_arithmetic", "word_sort", "date_understanding", "logical_deduction"]


@pytest.mark.parametrize("name", TASKS)
def test_reference_layouts_round_trip(tmp_path, name):
    """What a run exports in the paper's layouts (raw pool, rationale training file) loads back
    the same: questions, answers (a list for word sort, a bare letter for options) and rationales."""
    task = get_task(name)
    examples = task.generate(task.seen_cells(), 2, seed=4)
    raw = [raw_pool_record(task, e, "train" if i % 2 else "validation", i) for i, e in enumerate(examples)]
    if name == "word_sort":
        assert all(isinstance(r["correct_answer"], list) for r in raw)
    if name in ("date_understanding", "logical_deduction"):
        assert all(len(r["correct_choice"]) == 1 and "Options:" not in r["question"] for r in raw)
    assert all(not r["rationale"].endswith("\n") for r in raw)
    write_jsonl(tmp_path / "raw.jsonl", raw)
    write_jsonl(tmp_path / "rationale.jsonl", [rationale_file_record(task, e) for e in examples])
    odd = [e for i, e in enumerate(examples) if i % 2]
    key = lambda e: (e.question, e.answer, e.cell, e.rationale)  # noqa: E731
    raw_loaded = load_file(task, tmp_path / "raw.jsonl", split="train")
    assert raw_loaded.report.layout == "jsonl" and [key(e) for e in raw_loaded.examples] == [key(e) for e in odd]
    rat = load_file(task, tmp_path / "rationale.jsonl")
    assert rat.report.layout == "rationale" and [key(e) for e in rat.examples] == [key(e) for e in examples]
    assert rat.report.disagreements == 0 and raw_loaded.report.disagreements == 0


def test_text_layout_gives_ready_made_training_texts(tmp_path, word_sort):
    rows = [{"text": "Q: Sort the following words alphabetically:\nList: pear apple\nAnswer: apple pear",
             "text_att_start_text": "\nAnswer:"},
            {"text": "no marker here", "text_att_start_text": "\nAnswer:"}]
    path = tmp_path / "ao.jsonl"
    write_jsonl(path, rows)
    loaded = load_file(word_sort, path)
    assert loaded.report.layout == "text" and loaded.report.loaded == 1 and loaded.report.answers_from_solver == 1
    (text,) = loaded.texts
    assert text.text[text.prompt_chars:] == " apple pear"  # the loss starts after the marker
    assert loaded.examples[0].answer == "apple pear" and loaded.examples[0].cell == "n2"
