"""An LLM expert over the official ``openai`` client: OpenAI, Azure OpenAI or any compatible server.

FBK and IMP are few-shot prompted (``tripost.experts.prompts``), each role with its own model
and sampling settings, over the chat or the completions endpoint. The editor calls
``feedback``/``improve`` from up to ``concurrency`` threads; the requests themselves run on
one asyncio event loop in a daemon thread, with an ``AsyncOpenAI`` client and at most
``concurrency`` tries in flight.

- Retries are the client's own (``tripost.experts.client``): rate limits (429), 408/409, server
  errors (5xx), connection errors and timeouts (``timeout_s`` per try) are retried up to
  ``max_retries`` times, honouring Retry-After, with exponential backoff and jitter. After the
  last, or on another error, ExpertError: the trajectory is dropped and the run goes on.
- Unreachable: when more than ``max_unreachable_share`` of a pass's requests got no answer at
  all (connection errors or timeouts after the retries), ``raise_if_unreachable`` (called by the
  editing loop after each pass, before the pass is recorded) raises ExpertUnreachable: a dead
  server stops the run, resumable, instead of dropping most trajectories and training on the rest.
- Cache: every usable reply is kept in a sqlite file (``tripost.experts.cache``), so a repeated
  run makes no calls; a reply that does not parse is not kept, so a rerun asks for it again.
  ``readonly`` mode makes a replay exact or fail (CacheMiss).
- Accounting per role (``tripost.experts.accounting``): real requests (every try, counted by the
  client's HTTP layer), cache hits, retries, errors by kind, tokens and cost. ``usage()`` is saved
  in each iteration's stats.json; ``reset_usage()`` starts a new period. ``max_cost_usd``: once
  spent (over all periods, and over every process of the run when ``spend_path`` keeps the spend
  in the run dir), new requests raise BudgetExceeded; cached replies are still served.
- The API key is read only from the environment variable named by ``api_key_env`` and never
  written anywhere: not in logs, exceptions, the cache, ``usage()`` or ``repr``. A local
  server that needs no key still needs the variable set, to any value (e.g. ``dummy``).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from concurrent.futures import Future
from typing import Any, Callable, Coroutine, TypeVar

from omegaconf import DictConfig

from tripost.config import ConfigError
from tripost.experts.accounting import ROLES, Accounting, Reachability, estimate_run
from tripost.experts.base import BudgetExceeded, Expert, ExpertError, ExpertUnreachable
from tripost.experts.cache import ReplyCache
from tripost.experts.prompts import ATT, FBK, IMP, PromptBuilder, merge_update, parse_fbk_reply, parse_imp_reply
from tripost.experts.settings import price_table, read_api_key, role_settings, verifier_config
from tripost.formats import Feedback, split_steps
from tripost.tasks import Task

log = logging.getLogger("tripost.experts.openai")

T = TypeVar("T")
_MISS = object()  # no usable reply in the cache

__all__ = ["OpenAIExpert", "estimate_run"]  # estimate_run lives in tripost.experts.accounting


class OpenAIExpert(Expert):
    """FBK and IMP by an LLM behind the OpenAI API (see the module docstring)."""

    def __init__(self, cfg: Any, task: Task, seed: int = 0):
        cfg = verifier_config(cfg)
        if cfg.api not in ("chat", "completions"):
            raise ConfigError(f"config key 'verifier.api': {cfg.api!r} is not one of ['chat', 'completions']")
        self.task, self.api, self.base_url = task, str(cfg.api), str(cfg.base_url)
        self.concurrency = max(1, int(cfg.concurrency))
        self.max_retries, self.timeout_s = max(0, int(cfg.max_retries)), float(cfg.timeout_s)
        self.dry_run = bool(cfg.dry_run)
        self.max_unreachable_share = float(cfg.max_unreachable_share)
        if not 0.0 <= self.max_unreachable_share <= 1.0:
            raise ConfigError(f"config key 'verifier.max_unreachable_share': {self.max_unreachable_share} is not between 0 and 1")
        self.seed = seed
        self.roles = {role: role_settings(cfg, role, self.api) for role in ROLES}
        # Demonstrations depend on shot_seed only, not on the run's seed: every run and iteration
        # sends the same prompts for the same attempts, so they share the cache.
        self.prompts = PromptBuilder(task, int(cfg.shots), int(cfg.shot_seed))
        self.prompts.demos  # built now: a task that cannot make them fails at start-up
        self.azure_deployment = cfg.azure.deployment if cfg.azure is not None else None
        self.cache = open_cache(cfg)
        try:
            self._accounting = Accounting(price_table(cfg), {role: s.model for role, s in self.roles.items()},
                                          cfg.max_cost_usd, cfg.spend_path)
        except ValueError as e:
            self.cache.close()
            raise ConfigError(f"config key 'verifier.spend_path': {e}") from None
        if self._accounting.spent_usd:
            log.info("openai expert: this run spent %.4f USD before (%s)", self._accounting.spent_usd, cfg.spend_path)
        self._reach = Reachability()
        # A dry run calls no API, so it needs no key.
        self._secret = "" if self.dry_run else read_api_key(str(cfg.api_key_env))
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-expert-loop", daemon=True)
        self._thread.start()
        self._client = self._on_loop(self._setup(cfg))
        log.info("openai expert: %s (%s API), fbk model %s, imp model %s, concurrency %d, cache %s",
                 self.base_url, self.api, self.roles[FBK].model, self.roles[IMP].model, self.concurrency, self.cache)

    async def _setup(self, cfg: DictConfig):
        # Imported here: the openai client loads only when an expert is built (estimate_run needs none).
        from tripost.experts.client import make_client

        return make_client(cfg, self._secret, self.concurrency)  # on the loop: its semaphore and connections are the loop's

    @classmethod
    def from_settings(cls, task: Task, seed: int = 0, **settings: Any) -> OpenAIExpert:
        """The expert of a ``verifier`` node's settings as keyword arguments (a ``_target_`` for
        ``hydra.utils.instantiate``)."""
        return cls(settings, task, seed=seed)

    def __repr__(self) -> str:
        return (f"OpenAIExpert(base_url={self.base_url!r}, api={self.api!r}, fbk={self.roles[FBK].model!r}, "
                f"imp={self.roles[IMP].model!r}, concurrency={self.concurrency})")

    # ------------------------------------------------------------------ the two roles
    def feedback(self, question: str, attempt: str) -> Feedback:
        if not split_steps(attempt):
            return Feedback.unparsable("the attempt has no step lines")  # nothing to ask about
        request = self._request(FBK, self.prompts.fbk_messages, self.prompts.fbk_prompt, question, attempt)
        return self._ask(request, lambda text: parse_fbk_reply(text, attempt))

    def improve(self, question: str, attempt: str, feedback: Feedback) -> str | None:
        steps = split_steps(attempt)
        if not feedback.is_error or steps is None or feedback.step not in [s.id for s in steps]:
            return None  # as the scripted expert: no error step to start from
        request = self._request(IMP, self.prompts.imp_messages, self.prompts.imp_prompt, question, attempt, feedback)
        body = self._ask(request, parse_imp_reply)
        return merge_update(attempt, feedback, body)

    def attempt(self, question: str) -> str:
        """The LLM's own attempt, sampled with the pass's seed (sent as the request's ``seed``,
        so each pass asks anew and a repeated pass hits the cache)."""
        request = self._request(ATT, self.prompts.att_messages, self.prompts.att_prompt, question)
        request["seed"] = self.seed
        return self._ask(request, lambda text: parse_imp_reply(text, role="ATT"))

    def reseed(self, seed: int) -> None:
        self.seed = seed

    # ------------------------------------------------------------------ accounting
    def usage(self) -> dict:
        return self._accounting.snapshot()

    def reset_usage(self) -> None:
        """Start a new accounting period (the budget still counts everything spent)."""
        self._accounting.reset()

    def raise_if_unreachable(self) -> None:
        """ExpertUnreachable when more than ``max_unreachable_share`` of the requests sent since
        the last call got no answer after their retries; counting starts anew either way."""
        sent, lost = self._reach.take()
        unanswered = sum(lost.values())
        if not sent or unanswered <= self.max_unreachable_share * sent:
            return
        kinds = ", ".join(f"{kind}: {n}" for kind, n in sorted(lost.items()))
        raise ExpertUnreachable(self._redact(
            f"the expert at {self.base_url} is unreachable: {unanswered} of the pass's {sent} requests got no answer "
            f"after {self.max_retries + 1} tries each ({kinds}), more than verifier.max_unreachable_share="
            f"{self.max_unreachable_share}; the pass is not recorded, and the replies received are cached"))

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

    def _ask(self, request: dict[str, Any], parse: Callable[[str], T]) -> T:
        """The parsed reply: from the cache, else from the API (counted). Only a reply that
        parses is cached: a garbage, empty or refused one drops its trajectory in this run
        (ExpertError), and a rerun asks again instead of losing the same trajectory."""
        role = request["role"]
        result = self._cached(request, parse)
        if result is not _MISS:
            return result
        self._check_budget()
        text, prompt_tokens, completion_tokens = self._on_loop(self._send(request))
        result = self._parse(role, text, parse)
        self.cache.store(request, text, prompt_tokens, completion_tokens)
        return result

    def _cached(self, request: dict[str, Any], parse: Callable[[str], T]) -> T | object:
        """The parsed cached reply, or _MISS. An unusable cached reply (cached by an older
        version, which kept every reply) is discarded and asked again; a readonly cache or a
        dry run may send nothing, so there it fails as it did (ExpertError)."""
        reply = self.cache.lookup(request)
        if reply is None:
            return _MISS
        role = request["role"]
        if self.cache.mode == "readwrite" and not self.dry_run:
            try:
                result = parse(reply.text)
            except ExpertError:
                self.cache.discard(request)
                return _MISS
            self._accounting.count(role, "cache_hits")
            return result
        self._accounting.count(role, "cache_hits")
        return self._parse(role, reply.text, parse)

    def _check_budget(self) -> None:
        """BudgetExceeded before a request is sent that the run may not pay for."""
        if self.dry_run:
            raise BudgetExceeded("verifier.dry_run=true: the expert makes no API calls")
        if self._accounting.budget_spent():
            kept = f", kept in {self._accounting.spend_path}" if self._accounting.spend_path else ""
            raise BudgetExceeded(
                f"expert budget spent: {self._accounting.spent_usd:.4f} USD >= verifier.max_cost_usd="
                f"{self._accounting.max_cost_usd} (this run's spend{kept})"
            )

    def _parse(self, role: str, text: str, parse: Callable[[str], T]) -> T:
        try:
            return parse(text)
        except ExpertError as e:
            self._accounting.error(role, "empty_reply" if not text.strip() else "bad_reply")
            self._accounting.count(role, "failed")
            raise ExpertError(self._redact(str(e))) from None

    async def _send(self, request: dict[str, Any]) -> tuple[str, int, int]:
        """The reply of one request, through the client's own retries; its tokens and cost counted."""
        from tripost.experts.client import RequestFailed, Tries, create

        role = request["role"]
        try:
            text, prompt_tokens, completion_tokens = await create(self._client, request, Tries(role, self._accounting))
        except RequestFailed as e:
            self._reach.failed(e.kind)
            self._accounting.count(role, "failed")
            message = f"{role.upper()} request to {self.base_url} failed ({e.kind}) after {e.tries} tries"
            log.warning("%s", self._redact(message))
            raise ExpertError(self._redact(message)) from None
        self._reach.answered()
        # Counted before the reply is read: an unusable reply is paid for too.
        self._accounting.tokens(role, request["model"], prompt_tokens, completion_tokens)
        return text, prompt_tokens, completion_tokens

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


def open_cache(cfg: DictConfig) -> ReplyCache:
    """The reply cache of ``verifier.cache``; a path that cannot be opened (a read-only dir or
    file) is a ConfigError naming the key, at start-up rather than a traceback mid-run."""
    path, mode = cfg.cache.path, str(cfg.cache.mode)
    if mode != "off" and not path:
        raise ConfigError("config key 'verifier.cache.path': required unless verifier.cache.mode=off")
    try:
        return ReplyCache(path, mode)
    except (OSError, sqlite3.Error) as e:
        raise ConfigError(f"config key 'verifier.cache.path': cannot open {path} (mode {mode}): {e}; "
                          "give a writable path, or set verifier.cache.mode=off") from None
