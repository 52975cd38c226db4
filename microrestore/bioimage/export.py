"""Export a microrestore model folder as a BioImage Model Zoo package (bioimage.io spec 0.5).

The package holds the network twice (``pytorch_state_dict`` rebuilt by ``microrestore.nn.unet.UNet``, and
``torchscript``, which runs without microrestore), the pre- and post-processing in spec terms, test tensors made
by microrestore's own prediction, a cover, a README and the citation. ``bioimageio.core.test_model`` runs on
the description before anything is written; a package that fails it is refused and no file appears.

Units of the output
-------------------
A model normalised per image with percentiles (CARE) gets ``scale_range`` preprocessing (``mode per_sample``,
the model's percentiles, the image's y/x and channel axes jointly), which is what microrestore computes. The
way back to the input's units, ``y * (p_high - p_low) + p_low`` with the *input's* percentiles, cannot be
written with spec 0.5's post-processing operators (``scale_range`` with a reference tensor divides by the
input's range, ``scale_mean_variance`` matches mean and standard deviation, neither multiplies back), so the
package's output stays in normalised units: 0 at the input's low percentile, 1 at its high percentile. The
README says so, and the rdf's ``config.microrestore.output_units`` is ``normalized`` so that
:func:`microrestore.bioimage.importer.load_bioimage_predictor` maps it back. Models with a fixed normalisation
(the same affine map for every image) get ``scale_linear`` both ways and their output is in input units.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.errors import InputError, MicrorestoreError

INPUT_ID = "raw"
OUTPUT_ID = "restored"
DEFAULT_LICENSE = "BSD-3-Clause"
DEFAULT_AUTHORS = ("microrestore developers",)
#: Largest edge of the test tensors (they are cropped from the sample).
TEST_EDGE = 256
#: Files of the model folder attached unchanged to the package (see :mod:`microrestore.zoo.package`).
NATIVE_MEMBERS = ("config.yaml", "weights.safetensors")

_log = logging.getLogger(__name__)

_METHODS: dict[str, dict[str, Any]] = {
    "care": {
        "title": "CARE denoising",
        "tags": ["denoising", "restoration", "care", "unet", "fluorescence-light-microscopy", "2d", "pytorch"],
        "cite": [
            {
                "text": "Weigert, M. et al. Content-aware image restoration: pushing the limits of fluorescence "
                "microscopy. Nature Methods 15, 1090-1097 (2018).",
                "doi": "10.1038/s41592-018-0216-7",
            }
        ],
    },
}


def _plain_version(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13.0`` (spec refuses local version suffixes)."""
    return str(version).split("+", 1)[0]


def _architecture_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    if spec.get("name") != "unet":
        raise MicrorestoreError(f"export supports U-Net models only; this model's network is {spec.get('name')!r}")
    return {k: v for k, v in spec.items() if k != "name"}


def _normalization_steps(normalization: dict[str, Any], axes: list[str]) -> tuple[list[Any], list[Any], str]:
    """Spec pre- and post-processing for a microrestore normaliser, and the output's units."""
    from bioimageio.spec.model import v0_5

    from microrestore.engine.normalization import normalizer_from_dict

    normalizer = normalizer_from_dict(normalization)
    kind = normalizer.kind
    axis_ids = [v0_5.AxisId(a) for a in axes]
    if kind == "fixed":
        params = normalizer.params
        shift, divisor = params.shift[0], params.divisor[0]
        pre = [v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=1.0 / divisor, offset=-shift / divisor))]
        post = [v0_5.ScaleLinearDescr(kwargs=v0_5.ScaleLinearKwargs(gain=divisor, offset=shift))]
        return pre, post, "input"
    if not normalizer.per_image:
        raise MicrorestoreError(f"export of a dataset-level {kind!r} normalisation is not supported yet")
    if normalizer.per_channel:
        axis_ids = [a for a in axis_ids if a != "channel"]
    if kind == "percentile":
        kwargs = v0_5.ScaleRangeKwargs(
            axes=axis_ids, min_percentile=normalizer.low, max_percentile=normalizer.high, eps=1e-6
        )
        return [v0_5.ScaleRangeDescr(kwargs=kwargs)], [], "normalized"
    if kind == "meanstd":
        kwargs = v0_5.ZeroMeanUnitVarianceKwargs(axes=axis_ids, eps=1e-6)
        return [v0_5.ZeroMeanUnitVarianceDescr(kwargs=kwargs)], [], "normalized"
    raise MicrorestoreError(f"export of normalisation {kind!r} is not supported")


