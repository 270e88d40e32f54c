"""Generation on several devices at once: ``rollout.workers`` engines, each on its own device,
each taking whole batches of one length-sorted list of prompts.

The prompts are sorted by length and cut into batches exactly as one in-process engine cuts
them; worker w takes batches w, w + W, w + 2W, ... So every batch is the one a single engine
would decode, and greedy outputs are identical to one worker's. Sampled outputs are
reproducible for a given number of workers (worker w samples with ``seed + w``), not across
numbers of workers. Where the workers run is the cluster's (tripost/cluster): processes on this
machine, or Ray actors.
"""

from __future__ import annotations

import multiprocessing
import traceback
from typing import Any, Callable

from tripost.cluster.base import Shard
from tripost.rollout.policy import Completion, Policy, Sampling
from tripost.rollout.stops import StopRule, after_final_response


def deal_batches(prompts: list[str], batch_size: int, workers: int) -> list[list[int]]:
    """Prompt indices for each worker: whole batches of the one engine's length-sorted order, dealt in turn."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    return [[i for b in batches[w::workers] for i in b] for w in range(workers)]


class ShardedPolicy(Policy):
    """One policy over ``shards``: each ``complete`` deals the batches, then gathers the answers in order."""

    def __init__(self, shards: list[Shard], batch_size: int):
        self.shards, self.batch_size = shards, batch_size

    def complete(self, prompts: list[str], sampling: Sampling, stop: StopRule | None = after_final_response,
                 progress: Callable[[int], None] | None = None, seed: int | None = None) -> list[Completion]:
        parts = deal_batches(prompts, self.batch_size, len(self.shards))
        busy = []
        for w, (shard, part) in enumerate(zip(self.shards, parts)):
            if part:
                shard.submit([prompts[i] for i in part], sampling, stop, None if seed is None else seed + w)
                busy.append((shard, part))
        out: list[Completion | None] = [None] * len(prompts)
        for shard, part in busy:
            for i, completion in zip(part, shard.result(), strict=True):
                out[i] = completion
            if progress:
                progress(len(part))
        return out

    def close(self) -> None:
        for shard in self.shards:
            shard.close()
        self.shards = []


def open_engine_here(engine: dict[str, Any], model_dir: str, batch_size: int, dtype: str, device: str,
                     cpu_threads: int | None) -> Policy:
    """The engine node, instantiated and opened in this (worker) process."""
    import torch
    from hydra.utils import instantiate

    if cpu_threads:
        torch.set_num_threads(cpu_threads)
    return instantiate(engine, _convert_="all")(model_dir, batch_size=batch_size, dtype=dtype, device=device,
                                                log_path=None)


def _serve_shard(conn, engine, model_dir, batch_size, dtype, device, cpu_threads) -> None:
    """A shard process: open the engine, then answer ``complete`` orders until told to close."""
    try:
        policy = open_engine_here(engine, model_dir, batch_size, dtype, device, cpu_threads)
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ready", None))
    while True:
        order = conn.recv()
        if order is None:
            policy.close()
            return
        try:
            conn.send(("ok", policy.complete(*order)))
        except Exception:
            conn.send(("error", traceback.format_exc()))


class ProcessShard(Shard):
    """An engine in a process of its own on this machine (started fresh: no state of the driver's)."""

    def __init__(self, engine: dict[str, Any], model_dir: str, *, batch_size: int, dtype: str, device: str,
                 cpu_threads: int | None = None):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.device = device
        self.proc = ctx.Process(target=_serve_shard, args=(child, engine, model_dir, batch_size, dtype, device,
                                                           cpu_threads), daemon=True)
        self.proc.start()
        self._ready = False

    def _receive(self):
        try:
            kind, value = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"the generation worker on {self.device} died (exit {self.proc.exitcode})") from None
        if kind == "error":
            raise RuntimeError(f"the generation worker on {self.device} failed: {value.strip().splitlines()[-1]}\n{value}")
        return value

    def submit(self, prompts, sampling, stop, seed) -> None:
        if not self._ready:
            self._receive()
            self._ready = True
        self.conn.send((prompts, sampling, stop, None, seed))

    def result(self) -> list:
        return self._receive()

    def close(self) -> None:
        if self.proc.is_alive():
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self.proc.join(timeout=60)
            if self.proc.is_alive():
                self.proc.terminate()
        self.conn.close()
