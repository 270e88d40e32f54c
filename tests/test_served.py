"""rollout.engine=vllm: generation by a server process, tested with our CPU server of the same
protocol (vLLM itself needs a GPU; tests/test_gpu.py runs it where one is visible)."""

from __future__ import annotations

import json
import sys

import pytest

from tripost.generation import Sampling
from tripost.models.policy import HFPolicy
from tripost.models.served import VLLM_HINT, ServedPolicy, ServerProcess
from tripost.models.tiny import build_tiny_model, save_pretrained

from .test_cli import run_cli

OUR_SERVER = ["{python}", "-m", "tripost.models.serve", "--model", "{model}", "--port", "{port}"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tokenizer):
    out = tmp_path_factory.mktemp("ckpt")
    save_pretrained(build_tiny_model(tokenizer, 32, 2, 2, 64, 512, seed=3), tokenizer, out)
    return out


def test_served_policy_returns_what_the_in_process_policy_returns(checkpoint, tmp_path):
    prompts = ["Q: 1 =\nAnswer:", "Q: ((1 + 2 * 3) - (4 - 5 + 6)) =\nAnswer:", "Q: (4 + 6) =\n"] * 3
    sampling = Sampling(max_new_tokens=40)
    local = HFPolicy.load(checkpoint, batch_size=4).complete(prompts, sampling, return_finished=True)
    with ServerProcess(OUR_SERVER, checkpoint, tmp_path / "server.log") as server:
        served = ServedPolicy(server.url, batch_size=4, concurrency=2)
        got = served.complete(prompts, sampling, return_finished=True)
        sampled = served.complete(prompts, Sampling(do_sample=True, max_new_tokens=20), seed=5)
        again = served.complete(prompts, Sampling(do_sample=True, max_new_tokens=20), seed=5)
    assert got == local  # greedy: the same texts, cut by the same rules, and the same finished flags
    assert sampled == again and len(sampled) == len(prompts)  # seeded per batch: reproducible
    assert server.process.poll() is not None  # the process is gone when the phase ends


def test_a_server_that_dies_is_a_clear_error(checkpoint, tmp_path):
    command = [sys.executable, "-c", "import sys; print('bad flag'); sys.exit(3)"]
    with pytest.raises(RuntimeError, match=r"exited with code 3; see .*server\.log"):
        ServerProcess(command, checkpoint, tmp_path / "server.log").__enter__()
    assert "bad flag" in (tmp_path / "server.log").read_text()


def test_vllm_missing_names_the_extra(checkpoint, tmp_path):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    command = ["{python}", "-m", "vllm.entrypoints.openai.api_server", "--model", "{model}"]
    with pytest.raises(RuntimeError, match="pip install -e '.\\[vllm\\]'"):
        ServerProcess(command, checkpoint, tmp_path / "server.log").__enter__()
    assert "vllm" in VLLM_HINT


@pytest.mark.slow
def test_a_run_with_the_served_engine(tmp_path):
    """Every generation phase of a run (evaluation, ft SI. demo's evaluation, rollouts) through
    a server process per phase; each leaves its log and no process behind."""
    command = "[" + ",".join(f"'{part}'" for part in OUR_SERVER) + "]"
    run_cli("debug=fast", "rollout.engine=vllm", f"rollout.server.command={command}", f"hydra.run.dir={tmp_path}")
    rows = {r["method"] for r in json.loads((tmp_path / "results.json").read_text())["rows"]}
    assert {"ft_rationale", "ft_si_demo"} <= rows
    assert (tmp_path / "ft_rationale" / "generation_server.log").is_file()
    assert (tmp_path / "iter_1" / "generation_server.log").is_file()  # the iteration's rollouts
    assert json.loads((tmp_path / "iter_1" / "stats.json").read_text())["window"] == 8
