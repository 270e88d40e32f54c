"""The expert of TriPosT: feedback (FBK) on an attempt, and improvement (IMP) of it."""

from __future__ import annotations

from abc import ABC, abstractmethod

from tripost.formats import Feedback


class Expert(ABC):
    """Two roles. ``feedback`` finds the earliest wrong step (or says the attempt is correct);
    ``improve`` rewrites an attempt: the steps before the error step kept, the rest new."""

    def reseed(self, seed: int) -> None:
        """Fix the expert's randomness for one collection pass, so a resumed pass edits the same."""

    @abstractmethod
    def feedback(self, question: str, attempt: str) -> Feedback:
        """FBK: never raises on a malformed attempt; returns ``Feedback.unparsable``."""

    @abstractmethod
    def improve(self, question: str, attempt: str, feedback: Feedback) -> str | None:
        """IMP: the updated attempt body, or None when the expert could not write one."""
