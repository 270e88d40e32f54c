"""``cluster=local``: this machine's devices, or every rank torchrun/srun started."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig

from tripost.cluster.base import Cluster, Shard
from tripost.cluster.launch import ControlGroup, Launch, train_share
from tripost.cluster.processes import GroupLayout, failure, free_port, run_ranks

log = logging.getLogger("tripost")


def device_count(trainer_cfg: DictConfig) -> int:
    """The processes a trainer config asks for on this machine: ``devices`` as a number, a list
    of GPU indices, or -1/auto (every visible GPU; one process on CPU)."""
    devices = trainer_cfg.get("devices", 1)
    if isinstance(devices, (list, tuple, ListConfig)):
        return len(devices)
    if str(devices) in ("-1", "auto"):
        import torch

        on_gpu = str(trainer_cfg.get("accelerator", "cpu")) in ("gpu", "cuda", "auto") and torch.cuda.is_available()
        return torch.cuda.device_count() if on_gpu else 1
    return int(devices)


def cores_per(processes: int) -> int:
    """This machine's cores shared out between ``processes`` (each would otherwise take them all)."""
    return max(1, len(os.sched_getaffinity(0)) // processes)


def cpu_threads_per_rank(trainer_cfg: DictConfig, ranks_here: int) -> int | None:
    """Torch threads of each training rank on CPU; None on GPUs or for one rank."""
    if str(trainer_cfg.get("accelerator", "cpu")) != "cpu" or ranks_here < 2:
        return None
    return cores_per(ranks_here)


class LocalCluster(Cluster):
    """Training worker groups on this machine's devices (``trainer.devices``) or, in a run started
    by torchrun/srun, on every launched rank (``trainer.devices`` and ``trainer.num_nodes`` are then
    the launch's); generation shards as processes on this machine, one per device."""

    def __init__(self) -> None:
        self.launch = Launch.from_env()
        self.control = ControlGroup(self.launch) if self.launch else None
        if self.launch:
            log.info("launched by %s: %d ranks on %d node(s); rank 0 drives, the others train with it",
                     self.launch.kind, self.launch.world_size, self.launch.num_nodes)

    @property
    def trains_in_workers(self) -> bool:
        return self.launch is not None

    def train(self, spec_path: Path, log_dir: Path, trainer_cfg: DictConfig) -> None:
        port = free_port()
        if self.launch:
            threads = cpu_threads_per_rank(trainer_cfg, self.launch.local_world_size)
            self.control.order({"kind": "train", "spec": str(spec_path), "log_dir": str(log_dir), "port": port,
                                "cpu_threads": threads})
            code = train_share(self.launch, spec_path, log_dir, port, threads)
            codes = dict(enumerate(self.control.gather(code)))
        else:
            num_nodes = int(trainer_cfg.get("num_nodes", 1) or 1)
            if num_nodes > 1:
                from tripost.config import ConfigError

                raise ConfigError(f"config key 'trainer.num_nodes': {num_nodes} nodes need a launcher: start the run "
                                  "with torchrun or srun on every node, hydra/launcher=slurm, or cluster=ray")
            devices = device_count(trainer_cfg)
            layout = GroupLayout(devices, 1, "127.0.0.1", port, cpu_threads_per_rank(trainer_cfg, devices))
            codes = run_ranks(spec_path, log_dir, layout, [(r, 0) for r in range(devices)])
        message = failure(codes, log_dir)
        if message:
            raise RuntimeError(message)

    def shards(self, count: int, engine: dict[str, Any], model_dir: str, *, batch_size: int, dtype: str,
               device: str) -> list[Shard]:
        from tripost.rollout.sharded import ProcessShard

        threads = cores_per(count) if device == "cpu" else None
        return [ProcessShard(engine, model_dir, batch_size=batch_size, dtype=dtype,
                             device=device if device == "cpu" else f"{device.split(':')[0]}:{i}", cpu_threads=threads)
                for i in range(count)]

    def close(self, exit_code: int = 0) -> None:
        if self.control:
            self.control.order({"kind": "exit", "code": exit_code})
            self.control.close()
            self.control = None
