"""Typed schema of the run config: a wrong key or type fails at start-up, naming the key.

The YAML files in ``conf/`` are the user interface and carry the documentation of every
knob; these dataclasses only say which keys exist and what type each has. Nodes built with
``hydra.utils.instantiate`` (trainer, callbacks, logger) are free-form: their classes check
their own arguments.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


def _first_set(value, default):
    """Resolver ``${first_set:a,b}``: a unless it is null or empty, else b (e.g. resume dirs)."""
    return value if value not in (None, "", "null", "None") else default


if not OmegaConf.has_resolver("first_set"):
    OmegaConf.register_new_resolver("first_set", _first_set)
if not OmegaConf.has_resolver("pid"):  # ${pid:}: two runs started in the same second get their own dirs
    OmegaConf.register_new_resolver("pid", lambda: os.getpid(), use_cache=True)


def run_stamp() -> str:
    """Resolver ``${run_stamp:}``, a new run dir's name: start time and pid. The ranks torchrun
    starts on a node share one (the time and pid of torchrun's agent, their parent), and the
    ranks of one srun step share the job and step ids, so they all find the driver's dir."""
    import time

    env = os.environ
    if "TORCHELASTIC_RUN_ID" in env:
        import psutil

        agent = psutil.Process(os.getppid())
        return time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(agent.create_time())) + f"_{agent.pid}"
    if "SLURM_STEP_ID" in env and int(env.get("SLURM_NTASKS", "1")) > 1:
        return time.strftime("%Y-%m-%d") + f"_slurm{env.get('SLURM_JOB_ID', '0')}.{env['SLURM_STEP_ID']}"
    return time.strftime("%Y-%m-%d_%H-%M-%S") + f"_{os.getpid()}"


if not OmegaConf.has_resolver("run_stamp"):
    OmegaConf.register_new_resolver("run_stamp", run_stamp, use_cache=True)


class ConfigError(ValueError):
    """A config that does not fit the schema; the message is one line naming the key."""


# Every field is MISSING: the YAML in conf/ is the one source of every default (a test checks
# that no default is written here); the schema only says which keys exist and their types.
# Nested dataclasses are structure, not values. Nodes built with hydra.utils.instantiate
# (task.impl, model, verifier, trainer, callbacks, logger) are free-form here: their classes
# check their own arguments, and validate() the values it can check at start-up.


@dataclass
class DataSource:
    source: str = MISSING
    path: Optional[str] = MISSING
    format: str = MISSING
    split: Optional[str] = MISSING
    strict: bool = MISSING
    cells: Optional[list[str]] = MISSING
    seed_offset: int = MISSING


@dataclass
class TrainData(DataSource):
    size: int = MISSING


@dataclass
class TestData(DataSource):
    per_cell: int = MISSING
    dev_seed_offset: int = MISSING


@dataclass
class TaskConfig:
    name: str = MISSING
    path: Optional[str] = MISSING  # task=custom: the items file (other tasks: null)
    impl: dict[str, Any] = MISSING  # _target_: the Task class, and its options
    max_question_chars: int = MISSING
    train: TrainData = field(default_factory=TrainData)
    test: TestData = field(default_factory=TestData)


@dataclass
class SFTConfig:
    epochs: int = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    warmup_ratio: float = MISSING
    batch_size: int = MISSING
    max_length: int = MISSING
    mask_prompt: bool = MISSING
    loss_normalize: str = MISSING
    num_workers: int = MISSING


@dataclass
class IterationTrainConfig(SFTConfig):
    self_improve_section_weight: float = MISSING
    wrong_attempt_weight: float = MISSING


@dataclass
class TriPosTConfig:
    name: str = MISSING
    num_iterations: int = MISSING
    window_size: Optional[int] = MISSING
    window_held_out: bool = MISSING
    max_data_length: int = MISSING
    min_data_length: int = MISSING
    max_data_itr: int = MISSING
    improve_data_ratio: float = MISSING
    gold_ratio: float = MISSING
    max_updates: int = MISSING
    filter_failed_edits: bool = MISSING
    max_attempt_chars: int = MISSING
    do_sample: bool = MISSING
    temperature: float = MISSING
    top_k: int = MISSING
    top_p: float = MISSING
    max_new_tokens: int = MISSING
    train: IterationTrainConfig = field(default_factory=IterationTrainConfig)


