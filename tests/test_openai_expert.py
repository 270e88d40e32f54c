"""verifier=openai: the real openai client against our own OpenAI-compatible server on 127.0.0.1.

The server answers with the scripted expert, so the API expert must give exactly the scripted
feedback and updates (parity), over both endpoints; then the cache, retries and faults (the
client's own retries, every try counted), concurrency, the budget, the key's secrecy, reply
parsing and the dry-run estimate. No real API is called and nothing is mocked: requests go
through the openai client over HTTP.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from omegaconf import OmegaConf

from tripost.config import ConfigError
from tripost.experts import BudgetExceeded, ExpertError, build_expert
from tripost.experts import openai_expert
from tripost.experts.accounting import estimate_run
from tripost.experts.cache import CacheMiss, request_key
from tripost.experts.openai_expert import OpenAIExpert
from tripost.experts.prompts import PromptBuilder, parse_fbk_reply, parse_imp_reply
from tripost.experts.scripted import ScriptedExpert
from tripost.experts.server import start_server
from tripost.experts.server_parsing import parse_request
from tripost.formats import FINAL_STEP, Feedback
from tripost.openai_server import Answerer, Choice, FaultPlan, OpenAIServer, parse_faults
from tripost.tasks import get_task

from .conftest import ROOT

KEY_ENV = "TRIPOST_TEST_OPENAI_KEY"
FAKE_KEY = "sk-tripost-FAKE-7f3a9c1e5b2d46800dd5"
TASKS = ("word_sort", "multistep_arithmetic")
UNREADABLE = "(1) hello there\n(Final response) So the answer is 3.\n"  # step lines the checkers cannot read


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)


@pytest.fixture(scope="module")
def tasks():
    return {name: get_task(name) for name in TASKS}


@pytest.fixture(scope="module")
def shared_servers():
    servers = {name: start_server(name) for name in TASKS}
    yield servers
    for server in servers.values():
        server.shutdown()


@pytest.fixture
def make_server():
    """Servers of one test (with their own faults and counters), shut down after it."""
    started = []

    def make(task_name="word_sort", **kwargs):
        started.append(start_server(task_name, **kwargs))
        return started[-1]

    yield make
    for server in started:
        server.shutdown()


def verifier_settings(*overrides):
    """conf/verifier/openai.yaml (where every default lives) with ``overrides`` on top; cache off."""
    defaults = OmegaConf.load(ROOT / "conf" / "verifier" / "openai.yaml")
    return OmegaConf.merge(defaults, {"cache": {"path": None, "mode": "off"}}, *overrides)


@pytest.fixture
def make_expert(tasks):
    """OpenAI experts on a server URL (cache off unless a path is given), closed after the test."""
    made = []

    def make(url, task_name="word_sort", cache_path=None, **overrides):
        cfg = {
            "base_url": url, "api_key_env": KEY_ENV, "shots": 2, "max_retries": 2, "timeout_s": 5,
            "cache": {"path": str(cache_path) if cache_path else None, "mode": "readwrite" if cache_path else "off"},
        }
        made.append(OpenAIExpert(verifier_settings(cfg, overrides), tasks[task_name]))
        return made[-1]

    yield make
    for expert in made:
        expert.close()


def cases(task, n: int, seed: int) -> list[tuple[str, str]]:
    """(question, attempt) pairs: gold attempts and attempts with one injected error, seen and unseen cells."""
    rng = random.Random(seed)
    cells = task.cells()
    out = []
    for i in range(n):
        example = task.sample(cells[i % len(cells)], rng)
        out.append((example.question, example.rationale))
        wrong = task.inject_error(example.question, rng)
        if wrong is not None:
            out.append((example.question, wrong))
    out.append((out[0][0], UNREADABLE))
    return out


def first_wrong(task, seed: int = 0) -> tuple[str, str]:
    return next((q, a) for q, a in cases(task, 6, seed) if task.check(q, a).is_error)


# =================================================================== (a) parity with the scripted expert


@pytest.mark.parametrize("api", ["chat", "completions"])
@pytest.mark.parametrize("task_name", TASKS)
def test_feedback_and_improve_match_the_scripted_expert(api, task_name, tasks, shared_servers, make_expert):
    task = tasks[task_name]
    expert = make_expert(shared_servers[task_name].url, task_name, api=api, concurrency=8)
    scripted = ScriptedExpert(task)

    def check(case):
        question, attempt = case
        fb = expert.feedback(question, attempt)
        assert fb == scripted.feedback(question, attempt)
        update = expert.improve(question, attempt, fb)
        assert update == scripted.improve(question, attempt, fb)
        if update is not None:
            assert expert.feedback(question, update) == scripted.feedback(question, update)
        return fb.kind

    with ThreadPoolExecutor(8) as pool:  # the editor calls from many threads at once
        kinds = list(pool.map(check, cases(task, 8, seed=len(api) + len(task_name))))
    assert {"correct", "error", "unparsable"} <= set(kinds)
    usage = expert.usage()
    assert usage["total"]["calls"] >= len(kinds) and usage["total"]["failed"] == 0
    assert usage["total"]["prompt_tokens"] > 0 and usage["imp"]["completion_tokens"] > 0


def test_azure_client_reaches_a_deployment(tasks, make_server, make_expert):
    task, server = tasks["word_sort"], make_server()
    expert = make_expert(server.url.removesuffix("/v1"), azure={"api_version": "2024-10-21", "deployment": "my-gpt"})
    question, attempt = first_wrong(task)
    assert expert.feedback(question, attempt) == task.check(question, attempt)
    assert server.requests == 1


def test_attempt_without_steps_is_unparsable_without_a_call(shared_servers, make_expert):
    server = shared_servers["word_sort"]
    expert = make_expert(server.url)
    assert expert.feedback("Sort the following words alphabetically:\nList: b a", "no steps here").is_unparsable
    assert expert.improve("q", "(1) x\n", Feedback.correct()) is None
    assert expert.usage()["total"]["calls"] == 0


def test_requests_read_back(tasks):
    task = tasks["multistep_arithmetic"]
    question, attempt = first_wrong(task)
    fb = task.check(question, attempt)
    builder = PromptBuilder(task, shots=3)
    for text in (builder.fbk_prompt(question, attempt), builder.fbk_messages(question, attempt)[-1]["content"]):
        parsed = parse_request(text)
        assert (parsed.role, parsed.question, parsed.attempt) == ("fbk", question, attempt)
    for text in (builder.imp_prompt(question, attempt, fb), builder.imp_messages(question, attempt, fb)[-1]["content"]):
        parsed = parse_request(text)
        assert (parsed.role, parsed.question, parsed.attempt, parsed.feedback) == ("imp", question, attempt, fb)
    with pytest.raises(ValueError):
        parse_request("Q: 1 + 1 =\nAnswer: 2")


# =================================================================== (b) cache


def test_second_expert_answers_from_the_cache_with_no_requests(tmp_path, tasks, make_server, make_expert):
    task, server = tasks["word_sort"], make_server()
    pairs = cases(task, 4, seed=7)
    first = make_expert(server.url, cache_path=tmp_path / "cache.sqlite")
    answers = [first.feedback(q, a) for q, a in pairs]
    sent = server.requests
    assert sent == len(pairs) and first.usage()["total"]["calls"] == sent

    again = make_expert(server.url, cache_path=tmp_path / "cache.sqlite")
    assert [again.feedback(q, a) for q, a in pairs] == answers
    assert server.requests == sent
    assert again.usage()["total"]["calls"] == 0 and again.usage()["fbk"]["cache_hits"] == len(pairs)

    replay = make_expert(server.url, cache_path=tmp_path / "cache.sqlite", cache={"mode": "readonly"})
    assert replay.feedback(*pairs[0]) == answers[0]
    question, attempt = first_wrong(task, seed=99)
    with pytest.raises(CacheMiss, match="readonly"):
        replay.feedback(question, attempt)
    assert server.requests == sent


def test_readonly_cache_without_a_file_misses(tmp_path, shared_servers, make_expert, tasks):
    expert = make_expert(shared_servers["word_sort"].url, cache_path=tmp_path / "none.sqlite", cache={"mode": "readonly"})
    with pytest.raises(CacheMiss):
        expert.feedback(*first_wrong(tasks["word_sort"]))
    assert not (tmp_path / "none.sqlite").exists()


# =================================================================== (c) faults and retries


def test_rate_limits_server_errors_and_timeouts_are_retried(tasks, make_server, make_expert):
    task = tasks["word_sort"]
    # The timeout first: the client's backoff after it (no Retry-After to follow) is its shortest.
    server = make_server(faults=["timeout", "429", "500"], timeout_sleep=1.5)
    expert = make_expert(server.url, max_retries=3, timeout_s=0.5)
    question, attempt = first_wrong(task)
    assert expert.feedback(question, attempt) == task.check(question, attempt)
    usage = expert.usage()["fbk"]
    assert usage["retries"] == 3 and usage["calls"] == 4 == server.requests
    assert usage["errors"] == {"rate_limit": 1, "server_500": 1, "timeout": 1} and usage["failed"] == 0


def test_retry_after_is_honoured(tasks, make_server, make_expert):
    server = make_server(faults=["429"], retry_after_ms=600)
    expert = make_expert(server.url)
    start = time.perf_counter()
    assert expert.feedback(*first_wrong(tasks["word_sort"])).is_error
    assert time.perf_counter() - start >= 0.6 and server.requests == 2


@pytest.mark.parametrize("fault, kind", [("garbage", "bad_reply"), ("empty", "empty_reply")])
def test_garbage_and_empty_replies_raise_expert_error(fault, kind, tasks, make_server, make_expert):
    server = make_server(faults=[fault, fault])
    expert = make_expert(server.url)
    question, attempt = first_wrong(tasks["word_sort"])
    with pytest.raises(ExpertError):
        expert.feedback(question, attempt)
    with pytest.raises(ExpertError):
        expert.improve(question, attempt, tasks["word_sort"].check(question, attempt))
    assert expert.usage()["total"]["errors"] == {kind: 2} and server.requests == 2


def test_persistent_failure_raises_expert_error_after_max_retries(tasks, make_server, make_expert):
    server = make_server(faults=["503"] * 3)
    expert = make_expert(server.url, max_retries=2)
    with pytest.raises(ExpertError, match="after 3 tries"):
        expert.feedback(*first_wrong(tasks["word_sort"]))
    usage = expert.usage()["fbk"]
    assert server.requests == 3 and usage["retries"] == 2 and usage["failed"] == 1
    assert expert.feedback(*first_wrong(tasks["word_sort"])).is_error  # the plan is spent: it answers again


def test_fault_plans():
    a, b = (FaultPlan(["429", "500"], rate=0.5, seed=3) for _ in range(2))
    drawn = [a.fault_for(i) for i in range(40)]
    assert drawn == [b.fault_for(i) for i in range(40)] and {"ok", "429", "500"} == set(drawn)
    assert [f for f in drawn if f != "ok"][:4] == ["429", "500", "429", "500"]  # failures take the faults in turn
    in_order = FaultPlan(parse_faults("429, ok,timeout"))
    assert [in_order.fault_for(i) for i in range(4)] == ["429", "ok", "timeout", "ok"]
    with pytest.raises(ValueError, match="unknown"):
        FaultPlan(["418"])


# =================================================================== (d) concurrency


def test_concurrent_requests_overlap_and_are_bounded(tasks, make_server, make_expert):
    task = tasks["word_sort"]
    pairs = [(q, a) for q, a in cases(task, 12, seed=5) if a != UNREADABLE][:16]
    assert len(pairs) == 16
    latency = 0.2
    for concurrency, low, high in [(16, 0.0, 0.5 * 16 * latency), (4, 4 * latency * 0.95, 16 * latency)]:
        server = make_server(latency=latency)
        expert = make_expert(server.url, concurrency=concurrency)
        start = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda p: expert.feedback(*p), pairs))
        wall = time.perf_counter() - start
        assert server.requests == 16
        assert low <= wall < high, f"concurrency {concurrency}: 16 requests of {latency}s took {wall:.2f}s"


# =================================================================== (e) budget


def test_budget_stops_new_requests_but_serves_cached_ones(tmp_path, tasks, make_server, make_expert):
    task, server = tasks["word_sort"], make_server()
    model = "tripost-pricey"
    expert = make_expert(server.url, cache_path=tmp_path / "c.sqlite", max_cost_usd=0.01,
                         fbk={"model": model}, prices={model: {"input": 1000.0, "output": 1000.0}})
    pairs = cases(task, 3, seed=11)
    first = expert.feedback(*pairs[0])  # the budget is not spent yet: this one is sent
    assert expert.usage()["fbk"]["cost_usd"] >= 0.01
    with pytest.raises(BudgetExceeded, match="max_cost_usd"):
        expert.feedback(*pairs[1])
    assert expert.feedback(*pairs[0]) == first
    assert server.requests == 1 and expert.usage()["unpriced_models"] == []
    expert.reset_usage()
    assert expert.usage()["total"]["calls"] == 0
    with pytest.raises(BudgetExceeded):  # a new accounting period does not refill the budget
        expert.feedback(*pairs[1])
    assert not issubclass(BudgetExceeded, ExpertError)


def test_unpriced_model_costs_nothing_and_is_reported(shared_servers, make_expert, tasks):
    expert = make_expert(shared_servers["word_sort"].url, fbk={"model": "no-price-model"})
    expert.feedback(*first_wrong(tasks["word_sort"]))
    usage = expert.usage()
    assert usage["fbk"]["cost_usd"] == 0 and usage["unpriced_models"] == ["no-price-model"]


def test_dry_run_makes_no_calls(shared_servers, make_expert, monkeypatch, tasks):
    monkeypatch.delenv(KEY_ENV)  # a dry run needs no key
    expert = make_expert(shared_servers["word_sort"].url, dry_run=True)
    with pytest.raises(BudgetExceeded, match="dry_run"):
        expert.feedback(*first_wrong(tasks["word_sort"]))


# =================================================================== (f) the key


def test_missing_key_fails_naming_the_variable(monkeypatch, shared_servers, make_expert):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ConfigError, match=KEY_ENV) as info:
        make_expert(shared_servers["word_sort"].url)
    assert "\n" not in str(info.value)


def test_the_key_never_leaves_the_environment(tmp_path, caplog, tasks, make_server, make_expert):
    caplog.set_level(logging.DEBUG)  # the openai client's and httpx's debug logs too
    task = tasks["word_sort"]
    server = make_server(faults=["500", "500", "500", "garbage"])
    expert = make_expert(server.url, cache_path=tmp_path / "c.sqlite", max_cost_usd=1e-9,
                         prices={"gpt-4o-mini": {"input": 1.0, "output": 1.0}})
    question, attempt = first_wrong(task)
    messages = []
    for call in (lambda: expert.feedback(question, task.gold_rationale(question)),  # 3 x 500
                 lambda: expert.feedback(question, attempt),  # garbage, which costs: the budget is spent
                 lambda: expert.improve(question, attempt, task.check(question, attempt))):  # BudgetExceeded
        with pytest.raises((ExpertError, BudgetExceeded)) as info:
            call()
        messages.append(str(info.value) + repr(info.value))
    replay = make_expert(server.url, cache_path=tmp_path / "c.sqlite", cache={"mode": "readonly"})
    with pytest.raises(CacheMiss) as info:
        replay.improve(question, attempt, task.check(question, attempt))
    messages.append(str(info.value))
    expert.close()
    cache_bytes = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert len(cache_bytes) > 0
    for where, text in [("exceptions", "\n".join(messages)), ("usage", json.dumps(expert.usage())),
                        ("repr", repr(expert) + repr(expert.cache)), ("logs", caplog.text)]:
        assert FAKE_KEY not in text, where
        assert FAKE_KEY[-12:] not in text, where
    assert FAKE_KEY.encode() not in cache_bytes and FAKE_KEY[-12:].encode() not in cache_bytes


# =================================================================== (g) reply parsing


ATTEMPT = "(1) a\n(2) b\n(2.1) c\n(Final response) So the answer is 3.\n"


@pytest.mark.parametrize("reply", [
    "", "   \n", "I'm sorry, but I can't help with that.", "I cannot evaluate this attempt.",
    "The attempt looks fine to me.", "Earliest error step: (7)\nError segment: \"x\"\nError reason: y",
    "Earliest error step: (2)\nError reason: no segment", "Earliest error step: (2)\nError segment: \"x\"",
    "Earliest error step: somewhere", "Earliest error step:",
])
def test_unusable_fbk_replies_raise_expert_error(reply):
    with pytest.raises(ExpertError):
        parse_fbk_reply(reply, ATTEMPT)


@pytest.mark.parametrize("reply, expected", [
    ("Earliest error step: none", Feedback.correct()),
    ("```\nEarliest error step: None.\n```", Feedback.correct()),
    ('Earliest error step: (2.1)\nError segment: ""x" < "y""\nError reason: "y" comes first',
     Feedback.error("2.1", '"x" < "y"', '"y" comes first')),
    ('**Earliest error step:** (Final response)\n**Error segment:** "So the answer is 3."\n**Error reason:** it is 4.',
     Feedback.error(FINAL_STEP, "So the answer is 3.", "it is 4.")),
    ("Here is my check.\nEarliest error step: Step 2\nError segment: b\nError reason: b is wrong",
     Feedback.error("2", "b", "b is wrong")),
    ("Earliest error step: unreadable\nError reason: no steps", Feedback.unparsable("no steps")),
])
def test_fbk_replies_parse(reply, expected):
    assert parse_fbk_reply(reply, ATTEMPT) == expected


def test_imp_replies_parse_and_fail_clearly():
    body = "(1) a\n(2) b2\n(Final response) So the answer is 4.\n"
    assert parse_imp_reply(f"```\nUpdated Answer: Let's think step by step.\n{body}```\nFeedback: fine") == body
    assert parse_imp_reply("Sure, here it is:\n" + body) == body
    for reply in ("", "  ", "I'm sorry, I can't.", "no steps at all", "(1) a\nnot a step\n(Final response) x"):
        with pytest.raises(ExpertError):
            parse_imp_reply(reply)


# =================================================================== (h) estimate, config, CLI


def test_estimate_run_counts_calls_and_cost(tasks):
    assert openai_expert.estimate_run is estimate_run  # the old import path still works
    cfg = verifier_settings({"prices": {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}})
    estimate = estimate_run(cfg, tasks["multistep_arithmetic"], n_questions=100, passes=2, iterations=3)
    assert estimate["trajectories"] == 600
    assert estimate["fbk"]["calls"] == 600 + 450 and estimate["imp"]["calls"] == 450
    assert estimate["calls"] > 0 and estimate["prompt_tokens"] > 0 and estimate["cost_usd"] > 0
    assert estimate["unpriced_models"] == []
    chat = estimate_run(verifier_settings(cfg, {"api": "completions"}), tasks["word_sort"], 10, 1, 1, wrong_share=1.0, rounds=2.0)
    assert chat["imp"]["calls"] == 20 and chat["cost_usd"] > 0


def test_verifier_openai_config_builds_the_expert(tmp_path, shared_servers, tasks):
    from hydra import compose, initialize_config_dir

    from tripost.config import validate

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.output_dir={tmp_path}", f"paths.root_dir={tmp_path}", "verifier=openai",
                                           f"verifier.base_url={shared_servers['word_sort'].url}",
                                           f"verifier.api_key_env={KEY_ENV}"])
    typed = validate(cfg)  # unresolved: the cache path still reads ${paths.outputs_dir}/...
    assert typed.verifier.cache.mode == "readwrite" and typed.verifier.prices["gpt-4o-mini"].input > 0
    expert = build_expert(typed.verifier, tasks["word_sort"], seed=0)
    try:
        assert expert.concurrency == 16
        assert expert.feedback(*first_wrong(tasks["word_sort"])).is_error
    finally:
        expert.close()
    assert (tmp_path / "outputs" / "expert_cache.sqlite").is_file()
    with pytest.raises(ConfigError, match="verifier.api"):
        validate(OmegaConf.merge(cfg, {"verifier": {"api": "responses"}}))


def test_server_cli_prints_its_url_and_answers(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "tripost.experts.server", "--task", "word_sort", "--port", "0"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        models = json.load(urllib.request.urlopen(f"{url}/models", timeout=10))
        assert models["data"][0]["id"]
        stats = json.load(urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=10))
        assert stats["requests"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


class EchoAnswerer(Answerer):
    """Completions only: each prompt back upper-cased; a prompt "bug" is a bug of the answerer."""

    model_id = "echo"
    endpoints = ("completions",)

    def answer(self, endpoint, body):
        prompts = body.get("prompt")
        if not isinstance(prompts, list):
            raise ValueError("the prompt must be a list")
        if "bug" in prompts:
            raise RuntimeError("a bug")
        return [Choice(p.upper(), "length" if len(p) > 3 else "stop") for p in prompts]

    def usage(self, endpoint, body, texts):
        return len(body["prompt"]), len(texts)


def test_openai_server_core_routes_and_shapes():
    """The shared HTTP core with another answerer: routes, reply shapes, errors, and a shutdown
    from a serve_forever loop of someone else's thread (as the generation server's tests run it)."""
    server = OpenAIServer(EchoAnswerer())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def post(path, data):
        request = urllib.request.Request(f"{server.url}{path}", data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return reply.status, json.load(reply)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    try:
        assert json.load(urllib.request.urlopen(f"{server.url}/models", timeout=10))["data"][0]["id"] == "echo"
        status, reply = post("/completions", json.dumps({"model": "m", "prompt": ["ab", "abcd"]}).encode())
        assert status == 200 and reply["object"] == "text_completion" and reply["model"] == "m"
        assert [(c["index"], c["text"], c["finish_reason"]) for c in reply["choices"]] == [(0, "AB", "stop"), (1, "ABCD", "length")]
        assert reply["usage"] == {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}
        assert post("/chat/completions", b"{}")[0] == 404  # not an endpoint of this answerer
        assert post("/completions", b"not json")[0] == 400
        status, reply = post("/completions", json.dumps({"prompt": "one"}).encode())
        assert status == 400 and "must be a list" in reply["error"]["message"]
        assert post("/completions", json.dumps({"prompt": ["bug"]}).encode())[0] == 500
        assert server.stats()["requests"] == 4
    finally:
        server.shutdown()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_cache_file_holds_requests_not_secrets(tmp_path, monkeypatch, tasks, make_server, make_expert):
    """Every stored row is a request (the fields the cache key is made of) and its reply; no key,
    no Authorization, no URL. A distinctive key planted in the environment is in no byte of the file."""
    planted = "sk-tripost-PLANTED-5e1f0c9a7b3d42e8a6c4"
    url_secret = "URL-SECRET-93b1d7"  # credentials in the base URL must not reach the cache either
    monkeypatch.setenv(KEY_ENV, planted)
    task, server = tasks["word_sort"], make_server()
    base_url = server.url.replace("http://", f"http://tripost:{url_secret}@")
    path = tmp_path / "c.sqlite"
    expert = make_expert(base_url, cache_path=path)
    question, attempt = first_wrong(task)
    feedback = expert.feedback(question, attempt)
    expert.improve(question, attempt, feedback)
    expert.attempt(question)
    expert.close()
    assert server.requests == 3

    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT key, request, reply, prompt_tokens, completion_tokens FROM replies").fetchall()
    assert len(rows) == 3
    for key, stored, reply, prompt_tokens, completion_tokens in rows:
        request = json.loads(stored)
        assert key == request_key(request)  # the key is the request's own hash, nothing else
        assert {"role", "endpoint", "model", "temperature", "max_tokens", "stop", "messages"} <= set(request)
        assert not {"api_key", "authorization", "headers", "base_url", "url"} & {k.lower() for k in request}
        assert question in request["messages"][-1]["content"] and reply and prompt_tokens > 0 and completion_tokens > 0
    assert sorted(json.loads(r[1])["role"] for r in rows) == ["att", "fbk", "imp"]

    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("c.sqlite"))  # with any WAL left
    # The file is searchable as bytes (the question as its JSON stores it): the checks below mean something.
    assert json.dumps(question, ensure_ascii=False)[1:-1].encode() in raw
    host = server.url.removeprefix("http://").removesuffix("/v1")
    for secret in (planted, planted[-12:], url_secret, host):
        assert secret.encode() not in raw, secret
    assert b"authorization" not in raw.lower()


# =================================================================== (h) reliability: dead servers, bad replies, the run's spend


def test_a_dead_server_is_unreachable_after_the_pass_and_cache_hits_do_not_count(tmp_path, tasks, make_server, make_expert):
    from tripost.experts import ExpertUnreachable

    task = tasks["word_sort"]
    pairs = [(q, a) for q, a in cases(task, 6, seed=21) if a != UNREADABLE][:8]
    server = make_server(die_after=3)
    expert = make_expert(server.url, cache_path=tmp_path / "c.sqlite", max_retries=1)
    outcomes = []
    for pair in pairs:
        try:
            outcomes.append(expert.feedback(*pair))
        except ExpertError as e:
            outcomes.append(str(e))
    assert server.stats() == {"requests": 3, "faults_injected": {}, "dead": True}
    assert all("failed (connection) after 2 tries" in o for o in outcomes[3:])
    with pytest.raises(ExpertUnreachable, match=r"5 of the pass's 8 requests got no answer .*connection: 5"):
        expert.raise_if_unreachable()
    expert.raise_if_unreachable()  # counting started anew: nothing sent since

    # The next pass: the 3 answered requests come from the cache and say nothing of the server;
    # one unanswered request of one is 100%.
    for pair in pairs[:3]:
        expert.feedback(*pair)
    expert.raise_if_unreachable()
    with pytest.raises(ExpertError):
        expert.feedback(*pairs[3])
    with pytest.raises(ExpertUnreachable):
        expert.raise_if_unreachable()


def test_unreachable_share_is_a_threshold(tasks, make_server, make_expert):
    from tripost.experts import ExpertUnreachable

    task = tasks["word_sort"]
    pairs = [(q, a) for q, a in cases(task, 6, seed=22) if a != UNREADABLE][:5]
    for share, raises in [(0.2, True), (0.4, False), (1.0, False)]:
        server = make_server(die_after=3)  # 3 answered, 2 unanswered: 40%
        expert = make_expert(server.url, max_retries=0, max_unreachable_share=share)
        for pair in pairs:
            try:
                expert.feedback(*pair)
            except ExpertError:
                pass
        if raises:
            with pytest.raises(ExpertUnreachable, match="max_unreachable_share=0.2"):
                expert.raise_if_unreachable()
        else:
            expert.raise_if_unreachable()
    with pytest.raises(ConfigError, match="verifier.max_unreachable_share"):
        make_expert(server.url, max_unreachable_share=1.5)
    ScriptedExpert(task).raise_if_unreachable()  # an expert without an API is always reachable


def test_a_dead_cli_server_refuses_connections_and_exits(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "tripost.experts.server", "--task", "word_sort", "--port", "0",
                             "--die-after", "1"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        body = json.dumps({"model": "m", "prompt": "x"}).encode()
        post = urllib.request.Request(f"{url}/completions", data=body, headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError):  # the one request it answers (400: not a tripost prompt)
            urllib.request.urlopen(post, timeout=10)
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # then it answers nothing
            urllib.request.urlopen(post, timeout=10)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("fault", ["garbage", "empty"])
def test_unusable_replies_are_not_cached_and_are_asked_again(fault, tmp_path, tasks, make_server, make_expert):
    task, path = tasks["word_sort"], tmp_path / "c.sqlite"
    question, attempt = first_wrong(task)
    bad = make_server(faults=[fault])
    with pytest.raises(ExpertError):
        make_expert(bad.url, cache_path=path).feedback(question, attempt)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM replies").fetchone()[0] == 0

    healthy = make_server()
    again = make_expert(healthy.url, cache_path=path)
    assert again.feedback(question, attempt) == task.check(question, attempt)
    assert healthy.requests == 1 and again.usage()["fbk"]["errors"] == {}
    third = make_expert(healthy.url, cache_path=path)
    assert third.feedback(question, attempt) == task.check(question, attempt) and healthy.requests == 1


def test_an_old_unusable_cached_reply_is_asked_again_but_replays_fail(tmp_path, tasks, make_server, make_expert):
    from tripost.experts.cache import ReplyCache

    task, path = tasks["word_sort"], tmp_path / "c.sqlite"
    question, attempt = first_wrong(task)
    server = make_server()
    probe = make_expert(server.url, cache_path=path)
    request = probe._request("fbk", probe.prompts.fbk_messages, probe.prompts.fbk_prompt, question, attempt)
    old = ReplyCache(path)
    old.store(request, "Lorem ipsum", 10, 2)  # as the version that cached every reply did
    old.close()

    replay = make_expert(server.url, cache_path=path, cache={"mode": "readonly"})
    with pytest.raises(ExpertError):  # an exact replay fails as the run it replays did
        replay.feedback(question, attempt)
    assert server.requests == 0

    assert probe.feedback(question, attempt) == task.check(question, attempt)
    assert server.requests == 1 and probe.usage()["fbk"]["cache_hits"] == 0
    assert make_expert(server.url, cache_path=path, cache={"mode": "readonly"}).feedback(question, attempt).is_error


def test_the_spend_is_the_runs_across_processes(tmp_path, tasks, make_server, make_expert):
    task, server = tasks["word_sort"], make_server()
    spend = tmp_path / "expert_spend.json"
    pricey = {"max_cost_usd": 0.01, "spend_path": str(spend), "prices": {"gpt-4o-mini": {"input": 1000.0, "output": 1000.0}}}
    pairs = cases(task, 3, seed=13)
    first = make_expert(server.url, **pricey)
    first.feedback(*pairs[0])
    spent = json.loads(spend.read_text())["spent_usd"]
    assert spent >= 0.01 and server.requests == 1
    first.close()
    for _ in range(3):  # a resume with the same cap: the budget is still spent
        with pytest.raises(BudgetExceeded, match="this run's spend, kept in"):
            make_expert(server.url, **pricey).feedback(*pairs[1])
    assert server.requests == 1 and json.loads(spend.read_text())["spent_usd"] == spent
    more = make_expert(server.url, **{**pricey, "max_cost_usd": 1.0})  # raising the cap is explicit
    more.feedback(*pairs[1])
    assert server.requests == 2 and json.loads(spend.read_text())["spent_usd"] > spent
    assert more.usage()["spent_usd_all_periods"] == pytest.approx(json.loads(spend.read_text())["spent_usd"], abs=1e-6)

    spend.write_text("not json")
    with pytest.raises(ConfigError, match="verifier.spend_path"):
        make_expert(server.url, **pricey)


def test_a_verifier_node_outside_a_run_keeps_its_spend_in_memory(shared_servers, tasks):
    """conf/verifier/openai.yaml loaded on its own (scripts, tests) has no ${paths.output_dir}."""
    expert = OpenAIExpert(verifier_settings({"base_url": shared_servers["word_sort"].url, "api_key_env": KEY_ENV}), tasks["word_sort"])
    try:
        assert expert._accounting.spend_path is None
    finally:
        expert.close()


@pytest.mark.parametrize("where", ["read-only dir", "read-only file", "kernel fs"])
def test_a_cache_path_that_cannot_be_opened_is_a_config_error(where, tmp_path, shared_servers, make_expert):
    import os

    if where == "kernel fs":
        path = "/sys/tripost_cache.sqlite"  # no file can be made in sysfs, not even by root
        if not os.path.isdir("/sys"):
            pytest.skip("no /sys")
    else:
        if os.geteuid() == 0:
            pytest.skip("root ignores file modes")
        locked = tmp_path / "locked"
        locked.mkdir()
        path = locked / "c.sqlite"
        if where == "read-only file":
            path.write_bytes(b"")
            path.chmod(0o444)
        locked.chmod(0o555)
    try:
        with pytest.raises(ConfigError) as info:
            make_expert(shared_servers["word_sort"].url, cache_path=path)
    finally:
        if where != "kernel fs":
            (tmp_path / "locked").chmod(0o755)
    message = str(info.value)
    assert message.startswith(f"config key 'verifier.cache.path': cannot open {path}") and "\n" not in message
