"""Which examples each process trains on, batch by batch, and what each optimizer step divides by.

The paper's loss is a per-token mean: the weighted token losses of an optimizer step divided by
its number of loss tokens. With gradient accumulation and data parallelism a step spans
``accumulate x world_size`` micro-batches on different processes, so no process can compute that
mean from its own batch. ``StepBatchSampler`` lays out the whole epoch the same way on every
rank (the same seed): global micro-batches of ``batch_size x world_size`` similar-length
examples, rank r taking its slice of each. Every rank therefore knows every step's denominator,
and a step's gradient is exactly the one a single device with the whole global batch computes
(``CausalLMModule`` scales the loss so the strategy's averaging cancels out). The epoch is padded
with loss-free items to whole steps, so every rank runs the same number of batches.
"""

from __future__ import annotations

import random
from typing import NamedTuple

from torch.utils.data import Sampler


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int, group_batches: int = 50) -> list[list[int]]:
    """Shuffled batches of indices, each of similar lengths: shuffle, cut into mega-batches of
    ``batch_size * group_batches``, sort each by length, cut into batches, shuffle the batches.
    Padding stays small and the order stays random (the last batch may be short)."""
    rng = random.Random(seed)
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    mega = batch_size * group_batches
    batches = []
    for i in range(0, len(idx), mega):
        chunk = sorted(idx[i : i + mega], key=lambda j: lengths[j], reverse=True)
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


class LengthGroupedSampler(Sampler[int]):
    """``length_grouped_batches`` as one stream of indices, a new order every epoch (one process)."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int, group_batches: int = 50):
        self.lengths, self.batch_size, self.seed, self.group = lengths, batch_size, seed, group_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        batches = length_grouped_batches(self.lengths, self.batch_size, self.seed + self.epoch, self.group)
        self.epoch += 1
        return iter([j for b in batches for j in b])


class Slot(NamedTuple):
    """One item of a rank's batch: the example, its optimizer step's loss denominator (over all
    ranks and accumulated micro-batches), whether its batch ends the step, and whether it is
    padding (no loss: it only keeps the ranks in step)."""

    index: int
    step_denominator: float
    step_end: bool
    padding: bool = False


class StepBatchSampler(Sampler[list[Slot]]):
    """Rank ``rank``'s batches of ``batch_size`` for one epoch (see the module docstring)."""

    def __init__(self, lengths: list[int], loss_units: list[float], batch_size: int, seed: int, *,
                 world_size: int = 1, rank: int = 0, accumulate: int = 1, group_batches: int = 50):
        if not lengths:
            raise ValueError("no training examples")
        self.lengths, self.units, self.seed, self.group = lengths, loss_units, seed, group_batches
        self.batch_size = batch_size  # per process (DeepSpeed reads it as train_micro_batch_size_per_gpu)
        self.world_size, self.rank, self.accumulate = world_size, rank, accumulate
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self, epoch: int) -> list[list[int | None]]:
        """The epoch's micro-batches over all ranks (``None`` = a padding item), whole steps."""
        size = self.batch_size * self.world_size
        batches: list[list[int | None]] = list(length_grouped_batches(self.lengths, size, self.seed + epoch, self.group))
        batches = [b + [None] * (size - len(b)) for b in batches]  # the one short batch, wherever shuffled
        batches += [[None] * size for _ in range(-len(batches) % self.accumulate)]
        return batches

    def __len__(self) -> int:
        steps = -(-len(self.lengths) // (self.batch_size * self.world_size * self.accumulate))
        return steps * self.accumulate

    def __iter__(self):
        batches = self.global_batches(self.epoch)
        self.epoch += 1
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        for start in range(0, len(batches), self.accumulate):
            step = batches[start : start + self.accumulate]
            denominator = sum(self.units[i] for b in step for i in b if i is not None)
            for k, batch in enumerate(step):
                end = k == len(step) - 1
                yield [Slot(0, denominator, end, True) if i is None else Slot(i, denominator, end)
                       for i in batch[lo:hi]]
