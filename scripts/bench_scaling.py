"""The debug loop on 1 process and on 2 processes (ddp, deepspeed_zero2, deepspeed_zero3), one
after another on this machine: wall time, its ratio to the 1-process run, the rows' metrics, and
how far each stage's loss curve is from the 1-process one (where the stage trained on the same
examples). The loop is the one tests/test_trainers.py runs: ft rationale, ft SI. demo, two
TriPosT iterations, each evaluated; fp32, global batch 8 (1 x 8 or 2 x 4).

    python scripts/bench_scaling.py                      # writes outputs/bench_scaling/<time>/
    python scripts/bench_scaling.py --extra rollout.workers=2

On a machine with fewer cores than processes x threads, 2 processes are slower than 1: the
point on CPU is that the multi-device path runs the same computation, not speed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_trainers import DEBUG_LOOP, LOOP_STAGES  # noqa: E402  (the loop the tests run)

SETTINGS = {
    "1 process (cpu)": ["sft.batch_size=8"],
    "2 processes, ddp": ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "sft.batch_size=4"],
    "2 processes, deepspeed_zero2": ["trainer=deepspeed_zero2", "trainer.accelerator=cpu", "trainer.devices=2",
                                     "sft.batch_size=4"],
    "2 processes, deepspeed_zero3": ["trainer=deepspeed_zero3", "trainer.accelerator=cpu", "trainer.devices=2",
                                     "sft.batch_size=4"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench_scaling" / time.strftime("%Y-%m-%d_%H-%M-%S"))
    parser.add_argument("--extra", nargs="*", default=[], help="overrides added to every run")
    args = parser.parse_args()
    env = {**os.environ, "WANDB_MODE": "disabled"}
    rows, base = [], None
    for name, overrides in SETTINGS.items():
        run_dir = args.out / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, str(ROOT / "run.py"), *DEBUG_LOOP, *overrides, *args.extra,
                               f"hydra.run.dir={run_dir}"], cwd=ROOT, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            print(f"{name}: failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            continue
        results = {r["method"]: r for r in json.loads((run_dir / "results.json").read_text())["rows"]}
        stats = {s: json.loads((run_dir / s / "train_stats.json").read_text()) for s in LOOP_STAGES}
        base = base or (seconds, stats)
        drift = []
        for s in LOOP_STAGES:
            same = stats[s]["examples_sha1"] == base[1][s]["examples_sha1"]
            if same:
                pairs = zip(stats[s]["loss_curve"], base[1][s]["loss_curve"])
                drift.append(f"{s} {max(abs(a - b) / abs(b) for a, b in pairs):.1e}")
            else:
                drift.append(f"{s} other data")
        metrics = "; ".join(f"{m} {r['seen']}/{r['total']}" for m, r in results.items())
        rows.append(f"| {name} | {seconds:.1f} | {seconds / base[0]:.2f} | {metrics} | {', '.join(drift)} |")
    table = ("| setting | wall s | vs 1 process | rows: seen/total accuracy | max relative loss-curve gap per stage |\n"
             "|---|---|---|---|---|\n" + "\n".join(rows))
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_scaling.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
