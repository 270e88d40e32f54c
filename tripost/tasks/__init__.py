"""Task registry: ``get_task(name)`` returns the task object a config names."""

from __future__ import annotations

from tripost.tasks.base import Cell, Example, Task

_REGISTRY: dict[str, str] = {
    "date_understanding": "tripost.tasks.date_understanding:DateUnderstanding",
    "logical_deduction": "tripost.tasks.logical_deduction:LogicalDeduction",
    "multistep_arithmetic": "tripost.tasks.multistep_arithmetic:MultistepArithmetic",
    "word_sort": "tripost.tasks.word_sort:WordSort",
}


def get_task(name: str, **kwargs) -> Task:
    if name not in _REGISTRY:
        raise KeyError(f"unknown task {name!r}; known: {sorted(_REGISTRY)}")
    import importlib

    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)


__all__ = ["Cell", "Example", "Task", "get_task"]
