"""One TriPosT iteration's data collection: rollout, interactive editing, post-processing.

Per pass (seed 40 + pass, as in the paper) the current model answers every question of the
window; each trajectory is edited with the expert; edited trajectories are de-duplicated
against everything collected before (earlier passes and iterations), split into turns and
re-balanced; gold examples are added. Passes repeat until ``max_data_length`` examples or
``max_data_itr`` passes. Each pass's rollouts and edits are files in ``iter_<k>/pass_<j>/``:
a resumed run reads them back instead of generating again.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from tqdm.auto import tqdm

from tripost.editing import DROPPED, EXPERT_ERROR, EditResult, edit_trajectory
from tripost.experts import Expert, ExpertError
from tripost.io import read_jsonl
from tripost.stage import once_rows
from tripost.postprocess import Counts, gold_examples, rebalance, split_into_turns
from tripost.rollout import Policy, Sampling
from tripost.rollout.stops import positive_feedback_done
from tripost.tasks import Example, Task
from tripost.training.data import TERMINAL, TrainExample
from tripost.trajectory import Turn

log = logging.getLogger("tripost")


def trajectory_key(question: str, turns: list[Turn]) -> str:
    """Identity of an edited trajectory, for exact de-duplication across passes and iterations."""
    return question + "\0" + "".join(f"{t.attempt}\0{t.feedback}\0" for t in turns)


def collected_keys(iter_dir: Path) -> set[str]:
    """Keys of the trajectories a finished iteration collected (read back on resume)."""
    keys = set()
    for path in sorted(iter_dir.glob("pass_*/edited.jsonl")):
        for r in read_jsonl(path):
            if r["status"] != DROPPED:
                keys.add(trajectory_key(r["question"], [Turn(**t) for t in r["turns"]]))
    return keys


def rollout(policy: Policy, task: Task, window: list[Example], sampling: Sampling, seed: int, path: Path) -> list[str]:
    """The model's trajectories for the window (``path``: rollouts.jsonl, once)."""
    def work() -> list[dict]:
        prompts = [task.prompt(e.question) for e in window]
        with tqdm(total=len(prompts), desc=f"rollout {path.parent.name}", unit="q") as bar:
            done = policy.complete(prompts, sampling, stop=positive_feedback_done, progress=bar.update, seed=seed)
        return [{"question": e.question, "output": c.text} for e, c in zip(window, done, strict=True)]

    return [r["output"] for r in once_rows(path, work)]


def expert_attempts(expert: Expert, window: list[Example], path: Path, seed: int) -> list[str | None]:
    """The expert's own attempts for the window ("ft SI. demo"; ``path``: rollouts.jsonl, once)."""
    def attempt(question: str) -> str | None:
        try:
            return expert.attempt(question)
        except ExpertError:
            return None  # no attempt: the trajectory is dropped as an expert error, the rest go on

    def work() -> list[dict]:
        expert.reseed(seed)
        with ThreadPoolExecutor(max_workers=max(1, expert.concurrency)) as pool:
            outputs = list(tqdm(pool.map(attempt, [e.question for e in window]), total=len(window),
                                desc=f"expert attempts {path.parent.name}", unit="q"))
        expert.raise_if_unreachable()  # a dead expert's missing attempts must not be recorded as dropped
        return [{"question": e.question, "output": o} for e, o in zip(window, outputs, strict=True)]

    return [r["output"] for r in once_rows(path, work)]


def edit_all(task, expert, window, outputs, cfg, path: Path) -> list[EditResult]:
    """Every trajectory of a pass edited (``path``: edited.jsonl, once)."""
    rows = once_rows(path, lambda: _edit_rows(task, expert, window, outputs, cfg, path))
    return [EditResult(r["status"], [Turn(**t) for t in r["turns"]], r["reason"], r["edit_point"], r["updates"])
            for r in rows]


