"""Loading questions from BIG-Bench JSON and the paper's JSONL, good and malformed files."""

from __future__ import annotations

import json

import pytest

from tripost.data import load_examples, to_paper_record
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


@pytest.mark.parametrize(
    "content, fmt, message",
    [
        ('{"question": "((1 + 2 + 3) - (1 + 2 + 3)) =", "correct_answer": "0"}\n{not json}\n', "jsonl", r"data:2: not valid JSON"),
        ('{"question": "((1 + 2 + 3) - (1 + 2 + 3)) ="}\n', "jsonl", r"record 1: missing key\(s\) \['correct_answer'\]"),
        ('[1, 2]\n', "jsonl", r"data:1: expected a JSON object"),
        ('{"question": "hello", "correct_answer": "0"}\n', "jsonl", r"record 1: question does not fit"),
        ('{"examples": [{"input": "((1 + 2 + 3) - (1 + 2 + 3)) ="}]}', "bigbench", r"examples\[0\]: needs"),
        ('{"examples": 3}', "bigbench", r'an "examples" list'),
        ('{"examples": [', "bigbench", r"data:1: not valid JSON"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, arithmetic, content, fmt, message):
    path = tmp_path / "data"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        load_examples(arithmetic, path, fmt)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_file(arithmetic, tmp_path):
    with pytest.raises(FileNotFoundError, match="data file not found"):
        load_examples(arithmetic, tmp_path / "nope.jsonl", "jsonl")
