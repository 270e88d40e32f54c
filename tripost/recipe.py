"""The experiment, as a flat list of stages: questions, model, ft rationale, the baselines
(prompting, ft SI. demo, LMSI), TriPosT iterations. This module only orchestrates; the stages
live in tripost/stages.py, each run once (tripost/stage.py), so ``resume=<run dir>`` continues
a killed run after its last finished stage.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

from omegaconf import DictConfig

from tripost import questions, stages
from tripost.cluster import Cluster
from tripost.config import build
from tripost.hardware import describe as describe_hardware
from tripost.results import Results
from tripost.tasks import build_task
from tripost.tasks.base import as_attempt
from tripost.tracking import trackers

log = logging.getLogger("tripost")


def run(cfg: DictConfig) -> Results:
    """All stages in order. Raises BudgetExceeded when the expert's budget is spent, with every
    finished stage (and the expert's reply cache) saved: resume with a larger budget."""
    from tripost.experts import build_expert

    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task = build_task(cfg.task)
    model = build(cfg.model, "model")  # a model source: tiny, pretrained or gold
    train, test, texts, reports = questions.prepare(cfg, task, run_dir)
    results = Results(run_dir, task.name, cfg.seed, data=reports, eval_set=cfg.eval.set)
    log.info("data: %d training and %d test questions", len(train), len(test))

    if model.reference:
        stages.gold(stages.Run(cfg, task, train, test, run_dir, results, loggers=[]))
        return results
    if cfg.verifier.get("dry_run"):
        dry_run(cfg, task, train, run_dir)
        return results

    log.info(describe_hardware(cfg.trainer.get("precision", "auto"), cfg.trainer.get("accelerator", "cpu"),
                               cfg.model.generation_dtype, cfg.rollout.device))
    # One expert for the whole run (its budget covers the run); built before any training, so
    # that a missing API key fails at start-up.
    needs_expert = cfg.baselines.ft_si_demo or cfg.tripost.num_iterations > 0
    expert = build_expert(cfg.verifier, task, seed=cfg.seed) if needs_expert else None
    tokenizer_texts = [task.prompt(e.question) + as_attempt(e.rationale) for e in questions.gold_questions(cfg, train)] + [t.text for t in texts]
    start_dir = model.start_checkpoint(run_dir, tokenizer_texts, cfg.seed)
    if model.chat_template:  # the policy's prompts through its chat template; the expert keeps the plain task
        from tripost.models.chat import with_chat_template

        task = with_chat_template(task, start_dir)

    with trackers(cfg) as loggers, (expert or nullcontext()), placed(cfg) as cluster:
        run = stages.Run(cfg, task, train, test, run_dir, results, loggers, cluster)
        if cfg.baselines.prompting.enabled:
            stages.prompting(run, start_dir)
        ft_model = stages.ft_rationale(run, start_dir, texts)
        if cfg.baselines.ft_si_demo:
            stages.ft_si_demo(run, expert, ft_model)
        if cfg.baselines.lmsi.enabled:
            stages.lmsi(run, ft_model)
        stages.tripost_iterations(run, expert, ft_model)
    return results


@contextmanager
def placed(cfg: DictConfig) -> Iterator[Cluster]:
    """The run's cluster (``cluster`` group), closed when the run ends: served ranks learn the
    driver's exit code (0, or 1 when the run failed)."""
    cluster = build(cfg.cluster, "cluster")
    code = 1
    try:
        yield cluster
        code = 0
    finally:
        cluster.close(code)


def dry_run(cfg: DictConfig, task, train, run_dir: Path) -> None:
    """verifier.dry_run: the calls and cost the run's expert would make, printed and saved."""
    from tripost.experts.openai_expert import estimate_run
    from tripost.io import write_json

    tc = cfg.tripost
    estimate = estimate_run(cfg.verifier, task, len(questions.window_of(cfg, train)), passes=tc.max_data_itr,
                            iterations=tc.num_iterations + int(cfg.baselines.ft_si_demo))
    write_json(run_dir / "expert_estimate.json", estimate)
    print(f"dry run: about {estimate['calls']} expert calls, {estimate['prompt_tokens']} prompt and "
          f"{estimate['completion_tokens']} completion tokens, {estimate['cost_usd']} USD "
          f"(unpriced models: {estimate['unpriced_models'] or 'none'}); details in {run_dir / 'expert_estimate.json'}")
