import math

import pytest
import torch

from tripost.training.data import TrainExample, collate, encode_example
from tripost.training.sharding import LengthGroupedSampler, StepBatchSampler
from tripost.training.loss import IGNORE, weighted_token_loss
from tripost.training.module import warmup_linear_decay

PROMPT = "Q: ((1 + 2 * 3) - (4 - 5 + 6)) =\nAnswer: Let's think step by step.\n"
COMPLETION = "(1) A = 7.\n(Final response) So the answer is 7.\nFeedback: Step (1) is correct."


def _example():
    return TrainExample(text=PROMPT + COMPLETION, prompt_chars=len(PROMPT))


def test_prompt_mask_and_eos(tokenizer):
    enc = encode_example(_example(), tokenizer, max_length=512, mask_prompt=True, section_weight=1.0)
    ids, labels = enc["input_ids"], enc["labels"]
    assert ids[-1] == tokenizer.eos_token_id and labels[-1] == tokenizer.eos_token_id
    n_prompt = len(tokenizer(PROMPT, add_special_tokens=False)["input_ids"])
    assert all(label == IGNORE for label in labels[:n_prompt])
    assert all(label != IGNORE for label in labels[n_prompt:])
    unmasked = encode_example(_example(), tokenizer, max_length=512, mask_prompt=False, section_weight=1.0)
    assert IGNORE not in unmasked["labels"]


def test_weight_starts_at_the_feedback_newline(tokenizer):
    ex = _example()
    enc = encode_example(ex, tokenizer, max_length=512, mask_prompt=True, section_weight=1.5)
    weights = enc["weights"]
    first = weights.index(1.5)
    assert all(w == 1.5 for w in weights[first:]) and all(w == 1.0 for w in weights[:first])
    # The first weighted token is the one holding the "\n" before "Feedback:".
    offsets = tokenizer(ex.text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    start, end = offsets[first]
    assert start <= ex.weight_start < end
    assert ex.text[ex.weight_start : ex.weight_start + 10] == "\nFeedback:"
    no_feedback = TrainExample(text=PROMPT + "(1) x\n", prompt_chars=len(PROMPT))
    assert set(encode_example(no_feedback, tokenizer, max_length=99, mask_prompt=True, section_weight=1.5)["weights"]) == {1.0}


def test_wrong_attempt_weight_touches_only_an_improvement_examples_attempt(tokenizer):
    """tripost.train.wrong_attempt_weight: the attempt its feedback finds wrong; 0 = no loss there."""
    n_prompt = len(tokenizer(PROMPT, add_special_tokens=False)["input_ids"])
    improvement = TrainExample(text=PROMPT + COMPLETION, prompt_chars=len(PROMPT), kind="improvement")
    paper = encode_example(improvement, tokenizer, max_length=512, mask_prompt=True, section_weight=1.5)
    half = encode_example(improvement, tokenizer, max_length=512, mask_prompt=True, section_weight=1.5,
                          wrong_attempt_weight=0.5)
    off = encode_example(improvement, tokenizer, max_length=512, mask_prompt=True, section_weight=1.5,
                         wrong_attempt_weight=0.0)
    first = paper["weights"].index(1.5)
    assert set(paper["weights"][n_prompt:first]) == {1.0} and set(half["weights"][n_prompt:first]) == {0.5}
    assert half["labels"] == paper["labels"] and half["weights"][first:] == paper["weights"][first:]
    assert set(off["labels"][:first]) == {IGNORE} and off["labels"][first:] == paper["labels"][first:]
    # a terminal or gold example's attempt is right: trained on as usual
    for kind in ("terminal", "gold", "rationale"):
        ex = TrainExample(text=PROMPT + COMPLETION, prompt_chars=len(PROMPT), kind=kind)
        assert encode_example(ex, tokenizer, max_length=512, mask_prompt=True, section_weight=1.5,
                              wrong_attempt_weight=0.0) == paper


def test_weighted_loss_matches_hand_computation():
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 5)
    labels = torch.tensor([[IGNORE, 2, 4, 1]])
    weights = torch.tensor([[1.0, 1.0, 1.5, 1.5]])
    # position t predicts label t+1: three loss tokens with weights 1, 1.5, 1.5
    logp = torch.log_softmax(logits[0], -1)
    ce = [-logp[0, 2].item(), -logp[1, 4].item(), -logp[2, 1].item()]
    by_tokens = (ce[0] * 1.0 + ce[1] * 1.5 + ce[2] * 1.5) / 3
    by_weights = (ce[0] * 1.0 + ce[1] * 1.5 + ce[2] * 1.5) / 4.0
    assert math.isclose(weighted_token_loss(logits, labels, weights, "tokens").item(), by_tokens, rel_tol=1e-5)
    assert math.isclose(weighted_token_loss(logits, labels, weights, "weights").item(), by_weights, rel_tol=1e-5)
    with pytest.raises(ValueError):
        weighted_token_loss(logits, labels, weights, "mean")


