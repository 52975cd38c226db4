"""Simulated data sets with ground truth, one per restoration task.

Each :class:`SimulationCase` writes TIFF files (through :func:`microrestore.io.write_image`: atomic,
ImageJ-compatible, with axes and pixel sizes) and a ``manifest.json`` holding the case, seed, parameters,
optics, camera and every file written. The same seed gives the same files; field ``i`` draws from the
``i``-th child of ``numpy.random.SeedSequence(seed)``, so it does not depend on ``n``.

The imaging model (:mod:`microrestore.simulation.forward`): a phantom (fluorophore density) is convolved
with the scalar pupil-function PSF (linear convolution, no wrap-around), scaled so that the brightest pixel of
the field receives ``photons`` expected photons, and digitised by
:func:`~microrestore.simulation.noise.apply_camera`. "Clean" images are the noise-free expected counts
(:func:`~microrestore.simulation.noise.expected_counts`), float32 in the same
ADU units as the noisy ones, so metrics against them are exact.

Cases and their files (``XXX`` the field number; every parameter and default is in
``CASES[name].defaults``; all take the optics ``na``, ``wavelength_nm``, ``pixel_size_nm``,
``immersion_index`` and the camera ``photons``, ``offset``, ``read_noise``, ``gain``, ``qe``,
``background``, plus ``phantom`` and ``phantom_params``):

- ``denoise``: ``noisy/field_XXX.tif`` (uint16) and ``clean/field_XXX.tif`` (float32), ``shape`` YX,
  20 photons by default; ``save_object`` adds ``object/`` (the density before the PSF).
- ``defocus``: ``infocus/``, ``infocus_clean/``, and ``defocus/field_XXX_dz+0.40.tif``,
  ``defocus_clean/...`` for each of ``defocus_um`` (default ±0.2 to ±1.0 µm); the defocused images keep the
  in-focus photon budget; ``spherical_waves`` breaks the ±z symmetry.
- ``timelapse``: ``noisy/movie_XXX.tif`` and ``clean/movie_XXX.tif`` (TYX): the phantom drifts
  (``drift_px`` per frame), deforms smoothly (``deform_px``), bleaches (``bleach_per_frame``), and
  ``n_moving`` puncta diffuse (``diffusion_px`` per frame).
- ``zstack``: ``noisy/stack_XXX.tif`` and ``clean/stack_XXX.tif`` (ZYX, ``z_step_nm``), a 3D phantom through
  the 3D pupil PSF truncated at ``psf_z_extent_um`` from focus.
- ``sim``: ``raw/field_XXX.tif`` (uint16, frames on a ``T`` axis, orientation-major), ``raw_clean/``,
  ``gt/`` (the object on the 2x grid, or with ``gt_mode="sim"`` the object through the ideal SIM OTF) and
  ``params/field_XXX.json`` (true wave vectors, angles, phases, modulation). The pattern frequency is
  ``pattern_k_per_um``, else ``2 na_exc / wavelength_exc_nm``, else ``k_fraction`` (0.9) of the detection
  cut-off 2 NA / λ.

Every case also writes ``psf.tif``, the detection PSF on the output grid (3D for ``zstack``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import fft as sfft
from scipy import ndimage

from microrestore.errors import InputError
from microrestore.optics.otf import frequency_radius
from microrestore.optics.psf import Optics, psf_3d
from microrestore.simulation.forward import (  # the forward model lived here first: old imports keep working
    SimRawFrames,
    _normalise_peak,
    convolve_same,
    psf_kernel,
    sim_raw_frames,
)
from microrestore.simulation.noise import CameraModel, apply_camera, expected_counts
from microrestore.simulation.phantoms import _FWHM_TO_SIGMA, PHANTOMS, _splat

__all__ = ["CASES", "SimRawFrames", "SimulationCase", "convolve_same", "psf_kernel", "sim_raw_frames", "simulate"]

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1

_OPTICS_KEYS = ("na", "wavelength_nm", "pixel_size_nm", "immersion_index")
_CAMERA_KEYS = ("photons", "offset", "read_noise", "gain", "qe", "background")
_OPTICS_DEFAULTS: dict[str, Any] = {"na": 1.3, "wavelength_nm": 520.0, "pixel_size_nm": 65.0, "immersion_index": 1.518}
_CAMERA_DEFAULTS: dict[str, Any] = {"offset": 100.0, "read_noise": 1.5, "gain": 1.0, "qe": 1.0, "background": 2.0}


# --------------------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------------------


def _shape(value: Any, ndim: int, name: str = "shape") -> tuple[int, ...]:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = (int(value),) * ndim
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be {ndim} integers, got {value!r}") from None
    if len(out) != ndim or any(v < 16 for v in out[-2:]) or any(v < 1 for v in out):
        raise InputError(f"{name} must be {ndim} integers (at least 16 pixels in Y and X), got {value!r}")
    return out


def _float(params: Mapping[str, Any], key: str) -> float:
    value = params[key]
    if isinstance(value, bool):
        raise InputError(f"{key} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{key} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise InputError(f"{key} must be finite, got {value!r}")
    return out


def _int(params: Mapping[str, Any], key: str) -> int:
    value = params[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"{key} must be an integer, got {value!r}")
    return int(value)


def _floats(value: Any, key: str) -> list[float]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = [value]
    try:
        out = [float(v) for v in value]
    except (TypeError, ValueError):
        raise InputError(f"{key} must be a list of numbers, got {value!r}") from None
    if not all(math.isfinite(v) for v in out):
        raise InputError(f"{key} must hold finite numbers, got {value!r}")
    return out


def _optics(params: Mapping[str, Any], **extra: Any) -> Optics:
    return Optics(**{k: _float(params, k) for k in _OPTICS_KEYS}, **extra)


def _camera(params: Mapping[str, Any]) -> CameraModel:
    return CameraModel(**{k: _float(params, k) for k in _CAMERA_KEYS})


def _phantom(params: Mapping[str, Any]) -> tuple[Callable[..., np.ndarray], dict[str, Any]]:
    name = params["phantom"]
    if name not in PHANTOMS:
        raise InputError(f"unknown phantom {name!r}; choose one of {', '.join(PHANTOMS)}")
    extra = params.get("phantom_params") or {}
    if not isinstance(extra, Mapping):
        raise InputError(f"phantom_params must be a mapping, got {extra!r}")
    return PHANTOMS[name], dict(extra)


def _draw_phantom(params: Mapping[str, Any], shape: tuple[int, ...], rng: np.random.Generator, **kw: Any) -> np.ndarray:
    func, extra = _phantom(params)
    try:
        return func(shape, rng, **kw, **extra)
    except TypeError as exc:
        raise InputError(f"phantom {params['phantom']!r}: {exc}") from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return value.as_posix()
    return value


# --------------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------------


class _Writer:
    """Writes the case's files under ``root`` and remembers their relative paths."""

    def __init__(self, root: Path, optics: Optics) -> None:
        self.root = root
        self.optics = optics

    def image(
        self, rel: str, data: np.ndarray, axes: str, *, pixel_nm: float | None = None, z_nm: float | None = None
    ) -> str:
        from microrestore.io.images import write_image

        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        px = (pixel_nm if pixel_nm is not None else self.optics.pixel_size_nm) / 1000.0
        sizes = {"X": px, "Y": px}
        if "Z" in axes and z_nm is not None:
            sizes["Z"] = z_nm / 1000.0
        write_image(path, np.ascontiguousarray(data), axes, pixel_size=sizes)
        return rel

    def counts(
        self,
        noisy: str,
        clean: str,
        img: NDArray[np.float64],
        camera: CameraModel,
        rng: np.random.Generator,
        axes: str,
        *,
        z_nm: float | None = None,
    ) -> tuple[str, str]:
        """Write one exposure of ``img`` (:func:`apply_camera`) to ``noisy`` and its expected counts to ``clean``."""
        return (
            self.image(noisy, apply_camera(img, camera, rng), axes, z_nm=z_nm),
            self.image(clean, expected_counts(img, camera), axes, z_nm=z_nm),
        )

    def json(self, rel: str, document: Mapping[str, Any]) -> str:
        from microrestore.io.atomic import atomic_write_text

        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(_jsonable(document), indent=1, sort_keys=True) + "\n")
        return rel


