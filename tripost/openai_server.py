"""The one OpenAI-compatible HTTP server of tripost: the protocol here, the answers plugged in.

This module speaks the protocol: routing, JSON bodies, the reply shapes of ``/v1/completions``
and ``/v1/chat/completions`` with a usage block, ``/v1/models``, error replies, injected faults,
and serving on 127.0.0.1 from a thread (tests) or as a process's main (a CLI). What the server
answers comes from an ``Answerer``:

- ``tripost.experts.server``: the scripted expert behind both endpoints (``verifier=openai``
  with no API and no key);
- the generation server: a policy behind ``/v1/completions`` (``rollout=vllm`` on CPU).

Endpoints: ``POST .../chat/completions`` and ``POST .../completions`` (any path ending so, e.g.
an Azure deployment's), ``GET .../models``, and ``GET /stats`` (requests received and faults
injected, as JSON).

Fault injection, for tests and benchmarks of a client's retries:
- ``latency``: seconds added to every completion request;
- ``faults``: a list of fault names. By default they apply in order to the first requests,
  one each ("ok" passes a request through): ``--faults 429,ok,500`` fails requests 1 and 3.
  With ``fault_rate`` > 0 instead, every request draws (``random.Random(fault_seed)``, in
  arrival order) and fails with that probability, the failures taking the listed faults in
  turn (so every fault shows once the list's length of requests failed).
- Faults: "429" (rate limited), "500" / "502" / "503" (server errors), "timeout" (sleeps
  ``timeout_sleep`` seconds, longer than the client waits, then answers), "garbage" (a 200
  reply whose text no parser reads), "empty" (a 200 reply with empty content). An injected
  429 or 5xx says ``Retry-After-Ms: retry_after_ms`` (the header OpenAI's own API sends, which
  the openai client honours), so a test's retries wait milliseconds, not the client's backoff.
- ``die_after``: the server dies after answering that many completion requests, as a crashed
  server does: a request on a kept-alive connection is closed unanswered, and the socket stops
  listening (new connections are refused; a CLI server's process exits).
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULTS = ("ok", "429", "500", "502", "503", "timeout", "garbage", "empty")
GARBAGE = "Lorem ipsum dolor sit amet: the attempt looks fine to me, more or less."
ENDPOINTS = ("chat", "completions")


# =================================================================== what a server answers


@dataclass(frozen=True)
class Choice:
    text: str
    finish_reason: str = "stop"  # "stop": it ended by itself (or at a stop string); "length": max_tokens


class Answerer:
    """What a server answers: subclass, set ``model_id`` and ``endpoints``, write ``answer``.

    ``answer`` is called from the server's handler threads, one per request, at the same time:
    an answerer that is not re-entrant (a model) takes a lock of its own."""

    model_id: str = "tripost"
    endpoints: tuple[str, ...] = ENDPOINTS  # a subset of ("chat", "completions"); the others get 404

    def answer(self, endpoint: str, body: dict[str, Any]) -> list[Choice]:
        """The choices for a request body of ``endpoint`` ("chat" or "completions"). ValueError:
        the request is not one this answerer reads (a 400 reply); any other exception is a 500."""
        raise NotImplementedError

    def usage(self, endpoint: str, body: dict[str, Any], texts: list[str]) -> tuple[int, int]:
        """(prompt tokens, completion tokens) of a reply, injected faults' replies included."""
        return 0, 0


# =================================================================== faults


