"""Experts: the ``verifier`` config node (``_target_`` and settings) builds the run's one expert."""

from __future__ import annotations

from tripost.experts.base import BudgetExceeded, Expert, ExpertError, ExpertUnreachable
from tripost.tasks import Task


def build_expert(verifier_cfg, task: Task, seed: int) -> Expert:
    """The expert the ``verifier`` node names, for this task and run seed."""
    from tripost.config import build

    return build(verifier_cfg, "verifier", task=task, seed=seed)


__all__ = ["BudgetExceeded", "Expert", "ExpertError", "ExpertUnreachable", "build_expert"]
