"""Training input, our way versus fixed length buckets, on the same examples and model.

  (a) ours: length-grouped batches (``LengthGroupedSampler``) padded to their longest sequence;
  (b) buckets: random batches, every sequence padded to the smallest of ``--buckets`` that
      holds the batch's longest (as the reference code pads to fixed lengths).

First checks that the loss per token over all examples is the same both ways (the padding is
masked out), then trains ``--steps`` steps each way from the same weights (AdamW; bf16
autocast where the CPU computes bf16 natively, else fp32, as ``--precision auto``; the tiny model)
and prints real tokens/s of each and the ratio (b -> a).

    python scripts/bench_train.py                   # 1024 word_sort rationales, 40 steps of 16
"""

from __future__ import annotations

import argparse
import copy
import random
import time

import torch

from tripost.hardware import fast_bf16
from tripost.models.tiny import build_tiny_model, train_tokenizer
from tripost.tasks import get_task
from tripost.training.data import EncodedDataset, TrainExample, collate
from tripost.training.sharding import LengthGroupedSampler
from tripost.training.loss import IGNORE, weighted_token_loss


def bucket_collate(batch, pad_id: int, buckets: list[int]):
    out = collate(batch, pad_id)
    n = out["input_ids"].size(1)
    target = next((b for b in buckets if b >= n), n)
    extra = target - n
    if extra:
        pads = {"input_ids": pad_id, "attention_mask": 0, "labels": IGNORE, "weights": 0.0}
        for k, v in pads.items():
            out[k] = torch.cat([out[k], torch.full((out[k].size(0), extra), v, dtype=out[k].dtype)], dim=1)
    return out


def batches(dataset, order: list[int], batch_size: int, make) -> list[dict]:
    return [make([dataset[i] for i in order[k:k + batch_size]]) for k in range(0, len(order), batch_size)]


def loss_sum(model, batch) -> tuple[float, int]:
    """The summed per-token loss of a batch and its number of loss tokens."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    n = int((batch["labels"][:, 1:] != IGNORE).sum())
    return float(weighted_token_loss(logits, batch["labels"], batch["weights"])) * n, n


def train(model, data: list[dict], steps: int, bf16: bool) -> tuple[float, int]:
    """Seconds and real (unpadded) tokens of ``steps`` optimizer steps over ``data``."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    tokens, start = 0, time.perf_counter()
    for step in range(steps):
        batch = data[step % len(data)]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        loss = weighted_token_loss(logits, batch["labels"], batch["weights"])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    return time.perf_counter() - start, tokens


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--buckets", default="128,256,512,1024")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                        help="auto: bf16 autocast where the CPU computes bf16 natively (as a run's precision: auto)")
    args = parser.parse_args(argv)
    bf16 = args.precision == "bf16" or args.precision == "auto" and fast_bf16("cpu")
    buckets = [int(b) for b in args.buckets.split(",")]

    task = get_task("word_sort")
    cells = task.seen_cells()
    qs = task.generate(cells, -(-args.examples // len(cells)), seed=5)[: args.examples]
    examples = [TrainExample(task.prompt(e.question) + task.gold_attempt(e.question), len(task.prompt(e.question))) for e in qs]
    tokenizer = train_tokenizer([e.text for e in examples], vocab_size=512)
    model = build_tiny_model(tokenizer, hidden_size=128, num_layers=2, num_heads=4, intermediate_size=512,
                             max_position_embeddings=2048, seed=0)
    data = EncodedDataset(examples, tokenizer, max_length=1024, mask_prompt=True, section_weight=1.0)
    pad = tokenizer.pad_token_id
    grouped = batches(data, list(LengthGroupedSampler(data.lengths(), args.batch, seed=0)), args.batch,
                      lambda b: collate(b, pad))
    order = list(range(len(data)))
    random.Random(0).shuffle(order)
    bucketed = batches(data, order, args.batch, lambda b: bucket_collate(b, pad, buckets))

    model.eval()
    with torch.no_grad():
        per_token = []
        for data_ in (grouped, bucketed[: len(grouped)]):
            sums = [loss_sum(model, b) for b in data_]
            per_token.append(sum(s for s, _ in sums) / sum(n for _, n in sums))
    t_ours, n_ours = train(copy.deepcopy(model), grouped, args.steps, bf16)
    t_buck, n_buck = train(copy.deepcopy(model), bucketed, args.steps, bf16)
    padded = lambda d: sum(b["input_ids"].numel() for b in d)  # noqa: E731
    print(f"{len(data)} word_sort rationales ({data.num_tokens()} tokens), batch {args.batch}, {args.steps} steps, "
          f"{'bf16 autocast' if bf16 else 'fp32'}, tiny model (128 hidden, 2 layers)")
    print(f"loss per token at the start: ours {per_token[0]:.6f}, buckets {per_token[1]:.6f}")
    print("| way | padded tokens per epoch | seconds | real tokens/s |\n|---|---|---|---|")
    print(f"| buckets {buckets} | {padded(bucketed)} | {t_buck:.1f} | {n_buck / t_buck:.0f} |")
    print(f"| ours: length-grouped, dynamic padding | {padded(grouped)} | {t_ours:.1f} | {n_ours / t_ours:.0f} |")
    print(f"speed-up: {(n_ours / t_ours) / (n_buck / t_buck):.1f}x in real tokens/s")
    if abs(per_token[0] - per_token[1]) > 1e-4 * abs(per_token[1]):
        raise SystemExit("error: the loss per token differs between the two ways")


if __name__ == "__main__":
    main()
