"""An OpenAI-compatible HTTP server of our own that answers FBK, IMP and ATT prompts with the scripted expert.

It lets ``verifier=openai`` run end to end with no API and no key (any Authorization header is
accepted): tests, benchmarks of concurrency and retries, and demos. It reads the question, the
attempt (and, for IMP, the feedback) out of the last request block of the prompt; an ATT request
(the expert's own attempt, for ft SI. demo) gets the scripted attempt for the request's ``seed``
(``prompts.parse_request``) and answers in exactly the formats ``prompts`` parses, with a
``usage`` block counting 4 characters a token.

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/completions`` (any path ending so, e.g. an
Azure deployment's), ``GET /v1/models`` and ``GET /stats`` (requests received and faults
injected, as JSON).

    python -m tripost.experts.server --task word_sort --host 127.0.0.1 --port 0
    # first line of stdout: the base URL, e.g. http://127.0.0.1:40123/v1
    OPENAI_API_KEY=dummy python run.py verifier=openai verifier.base_url=http://127.0.0.1:40123/v1

Fault injection, for tests and benchmarks:
- ``latency``: seconds added to every completion request;
- ``faults``: a list of fault names. By default they apply in order to the first requests,
  one each ("ok" passes a request through): ``--faults 429,ok,500`` fails requests 1 and 3.
  With ``fault_rate`` > 0 instead, every request draws (``random.Random(fault_seed)``, in
  arrival order) and fails with that probability, with a fault drawn from the list.
- Faults: "429" (rate limited), "500" / "502" / "503" (server errors), "timeout" (sleeps
  ``timeout_sleep`` seconds, longer than the client waits, then answers), "garbage" (a 200
  reply whose text no parser reads), "empty" (a 200 reply with empty content).
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

from tripost.experts.prompts import ATT, FBK, approx_tokens, kept_steps, parse_chat_request, parse_request, render_fbk_reply, request_text
from tripost.experts.scripted import ScriptedExpert
from tripost.formats import split_steps
from tripost.tasks import get_task

FAULTS = ("ok", "429", "500", "502", "503", "timeout", "garbage", "empty")
GARBAGE = "Lorem ipsum dolor sit amet: the attempt looks fine to me, more or less."
MODEL_ID = "tripost-scripted"


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

    def fault_for(self, index: int) -> str:
        """The fault of the request that arrived ``index``-th (0-based); call in arrival order."""
        if self.rate > 0:
            return self._rng.choice(self.faults) if self._rng.random() < self.rate else "ok"
        return self.faults[index] if index < len(self.faults) else "ok"


def parse_faults(text: str | None) -> list[str]:
    return [f.strip() for f in (text or "").split(",") if f.strip()]


class ScriptedServer(ThreadingHTTPServer):
    """The HTTP server; its handler threads share the expert, the fault plan and the counters."""

    daemon_threads = True  # a sleeping "timeout" handler must not hold up shutdown

    def __init__(self, address: tuple[str, int], task_name: str, latency: float = 0.0,
                 faults: FaultPlan | None = None, timeout_sleep: float = 5.0, attempt_error_rate: float = 0.5):
        super().__init__(address, Handler)
        self.task = get_task(task_name)
        self.expert = ScriptedExpert(self.task)
        self.latency, self.timeout_sleep = latency, timeout_sleep
        self.attempt_error_rate = attempt_error_rate  # ATT: share of attempts with an injected error
        self.plan = faults or FaultPlan()
        self._lock = threading.Lock()
        self.requests = 0  # completion requests received
        self.faults_injected: dict[str, int] = {}
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def next_fault(self) -> str:
        with self._lock:
            fault = self.plan.fault_for(self.requests)
            self.requests += 1
            if fault != "ok":
                self.faults_injected[fault] = self.faults_injected.get(fault, 0) + 1
            return fault

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "faults_injected": dict(self.faults_injected)}

    # ------------------------------------------------------------------ answers
    def answer(self, endpoint: str, body: dict[str, Any]) -> str:
        """The reply text for a chat or completion request body; ValueError if it is not ours."""
        if endpoint == "chat":
            parsed = parse_chat_request(body.get("messages") or [])
        else:
            prompt = body.get("prompt")
            if isinstance(prompt, list):
                prompt = prompt[0] if len(prompt) == 1 else None
            if not isinstance(prompt, str):
                raise ValueError("the prompt must be one string")
            parsed = parse_request(prompt)
        if parsed.role == FBK:
            return render_fbk_reply(self.expert.feedback(parsed.question, parsed.attempt))
        if parsed.role == ATT:
            # The request's seed picks the attempt, as the scripted expert's pass seed does.
            writer = ScriptedExpert(self.task, seed=int(body.get("seed") or 0), attempt_error_rate=self.attempt_error_rate)
            return writer.attempt(parsed.question)
        update = self.expert.improve(parsed.question, parsed.attempt, parsed.feedback)
        if update is None:
            return "I cannot improve this attempt."
        if endpoint == "chat":
            return update
        # The completion prompt ends with the kept steps: continue after them.
        kept = len(kept_steps(parsed.attempt, parsed.feedback))
        return "".join(s.line + "\n" for s in (split_steps(update) or [])[kept:])

    # ------------------------------------------------------------------ in-process use
    def start(self) -> ScriptedServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="scripted-openai-server", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop serving and close the socket (handlers still sleeping in a fault are left to die)."""
        if self._thread is not None:  # the base class's shutdown waits for a serve_forever loop
            super().shutdown()
            self._thread.join(timeout=5)
        self.server_close()


