"""What every cluster offers the stages: a training stage on N devices, generation shards."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from omegaconf import DictConfig


class Shard(ABC):
    """One generation engine on one device, opened on a checkpoint, answering ``complete``."""

    @abstractmethod
    def submit(self, prompts: list[str], sampling, stop, seed: int | None) -> None:
        """Start completing ``prompts`` (``Policy.complete``'s arguments); ``result`` returns them."""

    @abstractmethod
    def result(self) -> list:
        """The completions of the last ``submit``, in order; RuntimeError if the shard failed."""

    @abstractmethod
    def close(self) -> None:
        """Stop the shard and free its device."""


class Cluster(ABC):
    """Places a run's training worker groups and generation shards."""

    @property
    def trains_in_workers(self) -> bool:
        """Every training stage runs in a worker group, even on one device (the ranks are the cluster's)."""
        return False

    @abstractmethod
    def train(self, spec_path: Path, log_dir: Path, trainer_cfg: DictConfig) -> None:
        """Run ``python -m tripost.training.worker spec_path`` on every rank of a fresh worker group
        (logs in ``log_dir``); RuntimeError naming the failed rank's log when one fails."""

    @abstractmethod
    def shards(self, count: int, engine: dict[str, Any], model_dir: str, *, batch_size: int, dtype: str,
               device: str) -> list[Shard]:
        """``count`` generation engines on ``model_dir``, one per device."""

    def close(self, exit_code: int = 0) -> None:
        """The run is over: release what the cluster holds (and let served ranks exit)."""
