"""Fit one trainer config for a few steps on one fixed batch and print the loss per step as JSON.

Run in a subprocess by tests/test_trainers.py (DeepSpeed and DDP set up process groups that
must not outlive the test):  python -m tests.trainer_probe OUT_DIR trainer=deepspeed_zero3 ...

``probe.varied=true`` trains on 10 texts of different lengths for 2 epochs instead (the
loss-curve comparison of 1 and 2 devices); ``probe.batch_size=N`` sets the per-device batch.
"""

from __future__ import annotations

import json
import os
import sys

import pytorch_lightning as pl
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tests.conftest import ROOT
from tripost.models.tiny import build_tiny_model, train_tokenizer
from tripost.training.data import TrainExample
from tripost.training.fit import fine_tune
from tripost.training.worker import leave_process_group


class LossRecorder(pl.Callback):
    """The training loss after every optimizer step, written to ``path`` at the end of the fit."""

    def __init__(self, path: str):
        self.path, self.losses = path, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss))

    def on_train_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(self.path, "w") as f:
                json.dump(self.losses, f)


WORDS = "pear apple fig kiwi lime plum date nut yam oat".split()


def main(out_dir: str, *args: str) -> None:
    probe = dict(a.removeprefix("probe.").split("=", 1) for a in args if a.startswith("probe."))
    overrides = [a for a in args if not a.startswith("probe.")]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.output_dir={out_dir}", "logger=none", *overrides])
    varied = probe.get("varied") == "true"
    lists = [WORDS[i : i + 2 + i % 5] for i in range(10)] if varied else [["pear", "apple"]] * 4
    texts = ["Q: Sort the following words alphabetically:\nList: " + " ".join(ws) + "\nAnswer: Let's think step by step.\n"
             "(Final response) So the answer is: " + " ".join(sorted(ws)) + ".\n" for ws in lists]
    tokenizer = train_tokenizer(texts, vocab_size=300)
    model = build_tiny_model(tokenizer, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                             max_position_embeddings=256, seed=0)
    examples = [TrainExample(t, t.index("(Final")) for t in texts]
    sft = OmegaConf.create({"epochs": 2 if varied else 1000, "lr": 1e-2, "weight_decay": 0.0, "warmup_ratio": 0.0,
                            "batch_size": int(probe.get("batch_size", 4)),
                            "max_length": 256, "mask_prompt": True, "loss_normalize": "tokens", "num_workers": 0})
    callbacks = {"losses": {"_target_": "tests.trainer_probe.LossRecorder", "path": f"{out_dir}/losses.json"}}
    stats = fine_tune(model, tokenizer, examples, sft=sft, trainer_cfg=cfg.trainer, callbacks_cfg=OmegaConf.create(callbacks),
                      loggers=[], seed=0, out_dir=f"{out_dir}/model")
    if stats["global_rank"] == 0:
        with open(f"{out_dir}/stats.json", "w") as f:
            json.dump(stats, f)
    leave_process_group()  # as the training worker does: exiting with the group open can abort in gloo's threads


if __name__ == "__main__":
    main(*sys.argv[1:])
