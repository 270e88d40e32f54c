"""Policies: things that continue prompts. A trained HF model, or the gold reference.

The gold policy writes the task's gold rationale for each question; evaluating it must give
100% accuracy, which checks questions, formats and parsing end to end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from tripost.formats import ANSWER_HEADER
from tripost.generation import Sampling, StopRule, after_final_response, generate
from tripost.tasks import Task


class HFPolicy:
    """A causal LM with its tokenizer, generating in batches."""

    def __init__(self, model, tokenizer, batch_size: int = 64, engine: str = "loop"):
        self.model, self.tokenizer, self.batch_size, self.engine = model, tokenizer, batch_size, engine

    @classmethod
    def load(cls, path: str | Path, batch_size: int = 64, dtype: str = "float32", device: str = "cpu",
             engine: str = "loop") -> HFPolicy:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=getattr(torch, dtype)).to(device)
        return cls(model, tokenizer, batch_size, engine)

    def complete(
        self,
        prompts: list[str],
        sampling: Sampling,
        stop: StopRule | None = after_final_response,
        progress: Callable[[int], None] | None = None,
        seed: int | None = None,
        return_finished: bool = False,
    ):
        """Continuations; with ``return_finished`` also whether each ended by itself."""
        return generate(
            self.model, self.tokenizer, prompts, sampling, self.batch_size, stop=stop, progress=progress, seed=seed,
            return_finished=return_finished, engine=self.engine,
        )


class LazyPolicy:
    """A policy opened on its first ``complete`` and released by ``close``.

    ``open_policy`` returns the policy and a function that frees what it holds (the model's
    memory, or a server process). Nothing is loaded when a phase finds its outputs on disk.
    """

    def __init__(self, open_policy: Callable[[], tuple[Any, Callable[[], None]]]):
        self._open, self._policy, self._release = open_policy, None, None

    def complete(self, *args, **kwargs):
        if self._policy is None:
            self._policy, self._release = self._open()
        return self._policy.complete(*args, **kwargs)

    def close(self) -> None:
        if self._release is not None:
            self._release()
        self._policy = self._release = None


def release_model(policy: HFPolicy) -> None:
    """Free an in-process model's memory now: on a GPU, generation and training take turns."""
    import gc

    import torch

    policy.model = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def question_of(prompt: str) -> str:
    """The question of a prompt "Q: <question>\\nAnswer: ..." (the question may span lines)."""
    body = prompt[len("Q: ") :] if prompt.startswith("Q: ") else prompt
    return body.split("\n" + ANSWER_HEADER, 1)[0]


class GoldPolicy:
    """Writes the task's gold rationale for every prompt."""

    def __init__(self, task: Task):
        self.task = task

    def complete(self, prompts, sampling=None, stop=None, progress=None, seed=None, return_finished=False):
        out = []
        for p in prompts:
            out.append(self.task.gold_attempt(question_of(p)))
            if progress:
                progress(1)
        return (out, [True] * len(out)) if return_finished else out
