"""Training examples as token ids with a loss mask and per-token weights.

A ``TrainExample`` is text plus two character offsets: where the loss starts (after the
prompt, when the prompt is masked) and where the weighted section starts (the first
"\nFeedback:"). Offsets are turned into token masks through the tokenizer's offset mapping,
so the weighted span starts at the exact token holding that character.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

from tripost.training.loss import IGNORE
from tripost.training.sharding import Slot

FEEDBACK_MARK = "\nFeedback:"
# kinds of the examples TriPosT collects (tripost/postprocess.py): an improvement example is
# (attempt, feedback, update), a terminal one (attempt, positive feedback), a gold one a gold rationale
IMPROVEMENT, TERMINAL, GOLD = "improvement", "terminal", "gold"


@dataclass(frozen=True)
class TrainExample:
    text: str  # prompt + completion; EOS is added at tokenization
    prompt_chars: int  # length of the prompt part of ``text``
    kind: str = "rationale"  # rationale / improvement / terminal / gold: for statistics only
    eos: bool = True  # end with EOS; False for turns a trajectory continues after

    @property
    def weight_start(self) -> int | None:
        """Character offset of the first "\nFeedback:" in the completion, or None."""
        i = self.text.find(FEEDBACK_MARK, self.prompt_chars)
        return None if i < 0 else i


def encode_example(
    ex: TrainExample, tokenizer, *, max_length: int, mask_prompt: bool, section_weight: float,
    wrong_attempt_weight: float = 1.0,
) -> dict[str, list]:
    """ids, labels (IGNORE where no loss) and weights for one example; EOS appended if asked.

    A token gets the section weight when its span ends after the "\nFeedback:" offset, i.e.
    the token holding the newline is the first weighted one. The attempt of an improvement
    example (the one its feedback finds wrong: between the prompt and that offset) gets
    ``wrong_attempt_weight``; 0 takes it out of the loss altogether (context only).
    """
    enc = tokenizer(ex.text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    offsets = list(enc["offset_mapping"])
    if ex.eos:
        ids.append(tokenizer.eos_token_id)
        offsets.append((len(ex.text), len(ex.text)))
    start = ex.weight_start
    labels, weights = [], []
    for tok_id, (_, end) in zip(ids, offsets, strict=True):
        in_prompt = end <= ex.prompt_chars
        weighted = start is not None and end > start
        wrong_attempt = ex.kind == IMPROVEMENT and not in_prompt and not weighted
        masked = (mask_prompt and in_prompt) or (wrong_attempt and wrong_attempt_weight == 0)
        labels.append(IGNORE if masked else tok_id)
        weights.append(section_weight if weighted else wrong_attempt_weight if wrong_attempt else 1.0)
    if len(ids) > max_length:
        ids, labels, weights = ids[:max_length], labels[:max_length], weights[:max_length]
    return {"input_ids": ids, "labels": labels, "weights": weights}


class EncodedDataset(Dataset):
    def __init__(self, examples: list[TrainExample], tokenizer, **encode_kwargs):
        self.items = [encode_example(e, tokenizer, **encode_kwargs) for e in examples]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key):
        """An item by index, or by a ``Slot`` of ``StepBatchSampler`` (with its step's facts)."""
        if isinstance(key, Slot):
            return {**self.items[key.index], "step_denominator": key.step_denominator, "step_end": key.step_end,
                    "padding": key.padding}
        return self.items[key]

    def loss_units(self, normalize: str) -> list[float]:
        """What each item adds to the loss's denominator: its loss tokens (``tokens``, the
        paper's) or their summed weights (``weights``). Token 0 predicts nothing (labels shift)."""
        units = []
        for x in self.items:
            pairs = [(lab, w) for lab, w in zip(x["labels"][1:], x["weights"][1:]) if lab != IGNORE]
            units.append(float(len(pairs)) if normalize == "tokens" else float(sum(w for _, w in pairs)))
        return units

    def lengths(self) -> list[int]:
        return [len(x["input_ids"]) for x in self.items]

    def num_tokens(self) -> int:
        return sum(self.lengths())


def collate(batch: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest sequence of the batch (dynamic padding). Items from
    ``StepBatchSampler`` also carry their optimizer step's loss denominator and whether the
    batch ends that step; a padding item has no loss."""
    n = max(len(x["input_ids"]) for x in batch)
    out = {
        "input_ids": torch.full((len(batch), n), pad_id, dtype=torch.long),
        "attention_mask": torch.zeros((len(batch), n), dtype=torch.long),
        "labels": torch.full((len(batch), n), IGNORE, dtype=torch.long),
        "weights": torch.zeros((len(batch), n), dtype=torch.float),
    }
    for i, x in enumerate(batch):
        k = len(x["input_ids"])
        out["input_ids"][i, :k] = torch.tensor(x["input_ids"])
        out["attention_mask"][i, :k] = 1
        if not x.get("padding", False):
            out["labels"][i, :k] = torch.tensor(x["labels"])
            out["weights"][i, :k] = torch.tensor(x["weights"])
    if "step_denominator" in batch[0]:
        out["step_denominator"] = torch.tensor(float(batch[0]["step_denominator"]))
        out["step_end"] = torch.tensor(bool(batch[0]["step_end"]))
        out["real_rows"] = torch.tensor(sum(not x["padding"] for x in batch))
    return out
