"""An OpenAI-compatible server that answers FBK, IMP and ATT prompts with the scripted expert.

It lets ``verifier=openai`` run end to end with no API and no key (any Authorization header is
accepted): tests, benchmarks of concurrency and retries, and demos. The protocol, the fault
injection and the serving are ``tripost.openai_server``'s; this module is the answerer. It
reads the question, the attempt (and, for IMP, the feedback) out of the last request block of
the prompt (``tripost.experts.server_parsing``); an ATT request (the expert's own attempt, for
ft SI. demo) gets the scripted attempt for the request's ``seed``. It answers in exactly the
formats ``prompts`` parses, with a ``usage`` block counting 4 characters a token.

    python -m tripost.experts.server --task word_sort --host 127.0.0.1 --port 0
    # first line of stdout: the base URL, e.g. http://127.0.0.1:40123/v1
    OPENAI_API_KEY=dummy python run.py verifier=openai verifier.base_url=http://127.0.0.1:40123/v1

A task's options go with ``--task-option KEY=VALUE`` (repeatable), e.g. your own dataset, whose
FBK and IMP then come from the file's answers and rationales (``tripost.tasks.custom``):

    python -m tripost.experts.server --task custom --task-option path=/path/items.jsonl --port 0

``--latency``, ``--faults 429,ok,500``, ``--fault-rate``, ``--die-after N`` and friends inject faults (see
``tripost.openai_server``).
"""

from __future__ import annotations

import argparse
from typing import Any

from tripost.experts.prompts import ATT, FBK, approx_tokens, kept_steps, render_fbk_reply, request_text
from tripost.experts.scripted import ScriptedExpert
from tripost.experts.server_parsing import parse_chat_request, parse_completion_request
from tripost.formats import split_steps
from tripost.openai_server import Answerer, Choice, FaultPlan, OpenAIServer, add_arguments, server_from_args
from tripost.tasks import get_task


class ScriptedAnswerer(Answerer):
    """The scripted expert's feedback, update or attempt for a tripost expert request."""

    model_id = "tripost-scripted"

    def __init__(self, task_name: str, attempt_error_rate: float = 0.5, task_options: dict[str, Any] | None = None):
        self.task = get_task(task_name, **(task_options or {}))  # options: as task.impl's (e.g. custom's path)
        self.expert = ScriptedExpert(self.task)
        self.attempt_error_rate = attempt_error_rate  # ATT: share of attempts with an injected error

    def answer(self, endpoint: str, body: dict[str, Any]) -> list[Choice]:
        if endpoint == "chat":
            parsed = parse_chat_request(body.get("messages") or [])
        else:
            parsed = parse_completion_request(body.get("prompt"))
        if parsed.role == FBK:
            return [Choice(render_fbk_reply(self.expert.feedback(parsed.question, parsed.attempt)))]
        if parsed.role == ATT:
            # The request's seed picks the attempt, as the scripted expert's pass seed does.
            writer = ScriptedExpert(self.task, seed=int(body.get("seed") or 0), attempt_error_rate=self.attempt_error_rate)
            return [Choice(writer.attempt(parsed.question))]
        update = self.expert.improve(parsed.question, parsed.attempt, parsed.feedback)
        if update is None:
            return [Choice("I cannot improve this attempt.")]
        if endpoint == "chat":
            return [Choice(update)]
        # The completion prompt ends with the kept steps: continue after them.
        kept = len(kept_steps(parsed.attempt, parsed.feedback))
        return [Choice("".join(s.line + "\n" for s in (split_steps(update) or [])[kept:]))]

    def usage(self, endpoint: str, body: dict[str, Any], texts: list[str]) -> tuple[int, int]:
        # 4 characters a token, as the expert's own dry-run estimate counts.
        prompt = request_text(body.get("messages"), body.get("prompt") if endpoint == "completions" else None)
        return approx_tokens(prompt), sum(approx_tokens(t) for t in texts)


def start_server(task_name: str, port: int = 0, latency: float = 0.0, faults: list[str] | FaultPlan | None = None,
                 fault_rate: float = 0.0, fault_seed: int = 0, timeout_sleep: float = 5.0,
                 host: str = "127.0.0.1", attempt_error_rate: float = 0.5, retry_after_ms: int = 10,
                 die_after: int | None = None, task_options: dict[str, Any] | None = None) -> OpenAIServer:
    """A server answering in a background thread; ``.url``, ``.requests``, ``.stats()``, ``.shutdown()``.
    ``die_after``: it dies after that many completion requests (see ``tripost.openai_server``);
    ``task_options``: the task's options (``task.impl``'s keys, e.g. ``{"path": ...}`` for custom)."""
    plan = faults if isinstance(faults, FaultPlan) else FaultPlan(list(faults or []), fault_rate, fault_seed)
    answerer = ScriptedAnswerer(task_name, attempt_error_rate, task_options)
    return OpenAIServer(answerer, host, port, latency, plan, timeout_sleep, retry_after_ms, die_after).start()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible server answering tripost FBK/IMP/ATT prompts with the scripted expert")
    parser.add_argument("--task", required=True, help="task name, e.g. word_sort or multistep_arithmetic")
    parser.add_argument("--attempt-error-rate", type=float, default=0.5,
                        help="ATT requests: share of attempts with an injected error (as verifier.attempt_error_rate of the scripted expert)")
    parser.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the task (as task.impl.KEY), e.g. path=items.jsonl for --task custom; repeatable")
    add_arguments(parser)
    args = parser.parse_args(argv)
    options = task_options(parser, args.task_option)
    server_from_args(ScriptedAnswerer(args.task, args.attempt_error_rate, options), args).serve()


def task_options(parser: argparse.ArgumentParser, pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs as options (values are text; the task converts what it needs)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            parser.error(f"--task-option {pair!r}: expected KEY=VALUE")
        options[key.strip()] = value
    return options


if __name__ == "__main__":
    main()
