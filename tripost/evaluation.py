"""Accuracy of a policy on test questions, per cell, seen, unseen and total.

Seen / unseen / total are micro-averages over questions, in percent, as in the paper.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

from tripost.tasks import Example, Task


def accuracy_table(task: Task, examples: Iterable[Example], correct: Iterable[bool]) -> dict[str, Any]:
    """{"seen", "unseen", "total", "cells": {cell: acc}, "n"} in percent (None for empty groups)."""
    by_cell: dict[str, list[bool]] = defaultdict(list)
    seen_flags: dict[str, bool] = {}
    for ex, ok in zip(examples, correct, strict=True):
        by_cell[ex.cell].append(bool(ok))
        seen_flags[ex.cell] = ex.seen

    def pct(values: list[bool]) -> float | None:
        return round(100.0 * sum(values) / len(values), 2) if values else None

    order = [c.name for c in task.cells() if c.name in by_cell] + sorted(set(by_cell) - {c.name for c in task.cells()})
    seen = [v for c in order if seen_flags[c] for v in by_cell[c]]
    unseen = [v for c in order if not seen_flags[c] for v in by_cell[c]]
    return {
        "seen": pct(seen),
        "unseen": pct(unseen),
        "total": pct(seen + unseen),
        "cells": {c: pct(by_cell[c]) for c in order},
        "n": len(seen) + len(unseen),
    }
