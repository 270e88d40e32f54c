"""Serve an HF checkpoint over the OpenAI completions API, with our decode loop (CPU or GPU).

The same protocol as vLLM's server, for the parts ``ServedPolicy`` uses: ``POST /v1/completions``
with a list of prompts, ``max_tokens``, ``temperature`` (0 = greedy), ``top_p``, ``top_k``,
``seed``, ``stop`` and ``include_stop_str_in_output``, and ``GET /v1/models``. It lets the
served-rollout path (``rollout.engine=vllm`` with this command in ``rollout.server.command``)
run and be tested where vLLM cannot (no GPU).

    python -m tripost.models.serve --model <checkpoint dir> --port 0
    # first line of stdout: the base URL, e.g. http://127.0.0.1:40123/v1
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tripost.generation import Sampling, generate
from tripost.models.policy import HFPolicy

SERVED_NAME = "policy"


def stop_at(strings: list[str], include: bool):
    """A stop rule: cut at the first of ``strings`` (after it when ``include``)."""

    def rule(text: str) -> int | None:
        found = [(i, s) for s in strings if (i := text.find(s)) >= 0]
        if not found:
            return None
        i, s = min(found)
        return i + len(s) if include else i

    return rule


class PolicyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], policy: HFPolicy):
        super().__init__(address, Handler)
        self.policy = policy
        self.lock = threading.Lock()  # one generation at a time: the model is not re-entrant

    def complete(self, body: dict) -> dict:
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        temperature = float(body.get("temperature", 1.0))
        top_k = int(body.get("top_k", -1))  # vLLM's convention: -1 = off
        sampling = Sampling(do_sample=temperature > 0, temperature=temperature or 1.0, top_k=max(top_k, 0),
                            top_p=float(body.get("top_p", 1.0)), max_new_tokens=int(body.get("max_tokens", 16)))
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else stops
        rule = stop_at(stops, bool(body.get("include_stop_str_in_output"))) if stops else None
        with self.lock:
            texts, ended = generate(self.policy.model, self.policy.tokenizer, prompts, sampling,
                                    self.policy.batch_size, stop=rule, seed=body.get("seed"), return_finished=True)
        choices = [{"index": i, "text": t, "finish_reason": "stop" if e else "length", "logprobs": None}
                   for i, (t, e) in enumerate(zip(texts, ended, strict=True))]
        return {"id": "cmpl-tripost", "object": "text_completion", "model": SERVED_NAME, "choices": choices,
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


class Handler(BaseHTTPRequestHandler):
    server: PolicyServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, {"object": "list", "data": [{"id": SERVED_NAME, "object": "model"}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        if not self.path.rstrip("/").endswith("/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        try:
            self._send(200, self.server.complete(body))
        except (KeyError, ValueError, TypeError) as e:
            self._send(400, {"error": {"message": f"bad request: {e}"}})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="an HF checkpoint dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    policy = HFPolicy.load(args.model, batch_size=args.batch_size, dtype=args.dtype, device=args.device)
    server = PolicyServer((args.host, args.port), policy)
    print(f"http://{args.host}:{server.server_address[1]}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
