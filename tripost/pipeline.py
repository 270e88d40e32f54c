"""The experiment, as a flat list of stages: data, model, ft rationale, the baselines (prompting, ft SI. demo, LMSI), TriPosT iterations.

This module only orchestrates. Tasks own questions and checking, experts own feedback and
improvement, ``editing``/``postprocess``/``loop`` own data collection, ``training`` owns the
loss and the trainer, ``inference``/``evaluation`` own scoring.

Every stage leaves its result in the run dir, written atomically, and a stage whose result is
there is skipped: ``resume=<run dir>`` continues a killed run after its last finished stage.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Iterator

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from tripost.data import Loaded, load_file, rationale_file_record, raw_pool_record, to_paper_record
from tripost.generation import Sampling
from tripost.hardware import describe as describe_hardware, resolve_dtype
from tripost.io import atomic_dir, read_json, read_jsonl, write_json, write_jsonl
from tripost.models.policy import GoldPolicy, HFPolicy, LazyPolicy, release_model
from tripost.results import Results
from tripost.tasks import Example, Task, get_task
from tripost.tasks.base import as_attempt
from tripost.training.data import TrainExample

log = logging.getLogger("tripost")


# ---------------------------------------------------------------------------- data
def _cells(task: Task, names, default) -> list:
    return [task.cell(n) for n in names] if names else default


def _from_file(cfg: DictConfig, task: Task, source, reports: dict[str, Any], name: str) -> Loaded:
    """Questions of a data file, kept to ``source.cells`` when given; what loading skipped and
    why goes to ``reports[name]`` (results.json) and the log."""
    loaded = load_file(task, source.path, source.format, split=source.split, strict=source.strict,
                       max_question_chars=cfg.task.max_question_chars)
    log.info("%s data: %s", name, loaded.report.summary())
    reports[name] = loaded.report.to_dict()
    if source.cells:
        keep = [i for i, e in enumerate(loaded.examples) if e.cell in set(source.cells)]
        loaded.examples = [loaded.examples[i] for i in keep]
        loaded.texts = [loaded.texts[i] for i in keep] if loaded.texts else []
    return loaded


def train_examples(cfg: DictConfig, task: Task, reports: dict[str, Any]) -> tuple[list[Example], list[TrainExample]]:
    """The training questions, and the ready-made training texts of a text-layout file (else [])."""
    tc = cfg.task.train
    if tc.source == "file":
        loaded = _from_file(cfg, task, tc, reports, "train")
        return loaded.examples, loaded.texts
    cells = _cells(task, tc.cells, task.seen_cells())
    per_cell = -(-tc.size // len(cells))  # ceil: every cell gets the same number
    return task.generate(cells, per_cell, seed=cfg.seed + tc.seed_offset)[: tc.size], []


def test_examples(cfg: DictConfig, task: Task, train: list[Example], reports: dict[str, Any]) -> list[Example]:
    tc = cfg.task.test
    if tc.source == "file":
        return _from_file(cfg, task, tc, reports, "test").examples
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
        out.append(TrainExample(text=prompt + as_attempt(e.rationale), prompt_chars=len(prompt), kind="rationale"))
    return out


# ---------------------------------------------------------------------------- model
def initial_model(cfg: DictConfig, task: Task, train: list[Example], run_dir: Path, extra_texts=()) -> str:
    """Where the starting model lives: a fresh tiny model saved to init_model/, or model.name_or_path."""
    if cfg.model.kind == "hf":
        return cfg.model.name_or_path
    init_dir = run_dir / "init_model"
    if (init_dir / "config.json").is_file():
        return str(init_dir)
    from tripost.models.tiny import build_tiny_model, save_pretrained, train_tokenizer

    arch = cfg.model.arch
    texts = [task.prompt(e.question) + as_attempt(e.rationale) for e in train] + [t.text for t in extra_texts]
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
    with atomic_dir(init_dir) as tmp:
        save_pretrained(model, tokenizer, tmp)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("tiny model: %.2fM parameters, vocabulary %d", n_params / 1e6, len(tokenizer))
    return str(init_dir)


def generation_device(device: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


@contextmanager
def generation_policy(cfg: DictConfig, model_dir: str | Path, phase_dir: Path) -> Iterator[LazyPolicy]:
    """The policy of ``model_dir`` for one generation phase, opened on first use and released
    when the phase ends, so its memory (or its server process) is gone before training starts.
    In-process engines load the model in ``model.generation_dtype`` (``auto``: bfloat16 where the
    hardware computes it natively, else float32; training reloads fp32);
    ``rollout.engine=vllm`` serves the checkpoint from a process of its own (log in ``phase_dir``)."""

    def open_policy():
        if cfg.rollout.engine == "vllm":
            from tripost.models.served import ServedPolicy, ServerProcess

            server = ServerProcess(list(cfg.rollout.server.command), model_dir, phase_dir / "generation_server.log",
                                   cfg.rollout.server.startup_timeout_s).__enter__()
            return ServedPolicy(server.url, batch_size=cfg.eval.batch_size,
                                concurrency=cfg.rollout.server.concurrency), server.__exit__
        device = generation_device(cfg.rollout.device)
        policy = HFPolicy.load(model_dir, batch_size=cfg.eval.batch_size,
                               dtype=resolve_dtype(cfg.model.generation_dtype, device), device=device,
                               engine=cfg.rollout.engine)
        return policy, partial(release_model, policy)

    policy = LazyPolicy(open_policy)
    try:
        yield policy
    finally:
        policy.close()


def build_loggers(cfg: DictConfig) -> list:
    loggers = [instantiate(c) for c in (cfg.logger or {}).values() if c is not None and "_target_" in c]
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    return loggers


def close_loggers(loggers: list, status: str = "success") -> None:
    for lg in loggers:
        lg.finalize(status)
        experiment = getattr(lg, "_experiment", None)
        if experiment is not None and hasattr(experiment, "finish"):
            # a wandb run is closed even when the job failed, marked failed (non-zero exit code)
            experiment.finish(exit_code=0 if status == "success" else 1)


def log_to_trackers(loggers: list, prefix: str, values: dict[str, Any], step: int) -> None:
    """The numbers of a stage (collection statistics, evaluation metrics), flattened as
    ``prefix/key/subkey``, to every logger (wandb charts them per iteration)."""
    flat: dict[str, float] = {}

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{key}/{k}")
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            flat[key] = float(node)

    walk(values, prefix)
    for lg in loggers:
        lg.log_metrics(flat, step=step)


# ---------------------------------------------------------------------------- stages
def train_stage(cfg, start_dir: str | Path, examples: list[TrainExample], train_cfg, out_dir: Path, loggers,
                seed: int, section_weight: float = 1.0) -> dict[str, Any] | None:
    """Fine-tune the model in ``start_dir`` into ``out_dir/model`` unless a finished run left it.

    Returns the training statistics, or None in the non-zero ranks of a multi-process run
    (they stop after training; rank 0 goes on).
    """
    import pytorch_lightning as pl

    from tripost.training.fit import fine_tune

    stats_path = out_dir / "train_stats.json"
    if stats_path.is_file() and (out_dir / "model" / "config.json").is_file():
        return read_json(stats_path)
    pl.seed_everything(seed, workers=True, verbose=False)
    start = HFPolicy.load(start_dir, dtype="float32")  # fp32 master weights; the trainer sets precision
    with atomic_dir(out_dir / "model") as tmp:
        stats = fine_tune(
            start.model,
            start.tokenizer,
            examples,
            sft=train_cfg,
            trainer_cfg=cfg.trainer,
            callbacks_cfg=cfg.callbacks,
            loggers=loggers,
            seed=seed,
            out_dir=tmp,
            section_weight=section_weight,
        )
    release_model(start)  # the trained weights are saved; free the accelerator for the next generation phase
    if stats["global_rank"] != 0:
        return None
    write_json(stats_path, stats)
    log.info("trained %s: %s", out_dir.name, stats)
    return stats


def evaluate_stage(policy, task: Task, test: list[Example], cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Self-improvement inference on the test questions; metrics and predictions saved."""
    from tripost.inference import prediction_records, self_improve, si_metrics

    eval_path = out_dir / "eval.json"
    if eval_path.is_file():
        return read_json(eval_path)["metrics"]
    sampling = Sampling(do_sample=False, max_new_tokens=cfg.eval.max_new_tokens)
    start = time.perf_counter()
    with tqdm(total=len(test), desc=f"evaluate {out_dir.name}", unit="q") as bar:
        outputs = self_improve(
            policy, task, [e.question for e in test], sampling, cfg.eval.max_continuations, progress=bar.update
        )
    seconds = time.perf_counter() - start
    write_jsonl(out_dir / "predictions.jsonl", prediction_records(task, test, outputs))
    metrics = si_metrics(task, test, outputs)
    write_json(eval_path, {"metrics": metrics, "seconds": round(seconds, 1)})
    return metrics


