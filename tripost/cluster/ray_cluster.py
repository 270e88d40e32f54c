"""``cluster=ray``: training ranks and generation engines as Ray actors (pip install -e '.[ray]').

Ray places each actor on a node with a free device of the kind it asks for, on one machine or
many. A training stage starts one actor per rank; each starts its rank's worker process (the
same ``python -m tripost.training.worker`` every cluster runs) with its global rank as Lightning's
node rank (one device per "node"), and rank 0's host as the rendezvous; the actors are killed when
the stage ends, so every stage is a fresh group. A generation phase starts ``rollout.workers``
engine actors, killed when the phase ends. Specs, logs and checkpoints are paths in the run dir:
on several machines it must be on a filesystem they share, and tripost must be importable there
(installed, or ``cluster.runtime_env``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from tripost.cluster.base import Cluster, Shard
from tripost.cluster.local import device_count
from tripost.cluster.processes import GroupLayout, failure, free_port, run_ranks

log = logging.getLogger("tripost")


class _Rank:
    """One training rank: starts its worker process and waits for it."""

    def address(self) -> tuple[str, int]:
        import ray

        return ray.util.get_node_ip_address(), free_port()

    def run(self, spec_path: str, log_dir: str, layout: GroupLayout, rank: int) -> dict[int, int]:
        return run_ranks(Path(spec_path), Path(log_dir), layout, [(0, rank)])


class _Engine:
    """One generation engine on the actor's device."""

    def __init__(self, engine, model_dir, batch_size, dtype, device, cpu_threads):
        from tripost.rollout.sharded import open_engine_here

        self.policy = open_engine_here(engine, model_dir, batch_size, dtype, device, cpu_threads)

    def complete(self, prompts, sampling, stop, seed):
        return self.policy.complete(prompts, sampling, stop, None, seed)


class RayShard(Shard):
    def __init__(self, actor):
        self.actor, self.ref = actor, None

    def submit(self, prompts, sampling, stop, seed) -> None:
        self.ref = self.actor.complete.remote(prompts, sampling, stop, seed)

    def result(self) -> list:
        import ray

        return ray.get(self.ref)

    def close(self) -> None:
        import ray

        ray.kill(self.actor)


class RayCluster(Cluster):
    def __init__(self, address: str | None = None, num_cpus: int | None = None, cpus_per_worker: int = 1,
                 object_store_memory_mb: int | None = None, runtime_env: dict | None = None):
        import ray

        self.cpus_per_worker = cpus_per_worker
        if not ray.is_initialized():
            local = address is None
            ray.init(address=address, num_cpus=num_cpus if local else None, include_dashboard=False,
                     object_store_memory=object_store_memory_mb * 2**20 if local and object_store_memory_mb else None,
                     runtime_env=runtime_env, log_to_driver=False, configure_logging=False)
        resources = ray.cluster_resources()
        log.info("ray cluster: %d node(s), %s CPUs, %s GPUs", len(ray.nodes()), resources.get("CPU", 0),
                 resources.get("GPU", 0))

    @property
    def trains_in_workers(self) -> bool:
        return True

    def _options(self, on_gpu: bool) -> dict[str, Any]:
        return {"num_gpus": 1, "num_cpus": self.cpus_per_worker} if on_gpu else {"num_cpus": self.cpus_per_worker}

    def train(self, spec_path: Path, log_dir: Path, trainer_cfg: DictConfig) -> None:
        import ray

        world = device_count(trainer_cfg) * int(trainer_cfg.get("num_nodes", 1) or 1)
        on_gpu = str(trainer_cfg.get("accelerator", "cpu")) in ("gpu", "cuda")
        actor = ray.remote(_Rank).options(**self._options(on_gpu))
        ranks = [actor.remote() for _ in range(world)]
        try:
            host, port = ray.get(ranks[0].address.remote())
            threads = None if on_gpu else self.cpus_per_worker
            layout = GroupLayout(1, world, host, port, threads)
            codes: dict[int, int] = {}
            for part in ray.get([a.run.remote(str(spec_path), str(log_dir), layout, r) for r, a in enumerate(ranks)]):
                codes.update(part)
        finally:
            for a in ranks:
                ray.kill(a)
        message = failure(codes, log_dir)
        if message:
            raise RuntimeError(message)

    def shards(self, count: int, engine: dict[str, Any], model_dir: str, *, batch_size: int, dtype: str,
               device: str) -> list[Shard]:
        import ray

        on_gpu = device.startswith("cuda")
        actor = ray.remote(_Engine).options(**self._options(on_gpu))
        threads = None if on_gpu else self.cpus_per_worker
        return [RayShard(actor.remote(engine, model_dir, batch_size, dtype, "cuda:0" if on_gpu else device, threads))
                for _ in range(count)]

    def close(self, exit_code: int = 0) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()
