"""Trackers (the ``logger`` config node): built for a run, given its numbers, always closed."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf


def build_loggers(cfg: DictConfig) -> list:
    loggers = [instantiate(c) for c in (cfg.logger or {}).values() if c is not None and "_target_" in c]
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return loggers


def close_loggers(loggers: list, status: str = "success") -> None:
    for lg in loggers:
        lg.finalize(status)
        experiment = getattr(lg, "_experiment", None)
        if experiment is not None and hasattr(experiment, "finish"):
            # a wandb run is closed even when the job failed, marked failed (non-zero exit code)
            experiment.finish(exit_code=0 if status == "success" else 1)


@contextmanager
def trackers(cfg: DictConfig) -> Iterator[list]:
    """The run's loggers, closed when the run ends: "success", or "failed" on any exception."""
    loggers = build_loggers(cfg)
    status = "failed"
    try:
        yield loggers
        status = "success"
    finally:
        close_loggers(loggers, status)


def log_to_trackers(loggers: list, prefix: str, values: dict[str, Any], step: int) -> None:
    """The numbers of a stage (collection statistics, evaluation metrics), flattened as
    ``prefix/key/subkey``, to every logger (wandb charts them per iteration)."""
    flat: dict[str, float] = {}

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{key}/{k}")
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            flat[key] = float(node)

    walk(values, prefix)
    for lg in loggers:
        lg.log_metrics(flat, step=step)
