"""scripts/aggregate.py over a partial sweep: mean and std per method, missing rows left out."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import ROOT


def write_results(d, seed, rows):
    d.mkdir(parents=True)
    (d / "results.json").write_text(json.dumps({"task": "word_sort", "seed": seed, "rows": rows}))


def test_aggregate_a_partial_sweep(tmp_path):
    write_results(tmp_path / "0_seed1", 1, [{"method": "ft_rationale", "seen": 10.0, "total": 4.0},
                                            {"method": "tripost_t1", "seen": 20.0, "total": 6.0}])
    write_results(tmp_path / "1_seed2", 2, [{"method": "ft_rationale", "seen": 20.0, "total": 8.0}])
    # another experiment of the sweep repeats seed 2's ft_rationale row: it counts once
    write_results(tmp_path / "3_seed2", 2, [{"method": "ft_rationale", "seen": 20.0, "total": 8.0},
                                            {"method": "tripost_auto_t1", "seen": 30.0, "total": 9.0}])
    (tmp_path / "2_seed3").mkdir()  # a job that has not finished: no results.json yet
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "aggregate.py"), str(tmp_path)],
                          capture_output=True, text=True, check=True)
    assert "| ft_rationale | 2 | 15.0 ± 7.1 | 6.0 ± 2.8 |" in proc.stdout
    assert "| tripost_t1 | 1 | 20.0 ± 0.0 | 6.0 ± 0.0 |" in proc.stdout
    agg = json.loads((tmp_path / "aggregate.json").read_text())
    assert agg["ft_rationale"]["seen"]["values"] == [10.0, 20.0]
    assert (tmp_path / "aggregate.md").read_text() in proc.stdout + "\n"
    for png in ("accuracy.png", "self_improvement.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
