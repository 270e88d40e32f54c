"""Runs started by ``torchrun`` or ``srun``: one driver, the other ranks serve it.

The launcher starts the same command once per device (``torchrun --nproc_per_node=8 run.py``,
``srun --ntasks-per-node=8 python run.py``, or Hydra's SLURM launcher with ``tasks_per_node``).
Rank 0 runs the recipe; every other rank waits for its orders on a control group (gloo, no
device memory): for each training stage every rank starts its own worker, so the stage's worker
group spans every device of every node the launcher gave, and all of them exit when the stage
is done. When the driver is done it tells the others to exit.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

log = logging.getLogger("tripost")

# How long a serving rank waits for its next order: a generation phase or an expert's
# collection between two training stages can take hours on a big model.
ORDER_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class Launch:
    """This process's place among the ranks an outside launcher started."""

    kind: str  # torchrun | srun
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    node_rank: int
    num_nodes: int
    master_addr: str
    master_port: int

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Launch | None":
        """The launch described by ``env`` (default os.environ); None for a plain start or one rank."""
        env = dict(os.environ if env is None else env)
        if "TORCHELASTIC_RUN_ID" in env and int(env.get("WORLD_SIZE", "1")) > 1:
            world, local_world = int(env["WORLD_SIZE"]), int(env["LOCAL_WORLD_SIZE"])
            return cls("torchrun", int(env["RANK"]), world, int(env["LOCAL_RANK"]), local_world,
                       int(env.get("GROUP_RANK", "0")), world // local_world, env["MASTER_ADDR"], int(env["MASTER_PORT"]))
        if "SLURM_PROCID" in env and "SLURM_STEP_ID" in env and int(env.get("SLURM_NTASKS", "1")) > 1:
            world = int(env["SLURM_NTASKS"])
            nodes = int(env.get("SLURM_JOB_NUM_NODES") or env.get("SLURM_NNODES") or "1")
            return cls("srun", int(env["SLURM_PROCID"]), world, int(env["SLURM_LOCALID"]), world // nodes,
                       int(env["SLURM_NODEID"]), nodes, env.get("MASTER_ADDR") or slurm_root_node(env),
                       int(env.get("MASTER_PORT") or 10000 + int(env["SLURM_JOB_ID"]) % 20000))
        return None

    @property
    def is_driver(self) -> bool:
        return self.rank == 0


def slurm_root_node(env: dict[str, str]) -> str:
    """The first host of the job's node list (``node[01-04,07]`` -> ``node01``)."""
    from lightning_fabric.plugins.environments.slurm import SLURMEnvironment

    nodelist = env.get("SLURM_NODELIST") or env.get("SLURM_JOB_NODELIST") or "127.0.0.1"
    return SLURMEnvironment.resolve_root_node_address(nodelist)


class ControlGroup:
    """The launched ranks, joined over gloo to pass the driver's orders (and nothing else)."""

    def __init__(self, launch: Launch):
        import torch.distributed as dist

        self.launch, self.dist = launch, dist
        os.environ.setdefault("MASTER_ADDR", launch.master_addr)
        os.environ.setdefault("MASTER_PORT", str(launch.master_port))
        dist.init_process_group("gloo", init_method="env://", rank=launch.rank, world_size=launch.world_size,
                                timeout=ORDER_TIMEOUT)

    def order(self, message: dict | None = None) -> dict:
        """The driver sends ``message``; every rank returns it."""
        box = [message]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value) -> list:
        """``value`` of every rank, in rank order, on every rank."""
        out = [None] * self.launch.world_size
        self.dist.all_gather_object(out, value)
        return out

    def close(self) -> None:
        self.dist.destroy_process_group()


def train_share(launch: Launch, spec_path: Path, log_dir: Path, master_port: int, cpu_threads: int | None) -> int:
    """This rank's worker of a training stage's group (every launched rank starts one); its exit code."""
    from tripost.cluster.processes import GroupLayout, run_ranks

    layout = GroupLayout(launch.local_world_size, launch.num_nodes, launch.master_addr, master_port, cpu_threads)
    return run_ranks(spec_path, log_dir, layout, [(launch.local_rank, launch.node_rank)])[launch.rank]


def serve(launch: Launch) -> int:
    """A rank other than 0: start this rank's share of every training stage the driver orders, until
    it says the run is over; the driver's exit code."""
    control = ControlGroup(launch)
    log.info("rank %d of %d (%s) serves the driver on %s", launch.rank, launch.world_size, launch.kind,
             launch.master_addr)
    try:
        while True:
            message = control.order()
            if message["kind"] == "exit":
                return int(message["code"])
            code = train_share(launch, Path(message["spec"]), Path(message["log_dir"]), message["port"],
                               message["cpu_threads"])
            control.gather(code)
    finally:
        control.close()