@dataclass
class LMSIConfig:
    enabled: bool = MISSING
    samples: int = MISSING
    temperature: float = MISSING
    keep: str = MISSING


@dataclass
class PromptingConfig:
    enabled: bool = MISSING
    shots: int = MISSING


@dataclass
class BaselinesConfig:
    ft_si_demo: bool = MISSING
    prompting: PromptingConfig = field(default_factory=PromptingConfig)
    lmsi: LMSIConfig = field(default_factory=LMSIConfig)


@dataclass
class RolloutConfig:
    engine: dict[str, Any] = MISSING  # _target_: an engine (tripost.rollout.engines), partial
    device: str = MISSING
    workers: str = MISSING  # a count, or auto


@dataclass
class EvalConfig:
    set: str = MISSING
    batch_size: int = MISSING
    max_new_tokens: int = MISSING
    max_continuations: int = MISSING


@dataclass
class RunConfig:
    seed: int = MISSING
    resume: Optional[str] = MISSING
    task: TaskConfig = field(default_factory=TaskConfig)
    model: dict[str, Any] = MISSING  # _target_: a model source (tripost.models.sources)
    verifier: dict[str, Any] = MISSING  # _target_: an Expert; settings checked by VERIFIER_SCHEMAS
    sft: SFTConfig = field(default_factory=SFTConfig)
    tripost: TriPosTConfig = field(default_factory=TriPosTConfig)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    trainer: dict[str, Any] = MISSING
    cluster: dict[str, Any] = MISSING  # _target_: a Cluster (tripost.cluster)
    callbacks: Optional[dict[str, Any]] = MISSING
    logger: Optional[dict[str, Any]] = MISSING
    paths: dict[str, Any] = MISSING


# ---------------------------------------------------------------- the verifiers' settings
@dataclass
class ScriptedVerifierConfig:
    imp_error_rate: float = MISSING
    attempt_error_rate: float = MISSING


@dataclass
class ExpertRoleConfig:
    """Request settings of one role (FBK, IMP, ATT) of an API expert."""

    model: str = MISSING
    temperature: float = MISSING
    max_tokens: int = MISSING
    stop: Optional[list[str]] = MISSING  # null: the prompt's own end marker (completions), none (chat)


@dataclass
class ExpertCacheConfig:
    path: Optional[str] = MISSING
    mode: str = MISSING


@dataclass
class ModelPrice:
    input: float = MISSING  # USD per 1M prompt tokens
    output: float = MISSING  # USD per 1M completion tokens


@dataclass
class RunEstimateConfig:
    wrong_share: float = MISSING
    rounds: float = MISSING


@dataclass
class VerifierConfig:
    """verifier=openai (conf/verifier/openai.yaml documents each key and holds its defaults)."""

    base_url: str = MISSING
    api_key_env: str = MISSING
    api: str = MISSING
    azure: Optional[dict[str, Any]] = MISSING  # {api_version, deployment (optional)}: the expert checks it
    fbk: ExpertRoleConfig = field(default_factory=ExpertRoleConfig)
    imp: ExpertRoleConfig = field(default_factory=ExpertRoleConfig)
    att: ExpertRoleConfig = field(default_factory=ExpertRoleConfig)
    shots: int = MISSING
    shot_seed: int = MISSING
    concurrency: int = MISSING
    max_retries: int = MISSING
    timeout_s: float = MISSING
    cache: ExpertCacheConfig = field(default_factory=ExpertCacheConfig)
    prices: dict[str, ModelPrice] = MISSING
    max_cost_usd: Optional[float] = MISSING
    spend_path: Optional[str] = MISSING  # null: the spend is not kept across processes of a run
    max_unreachable_share: float = MISSING
    dry_run: bool = MISSING
    estimate: RunEstimateConfig = field(default_factory=RunEstimateConfig)


# The settings schema of each expert class tripost ships (a user's own expert is free-form:
# its class checks its own arguments).
VERIFIER_SCHEMAS = {
    "tripost.experts.scripted.ScriptedExpert": ScriptedVerifierConfig,
    "tripost.experts.openai_expert.OpenAIExpert.from_settings": VerifierConfig,
}


