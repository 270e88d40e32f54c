"""Rollout generation, our way versus the naive way, on the same prompts and model.

  (a) ours: ``tripost.rollout.loop.LoopPolicy`` (``rollout=loop``): prompts sorted by length,
      batches of ``--batch``, left padding, a KV cache written in place, and a finished
      sequence leaves the batch (it stops costing compute);
  (b) naive: one ``model.generate`` call per prompt (KV cache, the same stop rules);
  (c) for reference, ``rollout=hf`` (``tripost.rollout.hf.GeneratePolicy``): the same
      batches through transformers' ``generate``, which keeps computing finished sequences
      until the batch is done.

Greedy decoding; in float32 the outputs must be identical (``--dtype bfloat16``, the default
run's generation dtype, may round differently in a batch). Prints tokens/s of each and the
ratios to (b).

    python scripts/bench_rollout.py --model outputs/word_sort/runs/<run>/ft_rationale/model
    python scripts/bench_rollout.py            # the newest default run's ft rationale model, if any
    python scripts/bench_rollout.py --sample   # rollouts as the loop samples them (temperature 1.0):
                                               # ours vs transformers' generate on the same batches
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from transformers import StoppingCriteriaList

from tripost.rollout import Sampling
from tripost.rollout.hf import GeneratePolicy, PerSequenceStop
from tripost.rollout.loop import LoopPolicy
from tripost.rollout.stops import after_final_response, cut, stop_rules
from tripost.tasks import get_task

ROOT = Path(__file__).resolve().parent.parent


def newest_model() -> Path | None:
    found = sorted(ROOT.glob("outputs/word_sort/runs/*/ft_rationale/model/config.json"))
    return found[-1].parent if found else None


def naive(model, tokenizer, prompts: list[str], sampling: Sampling) -> list[str]:
    rules = stop_rules(after_final_response)
    out = []
    for p in prompts:
        enc = tokenizer([p], return_tensors="pt", add_special_tokens=False)
        n = enc["input_ids"].size(1)
        ids = model.generate(**enc, max_new_tokens=sampling.max_new_tokens, do_sample=False, use_cache=True,
                             pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                             stopping_criteria=StoppingCriteriaList([PerSequenceStop(tokenizer, n, rules)]))
        out.append(cut(tokenizer.decode(ids[0, n:], skip_special_tokens=True), rules))
    return out


def count_tokens(tokenizer, texts: list[str]) -> int:
    return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="an HF model dir (default: the newest default run's)")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=400)
    parser.add_argument("--dtype", default="float32", help="float32 (outputs must match) | bfloat16 (as the default run)")
    parser.add_argument("--sample", action="store_true",
                        help="sample at temperature 1.0 (top-k 50) and compare ours with the hf engine only")
    args = parser.parse_args(argv)
    model_dir = args.model or newest_model()
    if model_dir is None:
        sys.exit("error: no model; pass --model <dir> or run `python run.py` first")
    torch.manual_seed(0)
    policy = LoopPolicy.load(model_dir, batch_size=args.batch, dtype=args.dtype)
    engines = {"loop": policy, "hf": GeneratePolicy(policy.model, policy.tokenizer, args.batch)}  # one model, two engines
    task = get_task("word_sort")
    questions = task.generate(task.seen_cells(), -(-args.prompts // len(task.seen_cells())), seed=123)[: args.prompts]
    prompts = [task.prompt(e.question) for e in questions]
    sampling = Sampling(do_sample=False, max_new_tokens=args.max_new_tokens)

    def timed(fn):
        start = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - start

    def texts(engine: str, how: Sampling, seed: int | None = None) -> list[str]:
        return [c.text for c in engines[engine].complete(prompts, how, seed=seed)]

    if args.sample:  # draws differ between the engines, so only speed is compared
        sampled = Sampling(do_sample=True, temperature=1.0, max_new_tokens=args.max_new_tokens)
        runs = {engine: timed(lambda: texts(engine, sampled, seed=0)) for engine in ("hf", "loop")}
        print(f"{len(prompts)} word_sort prompts, sampled at temperature 1.0, {args.dtype}, model {model_dir}")
        print("| way | seconds | tokens/s | completions | tokens |\n|---|---|---|---|---|")
        for engine, (out, seconds) in runs.items():
            tokens = count_tokens(policy.tokenizer, out)
            print(f"| {engine} engine | {seconds:.3f} | {tokens / seconds:.0f} | {len(out)} | {tokens} |")
        print(f"speed-up of the loop over transformers' generate: {runs['hf'][1] / runs['loop'][1]:.1f}x")
        if any(len(out) != len(prompts) for out, _ in runs.values()):
            sys.exit("error: an engine did not return one completion per prompt")
        return

    ours, t_ours = timed(lambda: texts("loop", sampling))
    theirs, t_naive = timed(lambda: naive(policy.model, policy.tokenizer, prompts, sampling))
    hf, t_hf = timed(lambda: texts("hf", sampling))

    tokens = count_tokens(policy.tokenizer, ours)
    same = sum(a == b for a, b in zip(ours, theirs))
    same_hf = sum(a == b for a, b in zip(hf, theirs))
    print(f"{len(prompts)} word_sort prompts, greedy, {args.dtype}, max {args.max_new_tokens} new tokens, model {model_dir}")
    print("| way | seconds | tokens/s | vs naive | outputs identical to naive |\n|---|---|---|---|---|")
    print(f"| naive: one generate per prompt | {t_naive:.1f} | {tokens / t_naive:.0f} | 1.0x | - |")
    print(f"| transformers generate, batches of {args.batch} | {t_hf:.1f} | {tokens / t_hf:.0f} | "
          f"{t_naive / t_hf:.1f}x | {same_hf} of {len(prompts)} |")
    print(f"| ours: batches of {args.batch}, finished rows leave | {t_ours:.1f} | {tokens / t_ours:.0f} | "
          f"{t_naive / t_ours:.1f}x | {same} of {len(prompts)} |")
    print(f"speed-up: {t_naive / t_ours:.1f}x; identical outputs: {same} of {len(prompts)} ({tokens} generated tokens)")
    if same != len(prompts) and args.dtype == "float32":
        sys.exit("error: the outputs differ")  # in bfloat16, batched and single rounding may differ


if __name__ == "__main__":
    main()