def data_stage(cfg: DictConfig, task: Task, run_dir: Path) -> tuple[list[Example], list[Example], list[TrainExample]]:
    """Training and test questions (and ready-made training texts of a text-layout file), saved
    in data/ (our layout, read back on resume) and in the paper's layouts (data/reference/)."""
    data = run_dir / "data"
    paths = {name: data / f"{name}.jsonl" for name in ("train", "test", "train_texts")}
    if paths["train"].is_file() and paths["test"].is_file():
        texts = [TrainExample(r["text"], r["prompt_chars"]) for r in read_jsonl(paths["train_texts"])] \
            if paths["train_texts"].is_file() else []
        return load_file(task, paths["train"], "jsonl", split=None, strict=True).examples, \
            load_file(task, paths["test"], "jsonl", split=None, strict=True).examples, texts
    reports: dict[str, Any] = {}
    train, texts = train_examples(cfg, task, reports)
    train = with_rationales(task, train)
    test = test_examples(cfg, task, train, reports)
    if reports:
        write_json(data / "load_report.json", reports)
    write_jsonl(paths["train"], [to_paper_record(e) for e in train])
    write_jsonl(paths["test"], [to_paper_record(e) for e in test])
    if texts:
        write_jsonl(paths["train_texts"], [{"text": t.text, "prompt_chars": t.prompt_chars} for t in texts])
    export_reference_layouts(task, train, test, data / "reference")
    return train, test, texts


