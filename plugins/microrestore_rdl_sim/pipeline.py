"""The rDL-SIM inference pipeline: DFCAN SR, parameters, pattern-modulated images, rDL denoiser, Wiener-SIM.

Per raw stack (as the authors' ``predict_rDL_Denoising.py``, with the fixes listed in docs/methods/rdl-sim.md):

1. the frames are min-max normalised over the stack; DFCAN gives the SR estimate, min-max normalised;
2. the illumination parameters are estimated on the noisy frames (once on the mean of a time series, or per
   stack with ``per_stack``; or read from ``--params``);
3. the pattern-modulated images are generated from the SR estimate, the parameters and the OTF;
4. the normalised frames are orientation-equalised and each orientation's phases go through the denoiser
   with its three generated images;
5. each orientation's denoised phases are mapped back to the input's units by a least-squares affine fit onto
   its noisy phases (the noise has zero mean, so the fit recovers the intensity scale and offset);
6. the classical Wiener-SIM engine reconstructs the denoised stack on the 2x grid.

Networks run on whole frames (their attention pools over the whole image, so tiles would not match).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from microrestore.engine.device import resolve_device
from microrestore.errors import InputError
from microrestore.plugins.registry import PredictOptions
from microrestore.sim.params import SIMParams
from microrestore.sim.patterns import equalize_orientations, fine_grid_otf, generate_from_params, minmax
from microrestore_rdl_sim.config import OPTICS_FIELDS, RDLSIMPredictOptions

METHOD = "rdl-sim"


def affine_to(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``a pred + b`` with ``(a, b)`` the least-squares fit of ``pred`` onto ``target`` (float64 sums)."""
    p, t = pred.double().flatten(), target.double().flatten()
    pc = p - p.mean()
    var = float((pc * pc).sum())
    a = float((pc * (t - t.mean())).sum()) / var if var > 0 else 0.0
    b = float(t.mean()) - a * float(p.mean())
    return (pred.double() * a + b).float()


