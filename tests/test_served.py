"""rollout=vllm: generation by a server process, tested with our CPU server of the same
protocol (vLLM itself needs a GPU; tests/test_gpu.py runs it where one is visible)."""

from __future__ import annotations

import copy
import json
import sys

import pytest
import torch

from tripost.models.tiny import build_tiny_model, save_pretrained
from tripost.rollout import Completion, Sampling
from tripost.rollout.loop import LoopPolicy
from tripost.rollout.served import ServedPolicy, ServerProcess

from .conftest import ROOT
from .test_cli import run_cli

OUR_SERVER = ["{python}", "-m", "tripost.rollout.serve", "--model", "{model}", "--port", "{port}"]
CONTEXT = 128  # the served context, in tokens (--max-model-len)
PROMPTS = ["Q: 1 =\nAnswer:", "Q: ((1 + 2 * 3) - (4 - 5 + 6)) =\nAnswer:", "Q: (4 + 6) =\n"]
TOO_LONG = "Q: " + "(1 + 2) - " * 20 + "3 =\n"  # over CONTEXT tokens with any max_tokens


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tokenizer):
    """A tiny model whose tokenizer puts a BOS before every text unless told not to, as Llama's
    does (ours adds none), so a server that adds it to prompts generates something else."""
    from tokenizers import processors

    bos_adding = copy.deepcopy(tokenizer)
    bos = (bos_adding.bos_token, bos_adding.bos_token_id)
    bos_adding.backend_tokenizer.post_processor = processors.TemplateProcessing(single=f"{bos[0]} $A", special_tokens=[bos])
    model = build_tiny_model(bos_adding, 32, 2, 2, 64, 512, seed=3)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():  # at the default init a tiny model writes one token whatever its prompt
        for weight in (p for p in model.parameters() if p.dim() == 2):
            weight.normal_(0, 0.1, generator=generator)
    out = tmp_path_factory.mktemp("ckpt")
    save_pretrained(model, bos_adding, out)
    return out


@pytest.fixture(scope="module")
def served(checkpoint, tmp_path_factory):
    """The engine as a phase opens it: our server in a process of its own, and its client."""
    policy = ServedPolicy.serve(checkpoint, command=OUR_SERVER + ["--max-model-len", str(CONTEXT)],
                                log_path=tmp_path_factory.mktemp("server") / "server.log", startup_timeout_s=300,
                                concurrency=2, batch_size=4)
    process = policy.server.process
    yield policy
    policy.close()
    assert process.poll() is not None  # the process is gone when the phase ends


def raw(served: ServedPolicy, prompt: str | list[str], temperature: float = 0.0, seed: int | None = None, **vllm_fields):
    """A completion request without what ServedPolicy adds; ``vllm_fields``: vLLM's own (``extra_body``)."""
    return served.client.completions.create(model="policy", prompt=prompt, max_tokens=30, temperature=temperature,
                                            seed=seed, extra_body=vllm_fields)


def test_served_policy_returns_what_the_in_process_policy_returns(checkpoint, served):
    prompts = PROMPTS * 3
    sampling = Sampling(max_new_tokens=40)
    local = LoopPolicy.load(checkpoint, batch_size=4).complete(prompts, sampling)
    done = []
    assert served.complete(prompts, sampling, progress=done.append) == local  # greedy: same texts, cuts, flags
    assert sum(done) == len(prompts)
    # ... because no BOS goes in front: the server adds one by default, as vLLM does, and then
    # the model writes something else.
    with_bos, without = raw(served, PROMPTS), raw(served, PROMPTS, add_special_tokens=False)
    assert [c.text for c in with_bos.choices] != [c.text for c in without.choices]


def test_copies_of_a_prompt_are_sampled_apart_and_reproducibly(served):
    sampling = Sampling(do_sample=True, temperature=1.0, top_k=0, max_new_tokens=30)
    prompts = [PROMPTS[1]] * 4
    texts = [c.text for c in served.complete(prompts, sampling, stop=None, seed=5)]
    assert len(set(texts)) > 1, texts  # seeded per prompt: the copies differ
    assert [c.text for c in served.complete(prompts, sampling, stop=None, seed=5)] == texts  # same seed, same texts
    assert [c.text for c in served.complete(prompts, sampling, stop=None, seed=6)] != texts
    # What the per-prompt seeds are for: one request, one seed, and vLLM (as our server) samples
    # every copy alike.
    together = raw(served, prompts, temperature=1.0, top_k=0, seed=5, add_special_tokens=False)
    assert len({c.text for c in together.choices}) == 1


def test_a_prompt_too_long_for_the_context_comes_back_empty_and_the_others_do_not(served):
    from openai import BadRequestError

    sampling = Sampling(max_new_tokens=40)
    alone = served.complete(PROMPTS, sampling)
    got = served.complete([PROMPTS[0], TOO_LONG, PROMPTS[1], PROMPTS[2]], sampling)
    assert got == [alone[0], Completion("", finished=False), *alone[1:]]
    # The server refuses the request whole, as vLLM does: a 400 that says why.
    with pytest.raises(BadRequestError, match=rf"This model's maximum context length is {CONTEXT} tokens\. However, "
                                              r"you requested 30 output tokens and your prompt contains \d+ input tokens"):
        raw(served, [PROMPTS[0], TOO_LONG], add_special_tokens=False)


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
