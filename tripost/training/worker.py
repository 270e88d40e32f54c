"""One training stage on several devices, in a worker group of its own.

The driver (the run's process) never joins a training process group: for a trainer with more
than one device (or a run torchrun/srun started), each training stage writes a spec and the
run's cluster (tripost/cluster) starts ``python -m tripost.training.worker <spec.json>`` once per
rank, each told its place in Lightning's environment variables. The group exits when the stage
is done, so every stage, the second one included, starts a clean group of N devices, and
nothing after training runs in a rank. Rank 0 saves the model and the statistics (summed over
the ranks); the driver reads them back.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from tripost.io import read_json, read_jsonl, write_json, write_jsonl
from tripost.training.data import TrainExample


def is_multi_device(trainer_cfg: DictConfig, cluster=None) -> bool:
    """Whether training takes more than one device (or node), or the run was launched on several ranks."""
    from tripost.cluster.local import device_count

    if cluster is not None and cluster.trains_in_workers:
        return True
    return device_count(trainer_cfg) > 1 or int(trainer_cfg.get("num_nodes", 1) or 1) > 1


def run_in_worker_group(*, cluster, start_dir: str | Path, examples: list[TrainExample], train_cfg, trainer_cfg,
                        callbacks_cfg, seed: int, out_dir: Path, section_weight: float, spec_dir: Path,
                        model: dict[str, Any] | None = None, save_merged: bool = False) -> dict[str, Any]:
    """Train in a fresh worker group the cluster starts; the statistics of the stage. RuntimeError
    naming the failed rank's log when the group fails."""
    spec_dir.mkdir(parents=True, exist_ok=True)
    rows = [{"text": e.text, "prompt_chars": e.prompt_chars, "kind": e.kind, "eos": e.eos} for e in examples]
    write_jsonl(spec_dir / "examples.jsonl", rows)
    spec = {"start_dir": str(start_dir), "examples": str(spec_dir / "examples.jsonl"), "seed": seed,
            "out_dir": str(out_dir), "section_weight": section_weight, "stats": str(spec_dir / "worker_stats.json"),
            "model": model or {"adapter": "none", "lora": None}, "save_merged": save_merged,
            "train": OmegaConf.to_container(train_cfg, resolve=True),
            "trainer": OmegaConf.to_container(trainer_cfg, resolve=True),
            "callbacks": OmegaConf.to_container(callbacks_cfg, resolve=True) if callbacks_cfg else None}
    write_json(spec_dir / "worker_spec.json", spec)
    cluster.train(spec_dir / "worker_spec.json", spec_dir, trainer_cfg)
    return read_json(spec_dir / "worker_stats.json")


def main(spec_path: str) -> None:
    import pytorch_lightning as pl

    from tripost.training.fit import fine_tune, load_for_training

    spec = read_json(spec_path)
    pl.seed_everything(spec["seed"], workers=True, verbose=False)
    model, tokenizer = load_for_training(spec["start_dir"], **spec["model"])
    examples = [TrainExample(r["text"], r["prompt_chars"], r["kind"], r["eos"]) for r in read_jsonl(spec["examples"])]
    # the group's shape is the cluster's (tripost/cluster/processes.py): ranks per node, nodes
    trainer = {**spec["trainer"], "devices": int(os.environ["TRIPOST_WORKER_DEVICES"]),
               "num_nodes": int(os.environ["TRIPOST_WORKER_NODES"])}
    stats = fine_tune(model, tokenizer, examples, sft=OmegaConf.create(spec["train"]),
                      trainer_cfg=OmegaConf.create(trainer),
                      callbacks_cfg=OmegaConf.create(spec["callbacks"]) if spec["callbacks"] else None,
                      loggers=[], seed=spec["seed"], out_dir=spec["out_dir"], section_weight=spec["section_weight"],
                      save_merged=spec["save_merged"])
    if stats["global_rank"] == 0:
        Path(spec["stats"]).write_text(json.dumps(stats))
    leave_process_group()


def leave_process_group() -> None:
    """Wait for every rank, then close the group: a rank exiting with the group open can abort in
    gloo's threads ("terminate called without an active exception") while a peer still talks."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
