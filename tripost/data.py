"""Where questions come from: the task's generator, or a file in one of two formats.

- ``bigbench``: BIG-Bench JSON, ``{"examples": [{"input": ..., "target": ...}, ...]}``
  (``target`` may be a string or a list whose first item is the answer).
- ``jsonl``: the paper's JSONL, one object a line with ``question``, ``rationale``,
  ``correct_answer`` and optional ``meta_data`` (a ``cell`` key there is honoured).

Any malformed entry fails with one line naming the file and the line or example index.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tripost.io import read_jsonl
from tripost.tasks import Example, Task

FORMATS = ("bigbench", "jsonl")


def _question_text(task: Task, text: str) -> str:
    text = text.strip()
    if text.startswith("Q:"):
        text = text[2:].strip()
    normalize = getattr(task, "normalize_question", None)
    return normalize(text) if normalize else text


def load_bigbench(task: Task, path: str | Path) -> list[Example]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
        raise ValueError(f'{path}: expected an object with an "examples" list')
    out = []
    for i, ex in enumerate(data["examples"]):
        where = f"{path}: examples[{i}]"
        if not isinstance(ex, dict) or "input" not in ex or "target" not in ex:
            raise ValueError(f'{where}: needs "input" and "target"')
        target = ex["target"]
        if isinstance(target, list):
            target = target[0] if target else ""
        if isinstance(ex.get("target_scores"), dict) and not target:
            target = max(ex["target_scores"], key=ex["target_scores"].get)
        try:
            out.append(task.example_from_file(_question_text(task, ex["input"]), str(target)))
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
    return out


def load_paper_jsonl(task: Task, path: str | Path) -> list[Example]:
    out = []
    for lineno, row in enumerate(read_jsonl(path), start=1):
        where = f"{path}: record {lineno}"
        missing = [k for k in ("question", "correct_answer") if k not in row]
        if missing:
            raise ValueError(f"{where}: missing key(s) {missing}")
        meta: dict[str, Any] = row.get("meta_data") or {}
        try:
            ex = task.example_from_file(
                _question_text(task, row["question"]),
                str(row["correct_answer"]),
                rationale=row.get("rationale"),
                cell=meta.get("cell") if isinstance(meta, dict) else None,
            )
        except (ValueError, KeyError) as e:
            raise ValueError(f"{where}: {e}") from None
        out.append(ex)
    return out


def load_examples(task: Task, path: str | Path, fmt: str) -> list[Example]:
    """Examples from a file; ``fmt`` is "bigbench" or "jsonl"."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    if fmt == "bigbench":
        return load_bigbench(task, path)
    if fmt == "jsonl":
        return load_paper_jsonl(task, path)
    raise ValueError(f"unknown data format {fmt!r}; choose one of {FORMATS}")


def to_paper_record(ex: Example) -> dict[str, Any]:
    """An Example in the paper's JSONL format (what ``load_paper_jsonl`` reads back)."""
    return {
        "question": ex.question,
        "rationale": ex.rationale,
        "correct_answer": ex.answer,
        "meta_data": {"cell": ex.cell, "seen": ex.seen, **ex.meta},
    }
