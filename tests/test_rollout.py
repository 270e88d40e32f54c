"""The policy interface: every engine returns one ``Completion`` per prompt, in order, and says
whether each ended by itself (EOS, a stop rule, a new "Q:") or was cut at max_new_tokens."""

from __future__ import annotations

import threading

import pytest
import torch

from tripost.models.tiny import build_tiny_model
from tripost.rollout import Completion, Policy, Sampling
from tripost.rollout.gold import GoldPolicy
from tripost.rollout.hf import GeneratePolicy
from tripost.rollout.lazy import LazyPolicy
from tripost.rollout.loop import LoopPolicy
from tripost.rollout.serve import PolicyServer
from tripost.rollout.served import ServedPolicy

FINAL = "(Final response) So the answer is 7.\n"
# Each prompt's script: what the model is made to write after it ("<eos>": the EOS token at once;
# None: one token without a newline, forever). Prompt lengths are far apart, so a row is told
# by its length (prompt + tokens so far) whichever rows are still in the batch.
SCRIPTS = {
    "Q: 1 =\n": FINAL,  # stops by the final-response rule
    "Q: " + "(1 + 2) - " * 12 + "3 =\n": None,  # never stops: cut at max_new_tokens
    "Q: " + "(4 - 5) + " * 24 + "6 =\n": "<eos>",  # EOS
    "Q: " + "(7 * 8) - " * 36 + "9 =\n": "(1) A = 7.\nQ: next\n",  # starts a new question
}
MAX_NEW = 24
JUNK = "Feedback:"  # its first token, written where a script has nothing more to say


@pytest.fixture(scope="module")
def scripted_model(tokenizer):
    """A tiny model whose next token is forced by a forward hook, following each prompt's script."""
    model = build_tiny_model(tokenizer, 32, 1, 2, 64, 512, seed=0).eval()
    lengths = {len(tokenizer(p, add_special_tokens=False)["input_ids"]): p for p in SCRIPTS}
    assert len(lengths) == len(SCRIPTS) and min(b - a for a, b in zip(sorted(lengths), sorted(lengths)[1:])) > MAX_NEW
    junk = tokenizer(JUNK, add_special_tokens=False)["input_ids"][0]
    tokens = {p: [tokenizer.eos_token_id] if s == "<eos>" else tokenizer(s, add_special_tokens=False)["input_ids"]
              for p, s in SCRIPTS.items() if s is not None}

    def hook(module, args, kwargs, output):
        logits = torch.full_like(output.logits[:, -1:], -1e4)
        for row, total in enumerate(kwargs["attention_mask"].sum(-1).tolist()):
            n_prompt = max(n for n in lengths if n <= total)
            script, k = tokens.get(lengths[n_prompt], []), total - n_prompt
            logits[row, 0, script[k] if k < len(script) else junk] = 0.0
        output.logits = logits
        return output

    handle = model.register_forward_hook(hook, with_kwargs=True)
    yield model
    handle.remove()


@pytest.fixture
def served(scripted_model, tokenizer):
    """Our server of the vLLM protocol, in a thread of this process, on the scripted model."""
    server = PolicyServer(("127.0.0.1", 0), LoopPolicy(scripted_model, tokenizer, batch_size=8))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ServedPolicy(f"http://127.0.0.1:{server.server_address[1]}/v1", batch_size=8)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("engine", ["loop", "hf", "served"])
def test_every_engine_says_which_completions_ended_by_themselves(engine, scripted_model, tokenizer, request):
    policy = request.getfixturevalue("served") if engine == "served" else \
        {"loop": LoopPolicy, "hf": GeneratePolicy}[engine](scripted_model, tokenizer, batch_size=8)
    assert isinstance(policy, Policy)
    done = []
    out = policy.complete(list(SCRIPTS), Sampling(max_new_tokens=MAX_NEW), progress=done.append)
    cut_at_limit = tokenizer.decode([tokenizer(JUNK, add_special_tokens=False)["input_ids"][0]] * MAX_NEW)
    assert out == [
        Completion(FINAL, finished=True),  # the final-response rule (the junk after it is cut off)
        Completion(cut_at_limit, finished=False),  # ran into max_new_tokens
        Completion("", finished=True),  # EOS
        Completion("(1) A = 7.\n", finished=True),  # a new "Q:" (cut before it)
    ]
    assert sum(done) == len(SCRIPTS)


def test_gold_policy_completes_with_finished_gold_rationales():
    from tripost.tasks import get_task

    task = get_task("multistep_arithmetic")
    questions = [e.question for e in task.generate(task.seen_cells()[:1], 2, seed=0)]
    out = GoldPolicy(task).complete([task.prompt(q) for q in questions], Sampling())
    assert out == [Completion(task.gold_attempt(q), True) for q in questions]


def test_lazy_policy_opens_on_first_use_and_closes_what_it_opened(tokenizer):
    opened, closed = [], []

    class Probe(Policy):
        def complete(self, prompts, sampling, stop=None, progress=None, seed=None):
            return [Completion(p, True) for p in prompts]

        def close(self):
            closed.append(self)

    lazy = LazyPolicy(lambda: opened.append(Probe()) or opened[-1])
    lazy.close()
    assert opened == [] and closed == []  # nothing opened, nothing to free
    assert lazy.complete(["a"], Sampling()) == [Completion("a", True)]
    lazy.close()
    assert closed == opened and len(opened) == 1