CHOICES = {
    "task.train.source": ("generate", "file"),
    "task.test.source": ("generate", "file"),
    "task.train.format": ("auto", "jsonl", "rationale", "text", "bigbench"),
    "task.test.format": ("auto", "jsonl", "rationale", "text", "bigbench"),
    "model.generation_dtype": ("auto", "float32", "bfloat16", "float16"),
    "sft.loss_normalize": ("tokens", "weights"),
    "tripost.train.loss_normalize": ("tokens", "weights"),
    "baselines.lmsi.keep": ("correct", "majority"),
    "verifier.api": ("chat", "completions"),
    "verifier.cache.mode": ("readwrite", "readonly", "off"),
    "rollout.device": ("auto", "cpu", "cuda"),
    "eval.set": ("test", "dev"),
}


# Numbers that make no sense outside a range: refused at start-up, not found out after training.
# key -> (lowest, highest); None = unbounded. A null value (where the schema allows it) is not checked.
RANGES = {
    "task.max_question_chars": (1, None),
    "task.train.size": (1, None),
    "task.test.per_cell": (1, None),
    "tripost.num_iterations": (0, None),
    "tripost.window_size": (1, None),
    "tripost.max_data_length": (1, None),
    "tripost.min_data_length": (0, None),
    "tripost.max_data_itr": (1, None),
    "tripost.max_updates": (0, None),
    "tripost.max_attempt_chars": (1, None),
    "tripost.temperature": (1e-6, None),
    "tripost.top_k": (0, None),
    "tripost.top_p": (1e-6, 1.0),
    "tripost.max_new_tokens": (1, None),
    "tripost.train.wrong_attempt_weight": (0.0, None),
    "tripost.gold_ratio": (0.0, None),
    "baselines.lmsi.samples": (1, None),
    "baselines.lmsi.temperature": (1e-6, None),
    "baselines.prompting.shots": (0, None),
    "eval.batch_size": (1, None),
    "eval.max_new_tokens": (1, None),
    "eval.max_continuations": (0, None),
    **{f"{node}.{key}": bounds for node in ("sft", "tripost.train") for key, bounds in {
        "epochs": (1, None), "lr": (1e-12, None), "weight_decay": (0.0, None), "warmup_ratio": (0.0, 1.0),
        "batch_size": (1, None), "max_length": (1, None), "num_workers": (0, None)}.items()},
}


def _check_ranges(typed: DictConfig) -> None:
    for key, (low, high) in RANGES.items():
        value = OmegaConf.select(typed, key, default=None)
        if value is None:
            continue
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f">= {low}" if high is None else f"between {low} and {high}"
            raise ConfigError(f"config key '{key}': {value} is out of range (must be {bounds})")


def _config_error(e: OmegaConfBaseException, prefix: str = "") -> ConfigError:
    key = getattr(e, "full_key", None) or "?"
    return ConfigError(f"config key '{prefix}{key}': {str(e).splitlines()[0]}")


def typed_node(schema, node: Any, prefix: str = "") -> DictConfig:
    """``node`` merged into ``schema``; ConfigError naming the key on a wrong key or type, or a
    key no YAML file set (every value comes from conf/)."""
    try:
        typed = OmegaConf.merge(OmegaConf.structured(schema), node)
    except OmegaConfBaseException as e:
        raise _config_error(e, prefix) from None
    missing = sorted(OmegaConf.missing_keys(typed))
    if missing:
        raise ConfigError(f"config key '{prefix}{missing[0]}': no value set (conf/ or the command line must give one)")
    return typed


def settings_of(node: Any) -> dict[str, Any]:
    """A ``_target_`` node's settings: the node without the class it names."""
    return {k: v for k, v in dict(node).items() if k != "_target_"}


