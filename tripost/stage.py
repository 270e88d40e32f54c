"""Run a stage once: the one place that knows "skip what a finished run left".

Every stage of a run leaves its result in the run dir, written atomically after the stage's own
files. ``once`` runs a stage's work unless that result is there, and records it when done, so
``resume=<run dir>`` continues a killed run after its last finished stage and never repeats one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar

from tripost.io import read_json, read_jsonl, write_json, write_jsonl

T = TypeVar("T")


def once(record: Path, work: Callable[[], T], save: Callable[[Path, T], None] = write_json,
         load: Callable[[Path], T] = read_json) -> T:
    """``work()``'s result, recorded at ``record`` by ``save``; a finished run's record is loaded instead."""
    if record.is_file():
        return load(record)
    result = work()
    save(record, result)
    return result


def once_rows(record: Path, work: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """As ``once``, for a stage whose result is rows (a JSONL file)."""
    return once(record, work, save=write_jsonl, load=read_jsonl)
