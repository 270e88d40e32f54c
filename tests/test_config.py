"""Every config in conf/ composes, passes the typed schema, and its _target_ nodes build."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tripost.config import ConfigError, validate
from tripost.training.fit import trainer_settings

from .conftest import ROOT

CONF = ROOT / "conf"


def options(group: str) -> list[str]:
    """The options of a config group (``default``, where there is one, is the base of the others)."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml") if p.stem != "default")


def make_cfg(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=[f"paths.output_dir={tmp_path}", *overrides])


@pytest.mark.parametrize(
    "override",
    [f"task={o}" for o in options("task") if o != "custom"]
    + ["task=custom task.path=/some/items.jsonl"]
    + [f"model={o}" for o in options("model") if o != "hf"]
    + ["model=hf model.name_or_path=/some/model"]
    + [f"verifier={o}" for o in options("verifier")]
    + [f"experiment={o}" for o in options("experiment") if o not in ("paper_7b", "lora_1b", "lora_8b")]
    + [f"experiment={o} model.name_or_path=/some/model" for o in ("paper_7b", "lora_1b", "lora_8b")]
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
    kwargs, optimizer, scheduler = trainer_settings(cfg.trainer)
    trainer = instantiate(kwargs, logger=False, _convert_="all")
    assert callable(optimizer) and callable(scheduler)
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
    from pytorch_lightning.loggers import CSVLogger, WandbLogger

    loggers = [instantiate(node) for node in (cfg.logger or {}).values()]
    kinds = {"none": [], "csv": [CSVLogger], "wandb": [WandbLogger]}[name]
    assert [type(lg) for lg in loggers] == kinds
    for lg in loggers:  # every tracker writes inside the run dir, never elsewhere
        assert str(lg.save_dir).startswith(str(tmp_path)), lg.save_dir
    if name == "wandb":
        assert loggers[0]._offline and loggers[0]._wandb_init["group"] == "word_sort-tiny"


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
    with pytest.raises(ConfigError, match="model.generation_dtype"):
        validate(make_cfg(tmp_path, "model.generation_dtype=huge"))
    with pytest.raises(ConfigError, match="task.train.path"):
        validate(make_cfg(tmp_path, "task.train.source=file"))
    with pytest.raises(ConfigError, match="model.name_or_path"):
        validate(make_cfg(tmp_path, "model=hf", "model.name_or_path=null"))


def _key_lines(path: Path):
    """(line number, key, text) of every line of a YAML file that sets a key."""
    import re

    for n, line in enumerate(path.read_text().splitlines(), start=1):
        m = re.match(r"^(\s*)([A-Za-z_][\w.]*):(.*)$", line)
        if m and m.group(2) != "defaults":
            yield n, m.group(2), line


def test_every_knob_is_commented():
    """Every key a YAML in conf/ defines carries a comment: on its line, the line above, or an
    enclosing node's line, or its name is explained in a comment of the same file. Files that only
    override keys defined elsewhere (``@package _global_``: experiments, debug) need a header."""
    undocumented = []
    for path in sorted(CONF.rglob("*.yaml")):
        lines = path.read_text().splitlines()
        assert lines and lines[0].startswith("#"), f"{path} has no header comment"
        if any("@package _global_" in ln for ln in lines):
            continue
        comments = " ".join(ln.split("#", 1)[1] for ln in lines if "#" in ln)
        commented: dict[int, bool] = {}  # indentation -> the enclosing node's line there has a comment
        for n, key, line in _key_lines(path):
            indent = len(line) - len(line.lstrip())
            commented = {i: c for i, c in commented.items() if i < indent}
            here = "#" in line or (n > 1 and lines[n - 2].lstrip().startswith("#"))
            if not (here or any(commented.values()) or key in comments or key.startswith("_")):
                undocumented.append(f"{path.relative_to(CONF)}:{n}: {key}")
            commented[indent] = here
    assert not undocumented, undocumented


def test_the_schema_holds_no_default():
    """conf/ is the one source of every default: each field of the config schema is MISSING (a
    nested dataclass is structure, not a value)."""
    import dataclasses
    import inspect

    import tripost.config as config

    written = []
    for _, cls in inspect.getmembers(config, dataclasses.is_dataclass):
        for f in dataclasses.fields(cls):
            if f.default is dataclasses.MISSING:
                factory = f.default_factory
                assert factory is not dataclasses.MISSING and dataclasses.is_dataclass(factory), f"{cls.__name__}.{f.name}"
            elif f.default != "???":
                written.append(f"{cls.__name__}.{f.name} = {f.default!r}")
    assert not written, f"defaults written in tripost/config.py as well as in conf/: {written}"


def _flat(node, prefix=""):
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k != "defaults":
                out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def test_no_yaml_file_repeats_a_value_of_its_base(tmp_path):
    """A config that builds on another (a group option on its group's base, an experiment on the
    config it overrides, a debug config on the default) never sets a key to the value it already
    has there: each default is written once."""
    from omegaconf import OmegaConf

    repeated = []
    for group in ("task", "trainer"):
        for name in options(group):
            own = OmegaConf.to_container(OmegaConf.load(CONF / group / f"{name}.yaml"))
            for base in own.get("defaults", []):
                if isinstance(base, str) and base != "_self_":
                    base_flat = _flat(OmegaConf.to_container(OmegaConf.load(CONF / group / f"{base}.yaml")))
                    repeated += [f"{group}/{name}: {k}" for k, v in _flat(own).items() if k in base_flat and base_flat[k] == v]
    for group, name in [("experiment", o) for o in options("experiment")] + [("debug", o) for o in options("debug")]:
        own = OmegaConf.to_container(OmegaConf.load(CONF / group / f"{name}.yaml"))
        bases = [b for b in own.get("defaults", []) if isinstance(b, str) and b != "_self_"]
        base_override = [f"experiment={bases[0]}" if bases else "~experiment"] if group == "experiment" else []
        # the groups it swaps, swapped in the base too (their own values are not repeats)
        swaps = [f"{k.split('/')[-1]}={v}" for b in own.get("defaults", []) if isinstance(b, dict)
                 for k, v in b.items() if k.startswith("override ") and "logger" not in k]
        extra = ["model.name_or_path=/m"] if "model=hf" in swaps else []
        under = _flat(OmegaConf.to_container(make_cfg(tmp_path, *base_override, *swaps, *extra)))
        repeated += [f"{group}/{name}: {k}" for k, v in _flat(own).items() if k in under and under[k] == v]
    assert not repeated, f"values equal to what the base config already sets: {repeated}"


def test_resume_follows_a_moved_run_dir_and_takes_plain_overrides(tmp_path):
    from tripost.config import resume_config

    first = tmp_path / "first"
    resume_config(make_cfg(first), choices={"task": "word_sort"})  # saves first/run_config.yaml, paths resolved under first/
    moved = tmp_path / "moved"
    first.rename(moved)
    cfg = resume_config(make_cfg(moved, f"resume={moved}"), overrides=[f"resume={moved}", "tripost.num_iterations=7"])
    assert cfg.paths.output_dir == str(moved) and cfg.logger.csv.save_dir == str(moved)
    assert cfg.tripost.num_iterations == 7 and cfg.resume == str(moved)
    assert resume_config(make_cfg(moved, f"resume={moved}"), overrides=["task=word_sort"]).task.name == "word_sort"
    with pytest.raises(ConfigError, match="'task'.*cannot change on resume"):
        resume_config(make_cfg(moved, f"resume={moved}"), overrides=["task=multistep_arithmetic"])
    with pytest.raises(ConfigError, match="tripost.num_iteration"):
        resume_config(make_cfg(moved, f"resume={moved}"), overrides=["tripost.num_iteration=2"])


def test_resume_refuses_another_seed_or_eval_set_since_they_drew_the_saved_questions(tmp_path):
    """data/ holds the questions the run drew with its seed and eval.set: changing either on
    resume would label the saved questions' rows with settings that did not make them."""
    from tripost.config import resume_config

    run = tmp_path / "run"
    resume_config(make_cfg(run, "seed=3"), choices={"task": "word_sort"})
    again = lambda *o: resume_config(make_cfg(run, f"resume={run}"), overrides=[f"resume={run}", *o])  # noqa: E731
    assert again("seed=3", "eval.set=test").seed == 3  # the run's own values are accepted
    with pytest.raises(ConfigError, match="'eval.set': the run was made with eval.set=test"):
        again("eval.set=dev")
    with pytest.raises(ConfigError, match="'seed': the run was made with seed=3"):
        again("seed=4")


def test_keys_added_since_a_run_was_saved_come_from_conf_also_for_a_group_it_chose_none_of():
    """A resumed run's choices hold None for a group it chose no option of (debug's default), and
    "default" for the optional group local even where conf/local/ is absent: conf/ is composed
    with the first deleted (not the invalid "debug=null") and the second left to its default."""
    from tripost.config import _composed, _only_missing

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        # as Hydra records them: "local" is the optional machine-private group, absent here
        current = _composed({"local": "default", "debug": None, "experiment": "tiny", "task": "word_sort"})
    assert current is not None and current.tripost.gold_ratio == 1.0 and current.sft.lr == 2.0e-3
    saved = OmegaConf.create({"tripost": {"name": "tripost"}, "sft": {"lr": 0.5}})
    assert OmegaConf.to_container(_only_missing(current, saved))["tripost"]["gold_ratio"] == 1.0
    assert "lr" not in _only_missing(current, saved)["sft"]  # what the run saved stays the run's
