"""tripost's one entrypoint.

    python run.py                       # the embedded default: tiny model, scripted expert, CPU
    python run.py task=word_sort        # another task
    python run.py -m seed=1,2,3         # a sweep, one output dir per job
    python run.py resume=outputs/...    # continue a killed run after its last finished stage
    python run.py resume=outputs/... tripost.num_iterations=5   # ... or extend a finished one
    python run.py --cfg job             # print the composed config
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

log = logging.getLogger("tripost")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from tripost.config import ConfigError, resume_config

    try:
        hydra_cfg = HydraConfig.get()
        choices = {g: c for g, c in hydra_cfg.runtime.choices.items() if not g.startswith("hydra")}
        cfg = resume_config(cfg, overrides=list(hydra_cfg.overrides.task), choices=choices)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)

    import pytorch_lightning as pl

    from tripost.data import DataFileError
    from tripost.experts import BudgetExceeded
    from tripost.recipe import run

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    out_dir = cfg.paths.output_dir
    try:
        results = run(cfg)
    except (ConfigError, DataFileError) as e:  # found when a part is built (an API key missing from the
        print(f"error: {e}", file=sys.stderr)  # environment) or a data file yields nothing usable
        sys.exit(2)
    except BudgetExceeded as e:
        print(f"stopped: {e}. Finished stages and the expert's replies are saved; "
              f"resume with: python run.py resume={out_dir} verifier.max_cost_usd=<more>", file=sys.stderr)
        sys.exit(3)
    finally:
        print(f"\noutput dir: {out_dir}")
    print(results.table())
    last = results.rows[-1] if results.rows else {}
    return last.get("total")  # the value a sweeper would optimise


if __name__ == "__main__":
    main()
