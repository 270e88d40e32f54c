"""Rollouts: everything that continues prompts, behind one interface (``Policy.complete``).

- ``policy``: the interface, ``Policy``, with ``Sampling`` and ``Completion``;
- ``stops``: every stop rule;
- ``engines``: ``rollout.engine`` -> the engine of a generation phase, one module each:
  ``loop`` (our decode loop), ``hf`` (transformers' ``generate``), both on ``inprocess``;
  ``served`` (``vllm``: a server process per phase and its client) with ``serve``, our CPU
  server of the same protocol;
- ``gold``: the gold policy; ``lazy``: a policy opened on first use, closed when its phase ends.
"""

from tripost.rollout.policy import Completion, Policy, Sampling

__all__ = ["Completion", "Policy", "Sampling"]
