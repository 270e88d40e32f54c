"""LoRA and QLoRA through PEFT (``model.adapter``: none | lora | qlora; settings in ``model.lora``).

A training stage with an adapter trains only the adapter: from a full checkpoint (the run's
starting model) it adds a new one; from a stage that saved an adapter it goes on training that
adapter, so each stage starts from the previous stage's weights. A stage's checkpoint is then
the adapter (``adapter_config.json``, ``adapter_model.safetensors``) plus the tokenizer, and the
adapter config points at its base model by absolute path; ``model.lora.save_merged`` also
writes the merged model to ``<stage>/model/merged``. Generation loads base + adapter and merges
them (the in-process engines), or serves the adapter with vLLM's LoRA support (rollout=vllm), so
no full checkpoint is written per stage. QLoRA loads the base in 4 bits (bitsandbytes, CUDA).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("tripost")

ADAPTER_CONFIG = "adapter_config.json"
ADAPTERS = ("none", "lora", "qlora")


def is_adapter_dir(path: str | Path) -> bool:
    return (Path(path) / ADAPTER_CONFIG).is_file()


def base_of(adapter_dir: str | Path) -> str:
    """The base model an adapter was trained on (its config's pointer)."""
    return json.loads((Path(adapter_dir) / ADAPTER_CONFIG).read_text())["base_model_name_or_path"]


def check_adapter(adapter: str) -> None:
    """At start-up: an adapter this machine can train; ConfigError (one line) otherwise."""
    from tripost.config import ConfigError

    if adapter not in ADAPTERS:
        raise ConfigError(f"config key 'model.adapter': {adapter!r} is not one of {list(ADAPTERS)}")
    if adapter == "qlora":
        import importlib.util

        if not torch.cuda.is_available():
            raise ConfigError("config key 'model.adapter': qlora needs a CUDA GPU (4-bit weights are bitsandbytes'); "
                              "use model.adapter=lora here")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError("config key 'model.adapter': qlora needs bitsandbytes: pip install -e '.[qlora]'")


def _load_base(path: str, dtype: torch.dtype, four_bit: bool):
    from transformers import AutoModelForCausalLM

    if not four_bit:
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=quant, dtype=torch.bfloat16,
                                                 device_map={"": torch.cuda.current_device()})
    return prepare_model_for_kbit_training(model)


def load_for_training(path: str | Path, adapter: str = "none", lora: dict[str, Any] | None = None):
    """The model a training stage starts from: the full model at ``path`` (fp32 master weights),
    or with an adapter, a PEFT model whose adapter is the only thing that trains."""
    path = str(path)
    if adapter == "none":
        if is_adapter_dir(path):
            raise ValueError(f"{path} holds an adapter: set model.adapter to train on it")
        return _load_base(path, torch.float32, four_bit=False)
    from peft import LoraConfig, PeftModel, get_peft_model

    four_bit = adapter == "qlora"
    if is_adapter_dir(path):  # the previous stage's adapter goes on training
        base = _load_base(base_of(path), torch.float32, four_bit)
        return PeftModel.from_pretrained(base, path, is_trainable=True)
    settings = dict(lora or {})
    config = LoraConfig(r=settings["r"], lora_alpha=settings["alpha"], lora_dropout=settings["dropout"],
                        target_modules=list(settings["target_modules"]), task_type="CAUSAL_LM")
    return get_peft_model(_load_base(path, torch.float32, four_bit), config)


def load_for_generation(path: str | Path, dtype: torch.dtype):
    """A checkpoint ready to generate: a full model, or base + adapter merged into one."""
    from transformers import AutoModelForCausalLM

    if not is_adapter_dir(path):
        return AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(base_of(path), dtype=dtype)
    return PeftModel.from_pretrained(base, str(path)).merge_and_unload()


def save_adapter(model, out_dir: str | Path, state: dict | None, save_merged: bool) -> None:
    """Save the adapter (rank 0), its base pointer made absolute, and on request the merged model."""
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir, state_dict=state)
    config_path = out_dir / ADAPTER_CONFIG
    config = json.loads(config_path.read_text())
    base = Path(config["base_model_name_or_path"])
    if base.is_dir():  # a local base: the pointer must not depend on the working directory
        config["base_model_name_or_path"] = str(base.resolve())
        config_path.write_text(json.dumps(config, indent=2))
    if save_merged:
        merged = load_for_generation(out_dir, torch.float32)
        merged.save_pretrained(out_dir / "merged")
