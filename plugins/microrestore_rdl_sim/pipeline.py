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
from microrestore.structured_illumination.params import SIMParams
from microrestore.structured_illumination.patterns import (
    equalize_orientations,
    fine_grid_otf,
    generate_from_params,
    minmax,
)
from microrestore_rdl_sim.config import OPTICS_FIELDS, RDLSIMPredictOptions

METHOD = "rdl-sim"
#: The networks ``microrestore export --network NAME`` exports as bioimage.io packages, and their roles.
NETWORK_STAGES = {
    "dfcan": "SR estimate: one raw stack's frames in, the SR image on the 2x grid out",
    "denoiser": "rDL denoiser: one orientation's noisy phases and pattern-modulated images in, denoised phases out",
}


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
    named
        ``False`` when the model is the default one (not named by the user): a zoo model whose pattern period
        fits the data better then replaces it (with a warning).
    model_id
        The zoo id or folder the user gave, for messages.

    Attributes
    ----------
    last_params : SIMParams or None
        The parameters used by the last call (of the first stack with ``per_stack``).
    last_params_all : list of SIMParams
        One per stack when ``per_stack`` is set, else the single set.
    last_wiener : WienerChoice or None
        The Wiener constant of the last call's reconstruction step.
    """

    def __init__(
        self,
        dfcan: torch.nn.Module,
        denoiser: torch.nn.Module,
        model_config: dict[str, Any],
        options: PredictOptions,
        source: str = "",
        *,
        named: bool = True,
        model_id: str | None = None,
    ) -> None:
        self.device = resolve_device(options.device)
        self.dfcan = dfcan.to(self.device).eval()
        self.denoiser = denoiser.to(self.device).eval()
        self.model_config = model_config
        self.options = options
        self.source = source
        self.named = named
        self.model_id = model_id
        values = dict(options.params)
        for name in OPTICS_FIELDS:
            if values.get(name) is None and model_config.get(name) is not None and name != "pixel_size_nm":
                values[name] = model_config[name]
        self.settings = RDLSIMPredictOptions(**values)
        self.model_pixel_size_nm = model_config.get("pixel_size_nm")
        self.last_params: SIMParams | None = None
        self.last_params_all: list[SIMParams] = []
        self.last_wiener: Any = None

    @classmethod
    def from_model(cls, model: str | Path, options: PredictOptions, *, named: bool = True) -> RDLSIMPredictor:
        """Load an rdl-sim model folder or zoo id (``named=False``: the default model, which may be replaced)."""
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
            named=named,
            model_id=str(model),
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

    def match_pattern(self, stacks: torch.Tensor, pixel_nm: float) -> None:
        """Warn when the model's training pattern period differs from the data's (see :mod:`.pattern`).

        Without a model named by the user, a zoo model that fits replaces the default one.
        """
        import warnings

        from microrestore_rdl_sim.pattern import (
            SIMPatternWarning,
            config_k_per_um,
            measure_pattern_k,
            pattern_advice,
            zoo_patterns,
        )

        model_k = config_k_per_um(self.model_config)
        if model_k is None or self.settings.params is not None:
            return
        zoo = zoo_patterns(METHOD)
        own = self.settings.nominal_k_per_um()
        data_k = measure_pattern_k(stacks, self.settings, pixel_nm, [k for k in (own, *zoo.values()) if k])
        if data_k is None:
            return
        advice = pattern_advice(data_k, model_k, self.model_id or self.source, self.named, zoo)
        if advice is None:
            return
        warnings.warn(SIMPatternWarning(advice.message), stacklevel=2)
        if advice.use is not None:
            other = type(self).from_model(advice.use, self.options, named=False)
            self.__dict__.update(other.__dict__)

    def _params(self, stacks: torch.Tensor, pixel_nm: float, path: Any) -> list[SIMParams]:
        from microrestore.structured_illumination.reconstruct import resolve_params
        from microrestore_rdl_sim.sim_engine import load_otf_for

        return resolve_params(stacks, self.settings, load_otf_for(self.settings, pixel_nm), pixel_nm, path)

    def denoise_stacks(self, stacks: torch.Tensor, params: list[SIMParams], pixel_nm: float) -> torch.Tensor:
        """Denoise raw stacks ``(n, n_or, n_ph, Y, X)`` (input units) into the same shape and units."""
        from microrestore_rdl_sim.sim_engine import load_otf_for

        n, n_or, _, ny, nx = (int(v) for v in stacks.shape)
        otf_fine = fine_grid_otf(load_otf_for(self.settings, pixel_nm), (ny, nx), pixel_nm, self.device)
        out = torch.empty(stacks.shape, dtype=torch.float32)
        with torch.no_grad():
            for i in range(n):
                raw = stacks[i].to(self.device, torch.float32)
                x = minmax(raw)
                generated, x_eq = self.denoiser_inputs(x, params[min(i, len(params) - 1)], otf_fine)
                den = self.denoiser(generated, x_eq).float()
                for o in range(n_or):
                    out[i, o] = affine_to(den[o], raw[o]).cpu()
                self.options.report(i + 1, n)
        return out

    def sr_image(self, x: torch.Tensor) -> torch.Tensor:
        """Step 1's network: the DFCAN's output ``(1, 1, s Y, s X)`` for a normalised stack.

        ``x`` is one raw stack ``(n_or, n_ph, Y, X)`` min-max normalised over all its frames (:func:`minmax`);
        its frames go to the DFCAN as channels, orientation-major.
        """
        n_or, n_ph, ny, nx = (int(v) for v in x.shape)
        return self.dfcan(x.reshape(1, n_or * n_ph, ny, nx)).float()

    def sr_estimate(self, x: torch.Tensor) -> torch.Tensor:
        """Step 1: the SR estimate ``(s Y, s X)``, the DFCAN's output min-max normalised (see :meth:`sr_image`)."""
        return minmax(self.sr_image(x)[0, 0])

    def denoiser_inputs(
        self, x: torch.Tensor, params: SIMParams, otf_fine: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps 1 to 3: the denoiser's two inputs for a normalised stack ``x`` ``(n_or, n_ph, Y, X)``.

        Returns the pattern-modulated images generated from the SR estimate (min-max over all frames) and the
        orientation-equalised frames, both ``(n_or, n_ph, Y, X)``: each orientation is one denoiser batch item.
        """
        n_or, n_ph, ny, nx = (int(v) for v in x.shape)
        generated = generate_from_params(self.sr_estimate(x), params, otf_fine)
        x_eq = equalize_orientations(x.reshape(-1, ny, nx), n_ph).reshape(n_or, n_ph, ny, nx)
        return generated, x_eq

    # -- network stages (microrestore export --network) ----------------------------------------------------

    def network_stages(self) -> dict[str, str]:
        """The networks that export as bioimage.io packages, and their roles in the pipeline."""
        return dict(NETWORK_STAGES)

    def stage_network(self, name: str) -> torch.nn.Module:
        """The ``dfcan`` or ``denoiser`` network, as the pipeline runs it."""
        if name not in NETWORK_STAGES:
            raise InputError(f"rdl-sim has no network {name!r}; its networks are {', '.join(NETWORK_STAGES)}")
        return self.dfcan if name == "dfcan" else self.denoiser

    def stage_example(self, name: str, sample: Any, crop: Any) -> Any:
        """Test tensors of one network stage on the first stack of ``sample``, made by this pipeline's code.

        Parameters
        ----------
        name
            ``dfcan`` or ``denoiser``.
        sample
            Raw SIM image (:class:`~microrestore.io.images.ImageData`), or ``None`` for a stack simulated with
            the model's optics (``microrestore simulate sim``) at ``crop.edge`` pixels.
        crop
            :class:`~microrestore.bioimage.stages.TestCrop`: the frames are cropped with it before anything
            runs (the parameters are estimated on the crop), so the tensors are what the pipeline computes on
            that crop.

        Returns
        -------
        microrestore.bioimage.stages.StageExample
        """
        from microrestore.bioimage.stages import StageExample, StageTensor
        from microrestore_rdl_sim.sim_engine import load_otf_for

        network = self.stage_network(name)
        image = sample if sample is not None else self._simulated_sample(int(crop.edge))
        stacks, pixel_nm = self._stacks(image)
        raw = torch.from_numpy(np.ascontiguousarray(crop(stacks[0].numpy()), dtype=np.float32))
        n_or, n_ph, ny, nx = (int(v) for v in raw.shape)
        frames = [f"orientation{o}_phase{p}" for o in range(n_or) for p in range(n_ph)]
        phases = [f"phase{p}" for p in range(n_ph)]
        scale = int(self.dfcan.spec.get("scale", 2))
        text = stage_readme(name, self.settings, self.model_config, pixel_nm, scale)
        with torch.no_grad():
            x = minmax(raw.to(self.device))
            if name == "dfcan":
                # the network's own output: the pipeline's min-max of it (the SR estimate) is a per-sample
                # statistic of an output, which bioimageio.core 0.11 cannot compute in post-processing
                sr = self.sr_image(x).cpu()
                return StageExample(
                    inputs=[
                        StageTensor(
                            "raw",
                            f"one raw SIM stack: its {n_or * n_ph} frames as channels, orientation-major, any units",
                            frames,
                            raw.reshape(1, n_or * n_ph, ny, nx).numpy(),
                            minmax=True,
                        )
                    ],
                    output=StageTensor(
                        "sr",
                        f"the SR image on the {scale}x grid in [0, 1]; min-max normalised, it is the SR estimate",
                        ["sr"],
                        sr.numpy(),
                        scale=scale,
                    ),
                    pipeline=text,
                    cover=(raw.mean(dim=(0, 1)).numpy(), sr[0, 0].numpy()),
                )
            params = self._params(raw[None], pixel_nm, image.path)[0]
            otf_fine = fine_grid_otf(load_otf_for(self.settings, pixel_nm), (ny, nx), pixel_nm, self.device)
            generated, x_eq = self.denoiser_inputs(x, params, otf_fine)
            denoised = network(generated, x_eq).float().cpu()
        return StageExample(
            inputs=[
                StageTensor(
                    "generated",
                    "pattern-modulated images of one orientation's phases, made from the SR estimate (see README)",
                    phases,
                    generated.cpu().numpy(),
                ),
                StageTensor(
                    "noisy",
                    "one orientation's noisy phases, stack min-max normalised and orientation-equalised (see README)",
                    phases,
                    x_eq.cpu().numpy(),
                ),
            ],
            output=StageTensor(
                "denoised",
                "the denoised phases in the normalised units of `noisy` (see README for the way back)",
                phases,
                denoised.numpy(),
            ),
            pipeline=text,
            cover=(x_eq[0, 0].cpu().numpy(), denoised[0, 0].numpy()),
        )

    def _simulated_sample(self, edge: int) -> Any:
        """One raw stack of ``edge`` x ``edge`` pixels simulated with this model's optics, in the options' order."""
        import tempfile

        from microrestore.io import read_image
        from microrestore.simulation import simulate

        s = self.settings
        optics = {
            "na": s.na,
            "wavelength_nm": s.wavelength_nm,
            "pixel_size_nm": s.pixel_size_nm or self.model_pixel_size_nm,
            "immersion_index": s.immersion_index,
            "pattern_k_per_um": s.nominal_k_per_um(),
        }
        with tempfile.TemporaryDirectory(prefix="microrestore-rdl-sample-") as tmp:
            simulate(
                "sim",
                tmp,
                n=1,
                seed=0,
                shape=(edge, edge),
                n_orientations=s.n_orientations,
                n_phases=s.n_phases,
                **{k: v for k, v in optics.items() if v is not None},
            )
            image = read_image(Path(tmp) / "raw" / "field_000.tif")
            data = np.array(image.data, dtype=np.float32)  # orientation-major frames, read before the folder goes
        if s.order == "phase-major":
            data = data.reshape(s.n_orientations, s.n_phases, edge, edge).transpose(1, 0, 2, 3).reshape(data.shape)
        return type(image)(np.ascontiguousarray(data), "TYX", pixel_size=image.pixel_size)

    def _checked_stacks(self, image: Any) -> tuple[torch.Tensor, float]:
        """The raw stacks and pixel size, after :meth:`match_pattern` (which may switch the default model)."""
        stacks, pixel_nm = self._stacks(image)
        self.match_pattern(stacks, pixel_nm)
        return self._stacks(image)

    def denoise(self, image: Any) -> torch.Tensor:
        """The rDL-denoised raw stacks of ``image``: float32 ``(n, n_or, n_ph, Y, X)`` in the input's units."""
        stacks, pixel_nm = self._checked_stacks(image)
        params = self._params(stacks, pixel_nm, image.path)
        self.last_params_all, self.last_params = params, params[0]
        return self.denoise_stacks(stacks, params, pixel_nm)

    def _set_wiener(self, choice: Any) -> None:
        self.last_wiener = choice

    # -- Predictor -----------------------------------------------------------------------------------------

    def predict(self, image: Any, out: Any = None) -> np.ndarray:
        """SR images ``(n, 2 Y, 2 X)`` (float32, input units) of the rDL-denoised, Wiener-reconstructed stacks."""
        from microrestore_rdl_sim.sim_engine import estimate, wiener, write_frames

        stacks, pixel_nm = self._checked_stacks(image)
        params = self._params(stacks, pixel_nm, image.path)
        self.last_params_all, self.last_params = params, params[0]
        denoised = self.denoise_stacks(stacks, params, pixel_nm)
        if self.settings.denoised is not None:
            write_frames(self.settings.denoised, denoised, self.settings.order, image)
        if self.settings.reestimate:
            params = [estimate(denoised, self.settings, pixel_nm, quiet=False)]
            self.last_params_all, self.last_params = params, params[0]
        sr = wiener(denoised, params, self.settings, pixel_nm, self.device, on_wiener=self._set_wiener)
        result = sr.numpy().astype(np.float32, copy=False)
        if out is None:
            return result
        for i in range(result.shape[0]):
            out[i] = result[i]
        return out


def stage_readme(
    name: str, settings: RDLSIMPredictOptions, model_config: dict[str, Any], pixel_nm: float, scale: int
) -> str:
    """README text of an exported network stage: the whole pipeline, step by step, and what feeds this stage.

    Parameters
    ----------
    name
        ``dfcan`` or ``denoiser``: the step marked as this package.
    settings
        The pipeline's options (optics, frame counts).
    model_config
        The model's training configuration.
    pixel_nm
        Raw pixel size of the test tensors, in nanometres.
    scale
        The DFCAN's upsampling factor.
    """
    s = settings
    n_or, n_ph = s.n_orientations, s.n_phases
    n = n_or * n_ph
    here, there = "**(this package)**", "(not in this package)"
    k = s.nominal_k_per_um()
    optics = ", ".join(
        f"{label} {value}"
        for label, value in (
            ("detection NA", s.na),
            ("emission wavelength (nm)", s.wavelength_nm),
            ("excitation NA", s.na_exc),
            ("excitation wavelength (nm)", s.wavelength_exc_nm),
            ("training pixel size (nm)", model_config.get("pixel_size_nm")),
        )
        if value is not None
    )
    return f"""rDL-SIM (Qiao et al. 2023) reconstructs one super-resolved image from each raw 2D-SIM stack of {n_or}
orientations x {n_ph} phases ({n} frames) in six steps. Only steps 1 and 4 are networks, each exported as its own
bioimage.io package (`microrestore export MODEL --network dfcan` / `--network denoiser`); a bioimage.io consumer
must do the other steps, and the denoiser's inputs, themselves. `microrestore` does all of it from this zip, which
carries the whole model folder: `microrestore sim reconstruct raw.tif -o sr.tif --method rdl --model this.zip`.
The model was trained with: {optics or "no optics recorded"}; the test tensors use raw pixels of {pixel_nm:g} nm.

1. **SR estimate: the `dfcan` network** {here if name == "dfcan" else there}. Input: the stack's {n} frames
   as channels, orientation-major (`orientation0_phase0`, `orientation0_phase1`, ...), min-max normalised over
   the whole stack, `x = (raw - min) / (max - min + 1e-7)` (in the `dfcan` package this is its `scale_range`
   pre-processing, so it takes raw frames in any units). Output: the SR image on the {scale}x grid, in [0, 1]
   (sigmoid). The pipeline min-max normalises it, `(sr - min) / (max - min + 1e-7)`, into the SR estimate that
   step 3 uses (the `dfcan` package gives the network's output: bioimageio.core 0.11 cannot compute an
   output's own statistics in post-processing).
2. **Illumination parameters** {there}: each orientation's wave vector, phases and modulation, estimated on the
   noisy frames (microrestore's `wiener-sim` estimator: cross-correlation of the separated bands near the
   nominal frequency 2 NA_exc / wavelength_exc{f" = {k:.4g} cycles/um" if k else ""}).
3. **Pattern-modulated images** {there}: on the {scale}x grid, the (min-max normalised) SR estimate of step 1
   multiplied by each
   frame's illumination pattern `0.5 + 0.5 cos(2 pi k.r + phase)` (step 2's parameters), blurred by the detection
   OTF (its Fourier transform multiplied by the OTF, absolute value of the inverse), binned 2 x 2 back to the raw
   grid, and min-max normalised over all {n} generated frames together. The {n_ph} images of one orientation are
   the denoiser's input `generated`.
4. **rDL denoiser: the `denoiser` network** {here if name == "denoiser" else there}. Inputs, one orientation
   per batch item (a stack is a batch of {n_or}): `generated` (step 3) and `noisy`: the frames of step 1's
   normalised stack `x`, orientation-equalised: every orientation's {n_ph} frames multiplied by
   `mean(x of orientation 0) / mean(x of this orientation)`. Neither can be computed from the tensor alone (both
   depend on the other orientations), so the package does not normalise them: give them exactly so. Output: the
   orientation's denoised phases, in the units of `noisy`.
5. **Back to the input's units** {there}: each orientation's denoised phases `d` become `a d + b`, with `(a, b)`
   the least-squares fit of `d` onto that orientation's raw noisy phases (the noise has zero mean, so the fit
   recovers the intensity scale and offset).
6. **Wiener-SIM** {there}: the classical reconstruction of the denoised stack on the {scale}x grid with step 2's
   parameters (orientation equalisation, border taper, Wiener filter with the detection OTF, apodisation), as
   microrestore's `wiener-sim` method.
"""
