"""The benchmark scripts run, check what they claim (same outputs, same loss) and print ratios."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

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
    row = re.compile(r"^\| (\w+) engine \| ([\d.]+) \| (\d+) \| (\d+) \| (\d+) \|$", re.MULTILINE)
    rows = {m[1]: [float(x) for x in m.groups()[1:]] for m in row.finditer(sampled)}
    assert set(rows) == {"loop", "hf"}, sampled
    for seconds, per_second, completions, tokens in rows.values():
        assert completions == 6 and tokens > 0 and seconds > 0, sampled  # one completion per prompt, and some text
        assert per_second == pytest.approx(tokens / seconds, rel=0.05, abs=1)
    speed_up = float(re.search(r"speed-up of the loop over transformers' generate: ([\d.]+)x", sampled)[1])
    assert speed_up == pytest.approx(rows["hf"][0] / rows["loop"][0], rel=0.05, abs=0.06)  # the ratio of the two times


def test_bench_expert_concurrent_and_cached():
    out = bench("bench_expert.py", "--questions", "8", "--latency", "0.01", "--concurrency", "4")
    assert "cached rerun: 0 requests" in out
