"""Batched generation with Hugging Face models: left padding, KV cache, per-sequence stops.

Prompts are sorted by length so a batch holds similar lengths (little padding), and each
sequence stops on its own: at EOS, at a new "Q:" line, or when a stop rule says its text is
complete (e.g. its "(Final response)" line is finished). Outputs come back in input order.

Two engines decode a batch (``rollout.engine``):
- ``loop`` (default, ``tripost.decoding``): our decode loop; finished sequences leave the batch
  and the KV cache grows in place, so a stopped sequence costs nothing;
- ``hf``: transformers' ``generate``, which computes a stopped sequence (as padding) until the
  whole batch is done, and copies the whole KV cache at every token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

NEW_QUESTION = "\nQ:"


def after_final_response(text: str) -> int | None:
    """Stop rule for plain attempts: cut after the first complete "(Final response)" line."""
    i = text.find("(Final response)")
    if i < 0:
        return None
    j = text.find("\n", i)
    return None if j < 0 else j + 1


def cut_at_new_question(text: str) -> int | None:
    i = text.find(NEW_QUESTION)
    return None if i < 0 else i + 1


ENGINES = ("loop", "hf")  # in-process; rollout.engine=vllm is a server process (tripost.models.served)


@dataclass(frozen=True)
class Sampling:
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 50  # transformers' default when sampling, which the paper's code ran with; 0 = off
    top_p: float = 1.0
    max_new_tokens: int = 512


StopRule = Callable[[str], "int | None"]  # text -> index to cut at, or None to go on


_NEWLINE_IDS: dict[int, torch.Tensor] = {}


def newline_token_ids(tokenizer) -> torch.Tensor:
    """Ids of the tokens whose text contains a newline (computed once per tokenizer)."""
    key = id(tokenizer)
    if key not in _NEWLINE_IDS:
        vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        ids = [i for i, t in enumerate(vocab) if "\n" in tokenizer.convert_tokens_to_string([t])]
        _NEWLINE_IDS[key] = torch.tensor(ids, dtype=torch.long)
    return _NEWLINE_IDS[key]


class _PerSequenceStop(StoppingCriteria):
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
            done[row] = any(rule(text) is not None for rule in self.rules)
        return done


def stop_rules(stop: StopRule | None) -> list[StopRule]:
    """Every continuation stops at a new question; ``stop`` adds the caller's own rule."""
    return [cut_at_new_question] + ([stop] if stop else [])


def cut(text: str, rules: list[StopRule]) -> str:
    """Apply the stop rules: the text up to the earliest cut point."""
    points = [p for p in (rule(text) for rule in rules) if p is not None]
    return text[: min(points)] if points else text


def _hf_generate_batch(model, tokenizer, enc: dict, sampling: Sampling, rules: list[StopRule]):
    """The ``hf`` engine: one ``generate`` call for the batch; texts and whether each ended by itself."""
    prompt_len = enc["input_ids"].size(1)
    kwargs = dict(
        max_new_tokens=sampling.max_new_tokens,
        do_sample=sampling.do_sample,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        use_cache=True,
        stopping_criteria=StoppingCriteriaList([_PerSequenceStop(tokenizer, prompt_len, rules)]),
    )
    if sampling.do_sample:
        kwargs.update(temperature=sampling.temperature, top_k=sampling.top_k, top_p=sampling.top_p)
    new = model.generate(**enc, **kwargs)[:, prompt_len:]
    texts = tokenizer.batch_decode(new, skip_special_tokens=True)
    has_eos = (new == tokenizer.eos_token_id).any(dim=1).tolist()
    return texts, [eos or any(rule(t) is not None for rule in rules) for t, eos in zip(texts, has_eos, strict=True)]


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: list[str],
    sampling: Sampling,
    batch_size: int = 64,
    stop: StopRule | None = after_final_response,
    progress: Callable[[int], None] | None = None,
    seed: int | None = None,
    return_finished: bool = False,
    engine: str = "loop",
):
    """Continuations of ``prompts`` (prompt text excluded), cut by the stop rules.

    With ``return_finished`` also a flag per prompt: True when the sequence ended by itself
    (EOS or a stop rule), False when it ran into ``max_new_tokens``. ``engine``: see the module.
    """
    from tripost.decoding import decode_batch

    if engine not in ENGINES:
        raise ValueError(f"rollout.engine: {engine!r} is not one of {list(ENGINES)}")
    rules = stop_rules(stop)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    if seed is not None:
        torch.manual_seed(seed)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    outputs: list[str] = [""] * len(prompts)
    finished: list[bool] = [True] * len(prompts)
    tokenizer.padding_side = "left"
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(device) for k, v in enc.items()}
        if engine == "loop":
            texts, ended = decode_batch(model, tokenizer, enc["input_ids"], enc["attention_mask"], sampling, rules,
                                        newline_token_ids(tokenizer))
        else:
            texts, ended = _hf_generate_batch(model, tokenizer, enc, sampling, rules)
        for i, text, end in zip(idx, texts, ended, strict=True):
            outputs[i] = cut(text, rules)
            finished[i] = end
        if progress:
            progress(len(idx))
    model.train(was_training)
    return (outputs, finished) if return_finished else outputs
