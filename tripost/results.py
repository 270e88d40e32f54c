"""The results contract: ``results.json`` and ``results.md`` in every run's output dir.

``results.json`` = {"task", "seed", "rows": [{"method", "seen", "unseen", "total", "cells",
"n", ...}]}, accuracies in percent. Rows are keyed by method; writing a row again replaces it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tripost.io import atomic_write_text, read_json, write_json

CORE_KEYS = ("seen", "unseen", "total")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """One line per method: core accuracies, extra metrics present in any row, n, then cells."""
    cells: list[str] = []
    extras: list[str] = []
    for r in rows:
        cells += [c for c in r.get("cells", {}) if c not in cells]
        extras += [k for k, v in r.items() if k not in ("method", "cells", "n", *CORE_KEYS, *extras) and not isinstance(v, (dict, list))]
    header = ["method", *CORE_KEYS, *extras, "n", *cells]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        values = [r["method"], *(r.get(k) for k in CORE_KEYS), *(r.get(k) for k in extras), r.get("n")]
        values += [r.get("cells", {}).get(c) for c in cells]
        lines.append("| " + " | ".join(_fmt(v) for v in values) + " |")
    return "\n".join(lines) + "\n"


class Results:
    """Rows of one run, persisted after every change so nothing finished is lost."""

    def __init__(self, run_dir: str | Path, task: str, seed: int, data: dict[str, Any] | None = None,
                 eval_set: str = "test"):
        self.dir = Path(run_dir)
        self.task, self.seed, self.eval_set = task, seed, eval_set
        self.rows: list[dict[str, Any]] = []
        self.data: dict[str, Any] = {}  # what loading data files skipped and why (data.LoadReport per file)
        if (self.dir / "results.json").is_file():
            saved = read_json(self.dir / "results.json")
            self.rows, self.data = saved.get("rows", []), saved.get("data", {})
        self.data = data or self.data

    def add(self, method: str, metrics: dict[str, Any]) -> dict[str, Any]:
        row = {"method": method, **metrics}
        self.rows = [r for r in self.rows if r["method"] != method] + [row]
        self.save()
        return row

    def save(self) -> None:
        saved = {"task": self.task, "seed": self.seed, "eval_set": self.eval_set, "rows": self.rows}
        if self.data:
            saved["data"] = self.data
        write_json(self.dir / "results.json", saved)
        on = "" if self.eval_set == "test" else f", on the {self.eval_set} set"
        title = f"# Results: task {self.task}, seed {self.seed}{on}\n\nAccuracy in percent.\n\n"
        atomic_write_text(self.dir / "results.md", title + markdown_table(self.rows))

    def table(self) -> str:
        return markdown_table(self.rows)
