"""Shared fixtures: a tokenizer trained in-process, and the repository root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.fixture(scope="session")
def tokenizer():
    from tripost.models.tiny import train_tokenizer

    texts = [
        "Q: ((1 + 2 * 3) - (4 - 5 + 6)) =\nAnswer: Let's think step by step.\n(1) A = 7.\n"
        "(Final response) So the answer is 7.\nFeedback: Step (1) is correct. The final response is also correct.\n"
    ] * 20
    return train_tokenizer(texts, vocab_size=300)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``long(seconds)`` (a minute or more of work) first, longest first: with two test
    workers, one starts on them while the other works through the many short tests, so both end
    about together."""
    def seconds(item) -> float:
        mark = item.get_closest_marker("long")
        return mark.args[0] if mark and mark.args else 0.0

    items.sort(key=seconds, reverse=True)
