"""The expert of TriPosT: feedback (FBK) on an attempt, and improvement (IMP) of it."""

from __future__ import annotations

from abc import ABC, abstractmethod

from tripost.formats import Feedback


class ExpertError(Exception):
    """The expert gave no usable answer (an empty, refused or unreadable reply, or a request that
    failed after its retries). The trajectory is dropped and counted; the run goes on."""


class BudgetExceeded(Exception):
    """The expert's cost budget is spent: the run stops cleanly, everything finished kept."""


class ExpertUnreachable(Exception):
    """Too many of a pass's requests never reached the expert (connection errors or timeouts
    after the client's retries): the server is down, not the replies bad. The pass stops
    unrecorded, since dropping those trajectories would train on what is left and a resumed
    run would never ask again; resumed once the expert is back, it asks only what is missing."""


class Expert(ABC):
    """Two roles. ``feedback`` finds the earliest wrong step (or says the attempt is correct);
    ``improve`` rewrites an attempt: the steps before the error step kept, the rest new.

    Both may be called from ``concurrency`` threads at once (the editor runs that many
    trajectories in parallel), and may raise ExpertError or BudgetExceeded; after each pass
    ``raise_if_unreachable`` may raise ExpertUnreachable."""

    concurrency: int = 1  # trajectories edited at once

    def close(self) -> None:
        """Release connections and threads (API experts)."""

    def __enter__(self) -> "Expert":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def usage(self) -> dict:
        """Calls, cache hits, tokens and cost so far (empty for experts that call no API)."""
        return {}

    def reset_usage(self) -> None:
        """Start a new accounting period (one per collection); a budget still counts the whole run."""

    def raise_if_unreachable(self) -> None:
        """Called by the editing loop after each pass, before the pass is recorded: raises
        ExpertUnreachable when too many of the pass's requests found no expert, and starts
        counting the next pass (experts that call no API are always reachable)."""

    def reseed(self, seed: int) -> None:
        """Fix the expert's randomness for one collection pass, so a resumed pass edits the same."""

    def attempt(self, question: str) -> str:
        """The expert's own attempt at a question (the "ft SI. demo" baseline, SPEC 8)."""
        raise NotImplementedError(f"{type(self).__name__} does not write attempts")

    @abstractmethod
    def feedback(self, question: str, attempt: str) -> Feedback:
        """FBK: never raises on a malformed attempt; returns ``Feedback.unparsable``."""

    @abstractmethod
    def improve(self, question: str, attempt: str, feedback: Feedback) -> str | None:
        """IMP: the updated attempt body, or None when the expert could not write one."""
