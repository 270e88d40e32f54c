"""The stages of a run: train, evaluate, collect, and the rows they make (ft rationale, the
baselines, TriPosT iterations). The recipe (tripost/recipe.py) calls them in order.

Each stage runs once (tripost/stage.py): its result in the run dir means a finished run did it,
and a resumed run reads it back. Tasks own questions and checking, experts own feedback and
improvement, ``editing``/``postprocess``/``loop`` own collection, ``training`` the loss and the
trainer, ``inference``/``evaluation`` scoring: a stage only puts them together.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig
from tqdm.auto import tqdm

from tripost.hardware import resolve_dtype
from tripost.io import atomic_dir, read_jsonl, write_json, write_jsonl
from tripost.questions import gold_questions, rationale_training_set, window_of
from tripost.results import Results
from tripost.rollout import Policy, Sampling
from tripost.rollout.engines import generation_device, generation_workers, open_engine
from tripost.rollout.lazy import LazyPolicy
from tripost.stage import once, once_rows
from tripost.tasks import Example, Task
from tripost.tracking import log_to_trackers
from tripost.training.data import TrainExample

log = logging.getLogger("tripost")


@dataclass
class Run:
    """What every stage of one run works with."""

    cfg: DictConfig
    task: Task
    train: list[Example]
    test: list[Example]
    dir: Path
    results: Results
    loggers: list
    cluster: Any = None  # where worker groups and generation shards run (tripost/cluster); None = this process

    @contextmanager
    def generation(self, model_dir: str | Path, phase_dir: Path) -> Iterator[Policy]:
        """The policy of ``model_dir`` for one generation phase (the ``rollout`` engine), opened on
        first use and closed when the phase ends, so its memory (or its server process) is gone
        before training starts. In-process engines load the model in ``model.generation_dtype``
        (``auto``: bfloat16 where the hardware computes it natively); training reloads fp32."""
        cfg = self.cfg

        def open_policy() -> Policy:
            from hydra.utils import instantiate
            from omegaconf import OmegaConf

            device = generation_device(cfg.rollout.device)
            dtype = resolve_dtype(cfg.model.generation_dtype, device)
            workers = generation_workers(cfg.rollout.workers, device)
            if workers > 1:  # one engine per device, each taking whole batches (tripost/rollout/sharded.py)
                from tripost.cluster.local import LocalCluster
                from tripost.rollout.sharded import ShardedPolicy

                engine = OmegaConf.to_container(cfg.rollout.engine, resolve=True)
                cluster = self.cluster or LocalCluster()
                shards = cluster.shards(workers, engine, str(model_dir), batch_size=cfg.eval.batch_size, dtype=dtype,
                                        device=device)
                return ShardedPolicy(shards, cfg.eval.batch_size)
            return open_engine(instantiate(cfg.rollout.engine, _convert_="all"), model_dir,
                               batch_size=cfg.eval.batch_size, dtype=dtype, device=device,
                               log_path=phase_dir / "generation_server.log")

        policy = LazyPolicy(open_policy)
        try:
            yield policy
        finally:
            policy.close()


# ---------------------------------------------------------------------------- building blocks
def adapter_settings(cfg: DictConfig) -> dict[str, Any]:
    """What a training stage trains: the whole model, or a LoRA/QLoRA adapter (model.adapter, model.lora)."""
    from omegaconf import OmegaConf

    adapter = cfg.model.get("adapter", "none")
    lora = cfg.model.get("lora")
    return {"adapter": adapter, "lora": OmegaConf.to_container(lora, resolve=True) if lora is not None else None}


def save_merged(cfg: DictConfig) -> bool:
    return cfg.model.get("adapter", "none") != "none" and bool(cfg.model.lora.get("save_merged", False))


def train(run: Run, start_dir: str | Path, examples: list[TrainExample], train_cfg, out_dir: Path, seed: int,
          section_weight: float = 1.0) -> dict[str, Any]:
    """Fine-tune the model in ``start_dir`` into ``out_dir/model`` (once; statistics in
    train_stats.json). With several devices the stage runs in a worker group of its own
    (tripost/training/worker.py), so this process is always the only one; otherwise here."""
    from tripost.training.worker import is_multi_device, run_in_worker_group

    def in_worker_group() -> dict[str, Any]:
        from tripost.cluster.local import LocalCluster

        with atomic_dir(out_dir / "model") as tmp:
            stats = run_in_worker_group(cluster=run.cluster or LocalCluster(), start_dir=start_dir, examples=examples,
                                        model=adapter_settings(run.cfg), save_merged=save_merged(run.cfg),
                                        train_cfg=train_cfg,
                                        trainer_cfg=run.cfg.trainer, callbacks_cfg=run.cfg.callbacks, seed=seed,
                                        out_dir=tmp, section_weight=section_weight, spec_dir=out_dir / "worker")
        log.info("trained %s on %d processes: %s", out_dir.name, stats.get("world_size", 0), stats)
        return stats

    def work() -> dict[str, Any]:
        import pytorch_lightning as pl

        from tripost.training.fit import fine_tune, load_for_training

        if is_multi_device(run.cfg.trainer, run.cluster):
            return in_worker_group()
        pl.seed_everything(seed, workers=True, verbose=False)
        model, tokenizer = load_for_training(start_dir, **adapter_settings(run.cfg))
        with atomic_dir(out_dir / "model") as tmp:
            stats = fine_tune(model, tokenizer, examples, sft=train_cfg, trainer_cfg=run.cfg.trainer,
                              callbacks_cfg=run.cfg.callbacks, loggers=run.loggers, seed=seed, out_dir=tmp,
                              section_weight=section_weight, save_merged=save_merged(run.cfg))
        del model  # the trained weights are saved; free the accelerator for the next generation phase
        log.info("trained %s: %s", out_dir.name, stats)
        return stats

    return once(out_dir / "train_stats.json", work)


def evaluate(run: Run, policy: Policy, out_dir: Path) -> dict[str, Any]:
    """Self-improvement inference on the test questions (once; eval.json, predictions.jsonl), with
    the diagnosis of the model's own feedback and updates (tripost/diagnosis.py)."""
    from tripost.diagnosis import HEADLINE, diagnose
    from tripost.inference import prediction_records, self_improve, si_metrics

    def work() -> dict[str, Any]:
        sampling = Sampling(do_sample=False, max_new_tokens=run.cfg.eval.max_new_tokens)
        start = time.perf_counter()
        with tqdm(total=len(run.test), desc=f"evaluate {out_dir.name}", unit="q") as bar:
            outputs = self_improve(policy, run.task, [e.question for e in run.test], sampling,
                                   run.cfg.eval.max_continuations, progress=bar.update)
        write_jsonl(out_dir / "predictions.jsonl", prediction_records(run.task, run.test, outputs))
        diagnosis = diagnose(run.task, run.test, outputs)
        metrics = {**si_metrics(run.task, run.test, outputs), **{k: diagnosis[k] for k in HEADLINE}}
        return {"metrics": metrics, "diagnosis": diagnosis, "seconds": round(time.perf_counter() - start, 1)}

    return once(out_dir / "eval.json", work)["metrics"]