def _read_sample(sample: Any, ndim: int) -> np.ndarray:
    """The sample as a float32 array with the model's spatial axes only (first plane of any others)."""
    from microrestore.io.images import ImageData, read_image

    if sample is None:
        sample = Path(__file__).resolve().parents[1] / "data" / "demo" / "noisy.tif"
    if isinstance(sample, ImageData):
        image = sample
    elif isinstance(sample, np.ndarray):
        axes = "ZYX"[-sample.ndim :] if sample.ndim <= 3 else None
        if axes is None:
            raise InputError(f"a sample array must have 2 or 3 dimensions, got {sample.ndim}")
        image = ImageData(sample, axes)
    else:
        image = read_image(Path(sample))
    spatial = "ZYX" if ndim == 3 else "YX"
    if any(a not in image.axes for a in spatial):
        raise InputError(f"the sample needs axes {spatial}, it has {image.axes!r}", image.path)
    data = np.asarray(image.data)
    index = tuple(slice(None) if a in spatial else 0 for a in image.axes)
    kept = [a for a in image.axes if a in spatial]
    plane = np.transpose(data[index], [kept.index(a) for a in spatial])
    if not np.isfinite(plane).all():
        raise InputError("the sample contains NaN or infinite values", image.path)
    return np.ascontiguousarray(plane, dtype=np.float32)


def _valid_crop(plane: np.ndarray, minimum: int, step: int, edge: int) -> np.ndarray:
    """Centre crop to the largest size ``minimum + n * step`` that fits (at most ``edge``) on every axis."""
    index = []
    for n in plane.shape:
        limit = min(n, max(edge, minimum))
        if limit < minimum:
            raise InputError(f"the sample ({plane.shape}) is smaller than the model's smallest input ({minimum} px)")
        size = minimum + (limit - minimum) // step * step
        start = (n - size) // 2
        index.append(slice(start, start + size))
    return plane[tuple(index)]


def _cover(path: Path, raw: np.ndarray, restored: np.ndarray) -> Path:
    """Write a 2:1 PNG: input left, output right, each scaled to its own 1-99.8 percentile range."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    def scaled(a: np.ndarray) -> np.ndarray:
        a = a if a.ndim == 2 else a[a.shape[0] // 2]
        lo, hi = np.percentile(a, [1, 99.8])
        return np.clip((a - lo) / (hi - lo or 1.0), 0, 1)

    left, right = scaled(raw), scaled(restored)
    gap = np.ones((left.shape[0], max(2, left.shape[1] // 64)), dtype=np.float32)
    plt.imsave(path, np.concatenate([left, gap, right], axis=1), cmap="magma", vmin=0, vmax=1)
    return path


def _readme(
    path: Path,
    *,
    name: str,
    method: str,
    bundle: Any,
    units: str,
    halo: int,
    multiple: int,
    minimum: int,
    citation: str,
    source: str,
) -> Path:
    norm = bundle.normalization
    if units == "normalized":
        units_text = (
            f"**The output is in normalised units, not in the input's units.** The input is normalised per image "
            f"with its {norm.get('low', 1.0)} and {norm.get('high', 99.8)} percentiles (`scale_range`, "
            "`per_sample`), exactly as microrestore does. microrestore maps the network's output back with the "
            "same percentiles of the input (`output * (p_high - p_low) + p_low`); bioimage.io spec 0.5 has no "
            "post-processing operator that multiplies by another tensor's percentiles, so this package leaves "
            "the output normalised: 0 is the input's low percentile, 1 its high percentile. To get the input's "
            "units, apply that formula with the input image's percentiles; `microrestore denoise --method care "
            "--model this.zip` does it for you."
        )
    else:
        units_text = "The output is in the input's units (a fixed affine normalisation, undone by `scale_linear`)."
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in bundle.metrics.items() if isinstance(v, (int, float)))
    text = f"""# {name}

