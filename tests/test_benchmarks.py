"""The benchmark scripts run, check what they claim (same outputs, same loss) and print ratios."""

from __future__ import annotations

import subprocess
import sys

from .conftest import ROOT


def bench(name: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / name), *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def test_bench_train_same_loss_per_token():
    out = bench("bench_train.py", "--examples", "64", "--steps", "2")
    assert "speed-up:" in out and "loss per token at the start" in out


def test_bench_rollout_same_greedy_outputs(tmp_path):
    from tripost.models.tiny import build_tiny_model, save_pretrained, train_tokenizer

    tokenizer = train_tokenizer(["Q: Sort the following words alphabetically:\nList: b a\nAnswer: a b\n"] * 20, vocab_size=300)
    save_pretrained(build_tiny_model(tokenizer, 32, 1, 2, 64, 512, seed=0), tokenizer, tmp_path)
    out = bench("bench_rollout.py", "--model", str(tmp_path), "--prompts", "6", "--batch", "4", "--max-new-tokens", "12")
    assert "identical outputs: 6 of 6" in out
    sampled = bench("bench_rollout.py", "--model", str(tmp_path), "--prompts", "6", "--batch", "4",
                    "--max-new-tokens", "12", "--sample")
    assert "| loop engine |" in sampled and "speed-up of the loop over transformers' generate" in sampled


def test_bench_expert_concurrent_and_cached():
    out = bench("bench_expert.py", "--questions", "8", "--latency", "0.01", "--concurrency", "4")
    assert "cached rerun: 0 requests" in out
