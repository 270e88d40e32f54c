"""Typed schema of the run config: a wrong key or type fails at start-up, naming the key.

The YAML files in ``conf/`` are the user interface and carry the documentation of every
knob; these dataclasses only say which keys exist and what type each has. Nodes built with
``hydra.utils.instantiate`` (trainer, callbacks, logger) are free-form: their classes check
their own arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


class ConfigError(ValueError):
    """A config that does not fit the schema; the message is one line naming the key."""


@dataclass
class TrainData:
    source: str = "generate"
    path: Optional[str] = None
    format: str = "jsonl"
    size: int = 550
    cells: Optional[list[str]] = None
    seed_offset: int = 0


@dataclass
class TestData:
    source: str = "generate"
    path: Optional[str] = None
    format: str = "bigbench"
    per_cell: int = 30
    cells: Optional[list[str]] = None
    seed_offset: int = 1000


@dataclass
class TaskConfig:
    name: str = "multistep_arithmetic"
    options: dict[str, Any] = field(default_factory=dict)
    train: TrainData = field(default_factory=TrainData)
    test: TestData = field(default_factory=TestData)


@dataclass
class TinyArch:
    vocab_size: int = 512
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 512
    max_position_embeddings: int = 2048


@dataclass
class ModelConfig:
    kind: str = "tiny"
    name_or_path: Optional[str] = None
    arch: TinyArch = field(default_factory=TinyArch)
    generation_dtype: str = "float32"


@dataclass
class VerifierConfig:
    name: str = "scripted"


@dataclass
class SFTConfig:
    epochs: int = 5
    lr: float = 1e-6
    weight_decay: float = 0.01
    warmup_ratio: float = 0.2
    batch_size: int = 4
    max_length: int = 1024
    mask_prompt: bool = True
    loss_normalize: str = "tokens"
    num_workers: int = 0


@dataclass
class EvalConfig:
    batch_size: int = 64
    max_new_tokens: int = 512


@dataclass
class RunConfig:
    seed: int = 42
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    trainer: dict[str, Any] = field(default_factory=dict)
    callbacks: Optional[dict[str, Any]] = None
    logger: Optional[dict[str, Any]] = None
    paths: dict[str, Any] = field(default_factory=dict)


CHOICES = {
    "task.train.source": ("generate", "file"),
    "task.test.source": ("generate", "file"),
    "task.train.format": ("bigbench", "jsonl"),
    "task.test.format": ("bigbench", "jsonl"),
    "model.kind": ("tiny", "hf", "gold"),
    "model.generation_dtype": ("float32", "bfloat16", "float16"),
    "sft.loss_normalize": ("tokens", "weights"),
}


def validate(cfg: DictConfig) -> DictConfig:
    """Merge ``cfg`` (without its ``hydra`` node) into the schema; raise ConfigError on misfit."""
    plain = OmegaConf.masked_copy(cfg, [k for k in cfg.keys() if k != "hydra"])
    try:
        typed = OmegaConf.merge(OmegaConf.structured(RunConfig), plain)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        raise ConfigError(f"config key '{key}': {str(e).splitlines()[0]}") from None
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(typed, key)
        if value not in allowed:
            raise ConfigError(f"config key '{key}': {value!r} is not one of {list(allowed)}")
    for key in ("task.train.path", "task.test.path"):
        source = OmegaConf.select(typed, key.replace("path", "source"))
        if source == "file" and not OmegaConf.select(typed, key):
            raise ConfigError(f"config key '{key}': required when the source is 'file'")
    if typed.model.kind == "hf" and not typed.model.name_or_path:
        raise ConfigError("config key 'model.name_or_path': required for model=hf (a local path or hub id)")
    return typed
