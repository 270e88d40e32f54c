"""precision: auto and generation_dtype: auto follow what the hardware computes fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tripost import hardware

from .conftest import ROOT

AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma f16c bmi2\n"
AVX512_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
SAPPHIRE_RAPIDS = "flags\t\t: avx2 avx512f amx_bf16 amx_tile amx_int8\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes crc32\n"


def test_cpu_flags_decide_bf16():
    assert not hardware.cpu_has_fast_bf16(hardware.cpu_flags(AVX2_ONLY))
    assert hardware.cpu_has_fast_bf16(hardware.cpu_flags(AVX512_BF16))
    assert hardware.cpu_has_fast_bf16(hardware.cpu_flags(SAPPHIRE_RAPIDS))
    assert not hardware.cpu_has_fast_bf16(hardware.cpu_flags(ARM))
    assert hardware.cpu_flags("") == set()


def test_auto_resolves_by_the_hardware_and_explicit_values_stay(monkeypatch):
    machines = [(hardware.cpu_flags(AVX2_ONLY), "32-true", "float32"),
                (hardware.cpu_flags(AVX512_BF16), "bf16-mixed", "bfloat16")]
    for parsed, precision, dtype in machines:
        monkeypatch.setattr(hardware, "cpu_flags", lambda cpuinfo=None, parsed=parsed: parsed)
        hardware.fast_bf16.cache_clear()
        assert hardware.resolve_precision("auto", "cpu") == precision
        assert hardware.resolve_dtype("auto", "cpu") == dtype
        assert hardware.resolve_precision("32-true", "cpu") == "32-true"
        assert hardware.resolve_dtype("bfloat16", "cpu") == "bfloat16"
    hardware.fast_bf16.cache_clear()


# The real CLI, with the CPU's flags read from the given /proc/cpuinfo text instead of this machine's.
CLI_ON_CPU = """
import runpy, sys
from tripost import hardware
flags = hardware.cpu_flags(sys.argv.pop(1))
hardware.cpu_flags = lambda cpuinfo=None: flags
sys.argv[0] = {run_py!r}
runpy.run_path({run_py!r}, run_name="__main__")
"""


def run_on_cpu(cpuinfo: str, tmp_path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    code = CLI_ON_CPU.format(run_py=str(ROOT / "run.py"))
    proc = subprocess.run([sys.executable, "-c", code, cpuinfo, "debug=fast", "tripost.num_iterations=0",
                           f"hydra.run.dir={tmp_path}", *overrides],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_default_run_on_an_avx2_only_cpu_trains_and_generates_in_fp32(tmp_path):
    proc = run_on_cpu(AVX2_ONLY, tmp_path)
    log = proc.stdout + proc.stderr
    assert "number format: training 32-true on cpu, generation float32 on cpu" in log
    assert "neither avx512_bf16 nor amx_bf16" in log
    for stage in ("ft_rationale", "ft_si_demo"):
        assert json.loads((tmp_path / stage / "train_stats.json").read_text())["precision"] == "32-true"


def test_default_run_on_a_bf16_cpu_trains_in_bf16_and_explicit_settings_win(tmp_path):
    proc = run_on_cpu(AVX512_BF16, tmp_path / "auto")
    assert "number format: training bf16-mixed on cpu, generation bfloat16 on cpu (auto: cpu has avx512_bf16)" in (
        proc.stdout + proc.stderr)
    assert json.loads((tmp_path / "auto" / "ft_rationale" / "train_stats.json").read_text())["precision"] == "bf16-mixed"
    proc = run_on_cpu(AVX512_BF16, tmp_path / "fp32", "trainer.precision=32-true", "model.generation_dtype=float32")
    log = proc.stdout + proc.stderr
    assert "number format: training 32-true on cpu, generation float32 on cpu" in log and "(auto:" not in log
    assert json.loads((tmp_path / "fp32" / "ft_rationale" / "train_stats.json").read_text())["precision"] == "32-true"
