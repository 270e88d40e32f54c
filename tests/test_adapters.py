"""LoRA through PEFT (model.adapter=lora) and prompts through a chat template (model.chat_template),
on the tiny model: only the adapter trains, a stage saves the adapter and a pointer to its base,
PEFT's own loader reads it, the next stage goes on from it, generation serves it; the loss mask
and the weighted section start at the right tokens under a template."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tripost.models.adapters import base_of, is_adapter_dir, load_for_generation
from tripost.models.chat import ChatTemplatePrompts
from tripost.models.tiny import build_tiny_model, save_pretrained, train_tokenizer
from tripost.rollout import Sampling
from tripost.rollout.loop import LoopPolicy
from tripost.rollout.served import ServedPolicy
from tripost.tasks import get_task
from tripost.training.data import TrainExample, encode_example
from tripost.training.fit import fine_tune, load_for_training

from .test_cli import check_run_dir, run_cli

LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj", "down_proj"], "save_merged": False}
TEXTS = [f"Q: Sort the following words alphabetically:\nList: {a} {b}\nAnswer: Let's think step by step.\n"
         f"(Final response) So the answer is: {' '.join(sorted([a, b]))}.\n"
         for a, b in [("pear", "apple"), ("fig", "kiwi"), ("yam", "oat"), ("lime", "date")]]


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    tokenizer = train_tokenizer(TEXTS * 4, vocab_size=300)
    model = build_tiny_model(tokenizer, 32, 1, 2, 64, 256, seed=0)
    return save_pretrained(model, tokenizer, tmp_path_factory.mktemp("base") / "model")


def train_stage(start, out, steps=6):
    model, tokenizer = load_for_training(start, "lora", LORA)
    trainer = OmegaConf.create({"_target_": "pytorch_lightning.Trainer", "accelerator": "cpu", "devices": 1,
                                "precision": "32-true", "max_steps": steps, "enable_checkpointing": False,
                                "enable_model_summary": False, "logger": False, "enable_progress_bar": False})
    sft = OmegaConf.create({"epochs": 50, "lr": 1e-2, "weight_decay": 0.0, "warmup_ratio": 0.0, "batch_size": 4,
                            "max_length": 256, "mask_prompt": True, "loss_normalize": "tokens", "num_workers": 0})
    examples = [TrainExample(t, t.index("(Final")) for t in TEXTS]
    return fine_tune(model, tokenizer, examples, sft=sft, trainer_cfg=trainer, callbacks_cfg=None, loggers=[],
                     seed=0, out_dir=out)


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_lora_trains_only_the_adapter_and_peft_loads_it(base_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    before = weights(AutoModelForCausalLM.from_pretrained(base_dir))
    stats = train_stage(base_dir, tmp_path / "stage1")
    out = tmp_path / "stage1"
    assert is_adapter_dir(out) and not (out / "model.safetensors").exists()  # the adapter, not a full copy
    assert base_of(out) == str(Path(base_dir).resolve())  # the pointer to its base, absolute
    total = sum(v.numel() for v in before.values())
    assert 0 < stats["trainable_parameters"] < total / 5  # only the adapter trains
    assert stats["loss_curve"][-1] < stats["loss_curve"][0]
    # the base on disk is untouched; PEFT's own loader reads the adapter; the adapter changed the model
    assert all(torch.equal(before[k], v) for k, v in weights(AutoModelForCausalLM.from_pretrained(base_dir)).items())
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), str(out))
    lora_b = [v for k, v in peft_model.state_dict().items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # B starts at 0: it trained
    merged = load_for_generation(out, torch.float32)
    assert any(not torch.equal(before[k], v) for k, v in merged.state_dict().items() if k in before)


def test_the_next_stage_goes_on_from_the_previous_adapter(base_dir, tmp_path):
    train_stage(base_dir, tmp_path / "stage1")
    model, _ = load_for_training(tmp_path / "stage1", "lora", LORA)
    saved = {k: v for k, v in model.state_dict().items() if "lora_" in k}
    first = weights(load_for_generation(tmp_path / "stage1", torch.float32))
    assert saved and any(v.abs().sum() > 0 for k, v in saved.items() if "lora_B" in k)  # starts from stage 1's adapter
    train_stage(tmp_path / "stage1", tmp_path / "stage2")
    assert base_of(tmp_path / "stage2") == base_of(tmp_path / "stage1")  # still the one base
    second = weights(load_for_generation(tmp_path / "stage2", torch.float32))
    assert any(not torch.equal(first[k], v) for k, v in second.items())


def test_a_served_adapter_generates_what_the_merged_model_does(base_dir, tmp_path):
    """rollout=vllm with an adapter: the base is served with the adapter as a LoRA module (vLLM's
    flags; our CPU server of the same protocol here); greedy outputs equal the merged model's."""
    train_stage(base_dir, tmp_path / "stage1")
    prompts = [t[: t.index("(Final")] for t in TEXTS]
    sampling = Sampling(max_new_tokens=16)
    merged = LoopPolicy.load(tmp_path / "stage1", batch_size=4).complete(prompts, sampling)
    command = [sys.executable, "-m", "tripost.rollout.serve", "--model", "{model}", "--port", "{port}"]
    policy = ServedPolicy.serve(tmp_path / "stage1", command=command, log_path=tmp_path / "server.log",
                                startup_timeout_s=300, concurrency=2, batch_size=4)
    try:
        assert policy.model == "policy-lora" and "--lora-modules" in policy.server.command
        assert policy.server.command[policy.server.command.index("--model") + 1] == base_of(tmp_path / "stage1")
        assert policy.complete(prompts, sampling) == merged
    finally:
        policy.close()


