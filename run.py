"""tripost's one entrypoint.

    python run.py                       # the embedded default: tiny model, scripted expert, CPU
    python run.py task=word_sort        # another task
    python run.py -m seed=1,2,3         # a sweep, one output dir per job
    python run.py resume=outputs/...    # continue a killed run after its last finished stage
    python run.py resume=outputs/... tripost.num_iterations=5   # ... or extend a finished one
    python run.py --cfg job             # print the composed config

Exit codes and messages: tripost/cli.py.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("TRIPOST_ROOT", str(Path(__file__).resolve().parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

import tripost.config  # noqa: E402,F401  (registers the config resolvers before Hydra composes)
from tripost import cli  # noqa: E402

log = logging.getLogger("tripost")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from tripost.config import resume_config

    hydra_cfg = HydraConfig.get()
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    choices = {g: c for g, c in hydra_cfg.runtime.choices.items() if not g.startswith("hydra")}
    out_dir = hydra_cfg.runtime.output_dir
    results = None
    launch = cli.launched_rank()
    if launch is not None:  # a rank torchrun/srun started besides the driver: it serves the driver's stages
        from tripost.cluster.launch import serve

        code = serve(launch)
        if in_sweep:  # a SLURM job of a sweep: the driver (task 0) reports the job
            return None
        sys.exit(code)
    try:
        cli.lock_run_dir(out_dir)  # one live process per run dir
        cfg = resume_config(cfg, overrides=list(hydra_cfg.overrides.task), choices=choices)
        import pytorch_lightning as pl

        from tripost.recipe import run

        pl.seed_everything(cfg.seed, workers=True, verbose=False)
        results = run(cfg)
    except BaseException as error:  # every stop is one line and an exit code (tripost/cli.py)
        if not isinstance(error, Exception) and type(error).__name__ != "SIGTERMException":
            raise  # Ctrl-C, or a plain exit
        code, message = cli.stop_message(error, out_dir, choices)
        if code == 1:
            log.exception("the run failed")  # the traceback, in the run's log file
        print(message, file=sys.stderr)
        print(f"\noutput dir: {out_dir}")
        if in_sweep:  # a failing job never takes its siblings down: recorded, summarised at the end
            cli.record_job_status(out_dir, code, message)
            return None
        sys.exit(code)
    print(f"\noutput dir: {out_dir}")
    if in_sweep:
        cli.record_job_status(out_dir, 0, "done")
    print(results.table())
    last = results.rows[-1] if results.rows else {}
    return last.get("total")  # the value a sweeper would optimise


if __name__ == "__main__":
    cli.refuse_unwritable_resume(sys.argv[1:])
    cli.install_sigterm()
    main()
