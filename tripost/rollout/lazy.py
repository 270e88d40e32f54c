"""A policy opened on its first ``complete`` and closed when its phase ends."""

from __future__ import annotations

from typing import Callable

from tripost.rollout.policy import Completion, Policy


class LazyPolicy(Policy):
    """Opens the policy ``open_policy`` returns when first asked to complete; ``close`` frees what
    it holds (the model's memory, or a server process). Nothing is loaded when a phase finds its
    outputs on disk (a resumed run)."""

    def __init__(self, open_policy: Callable[[], Policy]):
        self._open, self._policy = open_policy, None

    def complete(self, prompts, sampling, *args, **kwargs) -> list[Completion]:
        if self._policy is None:
            self._policy = self._open()
        return self._policy.complete(prompts, sampling, *args, **kwargs)

    def close(self) -> None:
        if self._policy is not None:
            self._policy.close()
        self._policy = None
