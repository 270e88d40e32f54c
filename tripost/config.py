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


def _first_set(value, default):
    """Resolver ``${first_set:a,b}``: a unless it is null or empty, else b (e.g. resume dirs)."""
    return value if value not in (None, "", "null", "None") else default


if not OmegaConf.has_resolver("first_set"):
    OmegaConf.register_new_resolver("first_set", _first_set)


class ConfigError(ValueError):
    """A config that does not fit the schema; the message is one line naming the key."""


@dataclass
class TrainData:
    source: str = "generate"
    path: Optional[str] = None
    format: str = "auto"
    split: Optional[str] = "train"
    strict: bool = False
    size: int = 550
    cells: Optional[list[str]] = None
    seed_offset: int = 0


@dataclass
class TestData:
    source: str = "generate"
    path: Optional[str] = None
    format: str = "auto"
    split: Optional[str] = "validation"
    strict: bool = False
    per_cell: int = 30
    cells: Optional[list[str]] = None
    seed_offset: int = 1000


@dataclass
class TaskConfig:
    name: str = "multistep_arithmetic"
    options: dict[str, Any] = field(default_factory=dict)
    max_question_chars: int = 20000
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
    generation_dtype: str = "auto"


@dataclass
class ExpertRoleConfig:
    """Request settings of one role (FBK or IMP) of an API expert."""

    model: str = "gpt-4o-mini"
    temperature: float = 0.0
    max_tokens: int = 512
    stop: Optional[list[str]] = None  # null: the prompt's own end marker (completions), none (chat)


@dataclass
class AzureConfig:
    api_version: str = "2024-10-21"
    deployment: Optional[str] = None


@dataclass
class ExpertCacheConfig:
    path: Optional[str] = None
    mode: str = "readwrite"


@dataclass
class ModelPrice:
    input: float = 0.0  # USD per 1M prompt tokens
    output: float = 0.0  # USD per 1M completion tokens


@dataclass
class RunEstimateConfig:
    wrong_share: float = 0.5
    rounds: float = 1.5


@dataclass
class VerifierConfig:
    name: str = "scripted"
    imp_error_rate: float = 0.0
    attempt_error_rate: float = 0.5
    # verifier=openai (conf/verifier/openai.yaml documents each key); unused by the scripted expert
    base_url: str = "https://api.openai.com/v1"
    api_key_env: str = "OPENAI_API_KEY"
    api: str = "chat"
    azure: Optional[AzureConfig] = None
    fbk: ExpertRoleConfig = field(default_factory=lambda: ExpertRoleConfig(temperature=0.0, max_tokens=256))
    imp: ExpertRoleConfig = field(default_factory=lambda: ExpertRoleConfig(temperature=0.7, max_tokens=1024))
    att: ExpertRoleConfig = field(default_factory=lambda: ExpertRoleConfig(temperature=0.7, max_tokens=1024))
    shots: int = 3
    shot_seed: int = 0
    concurrency: int = 16
    max_retries: int = 5
    timeout_s: float = 60.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    cache: ExpertCacheConfig = field(default_factory=ExpertCacheConfig)
    prices: dict[str, ModelPrice] = field(default_factory=dict)
    max_cost_usd: Optional[float] = None
    dry_run: bool = False
    estimate: RunEstimateConfig = field(default_factory=RunEstimateConfig)


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
class IterationTrainConfig(SFTConfig):
    epochs: int = 4
    self_improve_section_weight: float = 1.5


@dataclass
class TriPosTConfig:
    name: str = "tripost"
    num_iterations: int = 3
    window_size: Optional[int] = None
    max_data_length: int = 150
    min_data_length: int = 60
    max_data_itr: int = 5
    improve_data_ratio: float = 1.5
    max_updates: int = 5
    filter_failed_edits: bool = True
    max_attempt_chars: int = 4000
    do_sample: bool = True
    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 1.0
    max_new_tokens: int = 1024
    train: IterationTrainConfig = field(default_factory=IterationTrainConfig)


@dataclass
class LMSIConfig:
    enabled: bool = False
    samples: int = 8
    temperature: float = 1.2
    keep: str = "correct"


@dataclass
class PromptingConfig:
    enabled: bool = False
    shots: int = 3


