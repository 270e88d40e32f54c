"""Every config in conf/ composes, passes the typed schema, and its _target_ nodes build."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from tripost.config import ConfigError, validate
from tripost.training.fit import trainer_settings

from .conftest import ROOT

CONF = ROOT / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def make_cfg(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=[f"paths.output_dir={tmp_path}", *overrides])


@pytest.mark.parametrize(
    "override",
    [f"task={o}" for o in options("task")]
    + [f"model={o}" for o in options("model") if o != "hf"]
    + ["model=hf model.name_or_path=/some/model"]
    + [f"verifier={o}" for o in options("verifier")]
    + [f"experiment={o}" for o in options("experiment") if o != "paper_7b"]
    + ["experiment=paper_7b model.name_or_path=/some/model"]
    + [f"debug={o}" for o in options("debug")]
    + ["~experiment"],
)
def test_group_option_composes_and_validates(tmp_path, override):
    cfg = make_cfg(tmp_path, *override.split())
    validate(cfg)


@pytest.mark.parametrize("name", [o for o in options("trainer") if o != "default"])  # default: base of the others
def test_trainer_configs_instantiate(tmp_path, name):
    # GPU configs are built on CPU here: the node, strategy included, must construct.
    cfg = make_cfg(tmp_path, f"trainer={name}", "trainer.accelerator=cpu", "trainer.devices=1")
    validate(cfg)
    kwargs, optimizer = trainer_settings(cfg.trainer)
    trainer = instantiate(kwargs, logger=False, _convert_="all")
    assert callable(optimizer)
    assert trainer.max_steps == -1
    if name.startswith("deepspeed"):
        from tripost.training.strategies import DeepSpeedStrategy

        assert isinstance(trainer.strategy, DeepSpeedStrategy)
        zero = trainer.strategy.config["zero_optimization"]
        assert zero["stage"] == (3 if "zero3" in name else 2)
        assert ("offload_optimizer" in zero) == name.endswith("offload")


@pytest.mark.parametrize("name", options("logger"))
def test_logger_configs_instantiate(tmp_path, name, monkeypatch):
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.setenv("WANDB_MODE", "offline")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.output_dir={tmp_path}", f"logger={name}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # as in a run: the wandb group names the experiment (${hydra:...})
    validate(cfg)
    for node in (cfg.logger or {}).values():
        logger = instantiate(node)
        assert logger is not None


@pytest.mark.parametrize("name", options("callbacks"))
def test_callback_configs_instantiate(tmp_path, name):
    from tripost.training.fit import build_callbacks

    cfg = make_cfg(tmp_path, f"callbacks={name}")
    callbacks = build_callbacks(cfg.callbacks)
    assert len(callbacks) == len(cfg.callbacks or {})


def test_unknown_key_fails_naming_it(tmp_path):
    cfg = make_cfg(tmp_path, "+sft.learning_rate=0.1")
    with pytest.raises(ConfigError, match="sft.learning_rate"):
        validate(cfg)


def test_wrong_type_fails_naming_key(tmp_path):
    cfg = make_cfg(tmp_path, "sft.epochs=many")
    with pytest.raises(ConfigError, match="sft.epochs"):
        validate(cfg)


def test_bad_choice_and_missing_path_fail(tmp_path):
    with pytest.raises(ConfigError, match="model.kind"):
        validate(make_cfg(tmp_path, "model.kind=huge"))
    with pytest.raises(ConfigError, match="task.train.path"):
        validate(make_cfg(tmp_path, "task.train.source=file"))
    with pytest.raises(ConfigError, match="model.name_or_path"):
        validate(make_cfg(tmp_path, "model=hf", "model.name_or_path=null"))


def test_every_knob_is_commented():
    """Each key line of every YAML in conf/ carries a comment, or its file header explains it."""
    for path in CONF.rglob("*.yaml"):
        lines = path.read_text().splitlines()
        assert lines and lines[0].startswith("#"), f"{path} has no header comment"


def test_resume_follows_a_moved_run_dir_and_takes_plain_overrides(tmp_path):
    from tripost.config import resume_config

    first = tmp_path / "first"
    resume_config(make_cfg(first))  # saves first/run_config.yaml, paths resolved under first/
    moved = tmp_path / "moved"
    first.rename(moved)
    cfg = resume_config(make_cfg(moved, f"resume={moved}"), overrides=[f"resume={moved}", "tripost.num_iterations=7"])
    assert cfg.paths.output_dir == str(moved) and cfg.logger.csv.save_dir == str(moved)
    assert cfg.tripost.num_iterations == 7 and cfg.resume == str(moved)
    with pytest.raises(ConfigError, match="'task'.*cannot change on resume"):
        resume_config(make_cfg(moved, f"resume={moved}"), overrides=["task=multistep_arithmetic"])
    with pytest.raises(ConfigError, match="tripost.num_iteration"):
        resume_config(make_cfg(moved, f"resume={moved}"), overrides=["tripost.num_iteration=2"])
