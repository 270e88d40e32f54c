"""The README's own-task example, as printed there: one class and one YAML file outside the
repository run end to end through the real CLI (the gold policy, and a debug=fast run)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from .conftest import ROOT


def readme_block(first_line: str) -> str:
    blocks = re.findall(r"```(?:python|yaml)\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return next(b for b in blocks if b.startswith(first_line))


def test_the_readme_task_plugin_runs(tmp_path):
    (tmp_path / "my_tasks").mkdir()
    (tmp_path / "my_tasks" / "__init__.py").write_text("")
    (tmp_path / "my_tasks" / "parity.py").write_text(readme_block("# my_tasks/parity.py"))
    (tmp_path / "conf" / "task").mkdir(parents=True)
    (tmp_path / "conf" / "task" / "parity.yaml").write_text(readme_block("# conf/task/parity.yaml"))
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONPATH": str(tmp_path)}
    for run, overrides in (("gold", ["model=gold"]), ("fast", ["debug=fast"])):
        proc = subprocess.run([sys.executable, str(ROOT / "run.py"), "task=parity", *overrides,
                               f"hydra.searchpath=[file://{tmp_path / 'conf'}]", f"hydra.run.dir={tmp_path / run}"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    gold = json.loads((tmp_path / "gold" / "results.json").read_text())
    assert gold["task"] == "parity" and gold["rows"][0]["total"] == 100.0
    assert gold["rows"][0]["cells"].keys() == {"small", "large"}
    fast = json.loads((tmp_path / "fast" / "results.json").read_text())
    assert {r["method"] for r in fast["rows"]} >= {"ft_rationale", "ft_si_demo"}
