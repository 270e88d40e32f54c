import pytest
import torch

from tripost.models.tiny import build_tiny_model
from tripost.rollout import Sampling
from tripost.rollout.hf import GeneratePolicy
from tripost.rollout.loop import LoopPolicy, decode_batch, pick_next
from tripost.rollout.stops import after_final_response, cut, cut_at_new_question

ENGINES = {"loop": LoopPolicy, "hf": GeneratePolicy}


def generate(model, tokenizer, prompts, sampling, batch_size, engine, **kwargs) -> list[str]:
    return [c.text for c in ENGINES[engine](model, tokenizer, batch_size).complete(prompts, sampling, **kwargs)]


def test_stop_rules_cut_where_they_should():
    text = "(1) a\n(Final response) So the answer is 3.\nFeedback: more\n"
    assert cut(text, [cut_at_new_question, after_final_response]) == "(1) a\n(Final response) So the answer is 3.\n"
    assert cut("(1) a\nQ: next question", [cut_at_new_question]) == "(1) a\n"
    assert after_final_response("(Final response) not finished") is None


@pytest.mark.parametrize("engine", ["loop", "hf"])
def test_batched_left_padded_greedy_equals_one_by_one(tokenizer, engine):
    model = build_tiny_model(tokenizer, 32, 1, 2, 64, 512, seed=0)
    prompts = ["Q: ((1 + 2 * 3) - (4 - 5 + 6)) =\nAnswer:", "Q: 1 =\n", "Q: ((1 + 2) - (4 + 6)) =\nAnswer: Let's"]
    sampling = Sampling(max_new_tokens=12)
    batched = generate(model, tokenizer, prompts, sampling, batch_size=3, stop=None, engine=engine)
    single = [generate(model, tokenizer, [p], sampling, batch_size=1, stop=None, engine="hf")[0] for p in prompts]
    assert batched == single
    assert all(len(tokenizer(t, add_special_tokens=False)["input_ids"]) <= 12 for t in batched)


@pytest.mark.parametrize("engine", ["loop", "hf"])
def test_sequences_stop_on_their_own(tokenizer, engine):
    """A model that always writes the final line stops there, and outputs keep input order."""
    model = build_tiny_model(tokenizer, 32, 1, 2, 64, 512, seed=0)
    line = tokenizer("(Final response) So the answer is 7.\n", add_special_tokens=False)["input_ids"]
    junk = tokenizer("Feedback:", add_special_tokens=False)["input_ids"][0]

    # A forward hook overwrites the logits: the line, token by token, then junk forever.
    n_prompt = {}

    def hook(module, args, kwargs, output):
        ids = kwargs["input_ids"] if kwargs.get("input_ids") is not None else args[0]
        total = kwargs["attention_mask"].sum(-1)
        logits = torch.full_like(output.logits[:, -1:], -1e4)
        for b in range(logits.size(0)):
            k = int(total[b]) - n_prompt[b] if ids.size(1) == 1 else 0
            logits[b, 0, line[k] if k < len(line) else junk] = 0.0
        output.logits = logits
        return output

    handle = model.register_forward_hook(hook, with_kwargs=True)
    prompts = ["Q: 1 =\nAnswer:\n", "Q: ((1 + 2 * 3) - (4 - 5 + 6)) =\n"]
    for b, p in enumerate(sorted(prompts, key=len)):
        n_prompt[b] = len(tokenizer(p, add_special_tokens=False)["input_ids"])
    try:
        out = generate(model, tokenizer, prompts, Sampling(max_new_tokens=40), batch_size=2, engine=engine)
    finally:
        handle.remove()
    assert all(o.endswith("(Final response) So the answer is 7.\n") for o in out)


def test_decode_loop_rows_leave_at_their_own_stop_and_match_one_by_one(tokenizer):
    """Rows stop after different numbers of tokens (so finished rows leave the batch mid-way)
    and the cache outgrows its first buffer; every row still equals an unbatched greedy run
    cut at the same rule."""
    model = build_tiny_model(tokenizer, 32, 2, 2, 64, 512, seed=1).eval()
    prompts = ["Q: 1 =\n", "Q: ((1 + 2 * 3) - (4 - 5 + 6)) =\nAnswer:", "Q: (4 + 6) =\nAnswer: Let's", "Q: 7"]
    limits = {}

    def long_enough(text):  # a stop rule that fires at a length that differs per row
        return len(text) if len(text) >= 60 + 25 * (sum(map(ord, text[:3])) % 3) else None

    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    every_token = torch.arange(len(tokenizer))  # check the rule after every token, not only newlines
    texts, ended = decode_batch(model, tokenizer, enc["input_ids"], enc["attention_mask"],
                                Sampling(max_new_tokens=120), [long_enough], every_token)
    for prompt, text, end in zip(prompts, texts, ended):
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        full = model.generate(**ids, max_new_tokens=120, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                              eos_token_id=None)[0, ids["input_ids"].size(1):]
        for n in range(1, len(full) + 1):  # the first prefix the rule accepts
            prefix = tokenizer.decode(full[:n], skip_special_tokens=True)
            if long_enough(prefix) is not None:
                break
        assert end and text == prefix
        limits[prompt] = n
    assert len(set(limits.values())) > 1, limits  # rows did stop at different steps
    assert max(limits.values()) + enc["input_ids"].size(1) > 64  # the first 64-slot buffer had to grow


def test_pick_next_filters_like_generate():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(2000, 1)
    greedy = pick_next(logits, do_sample=False, temperature=1.0, top_k=0, top_p=1.0)
    assert greedy.eq(0).all()
    top2 = pick_next(logits, do_sample=True, temperature=1.0, top_k=2, top_p=1.0)
    assert set(top2.tolist()) == {0, 1} and abs(top2.eq(0).float().mean().item() - 0.5 / 0.8) < 0.05
    nucleus = pick_next(logits, do_sample=True, temperature=1.0, top_k=0, top_p=0.7)  # 0.5 + 0.3 reach 0.7
    assert set(nucleus.tolist()) == {0, 1}
    everything = pick_next(logits, do_sample=True, temperature=1.0, top_k=0, top_p=1.0)
    assert set(everything.tolist()) == {0, 1, 2, 3}
    hot = pick_next(logits, do_sample=True, temperature=100.0, top_k=0, top_p=1.0)  # nearly uniform
    assert abs(hot.eq(3).float().mean().item() - 0.25) < 0.05