def export_reference_layouts(task: Task, train: list[Example], test: list[Example], out: Path) -> None:
    """The run's questions in the paper's layouts (SPEC 9), for other tools and the reference code:
    a raw pool (training rows new_split "train", test rows "validation") and a rationale training file."""
    rows = [raw_pool_record(task, e, "train", i) for i, e in enumerate(train)]
    rows += [raw_pool_record(task, e, "validation", len(train) + i) for i, e in enumerate(test)]
    write_jsonl(out / f"{task.name}_raw.jsonl", rows)
    write_jsonl(out / f"{task.name}_rationale_train.jsonl", [rationale_file_record(task, e) for e in train])


def window_of(cfg: DictConfig, train: list[Example]) -> list[Example]:
    """The training questions attempted in each collection pass (tripost.window_size; null = all)."""
    return train[: cfg.tripost.window_size] if cfg.tripost.window_size else train


def train_and_score(cfg, method: str, start_dir: str | Path, examples: list[TrainExample], out_dir: Path, task: Task,
                    test, results: Results, loggers, seed: int, section_weight: float = 1.0) -> dict[str, Any] | None:
    """One round of training on collected examples (tripost.train settings) from ``start_dir``,
    then the evaluation of the saved model as the row ``method``. None in the non-zero ranks of
    a multi-process run (they stop after training)."""
    if train_stage(cfg, start_dir, examples, cfg.tripost.train, out_dir, loggers, seed, section_weight=section_weight) is None:
        return None
    with generation_policy(cfg, out_dir / "model", out_dir) as policy:
        metrics = evaluate_stage(policy, task, test, cfg, out_dir)
    results.add(method, {**metrics, "train_examples": len(examples)})
    return metrics


def collect_stage(attempts, task: Task, expert, window, train, tc, out_dir: Path, seed: int,
                  seen: set[str]) -> tuple[list[TrainExample], dict[str, Any]]:
    """Edited and post-processed training examples in ``out_dir`` (train.jsonl, stats.json),
    read back when a finished run left them; ``seen`` grows with their trajectory keys."""
    from tripost.loop import collect, collected_keys

    stats_path, examples_path = out_dir / "stats.json", out_dir / "train.jsonl"
    if stats_path.is_file() and examples_path.is_file():
        seen |= collected_keys(out_dir)
        examples = [TrainExample(r["text"], r["prompt_chars"], r["kind"], r["eos"]) for r in read_jsonl(examples_path)]
        return examples, read_json(stats_path)
    examples, stats = collect(attempts, task, expert, window, train, tc, out_dir, seed, seen)
    write_jsonl(examples_path, [
        {"text": e.text, "prompt_chars": e.prompt_chars, "weight_start": e.weight_start, "kind": e.kind, "eos": e.eos}
        for e in examples
    ])
    write_json(stats_path, stats)
    return examples, stats


