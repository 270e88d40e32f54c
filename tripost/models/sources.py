"""Where a run's starting model comes from: the ``model`` config node is one of these (``_target_``).

- ``TinyModel``: a tokenizer trained on the task's text and a small Llama built from scratch,
  saved to ``init_model/`` (nothing is downloaded);
- ``PretrainedModel``: any causal LM Hugging Face can load, a local directory or a hub id;
- ``GoldModel``: no model at all: the task's gold rationales (evaluation must score 100%).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger("tripost")

_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")  # "gpt2", "meta-llama/Llama-3.2-1B"


class ModelSource:
    """A starting model: ``start_checkpoint`` returns the directory (or hub id) training starts from."""

    reference = False  # True: no model; the gold policy answers (model=gold)

    def __init__(self, generation_dtype: str, adapter: str = "none", lora: dict | None = None,
                 chat_template: bool = False):
        from tripost.models.adapters import check_adapter

        self.generation_dtype = generation_dtype  # auto | float32 | bfloat16 | float16
        check_adapter(adapter)  # qlora without CUDA or bitsandbytes: one line at start-up
        self.adapter, self.lora, self.chat_template = adapter, lora, chat_template

    def start_checkpoint(self, run_dir: Path, texts: Iterable[str], seed: int) -> str:
        raise NotImplementedError


class TinyModel(ModelSource):
    def __init__(self, arch: dict[str, Any], generation_dtype: str, **common):
        super().__init__(generation_dtype, **common)
        self.arch = dict(arch)

    def start_checkpoint(self, run_dir: Path, texts: Iterable[str], seed: int) -> str:
        """A fresh tokenizer and model in ``run_dir/init_model`` (kept on resume)."""
        from tripost.io import atomic_dir
        from tripost.models.tiny import build_tiny_model, save_pretrained, train_tokenizer

        init_dir = run_dir / "init_model"
        if (init_dir / "config.json").is_file():
            return str(init_dir)
        arch = self.arch
        tokenizer = train_tokenizer(list(texts), vocab_size=arch["vocab_size"])
        model = build_tiny_model(tokenizer, hidden_size=arch["hidden_size"], num_layers=arch["num_layers"],
                                 num_heads=arch["num_heads"], intermediate_size=arch["intermediate_size"],
                                 max_position_embeddings=arch["max_position_embeddings"], seed=seed)
        with atomic_dir(init_dir) as tmp:
            save_pretrained(model, tokenizer, tmp)
        log.info("tiny model: %.2fM parameters, vocabulary %d", sum(p.numel() for p in model.parameters()) / 1e6,
                 len(tokenizer))
        return str(init_dir)


class PretrainedModel(ModelSource):
    def __init__(self, name_or_path: str, generation_dtype: str, arch: dict | None = None, **common):
        # ``arch`` sizes the tiny model (debug=fast sets it); a pretrained model has its own
        from tripost.config import ConfigError

        super().__init__(generation_dtype, **common)
        path = Path(str(name_or_path)).expanduser()
        # A local path that is not there fails now, not after data generation; a hub id is
        # left to Hugging Face (it downloads, where the network allows).
        if not path.is_dir() and not _HUB_ID.match(str(name_or_path)):
            raise ConfigError(f"config key 'model.name_or_path': no model directory at {name_or_path}")
        if path.is_dir() and not (path / "config.json").is_file():
            raise ConfigError(f"config key 'model.name_or_path': {name_or_path} holds no config.json of a model")
        self.name_or_path = str(path) if path.is_dir() else str(name_or_path)

    def start_checkpoint(self, run_dir: Path, texts: Iterable[str], seed: int) -> str:
        return self.name_or_path


class GoldModel(ModelSource):
    reference = True

    def __init__(self, generation_dtype: str, arch: dict | None = None):  # arch: as PretrainedModel's
        super().__init__(generation_dtype)
