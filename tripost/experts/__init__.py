"""Experts: ``build_expert(cfg.verifier, task, seed)`` returns the one the config names."""

from __future__ import annotations

from tripost.experts.base import BudgetExceeded, Expert, ExpertError
from tripost.tasks import Task


def build_expert(verifier_cfg, task: Task, seed: int) -> Expert:
    if verifier_cfg.name == "scripted":
        from tripost.experts.scripted import ScriptedExpert

        return ScriptedExpert(task, imp_error_rate=verifier_cfg.imp_error_rate, seed=seed,
                              attempt_error_rate=verifier_cfg.attempt_error_rate)
    if verifier_cfg.name == "openai":
        from tripost.experts.openai_expert import OpenAIExpert  # imports the openai client: only when used

        return OpenAIExpert(verifier_cfg, task, seed=seed)
    raise ValueError(f"config key 'verifier.name': unknown expert {verifier_cfg.name!r}")


__all__ = ["BudgetExceeded", "Expert", "ExpertError", "build_expert"]
