"""The experiment, as a flat list of stages: data, model, ft rationale, evaluation, results.

This module only orchestrates. Tasks own questions and checking, ``training`` owns the loss
and the trainer, ``evaluation`` owns scoring.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from tripost.data import load_examples, to_paper_record
from tripost.evaluation import accuracy_table, score_attempts
from tripost.generation import Sampling
from tripost.io import write_json, write_jsonl
from tripost.models.policy import GoldPolicy, HFPolicy
from tripost.results import Results
from tripost.tasks import Example, Task, get_task
from tripost.training.data import TrainExample

log = logging.getLogger("tripost")


# ---------------------------------------------------------------------------- data
def _cells(task: Task, names, default) -> list:
    return [task.cell(n) for n in names] if names else default


def train_examples(cfg: DictConfig, task: Task) -> list[Example]:
    tc = cfg.task.train
    if tc.source == "file":
        examples = load_examples(task, tc.path, tc.format)
        wanted = set(tc.cells) if tc.cells else None
        return [e for e in examples if wanted is None or e.cell in wanted]
    cells = _cells(task, tc.cells, task.seen_cells())
    per_cell = -(-tc.size // len(cells))  # ceil: every cell gets the same number
    return task.generate(cells, per_cell, seed=cfg.seed + tc.seed_offset)[: tc.size]


def test_examples(cfg: DictConfig, task: Task, train: list[Example]) -> list[Example]:
    tc = cfg.task.test
    if tc.source == "file":
        examples = load_examples(task, tc.path, tc.format)
        wanted = set(tc.cells) if tc.cells else None
        return [e for e in examples if wanted is None or e.cell in wanted]
    cells = _cells(task, tc.cells, task.cells())
    train_questions = {e.question for e in train}
    # Draw extra questions so that dropping those seen in training still leaves per_cell each.
    pool = task.generate(cells, 2 * tc.per_cell, seed=cfg.seed + tc.seed_offset)
    out, count = [], {c.name: 0 for c in cells}
    for e in pool:
        if e.question not in train_questions and count[e.cell] < tc.per_cell:
            out.append(e)
            count[e.cell] += 1
    return out


def with_rationales(task: Task, examples: list[Example]) -> list[Example]:
    """Fill in gold rationales for examples loaded without one (e.g. BIG-Bench files)."""
    from dataclasses import replace

    return [e if e.rationale else replace(e, rationale=task.gold_rationale(e.question)) for e in examples]


def rationale_training_set(task: Task, examples: list[Example]) -> list[TrainExample]:
    out = []
    for e in examples:
        prompt = task.prompt(e.question)
        out.append(TrainExample(text=prompt + e.rationale, prompt_chars=len(prompt), kind="rationale"))
    return out


# ---------------------------------------------------------------------------- model
def build_policy(cfg: DictConfig, task: Task, train: list[Example], run_dir: Path):
    """The starting policy: a fresh tiny model, a pretrained HF model, or the gold policy."""
    if cfg.model.kind == "gold":
        return GoldPolicy(task)
    if cfg.model.kind == "hf":
        return HFPolicy.load(cfg.model.name_or_path, batch_size=cfg.eval.batch_size)
    from tripost.models.tiny import build_tiny_model, save_pretrained, train_tokenizer

    arch = cfg.model.arch
    texts = [task.prompt(e.question) + e.rationale for e in train]
    tokenizer = train_tokenizer(texts, vocab_size=arch.vocab_size)
    model = build_tiny_model(
        tokenizer,
        hidden_size=arch.hidden_size,
        num_layers=arch.num_layers,
        num_heads=arch.num_heads,
        intermediate_size=arch.intermediate_size,
        max_position_embeddings=arch.max_position_embeddings,
        seed=cfg.seed,
    )
    save_pretrained(model, tokenizer, run_dir / "init_model")
    n_params = sum(p.numel() for p in model.parameters())
    log.info("tiny model: %.2fM parameters, vocabulary %d", n_params / 1e6, len(tokenizer))
    return HFPolicy(model, tokenizer, batch_size=cfg.eval.batch_size)


def build_loggers(cfg: DictConfig) -> list:
    loggers = [instantiate(c) for c in (cfg.logger or {}).values() if c is not None and "_target_" in c]
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return loggers


# ---------------------------------------------------------------------------- evaluation
def evaluate_policy(policy, task: Task, test: list[Example], cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    import torch

    sampling = Sampling(do_sample=False, max_new_tokens=cfg.eval.max_new_tokens)
    prompts = [task.prompt(e.question) for e in test]
    start = time.perf_counter()
    with tqdm(total=len(prompts), desc="evaluate", unit="q") as bar:
        model = getattr(policy, "model", None)
        dtype = getattr(torch, cfg.model.generation_dtype)
        original = next(model.parameters()).dtype if model is not None else None
        if model is not None:
            model.to(dtype)
        try:
            attempts = policy.complete(prompts, sampling, progress=bar.update)
        finally:
            if model is not None:
                model.to(original)
    seconds = time.perf_counter() - start
    records = score_attempts(task, test, attempts)
    write_jsonl(out_dir / "predictions.jsonl", records)
    metrics = accuracy_table(task, test, [r["correct"] for r in records])
    write_json(out_dir / "eval.json", {**metrics, "seconds": round(seconds, 1)})
    return metrics


# ---------------------------------------------------------------------------- the run
def run(cfg: DictConfig) -> Results:
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task = get_task(cfg.task.name, **cfg.task.options)
    results = Results(run_dir, task.name, cfg.seed)

    train = with_rationales(task, train_examples(cfg, task))
    test = test_examples(cfg, task, train)
    write_jsonl(run_dir / "data" / "train.jsonl", [to_paper_record(e) for e in train])
    write_jsonl(run_dir / "data" / "test.jsonl", [to_paper_record(e) for e in test])
    log.info("data: %d training and %d test questions", len(train), len(test))

    policy = build_policy(cfg, task, train, run_dir)
    if isinstance(policy, GoldPolicy):
        metrics = evaluate_policy(policy, task, test, cfg, run_dir / "gold")
        results.add("gold", metrics)
        return results

    from tripost.models.tiny import save_pretrained
    from tripost.training.fit import fine_tune

    out = run_dir / "ft_rationale"
    loggers = build_loggers(cfg)
    try:
        stats = fine_tune(
            policy.model,
            policy.tokenizer,
            rationale_training_set(task, train),
            sft=cfg.sft,
            trainer_cfg=cfg.trainer,
            callbacks_cfg=cfg.callbacks,
            loggers=loggers,
            seed=cfg.seed,
            root_dir=str(out),
        )
        write_json(out / "train_stats.json", stats)
        log.info("ft_rationale trained: %s", stats)
        save_pretrained(policy.model, policy.tokenizer, out / "model")
        metrics = evaluate_policy(policy, task, test, cfg, out)
        results.add("ft_rationale", metrics)
    finally:
        for lg in loggers:
            finalize = getattr(lg, "finalize", None)
            if finalize:
                finalize("success")
    return results
