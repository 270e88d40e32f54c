"""``rollout=loop`` (the default): our decode loop, where finished sequences leave the batch.

transformers' ``generate`` keeps a stopped sequence in the batch (it writes padding) until
the longest one is done, and its ``DynamicCache`` concatenates the whole KV cache at every
token. On a small model those two costs dominate a rollout. Here:

- the KV cache of each layer lives in a buffer with spare room, so a new token is written in
  place (the buffer doubles when full: amortised O(1) per token);
- once a sequence ends (EOS, or a stop rule on a line it just finished), its row is dropped
  from the batch, the cache and the attention mask, so it costs nothing from then on.

Greedy decoding gives the same tokens as ``generate`` one prompt at a time (the benchmark
``scripts/bench_rollout.py`` checks this in float32). Sampling applies temperature, then
top-k, then top-p, as ``generate`` does, drawing from torch's global generator.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache, DynamicLayer

from tripost.rollout.inprocess import InProcessPolicy
from tripost.rollout.policy import Sampling
from tripost.rollout.stops import StopRule, newline_token_ids, should_stop


class GrowingLayer(DynamicLayer):
    """One layer's keys and values in a buffer with spare room; ``update`` writes in place."""

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        self.length = 0
        self._k = self._v = None
        self.is_initialized = True

    def _grow(self, needed: int, like: torch.Tensor) -> None:
        capacity = max(needed, 2 * (0 if self._k is None else self._k.size(-2)), 64)
        shape = (*like.shape[:-2], capacity, like.size(-1))
        k, v = like.new_empty(shape), like.new_empty(shape)
        if self._k is not None:
            k[..., : self.length, :] = self._k[..., : self.length, :]
            v[..., : self.length, :] = self._v[..., : self.length, :]
        self._k, self._v = k, v

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.size(-2)
        if self._k is None or end > self._k.size(-2):
            self._grow(end, key_states)
        self._k[..., self.length : end, :] = key_states
        self._v[..., self.length : end, :] = value_states
        self.length = end
        self.keys, self.values = self._k[..., :end, :], self._v[..., :end, :]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the rows ``indices``; only the filled part of the buffer is copied."""
        if self.is_initialized and self._k is not None:
            end = self.length
            k, v = self._k.new_empty((len(indices), *self._k.shape[1:])), self._v.new_empty((len(indices), *self._v.shape[1:]))
            k[..., :end, :], v[..., :end, :] = self._k[indices, :, :end], self._v[indices, :, :end]
            self._k, self._v = k, v
            self.keys, self.values = k[..., :end, :], v[..., :end, :]


def pick_next(logits: torch.Tensor, do_sample: bool, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Next token per row: argmax, or a draw after temperature, top-k and top-p filtering."""
    if not do_sample:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if 0 < top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        mass_before = sorted_logits.softmax(dim=-1).cumsum(dim=-1) - sorted_logits.softmax(dim=-1)
        drop = mass_before >= top_p  # tokens after the smallest set reaching top_p (the first always stays)
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return torch.multinomial(logits.softmax(dim=-1), 1).squeeze(1)


@torch.no_grad()
def decode_batch(
    model,
    tokenizer,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    sampling: Sampling,
    rules: list[StopRule],
    newline_ids: torch.Tensor,
) -> tuple[list[str], list[bool]]:
    """Continuations of a left-padded batch and, per row, whether it ended by itself (EOS or a
    stop rule) rather than at ``sampling.max_new_tokens``. Texts are not cut by the rules yet."""
    batch, max_new = input_ids.size(0), sampling.max_new_tokens
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    new_tokens = torch.full((batch, max_new), pad if pad is not None else 0, dtype=torch.long)
    lengths = [max_new] * batch  # new tokens per row: a row that never ends runs to max_new_tokens
    ended = [False] * batch
    cache = Cache(layer_class_to_replicate=GrowingLayer)
    positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                past_key_values=cache, use_cache=True, logits_to_keep=1)
    logits = out.logits[:, -1, :]
    live = torch.arange(batch)  # original row of each row still in the batch
    next_position = positions[:, -1:] + 1
    pick = dict(do_sample=sampling.do_sample, temperature=sampling.temperature, top_k=sampling.top_k,
                top_p=sampling.top_p)
    for step in range(max_new):
        token = pick_next(logits, **pick)
        token_cpu = token.cpu()
        new_tokens[live, step] = token_cpu
        done = token_cpu == eos if eos is not None else torch.zeros_like(token_cpu, dtype=torch.bool)
        for j in torch.nonzero(torch.isin(token_cpu, newline_ids) & ~done).flatten().tolist():
            row = int(live[j])
            text = tokenizer.decode(new_tokens[row, : step + 1], skip_special_tokens=True)
            done[j] = should_stop(text, rules)
        for j in torch.nonzero(done).flatten().tolist():
            row = int(live[j])
            ended[row], lengths[row] = True, step + 1
        if step + 1 == max_new or bool(done.all()):
            break
        if bool(done.any()):  # finished rows leave the batch, its cache and its mask
            keep = torch.nonzero(~done).flatten()
            keep_dev = keep.to(logits.device)
            for layer in cache.layers:
                layer.batch_select_indices(keep_dev)
            live, token = live[keep], token[keep_dev]
            attention_mask, next_position = attention_mask[keep_dev], next_position[keep_dev]
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(attention_mask.size(0), 1)], dim=1)
        out = model(input_ids=token[:, None], attention_mask=attention_mask, position_ids=next_position,
                    past_key_values=cache, use_cache=True)
        logits = out.logits[:, -1, :]
        next_position = next_position + 1
    texts = [tokenizer.decode(new_tokens[row, : lengths[row]], skip_special_tokens=True) for row in range(batch)]
    return texts, ended


class LoopPolicy(InProcessPolicy):
    """Generates with ``decode_batch``."""

    def generate_batch(self, input_ids, attention_mask, sampling, rules):
        return decode_batch(self.model, self.tokenizer, input_ids, attention_mask, sampling, rules,
                            newline_token_ids(self.tokenizer))
