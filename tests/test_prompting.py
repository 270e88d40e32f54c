"""Prompting baselines: few-shot prefixes with and without self-improvement examples."""

from __future__ import annotations

from tripost.formats import parse_feedback
from tripost.prompting import PrefixedPolicy, few_shot_prefix
from tripost.rollout import Completion, Policy, Sampling
from tripost.tasks import get_task
from tripost.trajectory import parse_trajectory

from .test_cli import check_run_dir, run_cli


def demos(prefix: str) -> list[str]:
    return ["Q: " + d for d in prefix.split("Q: ")[1:]]


def test_plain_prefix_shows_gold_rationales():
    task = get_task("multistep_arithmetic")
    shown = demos(few_shot_prefix(task, 3, self_improve=False))
    assert len(shown) == 3 and all("Feedback:" not in d for d in shown)
    for d in shown:
        question = d[len("Q: "):].split("\n")[0]
        assert d == task.prompt(question) + task.gold_attempt(question) + "\n"  # a blank line between demos


def test_si_prefix_shows_a_wrong_attempt_its_feedback_and_the_fix():
    task = get_task("word_sort")
    for d in demos(few_shot_prefix(task, 2, self_improve=True)):
        prompt_end = d.index("Let's think step by step.") + len("Let's think step by step.\n")
        turns = parse_trajectory(d[prompt_end:]).turns
        assert len(turns) == 2
        assert parse_feedback(turns[0].feedback).is_error and parse_feedback(turns[1].feedback).is_correct
        question = d[len("Q: "):d.index("\nAnswer:")]
        assert task.check(question, turns[1].attempt).is_correct


def test_prefixed_policy_prepends_to_every_prompt():
    seen = []

    class Recorder(Policy):
        def complete(self, prompts, sampling, stop=None, progress=None, seed=None):
            seen.extend(prompts)
            return [Completion(p[-2:], True) for p in prompts]

    out = PrefixedPolicy(Recorder(), "PREFIX\n").complete(["Q: a\n", "Q: b\n"], Sampling())
    assert seen == ["PREFIX\nQ: a\n", "PREFIX\nQ: b\n"]
    assert out == [Completion("a\n", True), Completion("b\n", True)]  # the wrapped policy's completions, unchanged


def test_prompting_rows_end_to_end(tmp_path):
    run_cli("debug=fast", "baselines.prompting.enabled=true", "baselines.prompting.shots=2", "baselines.ft_si_demo=false",
            "tripost.num_iterations=0", f"hydra.run.dir={tmp_path}")
    for method in ("prompting", "prompting_si", "ft_rationale"):
        check_run_dir(tmp_path, method, "word_sort", 42)
