"""``rollout=vllm``: generation by a server process.

The phase's saved HF checkpoint is served by a process of its own (vLLM's OpenAI-compatible
server by default, ``rollout.engine.command``) and the prompts go to it over the completions
API. When the phase ends the process exits, so the GPU memory it held is free for training.

``ServedPolicy`` returns what the in-process engines return: continuations cut by the same
stop rules, and whether each ended by itself. The server stops at a new "Q:" (the stop string
is kept in the text so the same ``cut`` applies); the caller's rule is applied here, after.

Each prompt is a request of its own (the server batches concurrent requests itself, as vLLM
does continuously), because what vLLM takes per request has to be per prompt here:

- the seed: vLLM seeds every prompt of a request alike, so copies of one prompt (LMSI's samples
  per question) would all come out the same; each prompt gets a seed of its own from (seed, index);
- the context: a prompt too long for the model's context with ``max_tokens`` makes vLLM refuse
  the whole request (400); alone, only that prompt is refused, and it comes back empty and unfinished.

Prompts are sent with ``add_special_tokens: false``: vLLM adds the tokenizer's BOS to a completion
prompt by default, where training and the in-process engines encode prompts without it.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable

from tripost.cluster.processes import free_port
from tripost.rollout.policy import Completion, Policy, Sampling
from tripost.rollout.stops import NEW_QUESTION, StopRule, after_final_response, cut, should_stop, stop_rules

log = logging.getLogger(__name__)

VLLM_HINT = "rollout=vllm needs vLLM (a CUDA machine): pip install -e '.[vllm]'"
# What vLLM's refusal of a prompt too long for the model's context says (and our server says too).
CONTEXT_REFUSAL = "maximum context length"


def with_lora(command: list[str], model_dir: str | Path) -> tuple[list[str], str, str]:
    """A stage that saved a LoRA adapter (model.adapter=lora): the server serves its base and the
    adapter as a LoRA module of its own (vLLM's --enable-lora), so no merged checkpoint is written;
    the requests name the module. Else the checkpoint itself, named "policy"."""
    from tripost.models.adapters import ADAPTER_CONFIG, base_of, is_adapter_dir

    if not is_adapter_dir(model_dir):
        return command, str(model_dir), "policy"
    import json

    rank = json.loads((Path(model_dir) / ADAPTER_CONFIG).read_text())["r"]
    lora = ["--enable-lora", "--lora-modules", f"policy-lora={model_dir}", "--max-lora-rank", str(rank)]
    return command + lora, base_of(model_dir), "policy-lora"


class ServerProcess:
    """A generation server for one checkpoint, started by ``command`` (a list; ``{model}``,
    ``{port}``, ``{python}`` and the ``settings`` named in it are filled in), waited for, and
    stopped on exit."""

    def __init__(self, command: list[str], model_dir: str | Path, log_path: str | Path, startup_timeout_s: float = 900,
                 settings: dict[str, Any] | None = None):
        self.port = free_port("127.0.0.1")
        fill = {**(settings or {}), "model": str(model_dir), "port": str(self.port), "python": sys.executable}
        self.command = [str(part).format(**fill) for part in command]
        self.log_path, self.startup_timeout_s = Path(log_path), startup_timeout_s
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:
        runs_vllm = len(self.command) > 2 and self.command[1] == "-m" and self.command[2].startswith("vllm.")
        if runs_vllm and not _has_module("vllm"):  # say so now, not after a failed start
            raise RuntimeError(VLLM_HINT)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log.info("generation server: %s (log %s)", shlex.join(self.command), self.log_path)
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.__exit__()  # closes its log
                raise RuntimeError(f"generation server exited with code {self.process.returncode}; see {self.log_path}")
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"generation server not ready after {self.startup_timeout_s:.0f} s; see {self.log_path}")

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "_log", None):
            self._log.close()


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def prompt_seed(seed: int, index: int) -> int:
    """The seed of prompt ``index`` of a call seeded ``seed``: distinct for the first 2**20 prompts
    of a call (so copies of a prompt sample apart) and from those of calls whose seeds are less
    than 2**12 apart; 32 bits, all that torch's CPU generator (our server's) keeps of a seed."""
    return (seed * 2**20 + index) % 2**32


class ServedPolicy(Policy):
    """Completes prompts through an OpenAI-compatible completions server (vLLM, or ours),
    ``batch_size * concurrency`` requests of one prompt each in flight.

    ``server``: the process it owns, if any; ``close`` stops it."""

    def __init__(self, base_url: str, model: str = "policy", batch_size: int = 64, concurrency: int = 4,
                 timeout_s: float = 3600, server: ServerProcess | None = None):
        from openai import OpenAI

        # A local server needs no key; the client insists on one, so a placeholder (never a secret).
        self.client = OpenAI(base_url=base_url, api_key="local", max_retries=2, timeout=timeout_s)
        self.model, self.batch_size, self.concurrency, self.server = model, batch_size, concurrency, server

    @classmethod
    def serve(cls, model_dir: str | Path, *, command: list[str], log_path: str | Path, startup_timeout_s: float,
              concurrency: int, batch_size: int = 64, dtype: str | None = None, device: str | None = None,
              tensor_parallel_size: int = 1, data_parallel_size: int = 1) -> ServedPolicy:
        """Start a server of ``model_dir`` (see ``ServerProcess``) and a client that owns it. The
        server sets its own dtype and devices (its ``command``, where ``{tensor_parallel_size}`` and
        ``{data_parallel_size}`` are filled in): ``dtype`` and ``device`` are unused."""
        settings = {"tensor_parallel_size": tensor_parallel_size, "data_parallel_size": data_parallel_size}
        command, model_dir, name = with_lora(list(command), model_dir)
        server = ServerProcess(command, model_dir, log_path, startup_timeout_s, settings).__enter__()
        try:
            return cls(server.url, model=name, batch_size=batch_size, concurrency=concurrency, server=server)
        except BaseException:
            server.__exit__()
            raise

    def complete(
        self,
        prompts: list[str],
        sampling: Sampling,
        stop: StopRule | None = after_final_response,
        progress: Callable[[int], None] | None = None,
        seed: int | None = None,
    ) -> list[Completion]:
        from openai import BadRequestError

        rules = stop_rules(stop)
        # vLLM's parameters beyond OpenAI's; top_k 0 is off for both servers.
        extra = {"include_stop_str_in_output": True, "top_k": sampling.top_k, "add_special_tokens": False}

        def one(i: int) -> Completion:
            try:
                reply = self.client.completions.create(
                    model=self.model, prompt=prompts[i], max_tokens=sampling.max_new_tokens,
                    temperature=sampling.temperature if sampling.do_sample else 0.0,
                    top_p=sampling.top_p if sampling.do_sample else 1.0,
                    seed=prompt_seed(seed, i) if sampling.do_sample and seed is not None else None,
                    stop=[NEW_QUESTION], extra_body=extra,
                )
            except BadRequestError as e:
                if CONTEXT_REFUSAL not in str(e):
                    raise  # a request the server cannot read is a bug, not a long prompt
                log.warning("prompt %d not generated (it comes back empty, unfinished): %s", i, e.message)
                return Completion("", False)
            text, reason = reply.choices[0].text, reply.choices[0].finish_reason
            return Completion(cut(text, rules), reason == "stop" or should_stop(text, rules))

        pool = ThreadPoolExecutor(max_workers=max(1, min(len(prompts), self.batch_size * self.concurrency)))
        try:
            futures = [pool.submit(one, i) for i in range(len(prompts))]
            for done in as_completed(futures):
                done.result()  # the first failure ends the call
                if progress:
                    progress(1)
            return [future.result() for future in futures]
        finally:
            pool.shutdown(cancel_futures=True)

    def close(self) -> None:
        if self.server is not None:
            self.server.__exit__()
            self.server = None
