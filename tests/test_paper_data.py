"""The paper's own data layouts (SPEC 9) through the real CLI: raw pools with list answers and
new_split, a bad row skipped and counted in results.json, training from a rationale file."""

from __future__ import annotations

import json

from .test_cli import check_run_dir, run_cli

WORDS = [["apple", "pear"], ["kiwi", "fig", "date"], ["lime", "plum", "nut", "yam"], ["o'neill", "orange", "opt"]]


def word_sort_raw_pool(path, splits=("validation", "validation", "train", "validation")):
    rows = [{"question": "Q: Sort the following words alphabetically:\nList: " + " ".join(w),
             "rationale": "(1) ...", "correct_answer": sorted(w),
             "meta_data": {"split": "train", "new_split": s, "idx": i}} for i, (w, s) in enumerate(zip(WORDS, splits))]
    lines = [json.dumps(r) for r in rows] + ['{"question": "Q: Sort the following words alphabetically:\\nList: ", '
                                             '"correct_answer": [], "meta_data": {"new_split": "validation"}}']
    path.write_text("\n".join(lines) + "\n")


def test_gold_scores_100_on_a_word_sort_raw_pool_with_list_answers(tmp_path):
    pool = tmp_path / "word_sorting_scripted_rationales.jsonl"
    word_sort_raw_pool(pool)
    run_dir = tmp_path / "run"
    proc = run_cli("model=gold", "task=word_sort", "logger=none", "task.test.source=file", f"task.test.path={pool}",
                   f"hydra.run.dir={run_dir}")
    row = check_run_dir(run_dir, "gold", "word_sort", 42)
    assert row["n"] == 3 and row["total"] == 100.0  # the validation rows only; the list answers match
    data = json.loads((run_dir / "results.json").read_text())["data"]["test"]
    assert data["layout"] == "jsonl" and data["other_split"] == 1 and data["loaded"] == 3 and data["items"] == 4
    assert sum(data["skipped"].values()) == 1  # the empty list: skipped and counted, the rest loads
    assert "loaded 3 of 4 (jsonl, split validation" in proc.stdout + proc.stderr


def test_strict_makes_a_skip_an_error_in_one_line(tmp_path):
    pool = tmp_path / "pool.jsonl"
    word_sort_raw_pool(pool)
    proc = run_cli("model=gold", "task=word_sort", "logger=none", "task.test.source=file", f"task.test.path={pool}",
                   "task.test.strict=true", f"hydra.run.dir={tmp_path / 'run'}", expect=2)
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and str(pool) in err[0] and "strict" in err[0]


def test_ft_rationale_trains_on_a_rationale_file_and_tests_on_a_raw_pool(tmp_path):
    """The paper's training file (text, text_att_start_text, meta_data) as the training set."""
    from tripost.data import rationale_file_record
    from tripost.io import write_jsonl
    from tripost.tasks import get_task

    task = get_task("multistep_arithmetic")
    train = task.generate(task.seen_cells(), 6, seed=11)
    write_jsonl(tmp_path / "train_rationale.jsonl", [rationale_file_record(task, e) for e in train])
    test = task.generate(task.cells(), 1, seed=12)
    write_jsonl(tmp_path / "raw.jsonl", [
        {"question": f"Q: {e.question.rstrip('=').rstrip()} = ", "rationale": e.rationale, "correct_answer": e.answer,
         "meta_data": {"new_split": "validation"}} for e in test])
    run_dir = tmp_path / "run"
    run_cli("debug=fast", "task=multistep_arithmetic", "task.train.source=file", f"task.train.path={tmp_path / 'train_rationale.jsonl'}",
            "task.test.source=file", f"task.test.path={tmp_path / 'raw.jsonl'}", "tripost.num_iterations=0",
            f"hydra.run.dir={run_dir}")
    check_run_dir(run_dir, "ft_rationale", "multistep_arithmetic", 42)
    data = json.loads((run_dir / "results.json").read_text())["data"]
    assert data["train"]["layout"] == "rationale" and data["train"]["loaded"] == len(train)
    assert data["test"]["loaded"] == len(test)
    # the run's data also comes out in the paper's layouts
    raw = [json.loads(line) for line in open(run_dir / "data" / "reference" / "multistep_arithmetic_raw.jsonl")]
    assert len(raw) == len(train) + len(test) and raw[0]["question"].endswith(" = ")
    assert raw[0]["meta_data"]["new_split"] == "train" and raw[-1]["meta_data"]["new_split"] == "validation"


def test_a_bigbench_file_with_an_unanswerable_item_loads_whole_and_the_gold_policy_scores_the_rest(tmp_path):
    """An item none of whose options holds the right date (BIG-Bench Hard has such) is kept with its
    target and reported; the gold policy has no answer for it, and every other item scores."""
    from .conftest import ROOT

    examples = json.loads((ROOT / "tests" / "data" / "date_understanding_bigbench.json").read_text())["examples"][:9]
    examples.append({"input": "Today is Halloween of 1962. What is the date 10 days ago in MM/DD/YYYY?\nOptions:\n"
                              "(A) 10/20/1962\n(B) 10/22/1962\n(C) 10/21/1963", "target": "(A)"})  # 10/21/1962 is missing
    path = tmp_path / "date.json"
    path.write_text(json.dumps({"examples": examples}))
    run_dir = tmp_path / "run"
    run_cli("model=gold", "task=date_understanding", "logger=none", "task.test.source=file", f"task.test.path={path}",
            f"hydra.run.dir={run_dir}")
    results = json.loads((run_dir / "results.json").read_text())
    data = results["data"]["test"]
    assert data["loaded"] == 10 and data["items"] == 10 and data["solver_disagreements"] == 1
    assert data["disagreement_examples"][0]["solver"].startswith("none (no single option is 10/21/1962")
    assert results["rows"][0]["n"] == 10 and results["rows"][0]["total"] == 90.0