class RDLSIMPredictor:
    """Runs the rDL-SIM pipeline with a DFCAN and an rDL denoiser.

    Parameters
    ----------
    dfcan, denoiser
        The trained networks (eval mode).
    model_config
        The training configuration saved in the model (its optics fill options the user leaves unset).
    options
        Device and the validated :class:`~microrestore_rdl_sim.config.RDLSIMPredictOptions` in ``params``.
    source
        Where the model came from, for messages.

    Attributes
    ----------
    last_params : SIMParams or None
        The parameters used by the last call (of the first stack with ``per_stack``).
    last_params_all : list of SIMParams
        One per stack when ``per_stack`` is set, else the single set.
    """

    def __init__(
        self,
        dfcan: torch.nn.Module,
        denoiser: torch.nn.Module,
        model_config: dict[str, Any],
        options: PredictOptions,
        source: str = "",
    ) -> None:
        self.device = resolve_device(options.device)
        self.dfcan = dfcan.to(self.device).eval()
        self.denoiser = denoiser.to(self.device).eval()
        self.model_config = model_config
        self.options = options
        self.source = source
        values = dict(options.params)
        for name in OPTICS_FIELDS:
            if values.get(name) is None and model_config.get(name) is not None and name != "pixel_size_nm":
                values[name] = model_config[name]
        self.settings = RDLSIMPredictOptions(**values)
        self.model_pixel_size_nm = model_config.get("pixel_size_nm")
        self.last_params: SIMParams | None = None
        self.last_params_all: list[SIMParams] = []

    @classmethod
    def from_model(cls, model: str | Path, options: PredictOptions) -> RDLSIMPredictor:
        """Load an rdl-sim model folder or zoo id."""
        from microrestore.engine.modeldir import load_model
        from microrestore.nn import build_network
        from microrestore.zoo import resolve_model

        bundle = load_model(resolve_model(model), expected_method=METHOD)
        missing = [n for n in ("dfcan", "denoiser") if n not in bundle.network_specs]
        if missing:
            raise InputError(
                f"the rdl-sim model lacks its {' and '.join(missing)} network (train stage=both, or stage=denoiser "
                "after stage=dfcan)",
                bundle.path,
            )
        return cls(
            bundle.build("dfcan", build_network),
            bundle.build("denoiser", build_network),
            bundle.config,
            options,
            str(bundle.path),
        )

    # -- pieces --------------------------------------------------------------------------------------------

    def _pixel_size_nm(self, image: Any) -> float:
        s = self.settings
        if s.pixel_size_nm is None and not (image.pixel_size or {}).get("X") and self.model_pixel_size_nm:
            return float(self.model_pixel_size_nm)
        return s.resolved_pixel_size_nm(image.pixel_size, image.path)

    def _stacks(self, image: Any) -> tuple[torch.Tensor, float]:
        from microrestore_rdl_sim.sim_engine import stacks_from_image

        stacks = stacks_from_image(image, self.settings)
        if stacks.shape[1:3] != (self.settings.n_orientations, 3):
            raise InputError("rDL-SIM needs 3 phases per orientation", image.path)
        n_frames = int(stacks.shape[1] * stacks.shape[2])
        if n_frames != self.dfcan.spec.get("in_channels", n_frames):
            raise InputError(
                f"the model's DFCAN takes {self.dfcan.spec['in_channels']} frames per stack, the options give "
                f"{n_frames}",
                image.path,
            )
        return stacks, self._pixel_size_nm(image)

    def _params(self, stacks: torch.Tensor, pixel_nm: float, path: Any) -> list[SIMParams]:
        from microrestore.sim.reconstruct import resolve_params
        from microrestore_rdl_sim.sim_engine import load_otf_for

        return resolve_params(stacks, self.settings, load_otf_for(self.settings, pixel_nm), pixel_nm, path)

    def denoise_stacks(self, stacks: torch.Tensor, params: list[SIMParams], pixel_nm: float) -> torch.Tensor:
        """Denoise raw stacks ``(n, n_or, n_ph, Y, X)`` (input units) into the same shape and units."""
        from microrestore_rdl_sim.sim_engine import load_otf_for

        n, n_or, n_ph, ny, nx = (int(v) for v in stacks.shape)
        otf_fine = fine_grid_otf(load_otf_for(self.settings, pixel_nm), (ny, nx), pixel_nm, self.device)
        out = torch.empty(stacks.shape, dtype=torch.float32)
        with torch.no_grad():
            for i in range(n):
                raw = stacks[i].to(self.device, torch.float32)
                x = minmax(raw)
                sr = minmax(self.dfcan(x.reshape(1, n_or * n_ph, ny, nx))[0, 0].float())
                generated = generate_from_params(sr, params[min(i, len(params) - 1)], otf_fine)
                x_eq = equalize_orientations(x.reshape(-1, ny, nx), n_ph).reshape(n_or, n_ph, ny, nx)
                den = self.denoiser(generated, x_eq).float()
                for o in range(n_or):
                    out[i, o] = affine_to(den[o], raw[o]).cpu()
                self.options.report(i + 1, n)
        return out

    def denoise(self, image: Any) -> torch.Tensor:
        """The rDL-denoised raw stacks of ``image``: float32 ``(n, n_or, n_ph, Y, X)`` in the input's units."""
        stacks, pixel_nm = self._stacks(image)
        params = self._params(stacks, pixel_nm, image.path)
        self.last_params_all, self.last_params = params, params[0]
        return self.denoise_stacks(stacks, params, pixel_nm)

    # -- Predictor -----------------------------------------------------------------------------------------

    def predict(self, image: Any, out: Any = None) -> np.ndarray:
        """SR images ``(n, 2 Y, 2 X)`` (float32, input units) of the rDL-denoised, Wiener-reconstructed stacks."""
        from microrestore_rdl_sim.sim_engine import estimate, wiener, write_frames

        stacks, pixel_nm = self._stacks(image)
        params = self._params(stacks, pixel_nm, image.path)
        self.last_params_all, self.last_params = params, params[0]
        denoised = self.denoise_stacks(stacks, params, pixel_nm)
        if self.settings.denoised is not None:
            write_frames(self.settings.denoised, denoised, self.settings.order, image)
        if self.settings.reestimate:
            params = [estimate(denoised, self.settings, pixel_nm, quiet=False)]
            self.last_params_all, self.last_params = params, params[0]
        sr = wiener(denoised, params, self.settings, pixel_nm, self.device)
        result = sr.numpy().astype(np.float32, copy=False)
        if out is None:
            return result
        for i in range(result.shape[0]):
            out[i] = result[i]
        return out