def train_and_score(run: Run, method: str, start_dir: str | Path, examples: list[TrainExample], out_dir: Path,
                    seed: int, section_weight: float = 1.0) -> dict[str, Any]:
    """One round of training on collected examples (tripost.train settings) from ``start_dir``,
    then the evaluation of the saved model as the row ``method``."""
    train(run, start_dir, examples, run.cfg.tripost.train, out_dir, seed, section_weight)
    with run.generation(out_dir / "model", out_dir) as policy:
        metrics = evaluate(run, policy, out_dir)
    run.results.add(method, {**metrics, "train_examples": len(examples)})
    return metrics


def collect(run: Run, attempts, expert, out_dir: Path, seed: int, seen: set[str]) -> tuple[list[TrainExample], dict]:
    """Edited and post-processed training examples (once; train.jsonl, stats.json); ``seen``
    grows with their trajectory keys."""
    from tripost import loop

    window = window_of(run.cfg, run.train)
    examples_path = out_dir / "train.jsonl"

    def work() -> dict[str, Any]:
        examples, stats = loop.collect(attempts, run.task, expert, window, gold_questions(run.cfg, run.train),
                                       run.cfg.tripost, out_dir, seed, seen)
        write_jsonl(examples_path, [{"text": e.text, "prompt_chars": e.prompt_chars, "weight_start": e.weight_start,
                                     "kind": e.kind, "eos": e.eos} for e in examples])
        return stats

    fresh = not (out_dir / "stats.json").is_file()
    stats = once(out_dir / "stats.json", work)
    if not fresh:
        seen |= loop.collected_keys(out_dir)
    examples = [TrainExample(r["text"], r["prompt_chars"], r["kind"], r["eos"]) for r in read_jsonl(examples_path)]
    return examples, stats


# ---------------------------------------------------------------------------- rows
def gold(run: Run) -> None:
    """model=gold: the task's gold rationales, scored (must be 100)."""
    from tripost.rollout.gold import GoldPolicy

    run.results.add("gold", evaluate(run, GoldPolicy(run.task), run.dir / "gold"))


