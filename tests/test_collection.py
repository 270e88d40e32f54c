"""One collection pass (tripost/loop.py) on hand-made trajectories: what is kept, edited,
dropped and de-duplicated, and the examples it gives, counted exactly."""

from __future__ import annotations

from types import SimpleNamespace

from tripost.experts.scripted import ScriptedExpert
from tripost.loop import collect
from tripost.tasks import Example, get_task

from .test_editing import GOLD_TEXT, POSITIVE, Q, WRONG


def test_one_collection_pass(tmp_path):
    task = get_task("multistep_arithmetic")
    other = "((1 + 2) * (3 - 4)) ="
    window = [Example(Q, "4", "l3_d2", True), Example(Q, "4", "l3_d2", True), Example(other, "-3", "l3_d2", True),
              Example(Q, "4", "l3_d2", True)]
    outputs = [
        GOLD_TEXT,  # right, no feedback written: kept, the positive feedback appended -> 1 terminal
        WRONG,  # wrong: FBK finds step (3), IMP fixes it -> edited: 1 improvement + 1 terminal
        "(1) gibberish\n",  # FBK cannot read it -> dropped
        GOLD_TEXT,  # the same trajectory as the first: a duplicate
    ]
    calls = []

    def attempts(path, seed):
        calls.append((path.name, seed))
        return outputs

    cfg = SimpleNamespace(max_data_itr=1, max_data_length=100, improve_data_ratio=1.0, gold_ratio=1.0, max_updates=5,
                          max_attempt_chars=4000, filter_failed_edits=True)
    seen: set[str] = set()
    examples, stats = collect(attempts, task, ScriptedExpert(task), window, window[:1], cfg, tmp_path, 7, seen)
    assert calls == [("rollouts.jsonl", 47)]  # pass 0 samples with seed + 40
    assert stats["trajectories"] == {"kept": 2, "edited": 1, "dropped": 1}
    assert set(stats["dropped_by_reason"]) == {"fbk_unparsable"} and stats["duplicates"] == 1
    # 1 improvement (WRONG -> fixed); the fixed attempt's ending is the kept trajectory's text
    # exactly, so one terminal example; no gold example: the gold pool's one question is present
    assert (stats["improvement"], stats["terminal"], stats["gold"], stats["examples"]) == (1, 1, 0, 2)
    improvement = next(e for e in examples if e.kind == "improvement")
    assert improvement.text.startswith(task.prompt(Q) + WRONG + "Feedback: ") and "Updated Answer:" in improvement.text
    assert all(e.text.endswith(f"Feedback: {POSITIVE}\n") for e in examples if e.kind == "terminal")
    assert len(seen) == 2 and (tmp_path / "pass_0" / "edited.jsonl").is_file()


def test_gold_ratio_adds_that_many_gold_examples_per_terminal_one(tmp_path):
    """tripost.gold_ratio: 1 terminal example kept (p = 0: no re-balancing) -> gold_ratio gold
    rationales of the pool (paper: 1)."""
    task = get_task("multistep_arithmetic")
    pool = task.generate(task.seen_cells()[:1], 6, seed=3)
    for ratio, want in ((1.0, 1), (3.0, 3), (0.0, 0)):
        cfg = SimpleNamespace(max_data_itr=1, max_data_length=100, improve_data_ratio=0.0, gold_ratio=ratio,
                              max_updates=5, max_attempt_chars=4000, filter_failed_edits=True)
        examples, stats = collect(lambda path, seed: [GOLD_TEXT], task, ScriptedExpert(task),
                                  [Example(Q, "4", "l3_d2", True)], pool, cfg, tmp_path / str(ratio), 7, set())
        assert (stats["terminal"], stats["gold"]) == (1, want)
        assert len({e.text for e in examples if e.kind == "gold"}) == want
