"""``rollout=vllm``: generation by a server process.

The phase's saved HF checkpoint is served by a process of its own (vLLM's OpenAI-compatible
server by default, ``rollout.server.command``) and the prompts go to it over the completions
API. When the phase ends the process exits, so the GPU memory it held is free for training.

``ServedPolicy`` returns what the in-process engines return: continuations cut by the same
stop rules, and whether each ended by itself. The server stops at a new "Q:" (the stop string
is kept in the text so the same ``cut`` applies); the caller's rule is applied here, after.
"""

from __future__ import annotations

import logging
import shlex
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from tripost.rollout.policy import Completion, Policy, Sampling
from tripost.rollout.stops import NEW_QUESTION, StopRule, after_final_response, cut, should_stop, stop_rules

log = logging.getLogger(__name__)

VLLM_HINT = "rollout=vllm needs vLLM (a CUDA machine): pip install -e '.[vllm]'"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A generation server for one checkpoint, started by ``command`` (a list; ``{model}``,
    ``{port}`` and ``{python}`` are filled in), waited for, and stopped on exit."""

    def __init__(self, command: list[str], model_dir: str | Path, log_path: str | Path, startup_timeout_s: float = 900):
        self.port = free_port()
        fill = {"model": str(model_dir), "port": str(self.port), "python": sys.executable}
        self.command = [str(part).format(**fill) for part in command]
        self.log_path, self.startup_timeout_s = Path(log_path), startup_timeout_s
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> ServerProcess:
        if self.command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"] and not _has_module("vllm"):
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


class ServedPolicy(Policy):
    """Completes prompts through an OpenAI-compatible completions server (vLLM, or ours).

    ``server``: the process it owns, if any; ``close`` stops it."""

    def __init__(self, base_url: str, model: str = "policy", batch_size: int = 64, concurrency: int = 4,
                 timeout_s: float = 3600, server: ServerProcess | None = None):
        from openai import OpenAI

        # A local server needs no key; the client insists on one, so a placeholder (never a secret).
        self.client = OpenAI(base_url=base_url, api_key="local", max_retries=2, timeout=timeout_s)
        self.model, self.batch_size, self.concurrency, self.server = model, batch_size, concurrency, server

    @classmethod
    def serve(cls, model_dir: str | Path, *, command: list[str], log_path: str | Path, startup_timeout_s: float,
              concurrency: int, batch_size: int = 64, dtype: str | None = None, device: str | None = None) -> ServedPolicy:
        """Start a server of ``model_dir`` (see ``ServerProcess``) and a client that owns it. The
        server sets its own dtype and device (its ``command``): ``dtype`` and ``device`` are unused."""
        server = ServerProcess(command, model_dir, log_path, startup_timeout_s).__enter__()
        try:
            return cls(server.url, batch_size=batch_size, concurrency=concurrency, server=server)
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
        rules = stop_rules(stop)
        batches = [(start, prompts[start : start + self.batch_size]) for start in range(0, len(prompts), self.batch_size)]

        def run(item) -> list[Completion]:
            start, batch = item
            extra = {"include_stop_str_in_output": True, "top_k": sampling.top_k if sampling.top_k > 0 else -1}
            reply = self.client.completions.create(
                model=self.model, prompt=batch, max_tokens=sampling.max_new_tokens,
                temperature=sampling.temperature if sampling.do_sample else 0.0,
                top_p=sampling.top_p if sampling.do_sample else 1.0,
                seed=None if seed is None else seed + start, stop=[NEW_QUESTION], extra_body=extra,
            )
            choices = sorted(reply.choices, key=lambda c: c.index)
            if progress:
                progress(len(batch))
            return [Completion(cut(c.text, rules), c.finish_reason == "stop" or should_stop(c.text, rules))
                    for c in choices]

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return [completion for batch in pool.map(run, batches) for completion in batch]

    def close(self) -> None:
        if self.server is not None:
            self.server.__exit__()
            self.server = None
