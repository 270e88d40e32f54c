"""The end of a sweep: which jobs finished and which failed, in ``sweep_summary.json`` and
``sweep_summary.md`` in the sweep dir, and on the console. A failed job does not stop its
siblings (run.py records each job's outcome in its dir as ``job_status.json``); the sweep
exits non-zero when any job failed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback


def summarise(sweep_dir: Path) -> dict[str, Any]:
    jobs = []
    for status in sorted(sweep_dir.glob("*/job_status.json")):
        outcome = json.loads(status.read_text())
        jobs.append({"job": status.parent.name, **outcome})
    failed = [j for j in jobs if j["exit_code"] != 0]
    return {"jobs": len(jobs), "failed": failed, "done": [j["job"] for j in jobs if j["exit_code"] == 0]}


class SweepSummary(Callback):
    def on_multirun_end(self, config, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        summary = summarise(sweep_dir)
        (sweep_dir / "sweep_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        lines = [f"# Sweep: {summary['jobs']} jobs, {len(summary['failed'])} failed", "",
                 "| job | exit code | message |", "|---|---|---|"]
        lines += [f"| {j['job']} | {j['exit_code']} | {j['message']} |" for j in summary["failed"]]
        (sweep_dir / "sweep_summary.md").write_text("\n".join(lines) + "\n")
        print(f"sweep: {summary['jobs'] - len(summary['failed'])} of {summary['jobs']} jobs done"
              + "".join(f"\nfailed: {j['job']} (exit {j['exit_code']}): {j['message']}" for j in summary["failed"]),
              file=sys.stderr)
        if summary["failed"]:
            sys.exit(1)
