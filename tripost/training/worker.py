"""One training stage on several devices, in a worker group of its own.

The driver (the run's process) never joins a process group: for a trainer with more than one
device, each training stage runs ``python -m tripost.training.worker <spec.json>`` in a fresh
process, whose Lightning strategy starts the other ranks (they re-run this same command). The
group exits when the stage is done, so every stage, the second one included, starts a clean
group of N devices, and nothing after training runs in a rank but 0. Rank 0 saves the model
and the statistics; the driver reads them back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from tripost.io import read_json, read_jsonl, write_json, write_jsonl
from tripost.training.data import TrainExample


def is_multi_device(trainer_cfg: DictConfig) -> bool:
    """Whether a trainer config trains on more than one device (or node)."""
    devices = trainer_cfg.get("devices", 1)
    return str(devices) not in ("1", "auto") or int(trainer_cfg.get("num_nodes", 1) or 1) > 1


def run_in_worker_group(*, start_dir: str | Path, examples: list[TrainExample], train_cfg, trainer_cfg, callbacks_cfg,
                        seed: int, out_dir: Path, section_weight: float, spec_dir: Path) -> dict[str, Any]:
    """Train in a fresh worker group; the statistics of rank 0. RuntimeError (with the worker's
    log file) when the group fails."""
    spec_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"text": e.text, "prompt_chars": e.prompt_chars, "kind": e.kind, "eos": e.eos} for e in examples]
    write_jsonl(spec_dir / "examples.jsonl", rows)
    spec = {"start_dir": str(start_dir), "examples": str(spec_dir / "examples.jsonl"), "seed": seed,
            "out_dir": str(out_dir), "section_weight": section_weight, "stats": str(spec_dir / "worker_stats.json"),
            "train": OmegaConf.to_container(train_cfg, resolve=True),
            "trainer": OmegaConf.to_container(trainer_cfg, resolve=True),
            "callbacks": OmegaConf.to_container(callbacks_cfg, resolve=True) if callbacks_cfg else None}
    write_json(spec_dir / "worker_spec.json", spec)
    log_path = spec_dir / "worker.log"
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_PORT")}
    with open(log_path, "w") as log:
        done = subprocess.run([sys.executable, "-m", "tripost.training.worker", str(spec_dir / "worker_spec.json")],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    if done.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise RuntimeError(f"the training worker group failed (exit {done.returncode}): {tail[0]}; see {log_path}")
    return read_json(spec_dir / "worker_stats.json")


def main(spec_path: str) -> None:
    import pytorch_lightning as pl

    from tripost.training.fit import fine_tune, load_for_training

    spec = read_json(spec_path)
    pl.seed_everything(spec["seed"], workers=True, verbose=False)
    model, tokenizer = load_for_training(spec["start_dir"])
    examples = [TrainExample(r["text"], r["prompt_chars"], r["kind"], r["eos"]) for r in read_jsonl(spec["examples"])]
    stats = fine_tune(model, tokenizer, examples, sft=OmegaConf.create(spec["train"]),
                      trainer_cfg=OmegaConf.create(spec["trainer"]),
                      callbacks_cfg=OmegaConf.create(spec["callbacks"]) if spec["callbacks"] else None,
                      loggers=[], seed=spec["seed"], out_dir=spec["out_dir"], section_weight=spec["section_weight"])
    if stats["global_rank"] == 0:
        Path(spec["stats"]).write_text(json.dumps(stats))


if __name__ == "__main__":
    main(sys.argv[1])
