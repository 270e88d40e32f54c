"""Lightning's DeepSpeed strategy, allowed on CPU as well as on CUDA GPUs.

Lightning refuses any accelerator but CUDA by explicit checks (the accelerator type, and
device indices that only GPUs have); DeepSpeed itself trains on CPU (ZeRO 0-3, bf16, gloo).
Lifting only those checks lets the same trainer configs run in CI on CPU and on GPUs.
"""

from __future__ import annotations

import os

import torch

from lightning_fabric.utilities.seed import reset_seed
from pytorch_lightning.accelerators import CUDAAccelerator
from pytorch_lightning.strategies import DDPStrategy
from pytorch_lightning.strategies import DeepSpeedStrategy as _LightningDeepSpeedStrategy


class DeepSpeedStrategy(_LightningDeepSpeedStrategy):
    strategy_name = "tripost_deepspeed"

    @property
    def _on_cpu(self) -> bool:
        return not isinstance(self.accelerator, CUDAAccelerator)

    @property
    def root_device(self):
        device = super().root_device
        # DeepSpeed reads the device index as the process's device rank; a CPU has none, so
        # give it the local rank ("cpu:N" is the same memory as "cpu").
        if device.type == "cpu" and device.index is None:
            return torch.device("cpu", self.local_rank)
        return device

    def setup_environment(self) -> None:
        if not self._on_cpu:
            super().setup_environment()
            return
        # DeepSpeed picks its accelerator from this variable; gloo carries the collectives.
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
        DDPStrategy.setup_environment(self)

    def setup_distributed(self) -> None:
        if not self._on_cpu:
            super().setup_distributed()
            return
        reset_seed()
        self.set_world_ranks()
        self._init_deepspeed_distributed()
