"""``rollout=hf``: transformers' ``generate`` on the same length-sorted batches.

It keeps computing a stopped sequence (as padding) until the whole batch is done, and copies
the whole KV cache at every token, so our loop (``tripost.rollout.loop``) is faster; it stays
as the reference the loop is checked against (tests, ``scripts/bench_rollout.py``).
"""

from __future__ import annotations

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from tripost.rollout.inprocess import InProcessPolicy
from tripost.rollout.stops import StopRule, newline_token_ids, should_stop


class PerSequenceStop(StoppingCriteria):
    """Marks a sequence done once a newline-bearing token completes a stop rule.

    Decoding is only done when a sequence has just emitted a token containing a newline,
    so the check costs little on long generations.
    """

    def __init__(self, tokenizer, prompt_len: int, rules: list[StopRule]):
        self.tokenizer, self.prompt_len, self.rules = tokenizer, prompt_len, rules
        self.newline_ids = newline_token_ids(tokenizer)

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        done = torch.zeros(input_ids.size(0), dtype=torch.bool, device=input_ids.device)
        last = input_ids[:, -1].cpu()
        has_newline = torch.isin(last, self.newline_ids)
        for row in torch.nonzero(has_newline).flatten().tolist():
            text = self.tokenizer.decode(input_ids[row, self.prompt_len :], skip_special_tokens=True)
            done[row] = should_stop(text, self.rules)
        return done


class GeneratePolicy(InProcessPolicy):
    """Generates each batch with one ``model.generate`` call."""

    def generate_batch(self, input_ids, attention_mask, sampling, rules):
        tokenizer, prompt_len = self.tokenizer, input_ids.size(1)
        kwargs = dict(
            max_new_tokens=sampling.max_new_tokens,
            do_sample=sampling.do_sample,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            use_cache=True,
            stopping_criteria=StoppingCriteriaList([PerSequenceStop(tokenizer, prompt_len, rules)]),
        )
        if sampling.do_sample:
            kwargs.update(temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p)
        new = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)[:, prompt_len:]
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        has_eos = (new == tokenizer.eos_token_id).any(dim=1).tolist()
        return texts, [eos or should_stop(t, rules) for t, eos in zip(texts, has_eos, strict=True)]