def test_a_run_with_lora_then_resumed_for_another_iteration(tmp_path):
    run_cli("debug=fast", "model.adapter=lora", "model.lora.r=4", "tripost.num_iterations=0",
            "baselines.ft_si_demo=true", f"hydra.run.dir={tmp_path}")
    for stage in ("ft_rationale", "ft_si_demo"):
        assert is_adapter_dir(tmp_path / stage / "model")
        assert base_of(tmp_path / stage / "model") == str((tmp_path / "init_model").resolve())
    check_run_dir(tmp_path, "ft_si_demo", "word_sort", 42)
    run_cli(f"resume={tmp_path}", "tripost.num_iterations=1", "tripost.min_data_length=0")
    stats = json.loads((tmp_path / "ft_si_demo" / "train_stats.json").read_text())
    assert stats["trainable_parameters"] > 0
    assert [r["method"] for r in json.loads((tmp_path / "results.json").read_text())["rows"]][:2] == \
        ["ft_rationale", "ft_si_demo"]


def test_qlora_without_cuda_is_one_line(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = run_cli("debug=fast", "model.adapter=qlora", f"hydra.run.dir={tmp_path}", expect=2)
    expected = ("error: config key 'model.adapter': qlora needs a CUDA GPU (4-bit weights are bitsandbytes'); "
                "use model.adapter=lora here")
    assert proc.stderr.strip().splitlines()[-1] == expected


# --------------------------------------------------------------------------- chat templates
def test_chat_template_prompt_mask_and_weighted_section_start_at_the_right_tokens(base_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    task = ChatTemplatePrompts(get_task("word_sort"), tokenizer)
    question = "Sort the following words alphabetically:\nList: pear apple"
    prompt = task.prompt(question)
    assert prompt == f"<|user|>\nQ: {question}\n<|assistant|>\nAnswer: Let's think step by step.\n"
    attempt = "(1) pear, apple\n(Final response) So the answer is: apple pear.\n"
    text = prompt + attempt + "Feedback: Step (1) is correct. The final response is also correct."
    ex = TrainExample(text, len(prompt))
    enc = encode_example(ex, tokenizer, max_length=512, mask_prompt=True, section_weight=1.5)
    ids = enc["input_ids"]
    first_label = next(i for i, lab in enumerate(enc["labels"]) if lab != -100)
    assert tokenizer.decode(ids[:first_label]) == prompt  # the loss starts at the assistant's first own token
    first_weighted = enc["weights"].index(1.5)
    assert tokenizer.decode(ids[:first_weighted]) == prompt + attempt.rstrip("\n")  # at "\nFeedback:"
    assert task.name == "word_sort" and task.parse_answer(attempt) == "apple pear"  # the rest is the task's


def test_a_run_with_the_chat_template(tmp_path):
    run_cli("debug=fast", "model.chat_template=true", "baselines.ft_si_demo=true", f"hydra.run.dir={tmp_path}")
    check_run_dir(tmp_path, "ft_si_demo", "word_sort", 42)
    record = json.loads((tmp_path / "ft_rationale" / "predictions.jsonl").read_text().splitlines()[0])
    assert record["output"] is not None
    stats = json.loads((tmp_path / "ft_rationale" / "train_stats.json").read_text())
    assert stats["steps"] > 0


@pytest.mark.parametrize("name", ["lora_1b", "lora_8b"])
def test_real_model_experiments_compose_and_their_cpu_stand_in_runs(tmp_path, name):
    """The experiment's own config composes for a real model; the stand-in is the same experiment
    with the tiny model, the CPU trainer and CPU generation (LoRA, as qlora needs CUDA)."""
    from hydra import compose, initialize_config_dir

    from tripost.config import validate

    from .conftest import ROOT

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.output_dir={tmp_path}", f"experiment={name}",
                                           f"model.name_or_path={tmp_path}"])
    typed = validate(cfg)
    assert typed.model.adapter in ("lora", "qlora") and typed.model.chat_template is True
    assert typed.model._target_.endswith("PretrainedModel") and typed.rollout.device == "cuda"
    if name == "lora_1b":  # qlora needs CUDA: lora_8b's stand-in would only show the start-up refusal
        run_cli(f"experiment={name}", "model=tiny", "debug=fast", "trainer=cpu", "rollout.device=cpu",
                "model.generation_dtype=auto", "trainer.precision=auto", f"hydra.run.dir={tmp_path / 'run'}")
        assert is_adapter_dir(tmp_path / "run" / "ft_si_demo" / "model")
        check_run_dir(tmp_path / "run", "ft_si_demo", "word_sort", 42)