def _edit_rows(task, expert, window, outputs, cfg, path: Path) -> list[dict]:
    def edit(pair):
        e, o = pair
        if o is None:
            return EditResult(DROPPED, reason=EXPERT_ERROR)
        return edit_trajectory(task, expert, e.question, e.answer, o, cfg.max_updates, cfg.max_attempt_chars,
                               filter_failed=cfg.filter_failed_edits)

    # An API expert waits on the network: edit that many trajectories at once (threads suffice).
    with ThreadPoolExecutor(max_workers=max(1, expert.concurrency)) as pool:
        results = list(tqdm(pool.map(edit, zip(window, outputs, strict=True)), total=len(window),
                            desc=f"edit {path.parent.name}", unit="traj", disable=expert.concurrency <= 1))
    # Before the pass is recorded: a pass that lost its trajectories to a dead expert stops the
    # run unrecorded (ExpertUnreachable), so that a resumed run edits them again.
    expert.raise_if_unreachable()
    return [
        {
            "question": e.question,
            "status": r.status,
            "reason": r.reason,
            "edit_point": r.edit_point,
            "updates": r.updates,
            "turns": [{"attempt": t.attempt, "feedback": t.feedback} for t in r.turns],
        }
        for e, r in zip(window, results, strict=True)
    ]


def collect(
    attempts: Callable[[Path, int], list[str]],
    task: Task,
    expert: Expert,
    window: list[Example],
    gold_pool: list[Example],
    cfg,
    iter_dir: Path,
    seed: int,
    seen: set[str],
) -> tuple[list[TrainExample], dict[str, Any]]:
    """Training examples of one iteration and its statistics (counts kept and dropped by reason).

    ``attempts(path, seed)`` gives the trajectories of one pass, one per window question, saved
    at ``path`` (see ``policy_attempts``); ``seen`` holds the trajectory keys of earlier
    iterations and grows with this one's.
    """
    expert.reset_usage()  # the expert's calls, tokens and cost are reported per collection
    status: Counter = Counter()
    dropped: Counter = Counter()
    examples: list[TrainExample] = []
    present: set[str] = set()  # example texts of this iteration, for exact de-duplication
    duplicates = passes = 0
    seconds: Counter = Counter()  # wall time of this call (a resumed pass reads its files back)
    for j in range(cfg.max_data_itr):
        passes += 1
        pass_dir = iter_dir / f"pass_{j}"
        t0 = time.perf_counter()
        outputs = attempts(pass_dir / "rollouts.jsonl", seed + 40 + j)
        t1 = time.perf_counter()
        expert.reseed(seed + 40 + j)
        results = edit_all(task, expert, window, outputs, cfg, pass_dir / "edited.jsonl")
        seconds["attempts"] += t1 - t0
        seconds["editing"] += time.perf_counter() - t1
        new: list[TrainExample] = []
        for ex, res in zip(window, results, strict=True):
            status[res.status] += 1
            if res.status == DROPPED:
                dropped[res.reason] += 1
                continue
            key = trajectory_key(ex.question, res.turns)
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            new += [e for e in split_into_turns(task, ex.question, res) if e.text not in present]
        rng = random.Random(seed + 40 + j)
        kept = rebalance(new, cfg.improve_data_ratio, rng)
        n_terminal = sum(1 for e in kept if e.kind == TERMINAL)
        present.update(e.text for e in kept)
        kept += gold_examples(task, gold_pool, round(n_terminal * cfg.gold_ratio), present, rng)
        examples += kept
        log.info("pass %d: %d new examples (%s)", j, len(kept), Counts.of(kept))
        if len(examples) >= cfg.max_data_length:
            break
    examples = examples[: cfg.max_data_length]
    counts = Counts.of(examples)
    stats = {
        "window": len(window),
        "passes": passes,
        "trajectories": dict(status),
        "dropped_by_reason": dict(dropped),
        "duplicates": duplicates,
        "examples": len(examples),
        "improvement": counts.improvement,
        "terminal": counts.terminal,
        "gold": counts.gold,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    usage = expert.usage()
    if usage:
        stats["expert"] = usage
    return examples, stats


def policy_attempts(policy, task: Task, window: list[Example], cfg) -> Callable[[Path, int], list[str]]:
    """Rollouts of the current model with the iteration's sampling settings, for ``collect``.
    Saved rollouts are read back, so a lazy policy loads nothing on a full resume."""
    sampling = Sampling(
        do_sample=cfg.do_sample, temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
        max_new_tokens=cfg.max_new_tokens,
    )

    return lambda path, seed: rollout(policy, task, window, sampling, seed, path)
