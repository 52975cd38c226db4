"""One rDL-SIM stage's training task: the loss, validation NRMSE, and the plateau schedule with the best weights.

The plateau state and the best weights are checkpointed task state, so a resumed run is the same run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from microrestore.errors import InputError
from microrestore.losses.basic import mse_ssim_loss
from microrestore_rdl_sim.config import RDLSIMConfig


class PlateauBest:
    """Reduce-on-plateau on the validation NRMSE, and a copy of the weights at the best NRMSE so far.

    Parameters
    ----------
    network
        The network whose best weights are kept.
    factor
        Multiplier of the rate after ``patience`` validations without an improvement of ``min_delta``.
    min_factor
        Floor of the rate factor (``min_learning_rate / learning_rate``).
    patience
        Validations to wait.
    min_delta
        Improvement that resets the wait (the authors' 1e-4).
    """

    def __init__(
        self, network: torch.nn.Module, factor: float, min_factor: float, patience: int, min_delta: float = 1e-4
    ) -> None:
        self.network = network
        self.factor_step = factor
        self.min_factor = min(1.0, min_factor)
        self.patience = patience
        self.min_delta = min_delta
        self.lr_factor = 1.0
        self.plateau_best = math.inf
        self.wait = 0
        self.best = math.inf
        self.best_state: dict[str, torch.Tensor] | None = None

    def update(self, metric: float) -> None:
        """Record one validation's NRMSE: keep the weights if best, and lower the rate after a plateau."""
        if metric < self.best:
            self.best = metric
            self.best_state = {k: v.detach().clone() for k, v in self.network.state_dict().items()}
        if metric < self.plateau_best - self.min_delta:
            self.plateau_best, self.wait = metric, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.lr_factor = max(self.min_factor, self.lr_factor * self.factor_step)
            self.wait = 0

    def restore_best(self) -> None:
        """Load the best weights into the network (no-op before the first validation)."""
        if self.best_state is not None:
            self.network.load_state_dict(self.best_state)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Schedule state and best weights for a checkpoint."""
        state = torch.tensor([self.lr_factor, self.plateau_best, float(self.wait), self.best], dtype=torch.float64)
        out = {"plateau": state}
        if self.best_state is not None:
            out.update({f"best/{k}": v for k, v in self.best_state.items()})
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_tensors` saved."""
        if "plateau" not in tensors:
            raise InputError("rdl-sim checkpoint lacks its plateau state")
        factor, plateau_best, wait, best = (float(v) for v in tensors["plateau"].cpu())
        self.lr_factor, self.plateau_best, self.wait, self.best = factor, plateau_best, int(wait), best
        best_state = {k[len("best/") :]: v for k, v in tensors.items() if k.startswith("best/")}
        self.best_state = best_state or None


def image_nrmse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over images ``(..., H, W)`` of the RMSE after min-max normalising each image (the authors' NRMSE)."""
    p = pred.float().flatten(-2)
    t = target.float().flatten(-2)

    def mm(x: torch.Tensor) -> torch.Tensor:
        low, high = x.amin(dim=-1, keepdim=True), x.amax(dim=-1, keepdim=True)
        return (x - low) / (high - low + 1e-7)

    return torch.sqrt(torch.mean((mm(p) - mm(t)) ** 2, dim=-1)).mean()


class RDLStageTask:
    """One rDL-SIM stage for the shared :class:`~microrestore.engine.trainer.Trainer`.

    Parameters
    ----------
    name
        ``dfcan`` or ``denoiser`` (the network's and the optimiser's name).
    network
        The network trained.
    config
        Training configuration.
    forward
        ``forward(network, batch) -> (prediction, target)``.
    """

    def __init__(
        self,
        name: str,
        network: torch.nn.Module,
        config: RDLSIMConfig,
        forward: Callable[[torch.nn.Module, Any], tuple[torch.Tensor, torch.Tensor]],
    ) -> None:
        self.name = name
        self.networks = {name: network}
        self.config = config
        self.forward = forward
        self.plateau = PlateauBest(
            network,
            config.lr_decay_factor,
            config.min_learning_rate / config.learning_rate,
            config.plateau_patience,
        )

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Adam (beta 0.9, 0.999) at ``learning_rate``."""
        return {self.name: torch.optim.Adam(self.networks[self.name].parameters(), lr=self.config.learning_rate)}

    def lr_factor(self, step: int, total: int) -> float:
        """The plateau schedule's current factor."""
        return self.plateau.lr_factor

    def training_step(self, batch: Any, step: int, ctx: Any) -> dict[str, torch.Tensor]:
        """One Adam step on ``MSE + w (1 - SSIM)`` after min-max normalisation."""
        with ctx.autocast():
            prediction, target = self.forward(self.networks[self.name], batch)
        loss = mse_ssim_loss(prediction, target, ssim_weight=self.config.ssim_weight)
        ctx.minimize(loss, self.name)
        return {"loss": loss.detach()}

    def validation_step(self, batch: Any) -> dict[str, float]:
        """NRMSE, PSNR and loss on the validation stacks; updates the schedule and the best weights."""
        prediction, target = self.forward(self.networks[self.name], batch)
        nrmse = float(image_nrmse(prediction, target))
        loss = float(mse_ssim_loss(prediction, target, ssim_weight=self.config.ssim_weight))
        self.plateau.update(nrmse)
        return {
            "val_nrmse": nrmse,
            "val_psnr": -20 * math.log10(max(nrmse, 1e-12)),
            "val_loss": loss,
            "val_best_nrmse": self.plateau.best,
        }

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Plateau state and best weights."""
        return self.plateau.state_tensors()

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore the plateau state and best weights."""
        self.plateau.load_state_tensors(tensors)


def dfcan_forward(network: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """DFCAN on ``(raw (B, 9, p, p), sr (B, 1, 2p, 2p))``."""
    raw, sr = batch
    return network(raw), sr


def denoiser_forward(network: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Denoiser on ``(generated, noisy, high)``, each ``(B, n_or, n_ph, p, p)``: the orientations form the batch."""
    generated, noisy, high = (t.reshape(-1, *t.shape[2:]) for t in batch)
    return network(generated, noisy), high
