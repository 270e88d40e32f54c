"""The GPU paths, for real: skipped where no CUDA GPU is visible (CI has none).

    pytest -m gpu -s        # on a GPU machine; -s shows the tokens/s and memory lines
"""

from __future__ import annotations

import importlib.util
import json
import time

import pytest
import torch

from tripost.generation import Sampling, generate
from tripost.models.tiny import build_tiny_model, save_pretrained

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
    torch.cuda.reset_peak_memory_stats()
    ours = generate(model, tokenizer, prompts, sampling, batch_size=64, stop=None, engine="loop")
    torch.cuda.synchronize()
    start = time.perf_counter()
    ours = generate(model, tokenizer, prompts, sampling, batch_size=64, stop=None, engine="loop")
    torch.cuda.synchronize()
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    theirs = generate(model, tokenizer, prompts, sampling, batch_size=64, stop=None, engine="hf")
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

    from tripost.models.served import ServedPolicy, ServerProcess

    command = list(OmegaConf.load(ROOT / "conf" / "config.yaml").rollout.server.command)
    model = build_tiny_model(tokenizer, 128, 2, 4, 512, 2048, seed=0)
    save_pretrained(model, tokenizer, tmp_path / "ckpt")
    with ServerProcess(command, tmp_path / "ckpt", tmp_path / "server.log") as server:
        texts, finished = ServedPolicy(server.url, batch_size=64).complete(
            PROMPTS * 16, Sampling(max_new_tokens=64), stop=None, return_finished=True)
    assert len(texts) == 64 and len(finished) == 64
    assert server.process.poll() is not None  # exited: its GPU memory is free for training
