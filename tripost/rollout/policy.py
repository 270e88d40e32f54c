"""The one interface every policy implements: prompts in, ``Completion``s out.

Engines (our decode loop, transformers' ``generate``, a served model), the gold policy and
wrappers (lazy opening, a few-shot prefix) all answer ``complete`` the same way, so a phase
(evaluation, rollouts, LMSI samples) never knows which one it holds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

from tripost.rollout.stops import StopRule, after_final_response


@dataclass(frozen=True)
class Sampling:
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 50  # transformers' default when sampling, which the paper's code ran with; 0 = off
    top_p: float = 1.0
    max_new_tokens: int = 512


@dataclass(frozen=True)
class Completion:
    """One continuation, prompt excluded, cut by the stop rules."""

    text: str
    # True: it ended by itself (EOS, a stop rule, a new "Q:"); False: it ran into max_new_tokens.
    # Self-improvement inference feeds only the latter back for another round.
    finished: bool


class Policy(ABC):
    """Something that continues prompts."""

    @abstractmethod
    def complete(
        self,
        prompts: list[str],
        sampling: Sampling,
        stop: StopRule | None = after_final_response,
        progress: Callable[[int], None] | None = None,
        seed: int | None = None,
    ) -> list[Completion]:
        """One ``Completion`` per prompt, in order. Every continuation stops at a new "Q:";
        ``stop`` adds a rule (``tripost.rollout.stops``). ``progress(n)`` is called as ``n``
        more prompts are done; ``seed`` makes sampling reproducible."""

    def close(self) -> None:
        """Free what the policy holds (a model's memory, a server process); a no-op by default."""
