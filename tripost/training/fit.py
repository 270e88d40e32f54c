"""One round of fine-tuning: examples in, trained model out, with Lightning."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from tripost.hardware import resolve_precision
from tripost.training.data import EncodedDataset, TrainExample, collate
from tripost.training.sharding import StepBatchSampler
from tripost.training.module import CausalLMModule


def build_callbacks(cfg: DictConfig | None, with_logger: bool = True) -> list:
    """Callbacks from config; without a logger, the learning-rate monitor has nowhere to write."""
    from pytorch_lightning.callbacks import LearningRateMonitor

    callbacks = [instantiate(c) for c in (cfg or {}).values() if c is not None and "_target_" in c]
    return [c for c in callbacks if with_logger or not isinstance(c, LearningRateMonitor)]


def load_for_training(path: str | Path, adapter: str = "none", lora: dict | None = None):
    """The model (in fp32: master weights; the trainer sets the precision) and tokenizer at
    ``path``; with ``adapter`` lora/qlora only an adapter trains (tripost/models/adapters.py)."""
    from transformers import AutoTokenizer

    from tripost.models import adapters

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return adapters.load_for_training(path, adapter, lora), tokenizer


def trainer_settings(trainer_cfg: DictConfig) -> tuple[dict[str, Any], Any, Any]:
    """The ``trainer`` node split into Lightning Trainer arguments, with ``precision: auto``
    resolved for this hardware, the optimizer and the schedule (partials: the module gives them
    the parameter groups, the stage's lr and its step counts)."""
    kwargs = OmegaConf.to_container(trainer_cfg, resolve=True)
    optimizer, scheduler = kwargs.pop("optimizer", None), kwargs.pop("scheduler", None)
    kwargs["precision"] = resolve_precision(kwargs.get("precision", "auto"), kwargs.get("accelerator", "cpu"))
    return kwargs, instantiate(optimizer) if optimizer else None, instantiate(scheduler) if scheduler else None


def save_trained(model, tokenizer, out_dir: str | Path, trainer, save_merged: bool = False) -> None:
    """Save the trained model (or its adapter) from rank 0; under ZeRO-3 gather the sharded
    parameters first."""
    from tripost.models.adapters import save_adapter

    state = None
    strategy = trainer.strategy
    if getattr(strategy, "zero_stage_3", False):
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None):
            state = {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
    if trainer.is_global_zero:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        if hasattr(model, "peft_config"):
            save_adapter(model, out_dir, state, save_merged)
        else:
            model.save_pretrained(out_dir, state_dict=state)
        tokenizer.save_pretrained(out_dir)
    strategy.barrier("save_trained")


def examples_digest(examples: list[TrainExample]) -> str:
    """A fingerprint of the training examples (texts, prompt offsets, kinds, EOS): two stages
    with the same one trained on the same data."""
    import hashlib

    digest = hashlib.sha1()
    for e in examples:
        digest.update(f"{e.prompt_chars}\t{e.kind}\t{e.eos}\t{e.text}\0".encode())
    return digest.hexdigest()


def fine_tune(
    model: torch.nn.Module,
    tokenizer,
    examples: list[TrainExample],
    *,
    sft: DictConfig,
    trainer_cfg: DictConfig,
    callbacks_cfg: DictConfig | None,
    loggers: list,
    seed: int,
    out_dir: str | Path,
    section_weight: float = 1.0,
    save_merged: bool = False,
) -> dict[str, Any]:
    """Train ``model`` on ``examples`` and save it in HF format to ``out_dir``.

    Returns statistics (tokens summed over ranks, time, tokens/s, the loss of every optimizer
    step) and the process's ``global_rank``: with several devices every process runs this.
    """
    dataset = EncodedDataset(
        examples, tokenizer, max_length=sft.max_length, mask_prompt=sft.mask_prompt, section_weight=section_weight,
        wrong_attempt_weight=float(sft.get("wrong_attempt_weight", 1.0)),  # a key of tripost.train only
    )
    units = dataset.loss_units(sft.loss_normalize)
    accumulate = int(trainer_cfg.get("accumulate_grad_batches", 1) or 1)

    def loader(world_size: int, rank: int) -> DataLoader:
        sampler = StepBatchSampler(dataset.lengths(), units, sft.batch_size, seed, world_size=world_size, rank=rank,
                                   accumulate=accumulate)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=partial(collate, pad_id=tokenizer.pad_token_id),
                          num_workers=sft.num_workers)

    trainer_kwargs, optimizer, scheduler = trainer_settings(trainer_cfg)
    module = CausalLMModule(
        model,
        lr=sft.lr,
        weight_decay=sft.weight_decay,
        warmup_ratio=sft.warmup_ratio,
        optimizer=optimizer,
        scheduler=scheduler,
        loader=loader,
    )
    trainer = instantiate(
        trainer_kwargs,
        max_epochs=sft.epochs,
        logger=loggers or False,
        callbacks=build_callbacks(callbacks_cfg, with_logger=bool(loggers)),
        default_root_dir=str(out_dir),
        use_distributed_sampler=False,  # StepBatchSampler shards the batches itself
        _convert_="all",
    )
    start = time.perf_counter()
    trainer.fit(module)
    seconds = time.perf_counter() - start
    model.eval()
    save_trained(model, tokenizer, out_dir, trainer, save_merged)
    tokens = int(trainer.strategy.reduce(torch.tensor(float(module.tokens_seen)), reduce_op="sum"))
    curve = module.loss_curve
    return {
        "global_rank": trainer.global_rank,
        "examples": len(dataset),
        "examples_sha1": examples_digest(examples),
        "epochs": sft.epochs,
        "steps": trainer.global_step,
        "tokens_per_epoch": dataset.num_tokens(),
        "tokens_trained": tokens,  # over all ranks, padding excluded
        "seconds": round(seconds, 1),
        "tokens_per_s": round(tokens / max(seconds, 1e-9)),
        "final_loss": round(curve[-1], 4) if curve else None,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "world_size": trainer.world_size,
        "precision": trainer_kwargs["precision"],
        "loss_curve": [round(x, 6) for x in curve],  # per optimizer step: the step's per-token mean over all ranks
    }
