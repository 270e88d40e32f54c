"""The LightningModule that fine-tunes a causal LM with the weighted token loss."""

from __future__ import annotations

from functools import partial
from typing import Callable

import pytorch_lightning as pl
import torch

from tripost.training.loss import weighted_token_sum


def warmup_linear_decay(step: int, total: int, warmup: int) -> float:
    """LR multiplier: linear warm-up to 1 over ``warmup`` steps, then linear decay to 0."""
    if step < warmup:
        return (step + 1) / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def warmup_linear_decay_schedule(optimizer, total_steps: int, warmup_steps: int):
    """The paper's schedule (trainer.scheduler): linear warm-up, then linear decay to 0, per step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_linear_decay(s, total_steps, warmup_steps))


class CausalLMModule(pl.LightningModule):
    def __init__(
        self,
        model: torch.nn.Module,
        lr: float,
        weight_decay: float,
        warmup_ratio: float,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        loader: Callable[[int, int], "torch.utils.data.DataLoader"] | None = None,
    ):
        super().__init__()
        self.model = model
        self.lr, self.weight_decay, self.warmup_ratio = lr, weight_decay, warmup_ratio
        # The optimizer class with its fixed settings (trainer.optimizer, a _partial_ node); it
        # gets the parameter groups, lr and weight decay of the stage here.
        self.make_optimizer = optimizer or partial(torch.optim.AdamW, betas=(0.9, 0.999))
        # The schedule (trainer.scheduler, a _partial_ node); it gets the optimizer and step counts here.
        self.make_scheduler = scheduler or warmup_linear_decay_schedule
        # (world_size, rank) -> this rank's DataLoader; built once the strategy knows the ranks
        self.make_loader = loader
        self.tokens_seen = 0  # this rank's, padding excluded; fine_tune sums them over ranks
        self.loss_curve: list[float] = []  # the loss of every optimizer step, over all ranks
        self._step_loss = 0.0

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    def train_dataloader(self):
        return self.make_loader(self.trainer.world_size, self.trainer.global_rank)

    def grad_scale(self) -> int:
        """What undoes the strategy's averaging: data parallelism averages gradients over the
        ranks, Lightning divides each micro-batch's loss by the accumulation count, and DeepSpeed,
        which accumulates itself, divides by it once more."""
        accumulate = self.trainer.accumulate_grad_batches
        twice = getattr(self.trainer.strategy, "handles_gradient_accumulation", False)
        return self.trainer.world_size * accumulate * (accumulate if twice else 1)

    def training_step(self, batch, batch_idx):
        logits = self(batch["input_ids"], batch["attention_mask"])
        total, _, _ = weighted_token_sum(logits, batch["labels"], batch["weights"])
        # this rank's share of the step's per-token mean (training/sharding.py)
        share = total / batch["step_denominator"].clamp(min=1e-8)
        self.tokens_seen += int(batch["attention_mask"][: int(batch["real_rows"])].sum())  # padding rows come last
        self._step_loss = self._step_loss + share.detach()
        if bool(batch["step_end"]):
            step_loss = float(self.trainer.strategy.reduce(torch.as_tensor(self._step_loss, device=share.device),
                                                           reduce_op="sum"))
            self.loss_curve.append(step_loss)
            self._step_loss = 0.0
            self.log("train/loss", step_loss, prog_bar=True, on_step=True, batch_size=batch["input_ids"].size(0))
        return share * self.grad_scale()

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or "norm" in name else decay).append(p)
        groups = [
            {"params": decay, "weight_decay": self.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        optimizer = self.make_optimizer(groups, lr=self.lr)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(self.warmup_ratio * total)
        scheduler = self.make_scheduler(optimizer, total_steps=total, warmup_steps=warmup)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