def start_server(task_name: str, port: int = 0, latency: float = 0.0, faults: list[str] | FaultPlan | None = None,
                 fault_rate: float = 0.0, fault_seed: int = 0, timeout_sleep: float = 5.0,
                 host: str = "127.0.0.1", attempt_error_rate: float = 0.5) -> ScriptedServer:
    """A server answering in a background thread; ``.url``, ``.requests``, ``.stats()``, ``.shutdown()``."""
    plan = faults if isinstance(faults, FaultPlan) else FaultPlan(list(faults or []), fault_rate, fault_seed)
    return ScriptedServer((host, port), task_name, latency, plan, timeout_sleep, attempt_error_rate).start()


class Handler(BaseHTTPRequestHandler):
    server: ScriptedServer
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass  # quiet: tests and benchmarks send thousands of requests

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "tripost"}]})
        elif self.path.rstrip("/") == "/stats":
            self._send(200, self.server.stats())
        else:
            self._send(404, _error(f"no route GET {self.path}", "not_found"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        endpoint = _endpoint(self.path)
        if endpoint is None:
            self._send(404, _error(f"no route POST {self.path}", "not_found"))
            return
        fault = self.server.next_fault()
        if self.server.latency:
            time.sleep(self.server.latency)
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send(400, _error("the body is not JSON", "invalid_request_error"))
            return
        if fault == "429":
            self._send(429, _error("rate limited (injected)", "rate_limit_error"), {"Retry-After": "0"})
            return
        if fault in ("500", "502", "503"):
            self._send(int(fault), _error("server error (injected)", "server_error"))
            return
        if fault == "timeout":
            time.sleep(self.server.timeout_sleep)
        if fault in ("garbage", "empty"):
            self._send(200, _completion(endpoint, body, GARBAGE if fault == "garbage" else ""))
            return
        try:
            text = self.server.answer(endpoint, body)
        except ValueError as e:
            self._send(400, _error(f"not a tripost expert request: {e}", "invalid_request_error"))
            return
        except Exception as e:  # a bug of ours: say so rather than drop the connection
            self._send(500, _error(f"{type(e).__name__}: {e}", "server_error"))
            return
        self._send(200, _completion(endpoint, body, text))

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


def _completion(endpoint: str, body: dict[str, Any], text: str) -> dict[str, Any]:
    """An OpenAI reply object with ``text`` and a usage block at 4 characters a token."""
    prompt_tokens = approx_tokens(request_text(body.get("messages"), body.get("prompt") if endpoint == "completions" else None))
    completion_tokens = approx_tokens(text)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
             "total_tokens": prompt_tokens + completion_tokens}
    common = {"created": int(time.time()), "model": body.get("model") or MODEL_ID, "usage": usage}
    if endpoint == "chat":
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": None}
        return {"id": f"chatcmpl-tripost-{time.monotonic_ns()}", "object": "chat.completion", "choices": [choice], **common}
    choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
    return {"id": f"cmpl-tripost-{time.monotonic_ns()}", "object": "text_completion", "choices": [choice], **common}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible server answering tripost FBK/IMP prompts with the scripted expert")
    parser.add_argument("--task", required=True, help="task name, e.g. word_sort or multistep_arithmetic")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed on the first line)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every completion request")
    parser.add_argument("--faults", default="", help=f"comma-separated, applied in order to the first requests; of {list(FAULTS)}")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="> 0: every request fails with this probability instead")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the fault-rate draws")
    parser.add_argument("--timeout-sleep", type=float, default=120.0, help="seconds a 'timeout' fault sleeps before answering")
    parser.add_argument("--attempt-error-rate", type=float, default=0.5,
                        help="ATT requests: share of attempts with an injected error (as verifier.attempt_error_rate of the scripted expert)")
    args = parser.parse_args(argv)
    plan = FaultPlan(parse_faults(args.faults), args.fault_rate, args.fault_seed)
    server = ScriptedServer((args.host, args.port), args.task, args.latency, plan, args.timeout_sleep, args.attempt_error_rate)
    print(server.url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
