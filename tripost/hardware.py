"""Which number format the hardware runs fast: ``precision: auto`` and ``generation_dtype: auto``.

bf16 is only a speed-up where the hardware computes in it natively: CUDA GPUs from Ampere on,
and CPUs with AVX512-BF16 or AMX. On an AVX2-only CPU (many laptops) PyTorch emulates bf16
and training runs about 10x *slower* than fp32, so ``auto`` picks fp32 there.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("tripost")

AUTO = "auto"
# CPU flags (as /proc/cpuinfo spells them) under which bf16 matmuls run natively.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags, from ``cpuinfo`` text (default: /proc/cpuinfo; empty off Linux)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 | arm
            return set(value.split())
    return set()


def cpu_has_fast_bf16(flags: set[str]) -> bool:
    return any(f in flags for f in BF16_CPU_FLAGS)


@lru_cache(maxsize=None)
def fast_bf16(device: str) -> bool:
    """Whether ``device`` ("cpu" or "cuda"/"gpu") computes bf16 natively; checked once per process."""
    if device in ("cuda", "gpu"):
        import torch

        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return cpu_has_fast_bf16(cpu_flags())


def device_of(accelerator: str) -> str:
    """"cuda" or "cpu" for a Lightning accelerator or a torch device name; auto: the GPU when one is visible."""
    import torch

    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cuda" if accelerator in ("gpu", "cuda") else "cpu"


def resolve_precision(precision: str, accelerator: str) -> str:
    """Lightning's ``precision`` for the trainer: ``auto`` is bf16-mixed where bf16 is fast, else 32-true."""
    if str(precision) != AUTO:
        return str(precision)
    return "bf16-mixed" if fast_bf16(device_of(accelerator)) else "32-true"


def resolve_dtype(dtype: str, device: str) -> str:
    """The generation dtype: ``auto`` is bfloat16 where bf16 is fast, else float32."""
    if dtype != AUTO:
        return dtype
    return "bfloat16" if fast_bf16(device_of(device)) else "float32"


def describe(precision: str, accelerator: str, dtype: str, rollout_device: str) -> str:
    """One line for the run's log: the training precision and generation dtype in use, and,
    where either was ``auto``, what the hardware check found."""
    train_dev, gen_dev = device_of(accelerator), device_of(rollout_device)
    line = (f"number format: training {resolve_precision(precision, accelerator)} on {train_dev}, "
            f"generation {resolve_dtype(dtype, rollout_device)} on {gen_dev}")
    auto_devices = {d for d, v in ((train_dev, precision), (gen_dev, dtype)) if str(v) == AUTO}
    found = []
    for dev in sorted(auto_devices):
        if dev == "cpu":
            have = sorted(f for f in BF16_CPU_FLAGS if f in cpu_flags())
            found.append(f"cpu has {', '.join(have)}" if have else "cpu has neither avx512_bf16 nor amx_bf16: bf16 would be slow")
        else:
            found.append("cuda computes bf16" if fast_bf16(dev) else "cuda does not compute bf16 natively")
    return line + (f" (auto: {'; '.join(found)})" if found else "")
