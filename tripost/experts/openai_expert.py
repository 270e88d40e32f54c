"""An LLM expert over the official ``openai`` client: OpenAI, Azure OpenAI or any compatible server.

FBK and IMP are few-shot prompted (``tripost.experts.prompts``), each role with its own model
and sampling settings, over the chat or the completions endpoint. The editor calls
``feedback``/``improve`` from up to ``concurrency`` threads; the requests themselves run on
one asyncio event loop in a daemon thread, with an ``AsyncOpenAI`` client and a semaphore of
``concurrency`` requests in flight.

- Retries: rate limits (429), 408/409, server errors (5xx), connection errors and timeouts
  (``timeout_s`` per request) are retried up to ``max_retries`` times with exponential backoff
  and jitter (the client's own retries are off, so every try is counted). After the last, or on
  another error, ExpertError: the trajectory is dropped and the run goes on.
- Cache: every reply is kept in a sqlite file (``tripost.experts.cache``), so a repeated run
  makes no calls; ``readonly`` mode makes a replay exact or fail (CacheMiss).
- Accounting per role: real requests, cache hits, retries, errors by kind, tokens and cost
  from ``prices`` (USD per 1M tokens, per model; a model without a price costs 0 and is listed
  as unpriced). ``usage()`` is saved in each iteration's stats.json; ``reset_usage()`` starts a
  new period. ``max_cost_usd``: once spent (over all periods), new requests raise
  BudgetExceeded; cached replies are still served.
- The API key is read only from the environment variable named by ``api_key_env`` and never
  written anywhere: not in logs, exceptions, the cache, ``usage()`` or ``repr``. A local
  server that needs no key still needs the variable set, to any value (e.g. ``dummy``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, Coroutine, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from tripost.config import ConfigError, VerifierConfig
from tripost.experts.base import BudgetExceeded, Expert, ExpertError
from tripost.experts.cache import ReplyCache
from tripost.experts.prompts import (
    ATT,
    COMPLETION_STOP,
    FBK,
    IMP,
    PromptBuilder,
    approx_tokens,
    build_demos,
    merge_update,
    parse_fbk_reply,
    parse_imp_reply,
    render_fbk_reply,
    request_text,
)
from tripost.formats import Feedback, split_steps
from tripost.tasks import Task

log = logging.getLogger("tripost.experts.openai")

ROLES = (FBK, IMP, ATT)  # ATT: the expert's own attempts, for the ft SI. demo baseline
T = TypeVar("T")


# =================================================================== config


def verifier_config(cfg: Any) -> DictConfig:
    """The verifier node (a dict, DictConfig or VerifierConfig) on the typed schema, defaults filled."""
    try:
        if isinstance(cfg, VerifierConfig):
            return OmegaConf.structured(cfg)
        if isinstance(cfg, DictConfig):  # resolve against its own root (``${paths.outputs_dir}``) first
            cfg = OmegaConf.to_container(cfg, resolve=True)
        return OmegaConf.merge(OmegaConf.structured(VerifierConfig), cfg)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        raise ConfigError(f"config key 'verifier.{key}': {str(e).splitlines()[0]}") from None


def read_api_key(env_name: str) -> str:
    """The API key from the environment; ConfigError naming the variable when it is unset."""
    value = os.environ.get(env_name, "")
    if not value.strip():
        raise ConfigError(
            f"config key 'verifier.api_key_env': environment variable {env_name} is not set; it must hold the API key "
            f"(for a local server that needs none, set it to any value, e.g. {env_name}=dummy)"
        )
    return value.strip()


@dataclass(frozen=True)
class RoleSettings:
    model: str
    temperature: float
    max_tokens: int
    stop: list[str] | None


def role_settings(cfg: DictConfig, role: str, api: str) -> RoleSettings:
    node = cfg[role]
    stop = list(node.stop) if node.stop is not None else (list(COMPLETION_STOP) if api == "completions" else None)
    return RoleSettings(str(node.model), float(node.temperature), int(node.max_tokens), stop)


def price_table(cfg: DictConfig) -> dict[str, tuple[float, float]]:
    """(USD per 1M input tokens, USD per 1M output tokens) by model name."""
    return {str(model): (float(p.input), float(p.output)) for model, p in (cfg.prices or {}).items()}


# =================================================================== accounting


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


class Accounting:
    """Thread-safe counters per role for the current period, and the cost spent over all periods."""

    def __init__(self, prices: dict[str, tuple[float, float]], models: dict[str, str], max_cost_usd: float | None):
        self.prices, self.models, self.max_cost_usd = prices, models, max_cost_usd
        self._lock = threading.Lock()
        self._roles = {role: RoleUsage() for role in ROLES}
        self._unpriced: set[str] = set()
        self.spent_usd = 0.0  # never reset: the budget covers the whole run

    def count(self, role: str, what: str, n: int = 1) -> None:
        with self._lock:
            setattr(self._roles[role], what, getattr(self._roles[role], what) + n)

    def error(self, role: str, kind: str) -> None:
        with self._lock:
            self._roles[role].errors[kind] += 1

    def tokens(self, role: str, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        price = self.prices.get(model)
        cost = (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6 if price else 0.0
        with self._lock:
            usage = self._roles[role]
            usage.prompt_tokens += prompt_tokens
            usage.completion_tokens += completion_tokens
            usage.cost_usd += cost
            self.spent_usd += cost
            if price is None:
                self._unpriced.add(model)

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


# =================================================================== errors


def classify_error(error: Exception) -> tuple[str, bool, float | None]:
    """(kind, retryable, the server's Retry-After in seconds or None) of a failed try."""
    import openai

    if isinstance(error, openai.APITimeoutError):
        return "timeout", True, None
    if isinstance(error, openai.APIConnectionError):
        return "connection", True, None
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        retry_after = _retry_after(error)
        if status == 429:
            return "rate_limit", True, retry_after
        if status >= 500:
            return f"server_{status}", True, retry_after
        return f"http_{status}", status in (408, 409), retry_after
    return type(error).__name__, False, None


def _retry_after(error: Any) -> float | None:
    try:
        return float(error.response.headers.get("retry-after"))
    except (AttributeError, TypeError, ValueError):
        return None


# =================================================================== the expert


class OpenAIExpert(Expert):
    """FBK and IMP by an LLM behind the OpenAI API (see the module docstring)."""

    def __init__(self, cfg: Any, task: Task, seed: int = 0):
        cfg = verifier_config(cfg)
        if cfg.api not in ("chat", "completions"):
            raise ConfigError(f"config key 'verifier.api': {cfg.api!r} is not one of ['chat', 'completions']")
        self.task, self.api, self.base_url = task, str(cfg.api), str(cfg.base_url)
        self.concurrency = max(1, int(cfg.concurrency))
        self.max_retries, self.timeout_s = max(0, int(cfg.max_retries)), float(cfg.timeout_s)
        self.backoff_base_s, self.backoff_max_s = float(cfg.backoff_base_s), float(cfg.backoff_max_s)
        self.dry_run = bool(cfg.dry_run)
        self.seed = seed
        self.roles = {role: role_settings(cfg, role, self.api) for role in ROLES}
        # Demonstrations depend on shot_seed only, not on the run's seed: every run and iteration
        # sends the same prompts for the same attempts, so they share the cache.
        self.prompts = PromptBuilder(task, int(cfg.shots), int(cfg.shot_seed))
        self.prompts.demos  # built now: a task that cannot make them fails at start-up
        self.azure_deployment = cfg.azure.deployment if cfg.azure is not None else None
        if cfg.cache.mode != "off" and not cfg.cache.path:
            raise ConfigError("config key 'verifier.cache.path': required unless verifier.cache.mode=off")
        self.cache = ReplyCache(cfg.cache.path, str(cfg.cache.mode))
        self._accounting = Accounting(
            price_table(cfg), {role: s.model for role, s in self.roles.items()}, cfg.max_cost_usd
        )
        # A dry run calls no API, so it needs no key.
        self._secret = "" if self.dry_run else read_api_key(str(cfg.api_key_env))
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-expert-loop", daemon=True)
        self._thread.start()
        self._client, self._semaphore = self._on_loop(self._setup(cfg))
        log.info("openai expert: %s (%s API), fbk model %s, imp model %s, concurrency %d, cache %s",
                 self.base_url, self.api, self.roles[FBK].model, self.roles[IMP].model, self.concurrency, self.cache)

    async def _setup(self, cfg: DictConfig):
        import openai

        common = {"api_key": self._secret or "dry-run", "timeout": self.timeout_s, "max_retries": 0}
        if cfg.azure is not None:
            client = openai.AsyncAzureOpenAI(
                azure_endpoint=self.base_url, api_version=str(cfg.azure.api_version),
                azure_deployment=self.azure_deployment, **common,
            )
        else:
            client = openai.AsyncOpenAI(base_url=self.base_url, **common)
        return client, asyncio.Semaphore(self.concurrency)

    def __repr__(self) -> str:
        return (f"OpenAIExpert(base_url={self.base_url!r}, api={self.api!r}, fbk={self.roles[FBK].model!r}, "
                f"imp={self.roles[IMP].model!r}, concurrency={self.concurrency})")

    # ------------------------------------------------------------------ the two roles
    def feedback(self, question: str, attempt: str) -> Feedback:
        if not split_steps(attempt):
            return Feedback.unparsable("the attempt has no step lines")  # nothing to ask about
        request = self._request(FBK, self.prompts.fbk_messages, self.prompts.fbk_prompt, question, attempt)
        text = self._complete(request)
        return self._parse(FBK, text, lambda: parse_fbk_reply(text, attempt))

    def improve(self, question: str, attempt: str, feedback: Feedback) -> str | None:
        steps = split_steps(attempt)
        if not feedback.is_error or steps is None or feedback.step not in [s.id for s in steps]:
            return None  # as the scripted expert: no error step to start from
        request = self._request(IMP, self.prompts.imp_messages, self.prompts.imp_prompt, question, attempt, feedback)
        text = self._complete(request)
        body = self._parse(IMP, text, lambda: parse_imp_reply(text))
        return merge_update(attempt, feedback, body)

    def attempt(self, question: str) -> str:
        """The LLM's own attempt, sampled with the pass's seed (sent as the request's ``seed``,
        so each pass asks anew and a repeated pass hits the cache)."""
        request = self._request(ATT, self.prompts.att_messages, self.prompts.att_prompt, question)
        request["seed"] = self.seed
        text = self._complete(request)
        return self._parse(ATT, text, lambda: parse_imp_reply(text, role="ATT"))

    def reseed(self, seed: int) -> None:
        self.seed = seed

    # ------------------------------------------------------------------ accounting
    def usage(self) -> dict:
        return self._accounting.snapshot()

    def reset_usage(self) -> None:
        """Start a new accounting period (the budget still counts everything spent)."""
        self._accounting.reset()

    # ------------------------------------------------------------------ requests
    def _request(self, role: str, chat: Callable, completion: Callable, *args) -> dict[str, Any]:
        """The whole request: what is sent, and what identifies it in the cache."""
        s = self.roles[role]
        request: dict[str, Any] = {
            "role": role, "endpoint": self.api, "model": s.model,
            "temperature": s.temperature, "max_tokens": s.max_tokens, "stop": s.stop,
        }
        if self.azure_deployment:
            request["deployment"] = self.azure_deployment
        if self.api == "chat":
            request["messages"] = chat(*args)
        else:
            request["prompt"] = completion(*args)
        return request

    def _complete(self, request: dict[str, Any]) -> str:
        """The reply text: from the cache, else from the API (counted, then cached)."""
        role = request["role"]
        cached = self.cache.lookup(request)
        if cached is not None:
            self._accounting.count(role, "cache_hits")
            return cached.text
        if self.dry_run:
            raise BudgetExceeded("verifier.dry_run=true: the expert makes no API calls")
        if self._accounting.budget_spent():
            raise BudgetExceeded(
                f"expert budget spent: {self._accounting.spent_usd:.4f} USD >= verifier.max_cost_usd={self._accounting.max_cost_usd}"
            )
        text, prompt_tokens, completion_tokens = self._on_loop(self._send_with_retries(request))
        self.cache.store(request, text, prompt_tokens, completion_tokens)
        return text

    def _parse(self, role: str, text: str, parse: Callable[[], T]) -> T:
        try:
            return parse()
        except ExpertError as e:
            self._accounting.error(role, "empty_reply" if not text.strip() else "bad_reply")
            self._accounting.count(role, "failed")
            raise ExpertError(self._redact(str(e))) from None

    async def _send_with_retries(self, request: dict[str, Any]) -> tuple[str, int, int]:
        import openai

        role = request["role"]
        for attempt in range(self.max_retries + 1):
            self._accounting.count(role, "calls")
            try:
                async with self._semaphore:
                    return await self._send_once(request)
            except openai.OpenAIError as e:
                kind, retryable, retry_after = classify_error(e)
            self._accounting.error(role, kind)
            if not retryable or attempt == self.max_retries:
                self._accounting.count(role, "failed")
                message = f"{role.upper()} request to {self.base_url} failed ({kind}) after {attempt + 1} tries"
                log.warning("%s", self._redact(message))
                raise ExpertError(self._redact(message))
            delay = self._backoff(attempt, retry_after)
            self._accounting.count(role, "retries")
            log.debug("%s request: %s, retry %d in %.2fs", role.upper(), kind, attempt + 1, delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last try returns or raises")

    async def _send_once(self, request: dict[str, Any]) -> tuple[str, int, int]:
        kwargs: dict[str, Any] = {
            "model": request["model"], "temperature": request["temperature"],
            "max_tokens": request["max_tokens"], "timeout": self.timeout_s,
        }
        if request["stop"]:
            kwargs["stop"] = request["stop"]
        if "seed" in request:
            kwargs["seed"] = request["seed"]
        if self.api == "chat":
            reply = await self._client.chat.completions.create(messages=request["messages"], **kwargs)
            text = reply.choices[0].message.content if reply.choices else ""
        else:
            reply = await self._client.completions.create(prompt=request["prompt"], **kwargs)
            text = reply.choices[0].text if reply.choices else ""
        usage = reply.usage
        prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        self._accounting.tokens(request["role"], request["model"], prompt_tokens, completion_tokens)
        return text or "", prompt_tokens, completion_tokens

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter (half to all of base * 2^attempt, at most backoff_max_s),
        at least the server's Retry-After where it gave one."""
        delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** attempt) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max_s))
        return delay

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    # ------------------------------------------------------------------ the event loop
    def _on_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the expert's loop and wait for it (from any thread)."""
        if self._closed:
            coroutine.close()
            raise RuntimeError("the OpenAI expert is closed")
        future: Future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result()

    def close(self) -> None:
        """Close the client, stop the loop thread and close the cache (idempotent)."""
        if self._closed:
            return
        try:
            self._on_loop(self._client.close())
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()
            self.cache.close()

    def __enter__(self) -> OpenAIExpert:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
        price = prices.get(s.model)
        prompt_tokens, completion_tokens = calls[role] * prompt_each, calls[role] * completion_each
        cost = (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6 if price else 0.0
        per_role[role] = {
            "model": s.model, "calls": round(calls[role]), "prompt_tokens_per_call": round(prompt_each),
            "prompt_tokens": round(prompt_tokens), "completion_tokens": round(completion_tokens),
            "cost_usd": round(cost, 4), "priced": price is not None,
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