@dataclass
class BaselinesConfig:
    ft_si_demo: bool = False
    prompting: PromptingConfig = field(default_factory=PromptingConfig)
    lmsi: LMSIConfig = field(default_factory=LMSIConfig)


@dataclass
class GenerationServerConfig:
    command: list[str] = field(default_factory=list)
    startup_timeout_s: float = 900.0
    concurrency: int = 4


@dataclass
class RolloutConfig:
    engine: str = "loop"
    device: str = "auto"
    server: GenerationServerConfig = field(default_factory=GenerationServerConfig)


@dataclass
class EvalConfig:
    batch_size: int = 64
    max_new_tokens: int = 512
    max_continuations: int = 3


@dataclass
class RunConfig:
    seed: int = 42
    resume: Optional[str] = None
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    tripost: TriPosTConfig = field(default_factory=TriPosTConfig)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    trainer: dict[str, Any] = field(default_factory=dict)
    callbacks: Optional[dict[str, Any]] = None
    logger: Optional[dict[str, Any]] = None
    paths: dict[str, Any] = field(default_factory=dict)


CHOICES = {
    "task.train.source": ("generate", "file"),
    "task.test.source": ("generate", "file"),
    "task.train.format": ("auto", "jsonl", "rationale", "text", "bigbench"),
    "task.test.format": ("auto", "jsonl", "rationale", "text", "bigbench"),
    "model.kind": ("tiny", "hf", "gold"),
    "model.generation_dtype": ("auto", "float32", "bfloat16", "float16"),
    "sft.loss_normalize": ("tokens", "weights"),
    "tripost.train.loss_normalize": ("tokens", "weights"),
    "verifier.name": ("scripted", "openai"),
    "baselines.lmsi.keep": ("correct", "majority"),
    "verifier.api": ("chat", "completions"),
    "verifier.cache.mode": ("readwrite", "readonly", "off"),
    "rollout.engine": ("loop", "hf", "vllm"),
    "rollout.device": ("auto", "cpu", "cuda"),
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


def resume_config(cfg: DictConfig, overrides: list[str] | None = None) -> DictConfig:
    """The config to run: on resume, the one saved in the run dir (so the run ends as it would
    have), else ``cfg``, which is then saved there as ``run_config.yaml``.

    On resume, paths saved under the run dir's old location follow the dir (a copied or moved
    run writes into itself), and plain ``key=value`` ``overrides`` from the command line apply
    on top (e.g. ``tripost.num_iterations=5`` extends a finished run); changing a config group
    (``task=...``) is refused, since the finished stages were built with the old one."""
    from pathlib import Path

    from tripost.io import atomic_write_text

    run_dir = Path(cfg.paths.output_dir)
    saved_path = run_dir / "run_config.yaml"
    plain = OmegaConf.masked_copy(cfg, [k for k in cfg.keys() if k != "hydra"])
    if cfg.get("resume"):
        if not saved_path.is_file():
            raise ConfigError(f"config key 'resume': {run_dir} holds no run_config.yaml of an earlier run")
        saved = OmegaConf.to_container(OmegaConf.load(saved_path))
        saved = OmegaConf.create(_rebase(saved, str(saved["paths"]["output_dir"]), str(run_dir)))
        for override in overrides or []:
            key, _, value = override.lstrip("+~").partition("=")
            if key in ("resume", "hydra") or key.startswith("hydra."):
                continue
            if isinstance(OmegaConf.select(saved, key), DictConfig) or "." not in key and key not in saved:
                raise ConfigError(f"config key '{key}': a config group cannot change on resume (start a new run)")
            OmegaConf.update(saved, key, OmegaConf.from_dotlist([f"v={value}"]).v, force_add=False)
        saved.resume = str(run_dir)
        # Keys added to the schema since that run was saved take their defaults.
        return OmegaConf.create(OmegaConf.to_container(validate(saved)))
    resolved = OmegaConf.create(OmegaConf.to_container(plain, resolve=True))
    atomic_write_text(saved_path, OmegaConf.to_yaml(resolved))
    return resolved


def _rebase(node: Any, old: str, new: str) -> Any:
    """Every string path at or below ``old`` moved to ``new``."""
    if isinstance(node, dict):
        return {k: _rebase(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_rebase(v, old, new) for v in node]
    if isinstance(node, str) and (node == old or node.startswith(old.rstrip("/") + "/")):
        return new + node[len(old):]
    return node