def ft_rationale(run: Run, start_dir: str, texts: list[TrainExample]) -> Path:
    """Supervised fine-tuning on the gold rationales (or a text-layout file's ready-made texts),
    scored from the saved checkpoint (what users get is what is scored). Returns the model dir."""
    out = run.dir / "ft_rationale"
    examples = texts or rationale_training_set(run.task, gold_questions(run.cfg, run.train))
    train(run, start_dir, examples, run.cfg.sft, out, run.cfg.seed)
    with run.generation(out / "model", out) as policy:
        run.results.add("ft_rationale", evaluate(run, policy, out))
    return out / "model"


def prompting(run: Run, start_dir: str) -> None:
    """Few-shot prompting of the starting model, with and without self-improvement examples."""
    from tripost.prompting import PrefixedPolicy, few_shot_prefix

    with run.generation(start_dir, run.dir / "prompting") as policy:
        for method, self_improve in (("prompting", False), ("prompting_si", True)):
            prefix = few_shot_prefix(run.task, run.cfg.baselines.prompting.shots, self_improve, seed=run.cfg.seed)
            run.results.add(method, evaluate(run, PrefixedPolicy(policy, prefix), run.dir / method))


def ft_si_demo(run: Run, expert, model_dir: Path) -> None:
    """"ft SI. demo" (SPEC 8): the expert writes the attempts too; the same editing and
    post-processing; one round of weighted training from the ft rationale model."""
    from tripost.loop import expert_attempts

    out_dir, window = run.dir / "ft_si_demo", window_of(run.cfg, run.train)
    examples, stats = collect(run, partial(expert_attempts, expert, window), expert, out_dir, run.cfg.seed, set())
    log.info("ft_si_demo: %s", stats)
    train_and_score(run, "ft_si_demo", model_dir, examples, out_dir, run.cfg.seed,
                    run.cfg.tripost.train.self_improve_section_weight)


def lmsi(run: Run, model_dir: Path) -> None:
    """LMSI (SPEC 8): self-consistent samples of the ft rationale model, one round of training from it."""
    from tripost.lmsi import self_consistent_examples
    from tripost.rollout.stops import after_final_response

    lc, tc, out_dir, window = run.cfg.baselines.lmsi, run.cfg.tripost, run.dir / "lmsi", window_of(run.cfg, run.train)

    def work() -> list[dict]:
        prompts = [run.task.prompt(e.question) for e in window for _ in range(lc.samples)]
        sampling = Sampling(do_sample=True, temperature=lc.temperature, top_k=tc.top_k, max_new_tokens=tc.max_new_tokens)
        with run.generation(model_dir, out_dir) as policy, tqdm(total=len(prompts), desc="lmsi samples", unit="sample") as bar:
            flat = [c.text for c in policy.complete(prompts, sampling, stop=after_final_response, progress=bar.update,
                                                    seed=run.cfg.seed + 7)]
        return [{"question": e.question, "samples": flat[i * lc.samples:(i + 1) * lc.samples]} for i, e in enumerate(window)]

    samples = [r["samples"] for r in once_rows(out_dir / "samples.jsonl", work)]
    examples, stats = self_consistent_examples(run.task, window, samples, lc.keep)
    write_json(out_dir / "stats.json", stats)
    log.info("lmsi: %s", stats)
    if not examples:
        log.warning("lmsi: no sample kept; no lmsi row")
        return
    train_and_score(run, "lmsi", model_dir, examples, out_dir, run.cfg.seed)


def tripost_iterations(run: Run, expert, model_dir: Path) -> None:
    """TriPosT iterations t = 1..T: collect edited trajectories, train from the previous model,
    evaluate. Stops early when an iteration collects fewer than min_data_length examples."""
    from tripost.loop import policy_attempts

    tc, window = run.cfg.tripost, window_of(run.cfg, run.train)
    seen: set[str] = set()
    for k in range(1, tc.num_iterations + 1):
        iter_dir = run.dir / f"iter_{k}"
        with run.generation(model_dir, iter_dir) as policy:
            examples, stats = collect(run, policy_attempts(policy, run.task, window, tc), expert, iter_dir,
                                      run.cfg.seed + 1000 * k, seen)
        log.info("iteration %d: %s", k, stats)
        log_to_trackers(run.loggers, f"{tc.name}/data", stats, step=k)
        if stats["examples"] < max(1, tc.min_data_length):
            log.warning("iteration %d: %d examples < min_data_length %d; the loop stops",
                        k, stats["examples"], tc.min_data_length)
            return
        metrics = train_and_score(run, f"{tc.name}_t{k}", model_dir, examples, iter_dir, run.cfg.seed + k,
                                  tc.train.self_improve_section_weight)
        model_dir = iter_dir / "model"
        log_to_trackers(run.loggers, f"{tc.name}/eval", {m: metrics[m] for m in metrics if m != "cells"}, step=k)
