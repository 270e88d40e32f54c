"""The engine of a generation phase: the ``rollout.engine`` config node (``_target_``, partial).

Every engine is opened the same way, ``engine(model_dir, batch_size=, dtype=, device=,
log_path=)``, and is a ``Policy`` whose ``close`` frees what it took, so a phase can hand the
GPU back to training: ``LoopPolicy.load`` and ``GeneratePolicy.load`` load the checkpoint into
this process; ``ServedPolicy.serve`` serves it from a process of its own (its settings in the node).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from tripost.rollout.policy import Policy

Engine = Callable[..., Policy]  # (model_dir, *, batch_size, dtype, device, log_path) -> Policy


def generation_device(device: str) -> str:
    """``rollout.device``: auto is the GPU when one is visible, else the CPU; others as given."""
    from tripost.hardware import device_of

    return device_of(device) if device == "auto" else device


def open_engine(engine: Engine, model_dir: str | Path, *, batch_size: int, dtype: str, device: str,
                log_path: str | Path) -> Policy:
    """The engine on the checkpoint ``model_dir``, generating in batches of ``batch_size``, in
    ``dtype`` on ``device`` (in-process engines); a server engine writes its output to ``log_path``."""
    return engine(model_dir, batch_size=batch_size, dtype=dtype, device=device, log_path=log_path)


def generation_workers(workers: int | str, device: str) -> int:
    """``rollout.workers``: auto is one engine per visible GPU when generating on a GPU, else one."""
    if str(workers) != "auto":
        return int(workers)
    import torch

    return max(1, torch.cuda.device_count()) if device.startswith("cuda") else 1
