"""The token loss of TriPosT's weighted supervised learning (SPEC 2.3).

Cross-entropy per token, multiplied by a per-token weight and summed over the loss tokens
(those whose label is not ``IGNORE``). The reference divides by the number of loss tokens;
``normalize="weights"`` divides by the sum of weights instead. In training the denominator is
the whole optimizer step's, over all processes and accumulated batches (training/sharding.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100
NORMALIZATIONS = ("tokens", "weights")


def weighted_token_sum(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The weighted sum of next-token losses, the number of loss tokens and the sum of their weights.

    ``logits`` [B, T, V] predict position t+1 from t; ``labels`` and ``weights`` are [B, T]
    aligned with the input ids (shifted here, as in Hugging Face models).
    """
    logits = logits[:, :-1].float()
    labels = labels[:, 1:]
    weights = weights[:, 1:].float()
    ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE, reduction="none")
    mask = (labels.reshape(-1) != IGNORE).float()
    w = weights.reshape(-1) * mask
    return (ce * w).sum(), mask.sum(), w.sum()


def weighted_token_loss(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, normalize: str = "tokens"
) -> torch.Tensor:
    """Mean weighted next-token loss of one batch (``weighted_token_sum`` over its denominator)."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    total, tokens, weight_sum = weighted_token_sum(logits, labels, weights)
    return total / (tokens if normalize == "tokens" else weight_sum).clamp(min=1.0)