{method.upper()} model trained and exported with [microrestore](https://github.com/microrestore/microrestore)
(source: `{source}`). Network: U-Net, {bundle.network_specs["net"].get("depth", "?")} pooling levels,
{bundle.network_specs["net"].get("base_filters", "?")} base filters, residual
{bundle.network_specs["net"].get("residual", "?")}.

## Input and output

- Input `{INPUT_ID}`: one-channel image, axes batch, channel, {"z, " if bundle.axes == "ZYX" else ""}y, x; spatial
  sizes `{minimum} + n * {multiple}`.
- Output `{OUTPUT_ID}`: same shape. A border of {halo} px (the network's receptive radius rounded up to
  {multiple}) is declared as halo: tiled prediction with that halo equals whole-image prediction.
- {units_text}

## Training

Trained by microrestore {bundle.provenance.get("microrestore", "?")} with torch {bundle.provenance.get("torch", "?")},
{bundle.provenance.get("steps", "?")} steps, seed {bundle.provenance.get("seed", "?")}.
Configuration: `{bundle.config}`.

# Validation

The test tensors were made by microrestore's own prediction on the sample image and `bioimageio.core.test_model`
passed on both weight formats before this package was written. Validation metrics at the end of training (on
normalised held-out patches): {metrics or "none recorded"}.

These numbers describe the training data only; check the model on your own images with ground truth
(`microrestore evaluate`) before trusting it on different microscopes, samples or noise levels.

## Citation

{citation}
"""
    path.write_text(text, encoding="utf-8")
    return path


def _failure_summary(summary: Any) -> str:
    messages = []
    for detail in getattr(summary, "details", []):
        if getattr(detail, "status", "") != "failed":
            continue
        for error in getattr(detail, "errors", []) or []:
            loc = ".".join(str(part) for part in getattr(error, "loc", ()) or ())
            messages.append(f"{detail.name}: {loc + ': ' if loc else ''}{error.msg}")
        if not getattr(detail, "errors", None):
            messages.append(str(detail.name))
    text = "; ".join(" ".join(m.split()) for m in messages[:5]) or f"status {summary.status}"
    return text[:2000]


def build_description(
    model_dir: str | Path,
    workdir: Path,
    *,
    sample: Any = None,
    name: str | None = None,
    authors: Sequence[str] | None = None,
    license: str | None = None,
) -> Any:
    """Write the package's files into ``workdir`` and return the spec 0.5 ``ModelDescr`` (not tested).

    Parameters are those of :func:`export_model`.
    """
    import torch
    from bioimageio.spec.model import v0_5

    from microrestore.engine.modeldir import load_model, read_model_config
    from microrestore.engine.predictor import NetworkPredictor
    from microrestore.nn import build_network
    from microrestore.plugins.registry import PredictOptions
    from microrestore.zoo import resolve_model

    folder = resolve_model(model_dir)
    bundle = load_model(folder)
    document, _ = read_model_config(folder)
    info = _METHODS.get(bundle.method)
    if info is None:
        raise MicrorestoreError(
            f"export supports methods {', '.join(sorted(_METHODS))}; this model was trained with {bundle.method!r}"
        )
    if len(bundle.network_specs) != 1:
        raise MicrorestoreError(
            f"export supports single-network models; this one has {', '.join(sorted(bundle.network_specs))}"
        )
    net_name = next(iter(bundle.network_specs))
    spec = dict(bundle.network_specs[net_name])
    kwargs = _architecture_kwargs(spec)
    network = bundle.build(net_name, build_network, device="cpu")
    ndim = int(spec.get("ndim", 2))
    in_channels = int(spec.get("in_channels", 1))
    out_channels = int(spec.get("out_channels", 1))
    if in_channels != 1 or out_channels != 1:
        raise MicrorestoreError("export supports one-channel models only")
    multiple = int(network.size_multiple)
    radius = int(network.receptive_radius)
    halo = -(-radius // multiple) * multiple
    minimum = 2 * halo + multiple
    if not getattr(network, "is_local", True):
        raise MicrorestoreError("export needs a local network (no FFT layers): tiles would differ from the whole")

    spatial = ["z", "y", "x"][-ndim:]
    pre, post, units = _normalization_steps(bundle.normalization, ["channel", *spatial])

    # Test tensors. bioimageio's test_model runs the network on the test input as it is (no halo padding, no
    # cropping), so the expected output is microrestore's whole-image inference with no halo: its normaliser
    # (fitted on the test input), the network, and (for input units) the inverse normalisation. Prediction on
    # other images, with the declared halo, matches ``microrestore`` predict (tests/integration/test_bioimage.py).
    from microrestore.engine.normalization import normalizer_from_dict
    from microrestore.engine.tiling import predict_whole

    plane = _valid_crop(_read_sample(sample, ndim), minimum, multiple, TEST_EDGE)
    predictor = NetworkPredictor(network, bundle.normalization, PredictOptions(device="cpu"), ndim=ndim)
    normalizer = normalizer_from_dict(bundle.normalization)
    params = normalizer.fit(plane)
    restored = predict_whole(
        predictor.forward,
        plane[np.newaxis],
        out_channels=1,
        halo=0,
        multiple=multiple,
        device=predictor.device,
        preprocess=lambda block: normalizer.apply(block, params),
        postprocess=None if units == "normalized" else (lambda block: normalizer.invert(block, params)),
    )[0]
    test_in = workdir / "test_input.npy"
    test_out = workdir / "test_output.npy"
    np.save(test_in, plane[np.newaxis, np.newaxis].astype(np.float32))
    np.save(test_out, restored[np.newaxis, np.newaxis].astype(np.float32))
    cover = _cover(workdir / "cover.png", plane, restored)

    # Weights: a plain state dict and TorchScript (which needs no microrestore where it runs).
    network = network.cpu().eval()
    state_path = workdir / "weights.pt"
    torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, state_path)
    script_path = workdir / "weights_torchscript.pt"
    with torch.no_grad(), warnings.catch_warnings():
        # The U-Net's input-size check is Python that tracing records as a constant (it passes for the traced
        # size); the convolutions, pooling and nearest upsampling stay shape-generic, which test_model checks
        # on several sizes.
        warnings.simplefilter("ignore")
        example = torch.rand((1, 1, *([minimum + 2 * multiple] * ndim)))
        scripted = torch.jit.trace(network, example, check_trace=False)
        torch.jit.save(scripted, str(script_path))
    torch_version = v0_5.Version(_plain_version(torch.__version__))

    title = name or f"{info['title']} {folder.name}"
    title = "".join(c if c.isalnum() or c in "_+- ()" else "-" for c in title)[:64].strip()
    if len(title) < 5:
        title = f"microrestore {bundle.method} {title}".strip()
    citation = "\n".join(f"{c['text']} doi:{c['doi']}" for c in info["cite"])
    readme = _readme(
        workdir / "README.md",
        name=title,
        method=bundle.method,
        bundle=bundle,
        units=units,
        halo=halo,
        multiple=multiple,
        minimum=minimum,
        citation=citation,
        source=folder.name,
    )

    channel = v0_5.ChannelAxis(channel_names=[v0_5.Identifier("intensity")])
    input_axes: list[Any] = [v0_5.BatchAxis(), channel]
    output_axes: list[Any] = [v0_5.BatchAxis(), v0_5.ChannelAxis(channel_names=[v0_5.Identifier("intensity")])]
    for axis in spatial:
        input_axes.append(
            v0_5.SpaceInputAxis(id=v0_5.AxisId(axis), size=v0_5.ParameterizedSize(min=minimum, step=multiple))
        )
        output_axes.append(
            v0_5.SpaceOutputAxisWithHalo(
                id=v0_5.AxisId(axis),
                size=v0_5.SizeReference(tensor_id=v0_5.TensorId(INPUT_ID), axis_id=v0_5.AxisId(axis)),
                halo=halo,
            )
        )
    inputs = [
        v0_5.InputTensorDescr(
            id=v0_5.TensorId(INPUT_ID),
            description="raw image (any intensity units; normalised by the preprocessing)",
            axes=input_axes,
            test_tensor=v0_5.FileDescr(source=test_in),
            data=v0_5.IntervalOrRatioDataDescr(type="float32"),
            preprocessing=pre,
            pad=v0_5.ReflectPadding(mode="reflect"),  # explicit: a default-only node is saved as {}
        )
    ]
    outputs = [
        v0_5.OutputTensorDescr(
            id=v0_5.TensorId(OUTPUT_ID),
            description=(
                "restored image in normalised units (0: input's low percentile, 1: its high percentile)"
                if units == "normalized"
                else "restored image in the input's units"
            ),
            axes=output_axes,
            test_tensor=v0_5.FileDescr(source=test_out),
            data=v0_5.IntervalOrRatioDataDescr(type="float32"),
            postprocessing=post,
        )
    ]
    weights = v0_5.WeightsDescr(
        pytorch_state_dict=v0_5.PytorchStateDictWeightsDescr(
            source=state_path,
            pytorch_version=torch_version,
            architecture=v0_5.ArchitectureFromLibraryDescr(
                import_from="microrestore.nn.unet", callable=v0_5.Identifier("UNet"), kwargs=kwargs
            ),
        ),
        torchscript=v0_5.TorchscriptWeightsDescr(
            source=script_path, pytorch_version=torch_version, parent="pytorch_state_dict"
        ),
    )
    licence = license or document.get("license") or DEFAULT_LICENSE
    from microrestore import __version__

    return v0_5.ModelDescr(
        name=title,
        description=(
            f"{info['title']} of fluorescence microscopy images, trained with microrestore; "
            + ("output in normalised units (see README)." if units == "normalized" else "output in input units.")
        ),
        authors=[v0_5.Author(name=a) for a in (authors or DEFAULT_AUTHORS)],
        cite=[v0_5.CiteEntry(text=c["text"], doi=v0_5.Doi(c["doi"])) for c in info["cite"]],
        license=v0_5.LicenseId(licence),
        documentation=v0_5.FileDescr(source=readme),
        covers=[v0_5.FileDescr(source=cover)],
        # microrestore's own model folder, byte for byte: ``microrestore.zoo.package`` loads it natively
        attachments=[v0_5.FileDescr(source=folder / member) for member in NATIVE_MEMBERS],
        tags=list(info["tags"]) if ndim == 2 else [t if t != "2d" else "3d" for t in info["tags"]],
        inputs=inputs,
        outputs=outputs,
        weights=weights,
        version="0.1.0",
        config=v0_5.Config(
            microrestore={
                "method": bundle.method,
                "microrestore_version": __version__,
                "output_units": units,
                "normalization": dict(bundle.normalization),
                "halo": halo,
                "size_multiple": multiple,
            }
        ),
    )


def export_model(
    model_dir: str | Path,
    output_zip: str | Path,
    *,
    sample: Any = None,
    name: str | None = None,
    authors: Sequence[str] | None = None,
    license: str | None = None,
    devices: Sequence[str] | None = ("cpu",),
) -> Path:
    """Export a single-network model folder (CARE) as a bioimage.io package, tested before it is written.

    Parameters
    ----------
    model_dir
        Model folder (or its ``config.yaml``, or a zoo id).
    output_zip
        The package to write (``.zip``); written under a temporary name and renamed when complete.
    sample
        Image for the test tensors and the cover: a path, an :class:`~microrestore.io.images.ImageData` or a 2D
        (3D for 3D models) array; its first plane is used, centre-cropped to at most 256 px. Default: the demo
        image bundled with microrestore.
    name
        Model name (5 to 64 letters, digits, spaces, ``_+-()``); default from the method and folder name.
    authors
        Author names; default ``microrestore developers``.
    license
        SPDX licence id; default the model folder's ``license`` or BSD-3-Clause.
    devices
        Devices ``test_model`` runs on (``None``: bioimageio's choice, CUDA when present).

    Returns
    -------
    pathlib.Path
        The written package.

    Raises
    ------
    MicrorestoreError
        The model cannot be exported (method, network, normalisation) or ``bioimageio.core.test_model``
        failed (its summary is in the message); nothing is written then.
    InputError
        Missing or invalid model folder or sample, or an output path that is not a ``.zip``.
    """
    from microrestore.io.atomic import atomic_path

    try:
        from bioimageio.core import test_model
        from bioimageio.spec import save_bioimageio_package
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MicrorestoreError(
            f"exporting to bioimage.io needs the bioimage extra: pip install 'microrestore[bioimage]' ({exc})"
        ) from None

    output = Path(output_zip).expanduser()
    if output.suffix.lower() != ".zip":
        raise InputError("the package must be a .zip file", output)
    if not output.parent.is_dir():
        raise InputError("the output folder does not exist", output.parent)
    workdir = Path(tempfile.mkdtemp(prefix="microrestore-bioimage-"))
    try:
        started = time.perf_counter()
        descr = build_description(model_dir, workdir, sample=sample, name=name, authors=authors, license=license)
        summary = test_model(descr, devices=list(devices) if devices else None)
        if summary.status != "passed":
            raise MicrorestoreError(f"bioimageio test_model failed, nothing written: {_failure_summary(summary)}")
        with atomic_path(output, keep_name=True) as temp:
            save_bioimageio_package(descr, output_path=temp)
        _log.info("exported %s in %.1f s", output, time.perf_counter() - started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return output
