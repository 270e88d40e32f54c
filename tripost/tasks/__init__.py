"""Tasks. A task is a ``Task`` class plus its config file ``conf/task/<name>.yaml``, whose ``impl``
node (``_target_`` and options) builds it: ``build_task(cfg.task)`` in a run, ``get_task(name)``
for scripts and tests (the same file, so the options are written once)."""

from __future__ import annotations

from pathlib import Path

from tripost.tasks.base import Cell, Example, Task

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "task"


def build_task(task_cfg, **overrides) -> Task:
    """The Task a config's ``task`` node names (``task.impl``: its class and options)."""
    from omegaconf import OmegaConf

    from tripost.config import build

    impl = OmegaConf.to_container(task_cfg.impl, resolve=True) if hasattr(task_cfg, "impl") else dict(task_cfg["impl"])
    return build({**impl, **overrides}, "task.impl")


def get_task(name: str, **options) -> Task:
    """The task of ``conf/task/<name>.yaml`` with its configured options (``options`` on top)."""
    from omegaconf import OmegaConf

    path = CONF_DIR / f"{name}.yaml"
    if name == "default" or not path.is_file():
        known = sorted(p.stem for p in CONF_DIR.glob("*.yaml") if p.stem != "default")
        raise KeyError(f"unknown task {name!r}; known: {known}")
    return build_task(OmegaConf.load(path), **options)


__all__ = ["Cell", "Example", "Task", "build_task", "get_task"]