@dataclass
class FaultPlan:
    """Which requests fail and how (see the module docstring)."""

    faults: list[str] = field(default_factory=list)
    rate: float = 0.0
    seed: int = 0

    def __post_init__(self):
        unknown = [f for f in self.faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {list(FAULTS)}")
        if self.rate > 0 and not self.faults:
            raise ValueError("a fault rate needs a list of faults to draw from")
        self._rng = random.Random(self.seed)
        self._failed = 0

    def fault_for(self, index: int) -> str:
        """The fault of the request that arrived ``index``-th (0-based); call in arrival order."""
        if self.rate > 0:
            if self._rng.random() >= self.rate:
                return "ok"
            self._failed += 1
            return self.faults[(self._failed - 1) % len(self.faults)]
        return self.faults[index] if index < len(self.faults) else "ok"


def parse_faults(text: str | None) -> list[str]:
    return [f.strip() for f in (text or "").split(",") if f.strip()]


# =================================================================== the server


class OpenAIServer(ThreadingHTTPServer):
    """The HTTP server; its handler threads share the answerer, the fault plan and the counters."""

    daemon_threads = True  # a sleeping "timeout" handler must not hold up shutdown
    # Clients open up to ``concurrency`` connections at once; with the default backlog of 5 the
    # kernel drops the others' SYNs and they retry a second later (or fail as connection errors).
    request_queue_size = 128

    def __init__(self, answerer: Answerer, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0,
                 faults: FaultPlan | None = None, timeout_sleep: float = 5.0, retry_after_ms: int = 10,
                 die_after: int | None = None):
        super().__init__((host, port), _Handler)
        self.answerer = answerer
        self.latency, self.timeout_sleep, self.retry_after_ms = latency, timeout_sleep, retry_after_ms
        self.plan = faults or FaultPlan()
        self._lock = threading.Lock()
        self.requests = 0  # completion requests received (and answered or failed on purpose)
        self.die_after = die_after
        self.dead = False  # set after die_after requests: nothing is answered any more
        self.faults_injected: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()  # set while serve_forever runs, in whichever thread

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def next_fault(self) -> str | None:
        """The fault of the next completion request; None once the server is dead (``die_after``)."""
        with self._lock:
            if self.dead or (self.die_after is not None and self.requests >= self.die_after):
                self._die()
                return None
            fault = self.plan.fault_for(self.requests)
            self.requests += 1
            if fault != "ok":
                self.faults_injected[fault] = self.faults_injected.get(fault, 0) + 1
            return fault

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "faults_injected": dict(self.faults_injected), "dead": self.dead}

    def _die(self) -> None:
        """Stop listening, from another thread: a handler thread cannot wait for the serving loop
        it is not part of to finish while holding the lock (called with it held)."""
        if not self.dead:
            self.dead = True
            threading.Thread(target=self.shutdown, name="openai-server-death", daemon=True).start()

    # ------------------------------------------------------------------ in a thread (tests)
    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._serving.set()
        try:
            super().serve_forever(poll_interval)
        finally:
            self._serving.clear()

    def start(self) -> OpenAIServer:
        """Serve from a daemon thread of this process; returns once it serves."""
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"openai-server-{type(self.answerer).__name__}", daemon=True)
        self._thread.start()
        self._serving.wait(timeout=10)  # so a shutdown right after cannot miss the loop it must stop
        return self

    def shutdown(self) -> None:
        """Stop serving (the loop of ``start`` or of any thread) and close the socket; handlers
        still sleeping in an injected fault are left to die (daemon threads)."""
        if self._serving.is_set():  # the base class's shutdown would wait forever for a loop never started
            super().shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.server_close()

    # ------------------------------------------------------------------ as a process (a CLI)
    def serve(self) -> None:
        """A process's main: the base URL on the first line of stdout (which callers wait for),
        then serve until interrupted."""
        print(self.url, flush=True)
        try:
            self.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.server_close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The CLI options of ``server_from_args``: where to listen, and the faults to inject."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed on the first line)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every completion request")
    parser.add_argument("--faults", default="", help=f"comma-separated, applied in order to the first requests; of {list(FAULTS)}")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="> 0: every request fails with this probability instead")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the fault-rate draws")
    parser.add_argument("--timeout-sleep", type=float, default=120.0, help="seconds a 'timeout' fault sleeps before answering")
    parser.add_argument("--retry-after-ms", type=int, default=10, help="Retry-After-Ms of an injected 429 or 5xx")
    parser.add_argument("--die-after", type=int, default=None,
                        help="die (close connections unanswered, stop listening, exit) after this many completion requests")


