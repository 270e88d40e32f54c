"""The LightningModule that fine-tunes a causal LM with the weighted token loss."""

from __future__ import annotations

from functools import partial
from typing import Callable

import pytorch_lightning as pl
import torch

from tripost.training.loss import weighted_token_loss


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
        loss_normalize: str = "tokens",
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
    ):
        super().__init__()
        self.model = model
        self.lr, self.weight_decay, self.warmup_ratio = lr, weight_decay, warmup_ratio
        self.loss_normalize = loss_normalize
        # The optimizer class with its fixed settings (trainer.optimizer, a _partial_ node); it
        # gets the parameter groups, lr and weight decay of the stage here.
        self.make_optimizer = optimizer or partial(torch.optim.AdamW, betas=(0.9, 0.999))
        # The schedule (trainer.scheduler, a _partial_ node); it gets the optimizer and step counts here.
        self.make_scheduler = scheduler or warmup_linear_decay_schedule
        self.tokens_seen = 0

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    def training_step(self, batch, batch_idx):
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = weighted_token_loss(logits, batch["labels"], batch["weights"], self.loss_normalize)
        self.tokens_seen += int(batch["attention_mask"].sum())
        self.log("train/loss", loss, prog_bar=True, on_step=True, batch_size=batch["input_ids"].size(0))
        self.log("train/tokens", float(self.tokens_seen), on_step=True, batch_size=batch["input_ids"].size(0))
        return loss

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
