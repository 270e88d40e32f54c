"""Serve an HF checkpoint over the OpenAI completions API, with our decode loop (CPU or GPU).

The same protocol as vLLM's server (``vllm serve``, the versions of setup.cfg's ``vllm`` extra),
for the parts ``ServedPolicy`` uses, read the way vLLM reads them: ``POST /v1/completions`` with
a prompt or a list of prompts, ``max_tokens``, ``temperature`` (0 = greedy), ``top_p``, ``top_k``
(0 or -1 = off), ``seed``, ``stop``, ``include_stop_str_in_output``, ``add_special_tokens`` and
``n`` (1 only here), and ``GET /v1/models``. Like vLLM:

- ``seed`` seeds each prompt of a request alike, so copies of one prompt in a request come out
  the same (the client sends each prompt alone, with a seed of its own);
- ``add_special_tokens`` (default true) puts the tokens the tokenizer adds to a text (a BOS) in
  front of each prompt;
- a prompt whose tokens with ``max_tokens`` exceed the context (``--max-model-len``, by default
  the model's ``max_position_embeddings``) makes the whole request a 400, with vLLM's message.

It lets the served-rollout path (``rollout=vllm`` with this command in
``rollout.engine.command``) run and be tested where vLLM cannot (no GPU). The HTTP side is
``tripost.openai_server``'s (shared with the expert's test server); this module is the answerer.

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

    def __init__(self, policy: InProcessPolicy, max_model_len: int | None = None):
        self.policy = policy
        self.max_model_len = max_model_len or policy.model.config.max_position_embeddings
        self.lock = threading.Lock()  # one generation at a time: the model is not re-entrant

    def answer(self, endpoint: str, body: dict[str, Any]) -> list[Choice]:
        try:
            prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
            temperature = float(body.get("temperature", 1.0))
            top_k = int(body.get("top_k") or 0)
            sampling = Sampling(do_sample=temperature > 0, temperature=temperature or 1.0, top_k=max(top_k, 0),
                                top_p=float(body.get("top_p", 1.0)), max_new_tokens=int(body.get("max_tokens", 16)))
            n, seed = int(body.get("n", 1)), body.get("seed")
        except (KeyError, TypeError) as e:  # the server answers ValueError with a 400
            raise ValueError(f"{type(e).__name__}: {e}") from None
        if n != 1:
            raise ValueError("n > 1 is not served here")
        if body.get("add_special_tokens", True):
            prompts = [self.with_special_tokens(p) for p in prompts]
        for prompt in prompts:  # before any generation: vLLM refuses the whole request
            self.check_length(prompt, sampling.max_new_tokens)
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else stops
        rule = stop_at_strings(stops, bool(body.get("include_stop_str_in_output"))) if stops else None
        with self.lock:
            if seed is None or not sampling.do_sample:
                completions = self.policy.complete(prompts, sampling, stop=rule)
            else:  # each prompt from a generator seeded with the request's seed, as vLLM samples
                completions = [self.policy.complete([p], sampling, stop=rule, seed=int(seed))[0] for p in prompts]
        return [Choice(c.text, "stop" if c.finished else "length") for c in completions]

    def with_special_tokens(self, prompt: str) -> str:
        """``prompt`` with the special tokens its tokenizer adds (a BOS) written in as text, since
        the policy encodes prompts without them (exact for tokenizers that decode(encode(x)) == x)."""
        tokenizer = self.policy.tokenizer
        return tokenizer.decode(tokenizer(prompt, add_special_tokens=True)["input_ids"])

    def check_length(self, prompt: str, max_tokens: int) -> None:
        """vLLM's refusal of a prompt that does not fit the context with ``max_tokens`` after it."""
        count = len(self.policy.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if count + max_tokens > self.max_model_len:
            raise ValueError(f"This model's maximum context length is {self.max_model_len} tokens. However, you "
                             f"requested {max_tokens} output tokens and your prompt contains {count} input tokens, "
                             f"for a total of {count + max_tokens} tokens. Please reduce the length of the input "
                             "prompt or the number of requested output tokens.")


class PolicyServer(OpenAIServer):
    """The generation server of a policy at ``address`` (``serve_forever`` in any thread, or ``start()``)."""

    def __init__(self, address: tuple[str, int], policy: InProcessPolicy, max_model_len: int | None = None):
        super().__init__(PolicyAnswerer(policy, max_model_len), *address)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="an HF checkpoint dir")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-model-len", type=int, default=None,
                        help="context length in tokens, prompt and output (default: the model's max_position_embeddings)")
    # vLLM's LoRA flags: the adapter of --lora-modules NAME=DIR is served (merged into --model, its base)
    parser.add_argument("--enable-lora", action="store_true")
    parser.add_argument("--lora-modules", nargs="*", default=[], help="NAME=ADAPTER_DIR")
    parser.add_argument("--max-lora-rank", type=int, default=None)
    add_arguments(parser)  # --host, --port (0 = any free port), and faults to inject
    args = parser.parse_args(argv)
    model = args.lora_modules[0].split("=", 1)[1] if args.enable_lora and args.lora_modules else args.model
    policy = LoopPolicy.load(model, batch_size=args.batch_size, dtype=args.dtype, device=args.device)
    server_from_args(PolicyAnswerer(policy, args.max_model_len), args).serve()


if __name__ == "__main__":
    main()
