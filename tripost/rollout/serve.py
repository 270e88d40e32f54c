"""Serve an HF checkpoint over the OpenAI completions API, with our decode loop (CPU or GPU).

The same protocol as vLLM's server, for the parts ``ServedPolicy`` uses: ``POST /v1/completions``
with a list of prompts, ``max_tokens``, ``temperature`` (0 = greedy), ``top_p``, ``top_k``,
``seed``, ``stop`` and ``include_stop_str_in_output``, and ``GET /v1/models``. It lets the
served-rollout path (``rollout.engine=vllm`` with this command in ``rollout.server.command``)
run and be tested where vLLM cannot (no GPU). The HTTP side is ``tripost.openai_server``'s
(shared with the expert's test server); this module is the answerer.

    python -m tripost.rollout.serve --model <checkpoint dir> --port 0
    # first line of stdout: the base URL, e.g. http://127.0.0.1:40123/v1
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

from tripost.openai_server import Answerer, Choice, OpenAIServer, add_arguments, server_from_args
from tripost.rollout.inprocess import InProcessPolicy
from tripost.rollout.loop import LoopPolicy
from tripost.rollout.policy import Sampling
from tripost.rollout.stops import stop_at_strings

SERVED_NAME = "policy"


class PolicyAnswerer(Answerer):
    """A policy's continuations of a completion request's prompts."""

    model_id = SERVED_NAME
    endpoints = ("completions",)  # as vLLM serves a base model: no chat template

    def __init__(self, policy: InProcessPolicy):
        self.policy = policy
        self.lock = threading.Lock()  # one generation at a time: the model is not re-entrant

    def answer(self, endpoint: str, body: dict[str, Any]) -> list[Choice]:
        try:
            prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
            temperature = float(body.get("temperature", 1.0))
            top_k = int(body.get("top_k", -1))  # vLLM's convention: -1 = off
            sampling = Sampling(do_sample=temperature > 0, temperature=temperature or 1.0, top_k=max(top_k, 0),
                                top_p=float(body.get("top_p", 1.0)), max_new_tokens=int(body.get("max_tokens", 16)))
        except (KeyError, TypeError) as e:  # the server answers ValueError with a 400
            raise ValueError(f"{type(e).__name__}: {e}") from None
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else stops
        rule = stop_at_strings(stops, bool(body.get("include_stop_str_in_output"))) if stops else None
        with self.lock:
            completions = self.policy.complete(prompts, sampling, stop=rule, seed=body.get("seed"))
        return [Choice(c.text, "stop" if c.finished else "length") for c in completions]


class PolicyServer(OpenAIServer):
    """The generation server of a policy at ``address`` (``serve_forever`` in any thread, or ``start()``)."""

    def __init__(self, address: tuple[str, int], policy: InProcessPolicy):
        super().__init__(PolicyAnswerer(policy), *address)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="an HF checkpoint dir")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    add_arguments(parser)  # --host, --port (0 = any free port), and faults to inject
    args = parser.parse_args(argv)
    policy = LoopPolicy.load(args.model, batch_size=args.batch_size, dtype=args.dtype, device=args.device)
    server_from_args(PolicyAnswerer(policy), args).serve()


if __name__ == "__main__":
    main()
