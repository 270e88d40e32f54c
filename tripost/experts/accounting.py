"""What the OpenAI expert spends: usage per role, the budget, and the dry-run estimate of a run.

``Accounting`` counts per role real requests (every try), cache hits, retries, errors by kind,
tokens and cost from ``prices`` (USD per 1M tokens, per model; a model without a price costs 0
and is listed as unpriced). The tries, retries and failed tries are counted by the HTTP client
(``tripost.experts.client``), the rest by the expert. ``snapshot()`` is what ``stats.json``
records; ``reset()`` starts a new period, while the budget covers every period. With a
``spend_path`` (``verifier.spend_path``, in the run dir) the spend is the run's, not the
process's: loaded at start and saved after every paid reply, so a resumed run does not spend
its budget again.

``Reachability`` counts, per editing pass, the requests sent and those that never got an
answer, for ``OpenAIExpert.raise_if_unreachable``.

``estimate_run`` counts the calls, tokens and cost of a run without calling anything (the
pipeline's dry run, ``verifier.dry_run=true``).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tripost.experts.prompts import ATT, FBK, IMP, PromptBuilder, approx_tokens, build_demos, render_fbk_reply, request_text
from tripost.experts.settings import price_table, role_settings, verifier_config
from tripost.io import write_json
from tripost.tasks import Task

ROLES = (FBK, IMP, ATT)  # ATT: the expert's own attempts, for the ft SI. demo baseline


@dataclass
class RoleUsage:
    calls: int = 0  # real API requests, every try counted
    cache_hits: int = 0
    retries: int = 0
    failed: int = 0  # requests that ended in ExpertError
    errors: Counter = field(default_factory=Counter)  # failed tries and unusable replies, by kind
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "cache_hits": self.cache_hits,
            "retries": self.retries,
            "failed": self.failed,
            "errors": dict(sorted(self.errors.items())),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
        }


def _sum_usage(parts: list[RoleUsage]) -> RoleUsage:
    total = RoleUsage()
    for u in parts:
        total.calls += u.calls
        total.cache_hits += u.cache_hits
        total.retries += u.retries
        total.failed += u.failed
        total.errors.update(u.errors)
        total.prompt_tokens += u.prompt_tokens
        total.completion_tokens += u.completion_tokens
        total.cost_usd += u.cost_usd
    return total


def cost_usd(prices: dict[str, tuple[float, float]], model: str, prompt_tokens: float, completion_tokens: float) -> float:
    price = prices.get(model)
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6 if price else 0.0


def load_spend(path: str | None) -> float:
    """USD a run spent before this process (its ``spend_path``); 0 for a new run.

    ValueError on a file that is not a spend record: guessing 0 would silently lift the budget."""
    if not path:
        return 0.0
    try:
        with open(path, encoding="utf-8") as f:
            return float(json.load(f)["spent_usd"])
    except FileNotFoundError:
        return 0.0
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"cannot read the run's expert spend from {path}: {e}") from None


class Accounting:
    """Thread-safe counters per role for the current period, and the cost spent over all periods
    (over the whole run, earlier processes included, when ``spend_path`` keeps it)."""

    def __init__(self, prices: dict[str, tuple[float, float]], models: dict[str, str], max_cost_usd: float | None,
                 spend_path: str | None = None):
        self.prices, self.models, self.max_cost_usd = prices, models, max_cost_usd
        self.spend_path = spend_path
        self._lock = threading.Lock()
        self._roles = {role: RoleUsage() for role in ROLES}
        self._unpriced: set[str] = set()
        self.spent_usd = load_spend(spend_path)  # never reset: the budget covers the whole run

    def count(self, role: str, what: str, n: int = 1) -> None:
        with self._lock:
            setattr(self._roles[role], what, getattr(self._roles[role], what) + n)

    def error(self, role: str, kind: str) -> None:
        with self._lock:
            self._roles[role].errors[kind] += 1

    def tokens(self, role: str, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        cost = cost_usd(self.prices, model, prompt_tokens, completion_tokens)
        with self._lock:
            usage = self._roles[role]
            usage.prompt_tokens += prompt_tokens
            usage.completion_tokens += completion_tokens
            usage.cost_usd += cost
            self.spent_usd += cost
            if model not in self.prices:
                self._unpriced.add(model)
            if cost and self.spend_path:  # saved as it is spent: a killed run keeps what it paid
                write_json(self.spend_path, {"spent_usd": self.spent_usd, "max_cost_usd": self.max_cost_usd})

    def budget_spent(self) -> bool:
        with self._lock:
            return self.max_cost_usd is not None and self.spent_usd >= self.max_cost_usd

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            roles = {role: {"model": self.models[role], **u.as_dict()} for role, u in self._roles.items()}
            return {
                "total": _sum_usage(list(self._roles.values())).as_dict(),
                **roles,
                "unpriced_models": sorted(self._unpriced),
                "spent_usd_all_periods": round(self.spent_usd, 6),
                "max_cost_usd": self.max_cost_usd,
            }

    def reset(self) -> None:
        with self._lock:
            self._roles = {role: RoleUsage() for role in ROLES}
            self._unpriced = set()


# Kinds of a request's last failed try that mean no answer came at all (see client.py).
UNREACHABLE = ("connection", "timeout")


class Reachability:
    """Requests sent to the API since the last ``take``, and those that got no answer after
    their retries (by kind). Cache hits are not counted: they say nothing of the server."""

    def __init__(self):
        self._lock = threading.Lock()
        self._sent = 0
        self._lost: Counter = Counter()

    def answered(self) -> None:
        with self._lock:
            self._sent += 1

    def failed(self, kind: str) -> None:
        with self._lock:
            self._sent += 1
            if kind in UNREACHABLE:
                self._lost[kind] += 1

    def take(self) -> tuple[int, Counter]:
        """(requests sent, unanswered by kind) since the last call; counting starts anew."""
        with self._lock:
            counts = (self._sent, self._lost)
            self._sent, self._lost = 0, Counter()
            return counts


# =================================================================== dry run


def estimate_run(
    cfg_verifier: Any,
    task: Task,
    n_questions: int,
    passes: int = 1,
    iterations: int = 1,
    wrong_share: float | None = None,
    rounds: float | None = None,
    samples: int = 4,
) -> dict[str, Any]:
    """A rough count of the calls, tokens and cost of a run with this expert, calling nothing.

    Assumptions (rough, and an upper bound in that the cache is ignored):
    - trajectories = n_questions x passes x iterations;
    - one FBK call per trajectory, plus, for the share ``wrong_share`` of wrong trajectories
      (default ``verifier.estimate.wrong_share``), ``rounds`` IMP + FBK rounds on average
      (default ``verifier.estimate.rounds``): FBK = T (1 + w r), IMP = T w r;
    - prompt tokens: the real few-shot prompt of the configured endpoint for a few of the task's
      questions with one injected error, at 4 characters a token; completion tokens: the
      scripted feedback and update of those questions, likewise, capped by ``max_tokens``;
    - cost with ``prices`` (a model without a price counts 0 and is listed as unpriced).
    """
    cfg = verifier_config(cfg_verifier)
    w = float(cfg.estimate.wrong_share if wrong_share is None else wrong_share)
    r = float(cfg.estimate.rounds if rounds is None else rounds)
    api = str(cfg.api)
    trajectories = n_questions * passes * iterations
    calls = {FBK: trajectories * (1 + w * r), IMP: trajectories * w * r}
    builder = PromptBuilder(task, int(cfg.shots), int(cfg.shot_seed))
    samples_ = build_demos(task, samples, seed=int(cfg.shot_seed) + 1)

    def prompt_len(role: str, d) -> int:
        args = (d.question, d.attempt) if role == FBK else (d.question, d.attempt, d.feedback)
        chat, completion = (builder.fbk_messages, builder.fbk_prompt) if role == FBK else (builder.imp_messages, builder.imp_prompt)
        return approx_tokens(request_text(chat(*args)) if api == "chat" else completion(*args))

    prices = price_table(cfg)
    per_role: dict[str, Any] = {}
    for role in (FBK, IMP):
        s = role_settings(cfg, role, api)
        prompt_each = sum(prompt_len(role, d) for d in samples_) / len(samples_)
        replies = [render_fbk_reply(d.feedback) if role == FBK else d.update for d in samples_]
        completion_each = min(s.max_tokens, sum(approx_tokens(t) for t in replies) / len(replies))
        prompt_tokens, completion_tokens = calls[role] * prompt_each, calls[role] * completion_each
        per_role[role] = {
            "model": s.model, "calls": round(calls[role]), "prompt_tokens_per_call": round(prompt_each),
            "prompt_tokens": round(prompt_tokens), "completion_tokens": round(completion_tokens),
            "cost_usd": round(cost_usd(prices, s.model, prompt_tokens, completion_tokens), 4), "priced": s.model in prices,
        }
    return {
        "trajectories": trajectories,
        "calls": sum(p["calls"] for p in per_role.values()),
        "prompt_tokens": sum(p["prompt_tokens"] for p in per_role.values()),
        "completion_tokens": sum(p["completion_tokens"] for p in per_role.values()),
        "cost_usd": round(sum(p["cost_usd"] for p in per_role.values()), 4),
        "unpriced_models": sorted({p["model"] for p in per_role.values() if not p["priced"]}),
        **per_role,
        "assumptions": {"wrong_share": w, "rounds": r, "chars_per_token": 4, "cache_ignored": True, "api": api},
    }
