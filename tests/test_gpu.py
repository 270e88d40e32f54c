"""The GPU paths, for real: skipped where no CUDA GPU is visible (CI has none).

    pytest -m gpu -s        # on a GPU machine; -s shows the tokens/s and memory lines
"""

from __future__ import annotations

import importlib.util
import json
import time

import pytest
import torch

from tripost.models.tiny import build_tiny_model, save_pretrained
from tripost.rollout import Sampling
from tripost.rollout.hf import GeneratePolicy
from tripost.rollout.loop import LoopPolicy

from .conftest import ROOT
from .test_cli import check_run_dir, run_cli

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

PROMPTS = ["Q: 1 =\nAnswer:", "Q: ((1 + 2 * 3) - (4 - 5 + 6)) =\nAnswer:", "Q: (4 + 6) =\n", "Q: 7 - 3 =\nAnswer: Let's"]


def test_decode_loop_on_gpu_matches_generate_and_reports_speed(tokenizer):
    model = build_tiny_model(tokenizer, 128, 2, 4, 512, 2048, seed=0).to("cuda")
    prompts = PROMPTS * 16
    sampling = Sampling(max_new_tokens=128)
    loop, hf = LoopPolicy(model, tokenizer, batch_size=64), GeneratePolicy(model, tokenizer, batch_size=64)
    torch.cuda.reset_peak_memory_stats()
    loop.complete(prompts, sampling, stop=None)  # warm-up
    torch.cuda.synchronize()
    start = time.perf_counter()
    ours = [c.text for c in loop.complete(prompts, sampling, stop=None)]
    torch.cuda.synchronize()
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    theirs = [c.text for c in hf.complete(prompts, sampling, stop=None)]
    torch.cuda.synchronize()
    t_hf = time.perf_counter() - start
    tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in ours)
    print(f"\nGPU decode, 64 prompts: loop {tokens / t_ours:.0f} tokens/s, hf generate {tokens / t_hf:.0f} tokens/s, "
          f"peak memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    same = sum(a == b for a, b in zip(ours, theirs))
    assert same >= len(prompts) - 2  # fp32 on GPU: kernels may pick other reductions per batch shape


@pytest.mark.parametrize("trainer", ["gpu", "deepspeed_zero2"])
def test_fast_run_trains_bf16_on_gpu(tmp_path, trainer):
    run_cli("debug=fast", f"trainer={trainer}", "trainer.accumulate_grad_batches=1", f"hydra.run.dir={tmp_path}")
    stats = json.loads((tmp_path / "ft_rationale" / "train_stats.json").read_text())
    assert stats["steps"] == 3 and stats["final_loss"] > 0
    check_run_dir(tmp_path, "ft_rationale", "word_sort", 42)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vLLM: pip install -e '.[vllm]'")
def test_vllm_engine_serves_the_checkpoint(tokenizer, tmp_path):
    from omegaconf import OmegaConf

    from tripost.rollout.served import ServedPolicy

    command = list(OmegaConf.load(ROOT / "conf" / "rollout" / "vllm.yaml").engine.command)
    model = build_tiny_model(tokenizer, 128, 2, 4, 512, 2048, seed=0)
    save_pretrained(model, tokenizer, tmp_path / "ckpt")
    policy = ServedPolicy.serve(tmp_path / "ckpt", command=command, log_path=tmp_path / "server.log",
                                startup_timeout_s=900, concurrency=4, batch_size=64)
    server = policy.server
    try:
        out = policy.complete(PROMPTS * 16, Sampling(max_new_tokens=64), stop=None)
    finally:
        policy.close()
    assert len(out) == 64 and all(isinstance(c.text, str) for c in out)
    assert server.process.poll() is not None  # exited: its GPU memory is free for training


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs")
@pytest.mark.parametrize("trainer", ["ddp", "deepspeed_zero2"])
def test_two_gpu_run_trains_and_generates_on_both(tmp_path, trainer):
    """Every training stage on 2 GPUs (NCCL) and generation on 2 engines, one per GPU."""
    run_cli("debug=fast", f"trainer={trainer}", "trainer.devices=2", "trainer.accumulate_grad_batches=1",
            "baselines.ft_si_demo=true", "rollout.workers=2", f"hydra.run.dir={tmp_path}")
    for stage in ("ft_rationale", "ft_si_demo"):
        stats = json.loads((tmp_path / stage / "train_stats.json").read_text())
        assert stats["world_size"] == 2 and stats["steps"] > 0
    check_run_dir(tmp_path, "ft_rationale", "word_sort", 42)
