"""The LLM expert's throughput: sequential versus concurrent requests, and a cached rerun.

Runs the ft SI. demo editing (the expert's own attempts, then FBK and IMP until fixed) over
``--questions`` word-sorting questions against our OpenAI-compatible server with a fixed added
latency per request (a stand-in for a remote API), through the real ``openai`` client:

  (a) concurrency 1, (b) concurrency ``--concurrency``, each with a fresh cache;
  (c) (b) again on (b)'s cache: it must make zero requests.

Checks that all three edit exactly as the scripted expert does, and prints requests, cache
hits, wall time, requests/s and the ratio (b)/(a).

    python scripts/bench_expert.py                       # 64 questions, latency 0.1 s, concurrency 16
    python scripts/bench_expert.py --questions 200 --latency 0.2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from omegaconf import OmegaConf

from tripost.experts.openai_expert import OpenAIExpert
from tripost.experts.scripted import ScriptedExpert
from tripost.experts.server import start_server
from tripost.loop import edit_all, expert_attempts
from tripost.tasks import get_task

KEY_ENV = "TRIPOST_BENCH_KEY"  # any value: our server needs no key
ROOT = Path(__file__).resolve().parents[1]


def edit_window(expert, task, window, out: Path):
    """The ft SI. demo collection of one pass: attempts by the expert, then edits."""
    outputs = expert_attempts(expert, window, out / "rollouts.jsonl", seed=0)
    cfg = SimpleNamespace(max_updates=5, max_attempt_chars=4000, filter_failed_edits=True)
    return edit_all(task, expert, window, outputs, cfg, out / "edited.jsonl")


def timed_openai(task, window, url: str, concurrency: int, cache: Path, out: Path, server) -> dict:
    cfg = OmegaConf.merge(OmegaConf.load(ROOT / "conf" / "verifier" / "openai.yaml"),
                          {"base_url": url, "api_key_env": KEY_ENV, "concurrency": concurrency,
                           "cache": {"path": str(cache), "mode": "readwrite"}})
    before = server.requests
    with OpenAIExpert(cfg, task) as expert:
        start = time.perf_counter()
        results = edit_window(expert, task, window, out)
        seconds = time.perf_counter() - start
        usage = expert.usage()["total"]
    return {"results": results, "seconds": seconds, "requests": server.requests - before,
            "cache_hits": usage["cache_hits"], "retries": usage["retries"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="word_sort")
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the server adds to every request")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    os.environ.setdefault(KEY_ENV, "bench")

    task = get_task(args.task)
    window = task.generate(task.seen_cells(), -(-args.questions // len(task.seen_cells())), seed=7)[: args.questions]
    server = start_server(args.task, latency=args.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            reference = edit_window(ScriptedExpert(task), task, window, tmp / "scripted")
            runs = {
                "sequential": timed_openai(task, window, server.url, 1, tmp / "seq.sqlite", tmp / "seq", server),
                f"concurrency {args.concurrency}": timed_openai(task, window, server.url, args.concurrency,
                                                                tmp / "conc.sqlite", tmp / "conc", server),
                "cached rerun": timed_openai(task, window, server.url, args.concurrency, tmp / "conc.sqlite",
                                             tmp / "rerun", server),
            }
    finally:
        server.shutdown()

    print(f"{args.questions} {args.task} questions, ft SI. demo editing, server latency {args.latency}s per request")
    print("| run | requests | cache hits | seconds | requests/s | same edits as scripted |\n|---|---|---|---|---|---|")
    for name, r in runs.items():
        rate = r["requests"] / r["seconds"] if r["seconds"] else 0.0
        print(f"| {name} | {r['requests']} | {r['cache_hits']} | {r['seconds']:.2f} | {rate:.1f} | "
              f"{r['results'] == reference} |")
    names = list(runs)
    print(f"speed-up of {names[1]} over sequential: {runs[names[0]]['seconds'] / runs[names[1]]['seconds']:.1f}x; "
          f"cached rerun: {runs[names[2]]['requests']} requests")
    if any(r["results"] != reference for r in runs.values()) or runs[names[2]]["requests"]:
        raise SystemExit("error: an expert run differs from the scripted expert, or the rerun made requests")


if __name__ == "__main__":
    main()
