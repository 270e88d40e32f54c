"""The ``verifier`` node as the OpenAI expert and its dry-run estimate read it.

Shared by ``openai_expert`` (the requests) and ``accounting`` (prices and the estimate), so
neither imports the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

from tripost.config import ConfigError, VerifierConfig, settings_of, typed_node
from tripost.experts.prompts import COMPLETION_STOP


def verifier_config(cfg: Any) -> DictConfig:
    """The verifier node (a dict or DictConfig: conf/verifier/openai.yaml, where every default
    lives, and overrides) on the typed schema; ConfigError naming a wrong or missing key."""
    try:
        if isinstance(cfg, DictConfig):  # resolve against its own root (``${paths.outputs_dir}``) first
            cfg = OmegaConf.to_container(_outside_a_run(cfg), resolve=True)
    except OmegaConfBaseException as e:
        key = getattr(e, "full_key", None) or "?"
        raise ConfigError(f"config key 'verifier.{key}': {str(e).splitlines()[0]}") from None
    return typed_node(VerifierConfig, settings_of(cfg), "verifier.")


def _outside_a_run(cfg: DictConfig) -> DictConfig:
    """A verifier node loaded on its own (a test, scripts/bench_expert.py) has no run dir for the
    ``${paths.output_dir}`` of ``spend_path``: its spend is then kept in memory only, as it is
    per process anyway. Inside a run the node resolves, and a wrong key still fails loudly."""
    if "spend_path" not in cfg or not OmegaConf.is_interpolation(cfg, "spend_path"):
        return cfg
    try:
        cfg.spend_path  # noqa: B018 (resolving it is the test)
    except InterpolationResolutionError:  # no paths node, or no Hydra run to ask for its dir
        return OmegaConf.merge(cfg, {"spend_path": None})
    return cfg


def read_api_key(env_name: str) -> str:
    """The API key from the environment; ConfigError naming the variable when it is unset."""
    value = os.environ.get(env_name, "")
    if not value.strip():
        raise ConfigError(
            f"config key 'verifier.api_key_env': environment variable {env_name} is not set; it must hold the API key "
            f"(for a local server that needs none, set it to any value, e.g. {env_name}=dummy)"
        )
    return value.strip()


@dataclass(frozen=True)
class RoleSettings:
    model: str
    temperature: float
    max_tokens: int
    stop: list[str] | None


def role_settings(cfg: DictConfig, role: str, api: str) -> RoleSettings:
    node = cfg[role]
    stop = list(node.stop) if node.stop is not None else (list(COMPLETION_STOP) if api == "completions" else None)
    return RoleSettings(str(node.model), float(node.temperature), int(node.max_tokens), stop)


def price_table(cfg: DictConfig) -> dict[str, tuple[float, float]]:
    """(USD per 1M input tokens, USD per 1M output tokens) by model name."""
    return {str(model): (float(p.input), float(p.output)) for model, p in (cfg.prices or {}).items()}
