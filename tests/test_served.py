"""rollout=vllm: generation by a server process, tested with our CPU server of the same
protocol (vLLM itself needs a GPU; tests/test_gpu.py runs it where one is visible)."""

from __future__ import annotations

import json
import sys

import pytest

from tripost.models.tiny import build_tiny_model, save_pretrained
from tripost.rollout import Sampling
from tripost.rollout.loop import LoopPolicy
from tripost.rollout.served import ServedPolicy, ServerProcess

from .conftest import ROOT
from .test_cli import run_cli

OUR_SERVER = ["{python}", "-m", "tripost.rollout.serve", "--model", "{model}", "--port", "{port}"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tokenizer):
    out = tmp_path_factory.mktemp("ckpt")
    save_pretrained(build_tiny_model(tokenizer, 32, 2, 2, 64, 512, seed=3), tokenizer, out)
    return out


def test_served_policy_returns_what_the_in_process_policy_returns(checkpoint, tmp_path):
    prompts = ["Q: 1 =\nAnswer:", "Q: ((1 + 2 * 3) - (4 - 5 + 6)) =\nAnswer:", "Q: (4 + 6) =\n"] * 3
    sampling = Sampling(max_new_tokens=40)
    local = LoopPolicy.load(checkpoint, batch_size=4).complete(prompts, sampling)
    with ServerProcess(OUR_SERVER, checkpoint, tmp_path / "server.log") as server:
        served = ServedPolicy(server.url, batch_size=4, concurrency=2)
        got = served.complete(prompts, sampling)
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
    """rollout=vllm with the shipped server command, where vLLM is not installed: the
    error says so and gives an install command whose extra setup.cfg declares, with vLLM in it."""
    import configparser
    import importlib.util
    import re

    from omegaconf import OmegaConf

    from hydra.utils import instantiate

    from tripost.rollout.engines import open_engine

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    engine = instantiate(OmegaConf.load(ROOT / "conf" / "rollout" / "vllm.yaml").engine)
    with pytest.raises(RuntimeError) as error:
        open_engine(engine, checkpoint, batch_size=4, dtype="float32", device="cpu", log_path=tmp_path / "server.log")
    message = str(error.value)
    assert message.startswith("rollout=vllm needs vLLM"), message
    extra = re.fullmatch(r".*: pip install -e '\.\[(\w+)\]'", message)
    assert extra, message
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert any(req.strip().startswith("vllm") for req in setup["options.extras_require"][extra.group(1)].split("\n"))
    assert not (tmp_path / "server.log").exists()  # refused before any process started


@pytest.mark.slow
def test_a_run_with_the_served_engine(tmp_path):
    """Every generation phase of a run (evaluation, ft SI. demo's evaluation, rollouts) through
    a server process per phase; each leaves its log and no process behind."""
    command = "[" + ",".join(f"'{part}'" for part in OUR_SERVER) + "]"
    run_cli("debug=fast", "rollout=vllm", f"rollout.engine.command={command}", f"hydra.run.dir={tmp_path}")
    rows = {r["method"] for r in json.loads((tmp_path / "results.json").read_text())["rows"]}
    assert {"ft_rationale", "ft_si_demo"} <= rows
    assert (tmp_path / "ft_rationale" / "generation_server.log").is_file()
    assert (tmp_path / "iter_1" / "generation_server.log").is_file()  # the iteration's rollouts
    assert json.loads((tmp_path / "iter_1" / "stats.json").read_text())["window"] == 8
