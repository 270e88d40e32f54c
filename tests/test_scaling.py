"""Scaling out on CPU (gloo), with the same code paths as GPUs: generation sharded over
processes, runs started by torchrun and (simulated) srun, a local Ray cluster, the SLURM
launcher's job shape, and a sweep of two-process jobs in which one job fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from tripost.cluster.launch import Launch
from tripost.cluster.local import LocalCluster
from tripost.cluster.processes import free_port
from tripost.models.tiny import build_tiny_model, train_tokenizer
from tripost.rollout import Sampling
from tripost.rollout.loop import LoopPolicy
from tripost.rollout.sharded import ShardedPolicy, deal_batches

from .conftest import ROOT

TWO_RANKS = ["debug=fast", "trainer=ddp", "trainer.accelerator=cpu", "trainer.accumulate_grad_batches=1",
             "baselines.ft_si_demo=true", "tripost.num_iterations=1"]


def env() -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}


def member_logs(stage_dir: Path) -> str:
    return "".join(p.read_text() for p in (stage_dir / "worker").glob("worker_rank*.log"))


def assert_every_stage_on_two_ranks(run_dir: Path) -> None:
    rows = [r["method"] for r in json.loads((run_dir / "results.json").read_text())["rows"]]
    assert rows[:2] == ["ft_rationale", "ft_si_demo"]
    for stage in ("ft_rationale", "ft_si_demo"):
        logs = member_logs(run_dir / stage)
        assert "MEMBER: 1/2" in logs and "MEMBER: 2/2" in logs  # both ranks trained the stage
        stats = json.loads((run_dir / stage / "train_stats.json").read_text())
        assert stats["world_size"] == 2 and stats["tokens_trained"] == stats["tokens_per_epoch"]  # summed over ranks
        assert (run_dir / stage / "model" / "config.json").is_file()


# ------------------------------------------------------------------------- generation
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    texts = [f"Q: {' + '.join(str(i) for i in range(n))} =\nAnswer: {n}\n" for n in range(1, 30)]
    tokenizer = train_tokenizer(texts, vocab_size=300)
    model = build_tiny_model(tokenizer, 32, 1, 2, 64, 512, seed=0)
    path = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


PROMPTS = [f"Q: {' + '.join(str(i) for i in range(n % 11 + 1))} =\n" for n in range(19)]
ENGINE = {"_target_": "tripost.rollout.loop.LoopPolicy.load", "_partial_": True}


def test_batches_are_dealt_whole_in_one_sorted_order():
    parts = deal_batches(["aaa", "a", "aaaa", "aa", "aaaaa"], batch_size=2, workers=2)
    assert parts == [[1, 3, 4], [0, 2]]  # batches [a, aa] [aaa, aaaa] [aaaaa]: 1st and 3rd to worker 0


@pytest.mark.parametrize("workers", [2, 3])  # 19 prompts, batches of 4: 5 batches, dealt 3+2 and 2+2+1
def test_greedy_outputs_on_n_workers_equal_one_engine(model_dir, workers):
    sampling = Sampling(do_sample=False, max_new_tokens=24)
    one = LoopPolicy.load(model_dir, batch_size=4).complete(PROMPTS, sampling)
    shards = LocalCluster().shards(workers, ENGINE, model_dir, batch_size=4, dtype="float32", device="cpu")
    sharded = ShardedPolicy(shards, batch_size=4)
    try:
        seen = []
        assert sharded.complete(PROMPTS, sampling, progress=seen.append) == one
        assert sum(seen) == len(PROMPTS)
        sampled = Sampling(do_sample=True, temperature=1.0, max_new_tokens=24)
        first = sharded.complete(PROMPTS, sampled, seed=7)
        assert sharded.complete(PROMPTS, sampled, seed=7) == first  # reproducible for a number of workers
    finally:
        sharded.close()
    assert not any(s.proc.is_alive() for s in shards)  # closed: their memory is free for training


def test_a_failing_generation_worker_is_one_error(tmp_path):
    shards = LocalCluster().shards(2, ENGINE, str(tmp_path / "no_model"), batch_size=4, dtype="float32", device="cpu")
    policy = ShardedPolicy(shards, batch_size=4)
    try:
        with pytest.raises(RuntimeError, match="generation worker on cpu failed"):
            policy.complete(PROMPTS, Sampling(max_new_tokens=4))
    finally:
        policy.close()


def test_served_engine_refuses_workers_and_takes_parallel_sizes(tmp_path):
    from tripost.config import ConfigError, validate

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"paths.output_dir={tmp_path}", "rollout=vllm", "rollout.workers=2"])
        ok = compose("config", overrides=["rollout=vllm", "rollout.engine.tensor_parallel_size=2",
                                          "rollout.engine.data_parallel_size=4"])
    with pytest.raises(ConfigError, match="rollout.workers.*data_parallel_size"):
        validate(cfg)
    command = " ".join(ok.rollout.engine.command)
    assert "--tensor-parallel-size {tensor_parallel_size} --data-parallel-size {data_parallel_size}" in command
    from tripost.rollout.served import ServerProcess

    filled = ServerProcess(list(ok.rollout.engine.command), "/m", "/tmp/x.log",
                           settings={"tensor_parallel_size": 2, "data_parallel_size": 4}).command
    assert filled[filled.index("--tensor-parallel-size") + 1] == "2"
    assert filled[filled.index("--data-parallel-size") + 1] == "4"


# ------------------------------------------------------------------------- launches
def test_launch_is_read_from_torchrun_and_srun_variables():
    torchrun = {"TORCHELASTIC_RUN_ID": "x", "RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "4",
                "GROUP_RANK": "1", "MASTER_ADDR": "node01", "MASTER_PORT": "29500"}
    assert Launch.from_env(torchrun) == Launch("torchrun", 5, 8, 1, 4, 1, 2, "node01", 29500)
    srun = {"SLURM_PROCID": "3", "SLURM_STEP_ID": "0", "SLURM_NTASKS": "4", "SLURM_LOCALID": "1", "SLURM_NODEID": "1",
            "SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_ID": "1234", "SLURM_NODELIST": "gpu[07-08]"}
    assert Launch.from_env(srun) == Launch("srun", 3, 4, 1, 2, 1, 2, "gpu07", 11234)
    assert Launch.from_env({}) is None
    assert Launch.from_env({**srun, "SLURM_NTASKS": "1"}) is None  # one task: a plain run


def test_slurm_launcher_job_shape_follows_the_trainer():
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm", "trainer=deepspeed_zero2", "trainer.devices=8",
                                           "trainer.num_nodes=2"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 8, 8)


def test_num_nodes_without_a_launcher_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *TWO_RANKS, "trainer.devices=1", "trainer.num_nodes=2",
                           f"hydra.run.dir={tmp_path}"], cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "config key 'trainer.num_nodes': 2 nodes need a launcher" in proc.stderr


@pytest.mark.long(30)
def test_torchrun_start_one_driver_one_run_dir(tmp_path):
    """torchrun starts run.py twice: rank 0 drives, rank 1 serves; one run dir, every stage on both."""
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", str(ROOT / "run.py"), *TWO_RANKS,
                           f"paths.outputs_dir={tmp_path}"], cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    runs = list((tmp_path / "word_sort" / "runs").iterdir())
    assert len(runs) == 1, runs  # the ranks agreed on the driver's dir
    assert_every_stage_on_two_ranks(runs[0])


@pytest.mark.long(35)
def test_srun_start_simulated(tmp_path):
    """What srun does for 2 tasks on one node: the same command twice, told its place in SLURM_* variables."""
    base = {**env(), "SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0", "SLURM_NTASKS": "2", "SLURM_JOB_NUM_NODES": "1",
            "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost", "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(free_port("127.0.0.1"))}
    procs = [subprocess.Popen([sys.executable, str(ROOT / "run.py"), *TWO_RANKS, f"paths.outputs_dir={tmp_path}"],
                              cwd=ROOT, env={**base, "SLURM_PROCID": str(r), "SLURM_LOCALID": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-3000:] + outs[1][1][-3000:]
    runs = list((tmp_path / "word_sort" / "runs").iterdir())
    assert len(runs) == 1 and "slurm4242.0" in runs[0].name
    assert_every_stage_on_two_ranks(runs[0])


@pytest.mark.long(60)
def test_local_ray_cluster_runs_the_debug_loop(tmp_path):
    """A Ray instance on 2 CPUs: every training stage's 2 ranks and the 2 generation engines are actors."""
    pytest.importorskip("ray")
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *TWO_RANKS, "trainer.devices=2", "cluster=ray",
                           "cluster.num_cpus=2", "cluster.object_store_memory_mb=100", "rollout.workers=2",
                           f"hydra.run.dir={tmp_path}"], cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "ray cluster: 1 node(s), 2.0 CPUs" in (tmp_path / "run.log").read_text()
    assert_every_stage_on_two_ranks(tmp_path)


@pytest.mark.long(30)
def test_sweep_of_two_rank_jobs_one_failing(tmp_path):
    """Each job trains on 2 processes; job 0's trainer is refused inside its worker group. Job 1
    finishes, and the sweep runs each job once (no worker re-runs the -m command line)."""
    proc = subprocess.run([sys.executable, str(ROOT / "run.py"), "-m", *TWO_RANKS, "trainer.devices=2",
                           "tripost.num_iterations=0", "baselines.ft_si_demo=false",
                           "trainer.accumulate_grad_batches=0,1", f"hydra.sweep.dir={tmp_path}"],
                          cwd=ROOT, env=env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "sweep_summary.json").read_text())
    assert summary["done"] == ["1_seed42"] and [j["job"] for j in summary["failed"]] == ["0_seed42"]
    assert "rank" in summary["failed"][0]["message"] and "worker_rank" in summary["failed"][0]["message"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")) == ["0_seed42", "1_seed42"]
    assert "MEMBER: 2/2" in member_logs(tmp_path / "1_seed42" / "ft_rationale")