def ft_si_demo_stage(cfg, task: Task, expert, train, test, model_dir: Path, run_dir: Path, results: Results, loggers) -> bool:
    """"ft SI. demo" (SPEC 8): the expert writes the attempts too; the same editing and
    post-processing; one round of weighted training from the ft rationale model. False when
    a non-zero rank of a multi-process run is done."""
    from tripost.loop import expert_attempts

    tc, out_dir, window = cfg.tripost, run_dir / "ft_si_demo", window_of(cfg, train)
    examples, stats = collect_stage(partial(expert_attempts, expert, window), task, expert,
                                    window, train, tc, out_dir, cfg.seed, set())
    log.info("ft_si_demo: %s", stats)
    return train_and_score(cfg, "ft_si_demo", model_dir, examples, out_dir, task, test, results, loggers, cfg.seed,
                           section_weight=tc.train.self_improve_section_weight) is not None


def prompting_stage(cfg, task: Task, test, start_dir: str, run_dir: Path, results: Results) -> None:
    """Few-shot prompting of the starting model, with and without self-improvement examples."""
    from tripost.prompting import PrefixedPolicy, few_shot_prefix

    with generation_policy(cfg, start_dir, run_dir / "prompting") as policy:
        for method, self_improve in (("prompting", False), ("prompting_si", True)):
            out_dir = run_dir / method
            prefix = few_shot_prefix(task, cfg.baselines.prompting.shots, self_improve, seed=cfg.seed)
            results.add(method, evaluate_stage(PrefixedPolicy(policy, prefix), task, test, cfg, out_dir))


def lmsi_stage(cfg, task: Task, train, test, model_dir: Path, run_dir: Path, results: Results, loggers) -> bool:
    """LMSI (SPEC 8): self-consistent samples of the ft rationale model, one round of training
    from it. False when a non-zero rank of a multi-process run is done."""
    from tripost.generation import after_final_response
    from tripost.lmsi import self_consistent_examples

    lc, tc, out_dir, window = cfg.baselines.lmsi, cfg.tripost, run_dir / "lmsi", window_of(cfg, train)
    samples_path, stats_path = out_dir / "samples.jsonl", out_dir / "stats.json"
    if samples_path.is_file():
        samples = [r["samples"] for r in read_jsonl(samples_path)]
    else:
        prompts = [task.prompt(e.question) for e in window for _ in range(lc.samples)]
        sampling = Sampling(do_sample=True, temperature=lc.temperature, top_k=tc.top_k, max_new_tokens=tc.max_new_tokens)
        with generation_policy(cfg, model_dir, out_dir) as policy, \
                tqdm(total=len(prompts), desc="lmsi samples", unit="sample") as bar:
            flat = policy.complete(prompts, sampling, stop=after_final_response, progress=bar.update, seed=cfg.seed + 7)
        samples = [flat[i * lc.samples:(i + 1) * lc.samples] for i in range(len(window))]
        write_jsonl(samples_path, [{"question": e.question, "samples": s} for e, s in zip(window, samples, strict=True)])
    examples, stats = self_consistent_examples(task, window, samples, lc.keep)
    write_json(stats_path, stats)
    log.info("lmsi: %s", stats)
    if not examples:
        log.warning("lmsi: no sample kept; no lmsi row")
        return True
    return train_and_score(cfg, "lmsi", model_dir, examples, out_dir, task, test, results, loggers, cfg.seed) is not None


def tripost_iterations(cfg, task: Task, expert, train, test, model_dir: Path, run_dir: Path, results: Results,
                       loggers) -> None:
    """TriPosT iterations t = 1..T: collect edited trajectories, train from the previous model,
    evaluate. Stops early when an iteration collects fewer than min_data_length examples."""
    from tripost.loop import policy_attempts

    tc, window = cfg.tripost, window_of(cfg, train)
    seen: set[str] = set()
    for k in range(1, tc.num_iterations + 1):
        iter_dir = run_dir / f"iter_{k}"
        with generation_policy(cfg, model_dir, iter_dir) as policy:
            examples, stats = collect_stage(policy_attempts(policy, task, window, tc), task, expert, window, train, tc,
                                            iter_dir, cfg.seed + 1000 * k, seen)
        log.info("iteration %d: %s", k, stats)
        log_to_trackers(loggers, f"{tc.name}/data", stats, step=k)
        if stats["examples"] < max(1, tc.min_data_length):
            log.warning("iteration %d: %d examples < min_data_length %d; the loop stops",
                        k, stats["examples"], tc.min_data_length)
            return
        metrics = train_and_score(cfg, f"{tc.name}_t{k}", model_dir, examples, iter_dir, task, test, results, loggers,
                                  cfg.seed + k, section_weight=tc.train.self_improve_section_weight)
        if metrics is None:
            return
        model_dir = iter_dir / "model"
        log_to_trackers(loggers, f"{tc.name}/eval", {m: metrics[m] for m in metrics if m != "cells"}, step=k)


