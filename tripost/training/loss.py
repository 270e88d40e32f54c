"""The token loss of TriPosT's weighted supervised learning (SPEC 2.3).

Cross-entropy per token, multiplied by a per-token weight and summed over the loss tokens
(those whose label is not ``IGNORE``). The reference divides by the number of loss tokens;
``normalize="weights"`` divides by the sum of weights instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100
NORMALIZATIONS = ("tokens", "weights")


def weighted_token_loss(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, normalize: str = "tokens"
) -> torch.Tensor:
    """Mean weighted next-token loss.

    ``logits`` [B, T, V] predict position t+1 from t; ``labels`` and ``weights`` are [B, T]
    aligned with the input ids (shifted here, as in Hugging Face models).
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    logits = logits[:, :-1].float()
    labels = labels[:, 1:]
    weights = weights[:, 1:].float()
    ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE, reduction="none")
    mask = (labels.reshape(-1) != IGNORE).float()
    w = weights.reshape(-1) * mask
    total = (ce * w).sum()
    denom = mask.sum() if normalize == "tokens" else w.sum()
    return total / denom.clamp(min=1.0)