# --------------------------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------------------------

Runner = Callable[[_Writer, Sequence[np.random.Generator], dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class SimulationCase:
    """A named simulated data set.

    Attributes
    ----------
    name : str
        Registry key (``denoise``, ``defocus``, ...).
    description : str
        One line for listings.
    defaults : Mapping[str, Any]
        Every accepted parameter with its default value.
    runner : callable
        Writes the files; use :meth:`generate`.
    """

    name: str
    description: str
    defaults: Mapping[str, Any]
    runner: Runner = field(repr=False)

    def resolve(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``params`` over the defaults, rejecting unknown names.

        Parameters
        ----------
        params : Mapping[str, Any]
            User parameters.

        Returns
        -------
        dict
            The effective parameters.

        Raises
        ------
        InputError
            When a parameter is unknown to this case.
        """
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise InputError(
                f"simulation {self.name!r} has no parameter {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(self.defaults))}"
            )
        merged = dict(self.defaults)
        merged.update(params)
        return merged

    def generate(self, out_dir: str | Path, n: int = 8, seed: int = 0, **params: Any) -> dict[str, Any]:
        """Write ``n`` simulated fields (or movies, stacks) and ``manifest.json`` into ``out_dir``.

        Parameters
        ----------
        out_dir : str or Path
            Output folder (created if missing).
        n : int
            Number of fields.
        seed : int
            Random seed; the same seed and parameters give the same files.
        **params
            Overrides of :attr:`defaults`.

        Returns
        -------
        dict
            The manifest (also written to ``out_dir / "manifest.json"``).

        Raises
        ------
        InputError
            On unknown or invalid parameters, or ``n < 1``.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise InputError(f"n must be a positive integer, got {n!r}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise InputError(f"seed must be a non-negative integer, got {seed!r}")
        resolved = self.resolve(params)
        root = Path(out_dir)
        if root.exists() and not root.is_dir():
            raise InputError("output exists and is not a folder", path=root)
        root.mkdir(parents=True, exist_ok=True)
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(int(n))]
        optics = _optics(resolved)
        writer = _Writer(root, optics)
        result = self.runner(writer, rngs, resolved)
        from microrestore import __version__

        manifest = {
            "case": self.name,
            "description": self.description,
            "manifest_version": MANIFEST_VERSION,
            "microrestore_version": __version__,
            "seed": int(seed),
            "n": int(n),
            "params": resolved,
            **result,
        }
        writer.json(MANIFEST, manifest)
        return _jsonable(manifest)


def _result(
    w: _Writer,
    axes: str | dict[str, str],
    optics: Optics,
    camera: CameraModel,
    psf: NDArray[np.float64],
    files: list[dict[str, Any]],
    psf_axes: str = "YX",
    *,
    z_nm: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A runner's part of the manifest: axes (then ``extra``), optics, camera, the PSF written as float32, files."""
    return {
        "axes": axes,
        **extra,
        "optics": asdict(optics),
        "camera": asdict(camera),
        "psf": w.image("psf.tif", psf.astype(np.float32), psf_axes, z_nm=z_nm),
        "files": files,
    }


def _common(photons: float, **extra: Any) -> dict[str, Any]:
    return {**_OPTICS_DEFAULTS, **_CAMERA_DEFAULTS, "photons": photons, **extra}


def _run_denoise(w: _Writer, rngs: Sequence[np.random.Generator], p: dict[str, Any]) -> dict[str, Any]:
    shape = _shape(p["shape"], 2)
    optics, camera = _optics(p), _camera(p)
    psf = psf_kernel(optics)
    files = []
    for i, rng in enumerate(rngs):
        obj = _draw_phantom(p, shape, rng)
        img, scale = _normalise_peak(convolve_same(obj, psf))
        noisy, clean = w.counts(f"noisy/field_{i:03d}.tif", f"clean/field_{i:03d}.tif", img, camera, rng, "YX")
        entry = {"noisy": noisy, "clean": clean, "density_scale": scale}
        if p["save_object"]:
            entry["object"] = w.image(f"object/field_{i:03d}.tif", (obj * scale).astype(np.float32), "YX")
        files.append(entry)
    return _result(w, "YX", optics, camera, psf, files)


def _run_defocus(w: _Writer, rngs: Sequence[np.random.Generator], p: dict[str, Any]) -> dict[str, Any]:
    shape = _shape(p["shape"], 2)
    optics, camera = _optics(p), _camera(p)
    dzs = _floats(p["defocus_um"], "defocus_um")
    if not dzs:
        raise InputError("defocus_um must list at least one defocus distance")
    sph = _float(p, "spherical_waves")
    psf0 = psf_kernel(optics, 0.0, spherical_waves=sph)
    kernels = {dz: psf_kernel(optics, dz, spherical_waves=sph) for dz in dzs}
    files = []
    for i, rng in enumerate(rngs):
        obj = _draw_phantom(p, shape, rng)
        focus, scale = _normalise_peak(convolve_same(obj, psf0))
        name = f"field_{i:03d}.tif"
        infocus, infocus_clean = w.counts(f"infocus/{name}", f"infocus_clean/{name}", focus, camera, rng, "YX")
        entry: dict[str, Any] = {"infocus": infocus, "infocus_clean": infocus_clean, "defocus": []}
        for dz in dzs:
            img = np.maximum(convolve_same(obj, kernels[dz]) * scale, 0.0)  # same photon budget as in focus
            tag = f"field_{i:03d}_dz{dz:+.2f}.tif"
            noisy, clean = w.counts(f"defocus/{tag}", f"defocus_clean/{tag}", img, camera, rng, "YX")
            entry["defocus"].append({"dz_um": dz, "noisy": noisy, "clean": clean})
        files.append(entry)
    return _result(w, "YX", optics, camera, psf0, files)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], corr: float) -> NDArray[np.float64]:
    f = ndimage.gaussian_filter(rng.standard_normal(shape), corr, mode="wrap")
    return f / max(float(np.abs(f).max()), 1e-12)


def _run_timelapse(w: _Writer, rngs: Sequence[np.random.Generator], p: dict[str, Any]) -> dict[str, Any]:
    t_len, ny, nx = _shape(p["shape"], 3)
    optics, camera = _optics(p), _camera(p)
    drift, deform = _float(p, "drift_px"), _float(p, "deform_px")
    n_moving, diffusion = _int(p, "n_moving"), _float(p, "diffusion_px")
    bleach = _float(p, "bleach_per_frame")
    if drift < 0 or deform < 0 or diffusion < 0 or n_moving < 0 or not 0 <= bleach < 1:
        raise InputError("drift_px, deform_px, diffusion_px and n_moving must be >= 0, bleach_per_frame in [0, 1)")
    psf = psf_kernel(optics)
    margin = math.ceil(drift * t_len + deform) + 8
    big = (ny + 2 * margin, nx + 2 * margin)
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    files = []
    for i, rng in enumerate(rngs):
        base = _draw_phantom(p, big, rng).astype(np.float64)
        coeffs = ndimage.spline_filter(base, order=3, mode="constant")
        corr = max(ny, nx) / 6.0
        d1 = [_smooth_field(rng, big, corr)[margin : margin + ny, margin : margin + nx] for _ in range(2)]
        d2 = [_smooth_field(rng, big, corr)[margin : margin + ny, margin : margin + nx] for _ in range(2)]
        angle = rng.uniform(0.0, 2.0 * np.pi)
        v = drift * np.array([np.sin(angle), np.cos(angle)])
        movie = np.empty((t_len, ny, nx))
        for t in range(t_len):
            s = t / max(t_len - 1, 1)
            a1, a2 = np.sin(np.pi * s), (1.0 - np.cos(np.pi * s)) / 2.0
            uy = deform * (a1 * d1[0] + a2 * d2[0]) + v[0] * t
            ux = deform * (a1 * d1[1] + a2 * d2[1]) + v[1] * t
            coords = np.stack([yy + margin - uy, xx + margin - ux])
            movie[t] = ndimage.map_coordinates(coeffs, coords, order=3, mode="constant", prefilter=False)
        np.maximum(movie, 0.0, out=movie)
        if n_moving:
            # Diffusing vesicles: Brownian tracks, independent of the deforming background.
            start = rng.uniform([0.0, 0.0], [ny, nx], size=(n_moving, 2))
            steps = rng.normal(0.0, diffusion, size=(t_len, n_moving, 2))
            steps[0] = 0.0
            tracks = start + np.cumsum(steps, axis=0)
            bright = rng.lognormal(0.0, 0.3, size=n_moving) * 0.8
            pts = np.concatenate([np.column_stack([np.full(n_moving, t), tracks[t]]) for t in range(t_len)])
            sigma = 2.0 * _FWHM_TO_SIGMA
            spots = _splat(pts, np.tile(bright, t_len), (t_len, ny, nx))
            movie += ndimage.gaussian_filter(spots, (0.0, sigma, sigma)) * (2.0 * np.pi * sigma * sigma)
        movie *= np.exp(-bleach * np.arange(t_len))[:, None, None]
        img, scale = _normalise_peak(convolve_same(movie, psf))
        noisy, clean = w.counts(f"noisy/movie_{i:03d}.tif", f"clean/movie_{i:03d}.tif", img, camera, rng, "TYX")
        files.append({"noisy": noisy, "clean": clean, "drift_px_per_frame": v.tolist(), "density_scale": scale})
    return _result(w, "TYX", optics, camera, psf, files)


def _run_zstack(w: _Writer, rngs: Sequence[np.random.Generator], p: dict[str, Any]) -> dict[str, Any]:
    shape = _shape(p["shape"], 3)
    z_step = _float(p, "z_step_nm")
    optics = _optics(p, z_step_nm=z_step)
    camera = _camera(p)
    extent = _float(p, "psf_z_extent_um")
    if extent <= 0:
        raise InputError(f"psf_z_extent_um must be positive, got {extent}")
    aspect = z_step / optics.pixel_size_nm
    kz = math.ceil(extent * 1000.0 / z_step)
    lateral = psf_kernel(optics, extent).shape[0]
    psf = psf_3d(optics, (2 * kz + 1, lateral, lateral), z_step)
    files = []
    for i, rng in enumerate(rngs):
        obj = _draw_phantom(p, shape, rng, voxel_aspect=aspect)
        img, scale = _normalise_peak(convolve_same(obj, psf))
        noisy, clean = w.counts(
            f"noisy/stack_{i:03d}.tif", f"clean/stack_{i:03d}.tif", img, camera, rng, "ZYX", z_nm=z_step
        )
        files.append({"noisy": noisy, "clean": clean, "density_scale": scale})
    return _result(w, "ZYX", optics, camera, psf, files, "ZYX", z_nm=z_step)


def _sim_gt(obj: NDArray[np.float64], optics_fine: Optics, k_max_per_um: float) -> NDArray[np.float64]:
    """Object filtered by the ideal SIM OTF: the incoherent OTF shape with support cut-off + |k|."""
    k = frequency_radius(obj.shape, optics_fine.pixel_size_nm)
    rho = np.minimum(k / (optics_fine.cutoff_per_um + k_max_per_um), 1.0)
    otf = (2.0 / np.pi) * (np.arccos(rho) - rho * np.sqrt(1.0 - rho * rho))
    return np.maximum(sfft.ifft2(sfft.fft2(obj) * otf).real, 0.0)


def _run_sim(w: _Writer, rngs: Sequence[np.random.Generator], p: dict[str, Any]) -> dict[str, Any]:
    ny, nx = _shape(p["shape"], 2)
    optics, camera = _optics(p), _camera(p)
    fine = replace(optics, pixel_size_nm=optics.pixel_size_nm / 2.0)
    n_or, n_ph = _int(p, "n_orientations"), _int(p, "n_phases")
    if n_or < 1 or n_ph < 3:
        raise InputError(f"SIM needs at least 1 orientation and 3 phases, got {n_or} and {n_ph}")
    mod = _float(p, "modulation")
    lam_exc_um = _float(p, "wavelength_exc_nm") / 1000.0
    # Pattern frequency: given directly, or 2 NA_exc / λ_exc, or a fraction of the detection cut-off.
    if p["pattern_k_per_um"] is not None:
        k_um = _float(p, "pattern_k_per_um")
    elif p["na_exc"] is not None:
        k_um = 2.0 * _float(p, "na_exc") / lam_exc_um
    else:
        k_um = _float(p, "k_fraction") * optics.cutoff_per_um
    if k_um <= 0:
        raise InputError(f"the pattern frequency must be positive, got {k_um} per um")
    k_px = k_um * optics.pixel_size_um  # cycles per raw pixel
    if k_px >= 0.5:
        raise InputError(
            f"pattern frequency {k_um:.3g}/um is {k_px:.3g} cycles per raw pixel, beyond the raw Nyquist limit 0.5"
        )
    gt_mode = p["gt_mode"]
    if gt_mode not in ("object", "sim"):
        raise InputError(f"gt_mode must be 'object' or 'sim', got {gt_mode!r}")
    psf = psf_kernel(fine)
    files = []
    for i, rng in enumerate(rngs):
        if p["angles_deg"] is not None:
            angles = np.deg2rad(_floats(p["angles_deg"], "angles_deg"))
            if angles.size != n_or:
                raise InputError(f"angles_deg must list {n_or} angles, got {angles.size}")
        else:
            offset = rng.uniform(0.0, np.pi / n_or)
            angles = offset + np.arange(n_or) * np.pi / n_or
        base_phase = rng.uniform(0.0, 2.0 * np.pi, size=n_or) if p["random_phase"] else np.zeros(n_or)
        phases = (base_phase[:, None] + 2.0 * np.pi * np.arange(n_ph)[None, :] / n_ph) % (2.0 * np.pi)
        kv = k_px * np.column_stack([np.sin(angles), np.cos(angles)])  # (ky, kx)
        obj = _draw_phantom(p, (2 * ny, 2 * nx), rng).astype(np.float64)
        frames = sim_raw_frames(obj, optics, kv, phases, mod, camera, rng, psf_fine=psf)
        assert frames.noisy is not None and frames.clean is not None
        gt = obj if gt_mode == "object" else _sim_gt(obj, fine, k_um)
        params = {
            "convention": "I = 1 + m cos(2 pi (ky y + kx x) + phase); x, y raw pixel indices, "
            "origin at the centre of raw pixel (0, 0); frames orientation-major",
            "angles_rad": angles,
            "angles_deg": np.rad2deg(angles),
            "k_cycles_per_pixel": [{"ky": float(a), "kx": float(b)} for a, b in kv],
            "k_per_um": [{"ky": float(a) / optics.pixel_size_um, "kx": float(b) / optics.pixel_size_um} for a, b in kv],
            "k_magnitude_per_um": k_um,
            "k_magnitude_cycles_per_pixel": k_px,
            "period_nm": 1000.0 / k_um,
            "na_exc_equivalent": k_um * lam_exc_um / 2.0,
            "phases_rad": phases,
            "modulation": [mod] * n_or,
            "n_orientations": n_or,
            "n_phases": n_ph,
            "pixel_size_nm": optics.pixel_size_nm,
            "gt_pixel_size_nm": fine.pixel_size_nm,
            "density_scale": frames.scale,
        }
        files.append(
            {
                "raw": w.image(f"raw/field_{i:03d}.tif", frames.noisy, "TYX"),
                "raw_clean": w.image(f"raw_clean/field_{i:03d}.tif", frames.clean, "TYX"),
                "gt": w.image(f"gt/field_{i:03d}.tif", gt.astype(np.float32), "YX", pixel_nm=fine.pixel_size_nm),
                "params": w.json(f"params/field_{i:03d}.json", params),
            }
        )
    return _result(
        w,
        {"raw": "TYX", "raw_clean": "TYX", "gt": "YX"},
        optics,
        camera,
        psf_kernel(optics),  # the widefield PSF, at the raw pixel size
        files,
        frame_order="orientation-major: frame = orientation * n_phases + phase",
    )


CASES: dict[str, SimulationCase] = {
    case.name: case
    for case in (
        SimulationCase(
            "denoise",
            "noisy/clean pairs of blurred phantoms: uint16 camera counts and float32 expected counts",
            _common(20.0, shape=(256, 256), phantom="filaments", phantom_params={}, save_object=False),
            _run_denoise,
        ),
        SimulationCase(
            "defocus",
            "in-focus and defocused (pupil-function PSF) images of thin specimens, noisy and clean",
            _common(
                200.0,
                shape=(256, 256),
                phantom="filaments",
                phantom_params={},
                defocus_um=(-1.0, -0.8, -0.6, -0.4, -0.2, 0.2, 0.4, 0.6, 0.8, 1.0),
                spherical_waves=0.0,
            ),
            _run_defocus,
        ),
        SimulationCase(
            "timelapse",
            "noisy TYX movies of drifting, deforming, bleaching structures with diffusing puncta, and clean",
            _common(
                15.0,
                shape=(32, 128, 128),
                phantom="mixed",
                phantom_params={},
                drift_px=0.25,
                deform_px=4.0,
                n_moving=15,
                diffusion_px=0.6,
                bleach_per_frame=0.005,
            ),
            _run_timelapse,
        ),
        SimulationCase(
            "zstack",
            "noisy ZYX widefield z-stacks of 3D phantoms through the 3D pupil PSF, and clean",
            _common(
                30.0, shape=(32, 128, 128), phantom="filaments", phantom_params={}, z_step_nm=200.0, psf_z_extent_um=1.6
            ),
            _run_zstack,
        ),
        SimulationCase(
            "sim",
            "raw 2D-SIM frames (3 orientations x 3 phases), noise-free raw, ground truth on the 2x grid",
            {
                **_common(100.0),
                "wavelength_nm": 525.0,
                "pixel_size_nm": 62.6,
                "shape": (128, 128),
                "phantom": "filaments",
                "phantom_params": {},
                "n_orientations": 3,
                "n_phases": 3,
                "modulation": 0.8,
                "k_fraction": 0.9,
                "pattern_k_per_um": None,
                "na_exc": None,
                "wavelength_exc_nm": 488.0,
                "angles_deg": None,
                "random_phase": True,
                "gt_mode": "object",
            },
            _run_sim,
        ),
    )
}
"""The simulation cases by name."""


def simulate(kind: str, out_dir: str | Path, n: int = 8, seed: int = 0, **params: Any) -> dict[str, Any]:
    """Run a simulation case: ``CASES[kind].generate(out_dir, n, seed, **params)``.

    Parameters
    ----------
    kind : str
        ``denoise``, ``defocus``, ``timelapse``, ``zstack`` or ``sim``.
    out_dir : str or Path
        Output folder.
    n : int
        Number of fields (movies, stacks).
    seed : int
        Random seed.
    **params
        Case parameters (see ``CASES[kind].defaults``).

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    InputError
        For an unknown kind or bad parameters.
    """
    if kind not in CASES:
        raise InputError(f"unknown simulation {kind!r}; choose one of {', '.join(CASES)}")
    return CASES[kind].generate(out_dir, n=n, seed=seed, **params)