def build(node: Any, key: str, **kwargs) -> Any:
    """``hydra.utils.instantiate(node, **kwargs)``; a part that cannot be built (a wrong option of
    a task, model or expert) is a ConfigError naming ``key``, in one line."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, **kwargs, _convert_="all")
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, ConfigError):
            raise cause from None
        reason = str(cause or e).splitlines()[0] if str(cause or e) else type(cause or e).__name__
        raise ConfigError(f"config key '{key}': cannot build {node.get('_target_', '?')}: {reason}") from None


def validate(cfg: DictConfig) -> DictConfig:
    """``cfg`` (without its ``hydra`` node) on the typed schema: what every stage receives.
    ConfigError, one line naming the key, on a wrong key or type, a value not allowed, or a
    missing one."""
    plain = OmegaConf.masked_copy(cfg, [k for k in cfg.keys() if k != "hydra"])
    typed = typed_node(RunConfig, plain)
    for node in ("model", "verifier", "rollout.engine", "cluster"):
        if "_target_" not in OmegaConf.select(typed, node):
            raise ConfigError(f"config key '{node}._target_': required (the class that builds the {node})")
    schema = VERIFIER_SCHEMAS.get(typed.verifier._target_)
    if schema is not None:  # checked here, at start-up; the expert types its own settings again
        typed_node(schema, settings_of(OmegaConf.to_container(typed.verifier, resolve=True)), "verifier.")
    if "name_or_path" in typed.model and not typed.model.name_or_path:
        raise ConfigError("config key 'model.name_or_path': required for model=hf (a local path or hub id)")
    if "_target_" not in typed.task.impl:
        raise ConfigError("config key 'task.impl._target_': required (the Task class)")
    for key, allowed in CHOICES.items():
        value = OmegaConf.select(typed, key, default=_ABSENT)
        if value is not _ABSENT and value not in allowed:
            raise ConfigError(f"config key '{key}': {value!r} is not one of {list(allowed)}")
    _check_ranges(typed)
    _check_generation_workers(typed)
    if typed.tripost.window_held_out and not typed.tripost.window_size:
        raise ConfigError("config key 'tripost.window_held_out': needs tripost.window_size (the questions held out)")
    for key in ("task.train.path", "task.test.path"):
        source = OmegaConf.select(typed, key.replace("path", "source"))
        if source == "file" and not OmegaConf.select(typed, key):
            raise ConfigError(f"config key '{key}': required when the source is 'file'")
    return typed


_ABSENT = object()


def _check_generation_workers(typed: DictConfig) -> None:
    workers = typed.rollout.workers
    if workers != "auto" and not (workers.isdigit() and int(workers) >= 1):
        raise ConfigError(f"config key 'rollout.workers': {workers!r} is not a count >= 1 or auto")
    if workers not in ("auto", "1") and typed.rollout.engine._target_.endswith("ServedPolicy.serve"):
        raise ConfigError("config key 'rollout.workers': the served engine (rollout=vllm) places its own workers; "
                          "set rollout.engine.data_parallel_size instead")


FIXED_ON_RESUME = ("seed", "eval.set")  # keys that drew the run's saved questions


def resume_config(cfg: DictConfig, overrides: list[str] | None = None,
                  choices: dict[str, str | None] | None = None) -> DictConfig:
    """The typed config to run: on resume, the one saved in the run dir (so the run ends as it
    would have), else ``cfg``, which is then saved there as ``run_config.yaml`` with the config
    group ``choices`` of the run (``run_choices.yaml``).

    On resume, paths saved under the run dir's old location follow the dir (a copied or moved
    run writes into itself), and plain ``key=value`` ``overrides`` from the command line apply
    on top (e.g. ``tripost.num_iterations=5`` extends a finished run). A group override is
    accepted when it names the run's own choice and refused otherwise, since the finished stages
    were built with it. Keys added to conf/ since the run was saved take the values conf/ gives
    now for the run's own group choices (never another group's)."""
    from pathlib import Path

    from tripost.io import atomic_write_text

    run_dir = Path(cfg.paths.output_dir)
    saved_path, choices_path = run_dir / "run_config.yaml", run_dir / "run_choices.yaml"
    if not cfg.get("resume"):
        typed = validate(cfg)
        resolved = OmegaConf.create(OmegaConf.to_container(typed, resolve=True))
        atomic_write_text(saved_path, OmegaConf.to_yaml(resolved))
        atomic_write_text(choices_path, OmegaConf.to_yaml(OmegaConf.create(dict(choices or {}))))
        return validate(resolved)
    if not saved_path.is_file():
        raise ConfigError(f"config key 'resume': {run_dir} holds no run_config.yaml of an earlier run")
    try:
        saved = OmegaConf.to_container(OmegaConf.load(saved_path))
        saved_choices = OmegaConf.to_container(OmegaConf.load(choices_path)) if choices_path.is_file() else {}
    except (OSError, OmegaConfBaseException) as e:
        raise ConfigError(f"config key 'resume': cannot read {saved_path}: {str(e).splitlines()[0]}") from None
    saved = OmegaConf.create(_rebase(saved, str(saved["paths"]["output_dir"]), str(run_dir)))
    for override in overrides or []:
        key, _, value = override.lstrip("+~").partition("=")
        if key in ("resume", "hydra") or key.startswith("hydra.") or key.startswith("hydra/"):
            continue
        if key.startswith("task.") or key.startswith("model."):
            raise ConfigError(f"config key '{key}': the run's task and model are fixed on resume (start a new run)")
        if key in FIXED_ON_RESUME and str(OmegaConf.select(saved, key)) != value:
            # the run's questions (data/) were drawn with these: its rows would be mislabelled
            raise ConfigError(f"config key '{key}': the run was made with {key}={OmegaConf.select(saved, key)}, "
                              f"which chose its questions; it is fixed on resume (start a new run)")
        if key in (choices or {}) or key in saved_choices or isinstance(OmegaConf.select(saved, key), DictConfig):
            if saved_choices.get(key) != (None if value == "null" else value):
                raise ConfigError(f"config key '{key}': the run was made with {key}={saved_choices.get(key)}; "
                                  "a config group cannot change on resume (start a new run)")
            continue
        try:
            OmegaConf.update(saved, key, OmegaConf.from_dotlist([f"v={value}"]).v, force_add=False)
        except (OmegaConfBaseException, TypeError, ValueError) as e:
            raise ConfigError(f"config key '{key}': cannot be set on resume ({str(e).splitlines()[0]})") from None
    saved.resume = str(run_dir)
    current = _composed(saved_choices)
    if current is not None:  # keys added to conf/ since the run was saved
        saved = OmegaConf.merge(_only_missing(current, saved), saved)
    return validate(saved)


def _composed(choices: dict[str, Any]) -> DictConfig | None:
    """The config conf/ composes today for these group choices; None outside a Hydra app."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra

    if not choices or not GlobalHydra.instance().is_initialized():
        return None
    # a group the run chose none of (debug's default) is deleted: "g=null" is not a valid override
    groups = {g: f"~{g}" if c is None else f"{g}={c}" for g, c in choices.items() if not g.startswith("hydra")}
    for _ in range(len(groups) + 1):
        try:
            return compose(config_name="config", overrides=list(groups.values()))
        except Exception as e:  # noqa: BLE001
            # an optional group with nothing to load (conf/local/ absent) cannot be overridden: left to
            # its default; a group option since removed: its keys then come from the saved config only
            missing = re.search(r"Could not override '([^']+)'", str(e))
            if not missing or missing.group(1) not in groups:
                return None
            del groups[missing.group(1)]
    return None


def _only_missing(current: DictConfig, saved: DictConfig) -> DictConfig:
    """The keys of ``current`` that ``saved`` lacks, resolved where they can be."""
    def walk(cur: Any, old: Any) -> Any:
        if isinstance(cur, dict):
            old = old if isinstance(old, dict) else {}  # a whole node added since: every key of it
            return {k: walk(v, old.get(k)) for k, v in cur.items() if k not in old or isinstance(v, dict)}
        return cur
    container = OmegaConf.to_container(current, resolve=False)
    return OmegaConf.create(walk(container, OmegaConf.to_container(saved)))


def _rebase(node: Any, old: str, new: str) -> Any:
    """Every string path at or below ``old`` moved to ``new``."""
    if isinstance(node, dict):
        return {k: _rebase(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_rebase(v, old, new) for v in node]
    if isinstance(node, str) and (node == old or node.startswith(old.rstrip("/") + "/")):
        return new + node[len(old):]
    return node
