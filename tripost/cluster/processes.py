"""Starting the ranks of a worker group as processes, each told its place through Lightning's
own environment variables (``LOCAL_RANK``, ``NODE_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``):
with ``LOCAL_RANK`` set, Lightning starts no processes itself and joins the ranks into a new
process group. The launcher's own variables (torchrun's, SLURM's) are left out, so a worker
never mistakes itself for a rank of the launch that started the driver."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# A launch's own variables: a worker must not read its place from them
LAUNCHER_PREFIXES = ("SLURM_", "TORCHELASTIC_", "PMI_", "OMPI_")
LAUNCHER_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_RANK",
                 "ROLE_WORLD_SIZE", "ROLE_NAME", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class GroupLayout:
    """A worker group: ``devices`` ranks on each of ``num_nodes`` nodes, meeting at ``master``."""

    devices: int
    num_nodes: int
    master_addr: str
    master_port: int
    cpu_threads: int | None = None  # torch threads per rank on CPU (the node's cores shared out)


def free_port(host: str = "") -> int:
    """A TCP port free on ``host`` now (every interface by default: a group's rendezvous is
    reached from other nodes); whoever asked binds it right after."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def worker_env(layout: GroupLayout, local_rank: int, node_rank: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(LAUNCHER_PREFIXES) and k not in LAUNCHER_KEYS}
    env.update(LOCAL_RANK=str(local_rank), NODE_RANK=str(node_rank), WORLD_SIZE=str(layout.devices * layout.num_nodes),
               MASTER_ADDR=layout.master_addr, MASTER_PORT=str(layout.master_port),
               TRIPOST_WORKER_DEVICES=str(layout.devices), TRIPOST_WORKER_NODES=str(layout.num_nodes))
    if layout.cpu_threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(layout.cpu_threads)
    env.update(extra or {})
    return env


def run_ranks(spec_path: Path, log_dir: Path, layout: GroupLayout, ranks: list[tuple[int, int]],
              extra_env: dict[str, str] | None = None) -> dict[int, int]:
    """Start the worker of each (local_rank, node_rank) in ``ranks`` and wait for all of them;
    their exit codes by global rank. When one fails, the others here are stopped (they would
    wait for it for ever); its log is ``log_dir/worker_rank<r>.log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = {}
    for local_rank, node_rank in ranks:
        rank = node_rank * layout.devices + local_rank
        log = open(log_dir / f"worker_rank{rank}.log", "w")
        procs[rank] = (subprocess.Popen([sys.executable, "-m", "tripost.training.worker", str(spec_path)],
                                        stdout=log, stderr=subprocess.STDOUT,
                                        env=worker_env(layout, local_rank, node_rank, extra_env)), log)
    codes: dict[int, int] = {}
    try:
        while len(codes) < len(procs):
            for rank, (proc, _) in procs.items():
                if rank not in codes and proc.poll() is not None:
                    codes[rank] = proc.returncode
            if any(c != 0 for c in codes.values()):
                break
            time.sleep(0.2)
    finally:
        for rank, (proc, log) in procs.items():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            codes.setdefault(rank, proc.returncode)
            log.close()
    return codes


def failure(codes: dict[int, int], log_dir: Path) -> str | None:
    """None when every rank succeeded, else one line naming the first failed rank and its log."""
    failed = sorted((r for r, c in codes.items() if c != 0), key=lambda r: (codes[r] < 0, r))
    if not failed:
        return None
    rank = failed[0]
    log = log_dir / f"worker_rank{rank}.log"
    tail = (log.read_text(errors="replace").strip().splitlines()[-1:] if log.is_file() else []) or ["?"]
    return f"the training worker group failed: rank {rank} exited {codes[rank]}: {tail[0]}; see {log}"
