"""CARE's training step: one U-Net, Adam, MAE or MSE on pairs normalised with their input's parameters."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
import torch.nn.functional as F

from microrestore.plugin_api import SingleNetworkTask
from microrestore_care.config import CareConfig


class CareTask(SingleNetworkTask):
    """The CARE training step: MAE or MSE between the U-Net's prediction and the target."""

    def __init__(self, network: torch.nn.Module, config: CareConfig) -> None:
        super().__init__(network, config)
        self.loss_fn = F.l1_loss if config.loss == "mae" else F.mse_loss

    def losses(self, batch: Any, autocast: contextlib.AbstractContextManager[Any]) -> dict[str, torch.Tensor]:
        """The loss of a batch of (input, target) patches."""
        source, target = batch
        with autocast:
            prediction = self.networks["net"](source)
        return {"loss": self.loss_fn(prediction.float(), target)}

    def validation_step(self, batch: Any) -> dict[str, float]:
        """Validation loss and PSNR on normalised patches (data range of the target)."""
        source, target = batch
        prediction = self.networks["net"](source).float()
        mse = float(F.mse_loss(prediction, target))
        span = float(target.max() - target.min()) or 1.0
        return {
            "val_loss": float(self.loss_fn(prediction, target)),
            "val_psnr": 10 * math.log10(span**2 / max(mse, 1e-12)),
        }
