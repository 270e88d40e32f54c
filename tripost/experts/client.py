"""The official ``openai`` client of the OpenAI expert: its own retries and timeouts, every try counted.

Retrying is the client's (``max_retries``, ``timeout`` per try): it retries rate limits (429),
408/409, server errors (5xx), timeouts and connection errors; it waits what the server's
``Retry-After-Ms`` / ``Retry-After`` says (up to 2 minutes; a longer one is not retried), else
0.5 s doubling up to 8 s, less up to 25% jitter. Those waits are the client's constants: no
setting of ours changes them.

Every try of the client goes through ``send`` of its httpx client, so that is where tries are
counted, per role, into the expert's ``Accounting``: ``CountingHttpClient`` (the SDK's default
httpx client, subclassed) counts each try, each retry and the kind of each failed try, and holds
one of ``concurrency`` slots while a try is in flight (not while the client sleeps before a
retry). Its event hooks would not do: they see requests and responses, not a try that ends
without a response (a timeout, a refused connection), and stats.json counts those by kind.

The role of a try comes from a context variable the expert sets around each request; asyncio
gives every task its own copy, so concurrent requests of different roles never mix.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import Any

import httpx2
import openai
from omegaconf import DictConfig

from tripost.experts.accounting import Accounting


class Tries:
    """The tries of one request of one role, counted into the accounting as they happen."""

    def __init__(self, role: str, accounting: Accounting):
        self.role, self.accounting = role, accounting
        self.count = 0
        self.last_error: str | None = None  # the kind of the last try's failure; None: it was answered

    def started(self) -> None:
        self.count += 1
        self.last_error = None
        self.accounting.count(self.role, "calls")
        if self.count > 1:
            self.accounting.count(self.role, "retries")

    def failed(self, kind: str) -> None:
        self.last_error = kind
        self.accounting.error(self.role, kind)


_TRIES: ContextVar[Tries | None] = ContextVar("tripost_expert_tries", default=None)


def status_kind(status: int) -> str:
    """The error kind of a failed try's HTTP status, as stats.json reports it."""
    if status == 429:
        return "rate_limit"
    return f"server_{status}" if status >= 500 else f"http_{status}"


class CountingHttpClient(openai.DefaultAsyncHttpxClient):
    """The SDK's default async httpx client, counting the tries of the request in ``_TRIES``."""

    def __init__(self, concurrency: int, **kwargs: Any):
        super().__init__(**kwargs)
        self._slots = asyncio.Semaphore(concurrency)

    async def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
        tries = _TRIES.get()
        async with self._slots:
            if tries is not None:
                tries.started()
            try:
                response = await super().send(request, **kwargs)
            except httpx2.TimeoutException:
                if tries is not None:
                    tries.failed("timeout")
                raise
            except Exception:  # a transport error, which the client retries as a connection error
                if tries is not None:
                    tries.failed("connection")
                raise
        if tries is not None and response.status_code >= 400:
            tries.failed(status_kind(response.status_code))
        return response


class RequestFailed(Exception):
    """The client gave up on a request: the kind of its last failure, after ``tries`` tries."""

    def __init__(self, kind: str, tries: int):
        super().__init__(f"{kind} after {tries} tries")
        self.kind, self.tries = kind, tries


def make_client(cfg: DictConfig, secret: str, concurrency: int) -> openai.AsyncOpenAI:
    """The async client of a verifier node (OpenAI or Azure OpenAI), with its tries counted."""
    common = {
        "api_key": secret or "dry-run",  # a dry run sends nothing, but the client wants a key
        "max_retries": max(0, int(cfg.max_retries)),
        "timeout": float(cfg.timeout_s),
        "http_client": CountingHttpClient(concurrency),
    }
    if cfg.azure is not None:
        return openai.AsyncAzureOpenAI(azure_endpoint=str(cfg.base_url), api_version=str(cfg.azure.api_version),
                                       azure_deployment=cfg.azure.deployment, **common)
    return openai.AsyncOpenAI(base_url=str(cfg.base_url), **common)


async def create(client: openai.AsyncOpenAI, request: dict[str, Any], tries: Tries) -> tuple[str, int, int]:
    """(reply text, prompt tokens, completion tokens) of one of the expert's requests.

    RequestFailed once the client gives up (after its retries, or at once on an error it does
    not retry)."""
    kwargs: dict[str, Any] = {"model": request["model"], "temperature": request["temperature"],
                              "max_tokens": request["max_tokens"]}
    if request["stop"]:
        kwargs["stop"] = request["stop"]
    if "seed" in request:
        kwargs["seed"] = request["seed"]
    token = _TRIES.set(tries)  # read by CountingHttpClient.send, in this same task, for each try
    try:
        if request["endpoint"] == "chat":
            reply = await client.chat.completions.create(messages=request["messages"], **kwargs)
            text = reply.choices[0].message.content if reply.choices else ""
        else:
            reply = await client.completions.create(prompt=request["prompt"], **kwargs)
            text = reply.choices[0].text if reply.choices else ""
    except openai.OpenAIError as e:
        if tries.last_error is None:  # the last try was answered, but not with a reply the client reads
            tries.failed(type(e).__name__)
        raise RequestFailed(tries.last_error, tries.count) from None
    finally:
        _TRIES.reset(token)
    usage = reply.usage
    return text or "", int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)