def test_padding_adds_no_loss():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 5)
    a = {"input_ids": [1, 2, 3], "labels": [IGNORE, 2, 3], "weights": [1.0, 1.0, 1.0]}
    b = {"input_ids": [1, 2, 3, 4, 1, 2], "labels": [IGNORE, 2, 3, 4, 1, 2], "weights": [1.0] * 6}
    batch = collate([a, b], pad_id=0)
    assert batch["attention_mask"].tolist()[0] == [1, 1, 1, 0, 0, 0]
    assert batch["labels"][0, 3:].tolist() == [IGNORE] * 3
    alone = weighted_token_loss(logits[:1, :3], batch["labels"][:1, :3], batch["weights"][:1, :3])
    padded = weighted_token_loss(logits[:1], batch["labels"][:1], batch["weights"][:1])
    assert math.isclose(alone.item(), padded.item(), rel_tol=1e-6)


def test_length_grouped_sampler_is_a_permutation_with_grouped_lengths():
    lengths = [((i * 37) % 101) + 1 for i in range(400)]
    sampler = LengthGroupedSampler(lengths, batch_size=8, seed=0, group_batches=10)
    order = list(sampler)
    assert sorted(order) == list(range(400))
    spread = [max(lengths[j] for j in order[k : k + 8]) - min(lengths[j] for j in order[k : k + 8]) for k in range(0, 400, 8)]
    assert sum(spread) / len(spread) < 15  # random batches would spread ~80
    assert list(sampler) != order  # a new epoch, a new order


def test_warmup_then_linear_decay():
    assert warmup_linear_decay(0, 100, 20) == pytest.approx(1 / 20)
    assert warmup_linear_decay(19, 100, 20) == pytest.approx(1.0)
    assert warmup_linear_decay(20, 100, 20) == pytest.approx(1.0)
    assert warmup_linear_decay(60, 100, 20) == pytest.approx(0.5)
    assert warmup_linear_decay(100, 100, 20) == 0.0


@pytest.mark.parametrize("world_size,accumulate", [(1, 1), (2, 1), (2, 3), (3, 2)])
def test_step_batches_deal_every_example_once_with_the_global_denominator(world_size, accumulate):
    lengths = [((i * 37) % 101) + 1 for i in range(53)]
    units = [float(n - 1) for n in lengths]
    ranks = [list(StepBatchSampler(lengths, units, 4, seed=0, world_size=world_size, rank=r, accumulate=accumulate))
             for r in range(world_size)]
    assert len({len(r) for r in ranks}) == 1 and len(ranks[0]) == len(StepBatchSampler(
        lengths, units, 4, seed=0, world_size=world_size, accumulate=accumulate))  # every rank runs the same batches
    assert len(ranks[0]) % accumulate == 0  # whole optimizer steps only
    real = sorted(s.index for r in ranks for b in r for s in b if not s.padding)
    assert real == list(range(53))  # each example once per epoch, over all ranks
    for k in range(0, len(ranks[0]), accumulate):  # one step: its batches on every rank
        step = [s for r in ranks for b in r[k : k + accumulate] for s in b]
        assert {s.step_denominator for s in step} == {sum(units[s.index] for s in step if not s.padding)}
        assert [b[0].step_end for b in ranks[0][k : k + accumulate]] == [False] * (accumulate - 1) + [True]
