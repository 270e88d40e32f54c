"""What the engines holding the model in this process share: loading, batching, freeing.

Prompts are sorted by length so a batch holds similar lengths (little padding) and are
left-padded; each engine decodes a batch its own way (``generate_batch``); every text is then
cut by the stop rules and comes back in input order.
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Callable

import torch

from tripost.rollout.policy import Completion, Policy, Sampling
from tripost.rollout.stops import StopRule, after_final_response, cut, stop_rules


class InProcessPolicy(Policy):
    """A Hugging Face causal LM with its tokenizer, generating in batches of ``batch_size``."""

    def __init__(self, model, tokenizer, batch_size: int = 64):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    @classmethod
    def load(cls, path: str | Path, batch_size: int = 64, dtype: str = "float32", device: str = "cpu",
             log_path: str | Path | None = None):  # log_path: for server engines; nothing to log here
        from transformers import AutoTokenizer

        from tripost.models.adapters import load_for_generation

        tokenizer = AutoTokenizer.from_pretrained(str(path))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        # a full checkpoint, or a stage's LoRA adapter merged into its base
        model = load_for_generation(path, getattr(torch, dtype)).to(device)
        return cls(model, tokenizer, batch_size)

    @abstractmethod
    def generate_batch(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, sampling: Sampling,
                       rules: list[StopRule]) -> tuple[list[str], list[bool]]:
        """Continuations of one left-padded batch, not cut yet, and per row whether it ended by
        itself (EOS or a stop rule) rather than at ``sampling.max_new_tokens``."""

    @torch.no_grad()
    def complete(
        self,
        prompts: list[str],
        sampling: Sampling,
        stop: StopRule | None = after_final_response,
        progress: Callable[[int], None] | None = None,
        seed: int | None = None,
    ) -> list[Completion]:
        rules = stop_rules(stop)
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        if seed is not None:
            torch.manual_seed(seed)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out: list[Completion | None] = [None] * len(prompts)
        self.tokenizer.padding_side = "left"  # new tokens follow every prompt's last token directly
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = self.tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
            texts, ended = self.generate_batch(enc["input_ids"].to(device), enc["attention_mask"].to(device), sampling,
                                               rules)
            for i, text, end in zip(idx, texts, ended, strict=True):
                out[i] = Completion(cut(text, rules), end)
            if progress:
                progress(len(idx))
        self.model.train(was_training)
        return out

    def close(self) -> None:
        release_model(self)


def release_model(policy: InProcessPolicy) -> None:
    """Free an in-process model's memory now: on a GPU, generation and training take turns."""
    import gc

    policy.model = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
