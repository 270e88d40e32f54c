"""What the command line does around a run: one line and an exit code for every way a run can
stop, SIGTERM turned into a clean stop, one live process per run dir, and in a sweep, a failing
job recorded (``job_status.json``) instead of taking its siblings down.

Exit codes: 0 done; 2 a bad config, data file or path (nothing ran, or nothing more can); 3 the
expert's budget is spent; 4 the expert is unreachable; 143 stopped by SIGTERM; 1 anything else.
Every stop but 2 keeps every finished stage and prints the command that resumes the run.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any


class Terminated(Exception):
    """The process got SIGTERM (e.g. a scheduler's time limit): stop now, resumably."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated(signal.Signals(signum).name)


def install_sigterm() -> None:
    """SIGTERM raises Terminated wherever the run is (Lightning's own handler, which would end
    the fit early and exit 0, calls this one too)."""
    signal.signal(signal.SIGTERM, _raise_terminated)


class RunDirInUse(Exception):
    """Another live process holds the run dir."""


_LOCKS: list = []  # open lock files, held for the life of the process


def lock_run_dir(run_dir: str | Path) -> None:
    """Hold ``run_dir/.lock``; RunDirInUse naming the dir when another live process holds it."""
    path = Path(run_dir) / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise RunDirInUse(f"run dir {run_dir} is in use by another live run (pid {holder})") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    _LOCKS.append(handle)


def launched_rank():
    """This process's ``Launch`` when torchrun/srun started it as a rank other than 0, else None."""
    from tripost.cluster.launch import Launch

    launch = Launch.from_env()
    return launch if launch is not None and not launch.is_driver else None


def resume_command(out_dir: str, choices: dict[str, Any], *extra: str) -> str:
    """The command that resumes the run in ``out_dir``: the run's own verifier group (as the run
    first chose it, run_choices.yaml) when a key of it is set (e.g. ``verifier=openai
    verifier.max_cost_usd=...``), so Hydra composes it as printed."""
    saved = Path(out_dir) / "run_choices.yaml"
    if saved.is_file():
        from omegaconf import OmegaConf

        choices = {**choices, **OmegaConf.to_container(OmegaConf.load(saved))}
    groups = [f"verifier={choices['verifier']}"] if any(e.startswith("verifier.") for e in extra) else []
    return " ".join(["python run.py", f"resume={out_dir}", *groups, *extra])


def stop_message(error: BaseException, out_dir: str, choices: dict[str, Any]) -> tuple[int, str]:
    """Exit code and the one line to print for a run that stopped on ``error``."""
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    from tripost.config import ConfigError
    from tripost.data import DataFileError
    from tripost.experts import BudgetExceeded, ExpertUnreachable

    if isinstance(error, (ConfigError, DataFileError, RunDirInUse, PermissionError)):
        return 2, f"error: {error}"
    if isinstance(error, BudgetExceeded):
        return 3, (f"stopped: {error}. Finished stages and the expert's replies are saved; resume with: "
                   f"{resume_command(out_dir, choices, 'verifier.max_cost_usd=<more>')}")
    if isinstance(error, ExpertUnreachable):
        return 4, (f"error: {error}. Finished stages and the expert's replies are saved; resume with: "
                   f"{resume_command(out_dir, choices)}")
    if isinstance(error, (Terminated, SIGTERMException)):
        return 143, f"stopped by SIGTERM. Finished stages are saved; resume with: {resume_command(out_dir, choices)}"
    where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    at = f" (at {Path(where.filename).name}:{where.lineno})" if where else ""
    return 1, (f"failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}{at}. "
               f"Finished stages are saved; resume with: {resume_command(out_dir, choices)}")


def record_job_status(out_dir: str, code: int, message: str) -> None:
    """A sweep job's outcome, for the sweep's summary (tripost/sweep.py)."""
    path = Path(out_dir) / "job_status.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"exit_code": code, "message": message}) + "\n")


def refuse_unwritable_resume(argv: list[str]) -> None:
    """``resume=<dir>`` of a dir this process cannot write: one line, before Hydra tries to log there."""
    for arg in argv:
        if arg.startswith("resume=") and arg != "resume=null":
            run_dir = Path(arg.split("=", 1)[1])
            try:
                writable = not run_dir.exists() or os.access(run_dir, os.W_OK)
            except OSError:  # not even readable
                writable = False
            if not writable:
                print(f"error: config key 'resume': {run_dir} is not writable; copy the run dir elsewhere and "
                      "resume the copy", file=sys.stderr)
                sys.exit(2)