# ---------------------------------------------------------------------------- the run
def expert_estimate(cfg: DictConfig, task: Task, train: list[Example], run_dir: Path) -> dict[str, Any]:
    """verifier.dry_run: the calls and cost the run's expert would make, saved and returned."""
    from tripost.experts.openai_expert import estimate_run

    tc = cfg.tripost
    estimate = estimate_run(cfg.verifier, task, len(window_of(cfg, train)), passes=tc.max_data_itr,
                            iterations=tc.num_iterations + int(cfg.baselines.ft_si_demo))
    write_json(run_dir / "expert_estimate.json", estimate)
    return estimate


def run(cfg: DictConfig) -> Results:
    """All stages in order. Raises BudgetExceeded when the expert's budget is spent, with every
    finished stage (and the expert's reply cache) saved: resume with a larger budget."""
    from tripost.experts import build_expert

    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task = get_task(cfg.task.name, **cfg.task.options)
    results = Results(run_dir, task.name, cfg.seed)

    train, test, train_texts = data_stage(cfg, task, run_dir)
    if (run_dir / "data" / "load_report.json").is_file():
        results.data = read_json(run_dir / "data" / "load_report.json")
    log.info("data: %d training and %d test questions", len(train), len(test))

    if cfg.model.kind == "gold":
        results.add("gold", evaluate_stage(GoldPolicy(task), task, test, cfg, run_dir / "gold"))
        return results
    if cfg.verifier.get("dry_run"):
        estimate = expert_estimate(cfg, task, train, run_dir)
        print(f"dry run: about {estimate['calls']} expert calls, {estimate['prompt_tokens']} prompt and "
              f"{estimate['completion_tokens']} completion tokens, {estimate['cost_usd']} USD "
              f"(unpriced models: {estimate['unpriced_models'] or 'none'}); details in {run_dir / 'expert_estimate.json'}")
        return results

    log.info(describe_hardware(cfg.trainer.get("precision", "auto"), cfg.trainer.get("accelerator", "cpu"),
                               cfg.model.generation_dtype, generation_device(cfg.rollout.device)))
    # One expert for the whole run (its budget covers the run); built first, so that a missing
    # API key fails at start-up rather than after training.
    needs_expert = cfg.baselines.ft_si_demo or cfg.tripost.num_iterations > 0
    expert = build_expert(cfg.verifier, task, seed=cfg.seed) if needs_expert else None
    start_dir = initial_model(cfg, task, train, run_dir, train_texts)
    if cfg.baselines.prompting.enabled:
        prompting_stage(cfg, task, test, start_dir, run_dir, results)
    loggers = build_loggers(cfg)
    status = "failed"
    try:
        out = run_dir / "ft_rationale"
        # ft rationale trains on the gold rationales, or on a text-layout file's ready-made texts
        sft_examples = train_texts or rationale_training_set(task, train)
        if train_stage(cfg, start_dir, sft_examples, cfg.sft, out, loggers, cfg.seed) is None:
            status = "success"
            return results
        # Evaluate the saved checkpoint: what users get is what is scored.
        with generation_policy(cfg, out / "model", out) as policy:
            results.add("ft_rationale", evaluate_stage(policy, task, test, cfg, out))
        if cfg.baselines.ft_si_demo and not ft_si_demo_stage(cfg, task, expert, train, test, out / "model", run_dir,
                                                             results, loggers):
            status = "success"
            return results
        if cfg.baselines.lmsi.enabled and not lmsi_stage(cfg, task, train, test, out / "model", run_dir, results, loggers):
            status = "success"
            return results
        if cfg.tripost.num_iterations > 0:
            tripost_iterations(cfg, task, expert, train, test, out / "model", run_dir, results, loggers)
        status = "success"
    finally:
        close_loggers(loggers, status)
        if expert is not None:
            expert.close()
    return results