def server_from_args(answerer: Answerer, args: argparse.Namespace) -> OpenAIServer:
    plan = FaultPlan(parse_faults(args.faults), args.fault_rate, args.fault_seed)
    return OpenAIServer(answerer, args.host, args.port, args.latency, plan, args.timeout_sleep, args.retry_after_ms,
                        args.die_after)


# =================================================================== the protocol


class _Handler(BaseHTTPRequestHandler):
    server: OpenAIServer
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse their connections

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass  # quiet: tests and benchmarks send thousands of requests

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if path.endswith("/models"):
            model = {"id": self.server.answerer.model_id, "object": "model", "created": 0, "owned_by": "tripost"}
            self._send(200, {"object": "list", "data": [model]})
        elif path == "/stats":
            self._send(200, self.server.stats())
        else:
            self._send(404, _error(f"no route GET {self.path}", "not_found"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""  # read even when refused: the connection is kept
        endpoint = _endpoint(self.path)
        if endpoint not in self.server.answerer.endpoints:
            self._send(404, _error(f"no route POST {self.path}", "not_found"))
            return
        fault = self.server.next_fault()
        if fault is None:  # dead: no answer at all, as from a crashed server
            self.close_connection = True
            return
        if self.server.latency:
            time.sleep(self.server.latency)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, _error("the body is not JSON", "invalid_request_error"))
            return
        if not isinstance(body, dict):
            self._send(400, _error("the body is not a JSON object", "invalid_request_error"))
            return
        retry_after = {"Retry-After-Ms": str(self.server.retry_after_ms)}
        if fault == "429":
            self._send(429, _error("rate limited (injected)", "rate_limit_error"), retry_after)
            return
        if fault in ("500", "502", "503"):
            self._send(int(fault), _error("server error (injected)", "server_error"), retry_after)
            return
        if fault == "timeout":
            time.sleep(self.server.timeout_sleep)
        if fault in ("garbage", "empty"):
            choices = [Choice(GARBAGE if fault == "garbage" else "")]
        else:
            try:
                choices = self.server.answerer.answer(endpoint, body)
            except ValueError as e:
                self._send(400, _error(f"bad request: {e}", "invalid_request_error"))
                return
            except Exception as e:  # a bug of the answerer: say so rather than drop the connection
                self._send(500, _error(f"{type(e).__name__}: {e}", "server_error"))
                return
        self._send(200, completion_reply(endpoint, body, choices, self.server.answerer))

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a "timeout" fault): nothing to answer


def _endpoint(path: str) -> str | None:
    """"chat" or "completions" by the path's end, so Azure-style paths work too
    (``/openai/deployments/<name>/chat/completions?api-version=...``)."""
    path = path.split("?", 1)[0].rstrip("/")
    if path.endswith("/chat/completions"):
        return "chat"
    return "completions" if path.endswith("/completions") else None


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": kind}}


def completion_reply(endpoint: str, body: dict[str, Any], choices: list[Choice], answerer: Answerer) -> dict[str, Any]:
    """An OpenAI reply object: the choices, and the usage block the answerer counts."""
    prompt_tokens, completion_tokens = answerer.usage(endpoint, body, [c.text for c in choices])
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
             "total_tokens": prompt_tokens + completion_tokens}
    common = {"created": int(time.time()), "model": body.get("model") or answerer.model_id, "usage": usage}
    if endpoint == "chat":
        shaped = [{"index": i, "message": {"role": "assistant", "content": c.text}, "finish_reason": c.finish_reason,
                   "logprobs": None} for i, c in enumerate(choices)]
        return {"id": f"chatcmpl-tripost-{time.monotonic_ns()}", "object": "chat.completion", "choices": shaped, **common}
    shaped = [{"index": i, "text": c.text, "finish_reason": c.finish_reason, "logprobs": None} for i, c in enumerate(choices)]
    return {"id": f"cmpl-tripost-{time.monotonic_ns()}", "object": "text_completion", "choices": shaped, **common}
