import torch

from tripost.generation import Sampling, after_final_response, cut, cut_at_new_question, generate
from tripost.models.tiny import build_tiny_model


def test_stop_rules_cut_where_they_should():
    text = "(1) a\n(Final response) So the answer is 3.\nFeedback: more\n"
    assert cut(text, [cut_at_new_question, after_final_response]) == "(1) a\n(Final response) So the answer is 3.\n"
    assert cut("(1) a\nQ: next question", [cut_at_new_question]) == "(1) a\n"
    assert after_final_response("(Final response) not finished") is None


def test_batched_left_padded_greedy_equals_one_by_one(tokenizer):
    model = build_tiny_model(tokenizer, 32, 1, 2, 64, 512, seed=0)
    prompts = ["Q: ((1 + 2 * 3) - (4 - 5 + 6)) =\nAnswer:", "Q: 1 =\n", "Q: ((1 + 2) - (4 + 6)) =\nAnswer: Let's"]
    sampling = Sampling(max_new_tokens=12)
    batched = generate(model, tokenizer, prompts, sampling, batch_size=3, stop=None)
    single = [generate(model, tokenizer, [p], sampling, batch_size=1, stop=None)[0] for p in prompts]
    assert batched == single
    assert all(len(tokenizer(t, add_special_tokens=False)["input_ids"]) <= 12 for t in batched)


def test_sequences_stop_on_their_own(tokenizer):
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
        out = generate(model, tokenizer, prompts, Sampling(max_new_tokens=40), batch_size=2)
    finally:
        handle.remove()
    assert all(o.endswith("(Final response) So the answer is 7.\n") for o in out)
