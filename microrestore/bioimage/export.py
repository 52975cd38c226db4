"""Export a microrestore model folder as a BioImage Model Zoo package (bioimage.io spec 0.5).

Any model whose method's loader returns a single-network
:class:`~microrestore.engine.predictor.NetworkPredictor` can be exported: the network it runs, its normalisation
and its way back to the output's units are read from that predictor, so the package computes what
``microrestore`` computes. The package holds the network twice (``pytorch_state_dict`` rebuilt by the network's
class in ``microrestore.nn``, and ``torchscript``, which runs without microrestore), the pre- and
post-processing in spec terms, test tensors made by microrestore's own prediction, a cover, a README and the
citation. ``bioimageio.core.test_model`` runs on the description before anything is written; a package that
fails it is refused and no file appears.

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
(the same affine map for every image, e.g. c²GAN's fixed intensity range) get ``scale_linear`` both ways, plus
``clip`` when the method bounds its output, and their output is in input units.
"""

from __future__ import annotations

import logging
import re
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
#: Smallest tile edge declared for non-local networks (instance norm, attention, Fourier layers): their output
#: depends on statistics of the whole input, which small tiles would change; 256 px keeps tiles close to the
#: whole-image result.
NONLOCAL_MIN_EDGE = 256
#: Files of the model folder attached unchanged to the package (see :mod:`microrestore.zoo.package`).
NATIVE_MEMBERS = ("config.yaml", "weights.safetensors")

_log = logging.getLogger(__name__)

_DOI = re.compile(r"\s*doi:\s*(10\.\S+?)\.?\s*$", re.IGNORECASE)
_TASK_TAGS = {"denoise": "denoising", "deblur": "deconvolution", "sim": "super-resolution", "restore": "restoration"}


def _citations(citation: str) -> list[dict[str, str]]:
    """``[{"text", "doi"}]`` from a method's citation (entries separated by blank lines, each ending ``doi:...``)."""
    entries = []
    for chunk in re.split(r"\n\s*\n", citation.strip()):
        text = " ".join(chunk.split())
        match = _DOI.search(text)
        if text and match:
            entries.append({"text": text[: match.start()].strip(), "doi": match.group(1)})
    return entries


def _tags(method: Any, network: str, ndim: int) -> list[str]:
    tags = [_TASK_TAGS.get(method.task, "restoration"), "restoration", method.name, network.replace("_", "-")]
    tags += ["fluorescence-light-microscopy", f"{ndim}d", "pytorch", "microrestore"]
    return list(dict.fromkeys(tags))


def _plain_version(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13.0`` (spec refuses local version suffixes)."""
    return str(version).split("+", 1)[0]


def _architecture(spec: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """``(module, class name, kwargs)`` that rebuild the network from the installed microrestore package."""
    from microrestore.nn import NETWORKS

    cls = NETWORKS.get(str(spec.get("name")))
    if cls is None:
        raise MicrorestoreError(f"network {spec.get('name')!r} is not registered in microrestore.nn")
    kwargs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.items() if k != "name"}
    return cls.__module__, cls.__name__, kwargs


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
    network: str,
    local: bool,
    units: str,
    normalization: dict[str, Any],
    halo: int,
    multiple: int,
    minimum: int,
    citation: str,
    source: str,
) -> Path:
    if units == "normalized":
        units_text = (
            f"**The output is in normalised units, not in the input's units.** The input is normalised per image "
            f"with its {normalization.get('low', 1.0)} and {normalization.get('high', 99.8)} percentiles "
            "(`scale_range`, `per_sample`), exactly as microrestore does. microrestore maps the network's output "
            "back with the same percentiles of the input (`output * (p_high - p_low) + p_low`); bioimage.io spec "
            "0.5 has no post-processing operator that multiplies by another tensor's percentiles, so this package "
            "leaves the output normalised: 0 is the input's low percentile, 1 its high percentile. To get the "
            f"input's units, apply that formula with the input image's percentiles; `microrestore restore --method "
            f"{method} --model this.zip` does it for you."
        )
    else:
        units_text = (
            "The output is in the input's units: a fixed affine normalisation (`scale_linear`), undone after the "
            "network, so intensities keep their meaning (no per-image stretching)."
        )
    if local:
        tiling_text = (
            f"A border of {halo} px (the network's receptive radius rounded up to {multiple}) is declared as halo: "
            "tiled prediction with that halo equals whole-image prediction."
        )
    else:
        tiling_text = (
            f"The network is not local (instance normalisation, attention or Fourier layers use statistics of the "
            f"whole input), so tiles see slightly different statistics than the whole image. The declared halo "
            f"({halo} px) covers the convolutions' reach and the smallest input is {minimum} px, so that tiles keep "
            "statistics close to the whole image's; prefer tiles as large as memory allows. microrestore blends "
            "overlapping tiles for the same reason."
        )
    metrics = ", ".join(f"{k} {v:.4g}" for k, v in bundle.metrics.items() if isinstance(v, (int, float)))
    text = f"""# {name}

{method} model trained and exported with [microrestore](https://github.com/microrestore/microrestore)
(source: `{source}`). Network: {network}.

## Input and output

- Input `{INPUT_ID}`: one-channel image, axes batch, channel, {"z, " if bundle.axes == "ZYX" else ""}y, x; spatial
  sizes `{minimum} + n * {multiple}`.
- Output `{OUTPUT_ID}`: same shape. {tiling_text}
- {units_text}

## Training

Trained by microrestore {bundle.provenance.get("microrestore", "?")} with torch {bundle.provenance.get("torch", "?")},
{bundle.provenance.get("steps", "?")} steps, seed {bundle.provenance.get("seed", "?")}.
Configuration: `{bundle.config}`.

# Validation

The test tensors were made by microrestore's own prediction on the sample image and `bioimageio.core.test_model`
passed on both weight formats before this package was written. Validation metrics at the end of training:
{metrics or "none recorded"}.

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
    params: dict[str, Any] | None = None,
) -> Any:
    """Write the package's files into ``workdir`` and return the spec 0.5 ``ModelDescr`` (not tested).

    Parameters are those of :func:`export_model`.
    """
    import torch
    from bioimageio.spec.model import v0_5

    from microrestore.engine.modeldir import load_model, read_model_config
    from microrestore.engine.predictor import NetworkPredictor
    from microrestore.engine.tiling import predict_whole
    from microrestore.plugins.manager import get_registry
    from microrestore.plugins.registry import PredictOptions
    from microrestore.zoo import resolve_model

    folder = resolve_model(model_dir)
    bundle = load_model(folder)
    document, _ = read_model_config(folder)
    method = get_registry().methods.get(bundle.method)
    if method is None:
        raise MicrorestoreError(f"this model was trained with {bundle.method!r}, which no installed plugin provides")
    options = PredictOptions(device="cpu", params=dict(params or {}))
    if method.predict_schema is not None:
        from microrestore.api import validate_params

        options.params = validate_params(method, options.params)
    # The method's own loader decides which network runs and how intensities are mapped: whatever it returns
    # as a single-network predictor is exactly what the package must reproduce.
    predictor = method.load(str(folder), options)
    if not isinstance(predictor, NetworkPredictor):
        raise MicrorestoreError(
            f"{bundle.method} inference is not a single network ({type(predictor).__name__}); "
            f"networks in this model: {', '.join(sorted(bundle.network_specs))}"
        )
    if predictor.output_transform is not None:
        raise MicrorestoreError(f"{bundle.method} maps its output with Python code that bioimage.io cannot express")
    network = predictor.network.to(memory_format=torch.contiguous_format).cpu().eval()
    spec = dict(getattr(network, "spec", {}))
    module_name, class_name, kwargs = _architecture(spec)
    net_name = next((k for k, v in bundle.network_specs.items() if dict(v) == spec), spec["name"])
    ndim = predictor.ndim
    if predictor.in_channels != 1 or predictor.out_channels != 1:
        raise MicrorestoreError("export supports one-channel networks only")
    multiple, halo = predictor.multiple, predictor.halo
    minimum = 2 * halo + multiple
    if not predictor.is_local:
        minimum += max(0, -(-(NONLOCAL_MIN_EDGE - minimum) // multiple) * multiple)

    spatial = ["z", "y", "x"][-ndim:]
    normalization = predictor.normalizer.to_dict()
    pre, post, units = _normalization_steps(normalization, ["channel", *spatial])
    if predictor.output_normalizer is not None:
        if units != "input":
            raise MicrorestoreError("an output scale of its own needs a fixed input normalisation")
        post = _normalization_steps(predictor.output_normalizer.to_dict(), ["channel", *spatial])[1]
    if predictor.output_range is not None and units == "input":
        low, high = predictor.output_range
        post = [*post, v0_5.ClipDescr(kwargs=v0_5.ClipKwargs(min=low, max=high))]

    # Test tensors. bioimageio's test_model runs the network on the test input as it is (no halo padding, no
    # cropping), so the expected output is microrestore's whole-image inference with no halo: the predictor's
    # normaliser (fitted on the test input), the network, and (for input units) its way back to the output's
    # units. Prediction on other images, with the declared halo, matches microrestore's (tested).
    plane = _valid_crop(_read_sample(sample, ndim), minimum, multiple, TEST_EDGE)
    fitted = predictor.normalizer.fit(plane)
    restored = predict_whole(
        predictor.forward,
        plane[np.newaxis],
        out_channels=1,
        halo=0,
        multiple=multiple,
        device=predictor.device,
        preprocess=lambda block: predictor.normalizer.apply(block, fitted),
        postprocess=None if units == "normalized" else (lambda block: predictor.to_output_units(block, fitted)),
    )[0]
    test_in = workdir / "test_input.npy"
    test_out = workdir / "test_output.npy"
    np.save(test_in, plane[np.newaxis, np.newaxis].astype(np.float32))
    np.save(test_out, restored[np.newaxis, np.newaxis].astype(np.float32))
    cover = _cover(workdir / "cover.png", plane, restored)

    # Weights: a plain state dict and TorchScript (which needs no microrestore where it runs).
    network = predictor.network.to(memory_format=torch.contiguous_format).cpu().eval()
    state_path = workdir / "weights.pt"
    torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, state_path)
    script_path = workdir / "weights_torchscript.pt"
    with torch.no_grad(), warnings.catch_warnings():
        # Input-size checks are Python that tracing records as a constant (they pass for the traced size); the
        # convolutions, pooling and upsampling stay shape-generic, which test_model checks on several sizes.
        warnings.simplefilter("ignore")
        example = torch.rand((1, 1, *([minimum + 2 * multiple] * ndim)))
        scripted = torch.jit.trace(network, example, check_trace=False)
        torch.jit.save(scripted, str(script_path))
    torch_version = v0_5.Version(_plain_version(torch.__version__))

    title = name or f"microrestore {bundle.method} {folder.name}"
    title = "".join(c if c.isalnum() or c in "_+- ()" else "-" for c in title)[:64].strip()
    if len(title) < 5:
        title = f"microrestore {bundle.method} {title}".strip()
    cite = _citations(method.citation or "")
    if not cite:
        raise MicrorestoreError(f"method {bundle.method!r} registers no citation with a DOI; bioimage.io needs one")
    citation = "\n".join(f"{c['text']} doi:{c['doi']}" for c in cite)
    readme = _readme(
        workdir / "README.md",
        name=title,
        method=bundle.method,
        bundle=bundle,
        network=f"`{class_name}` ({module_name}), {sum(p.numel() for p in network.parameters()):,} parameters, "
        f"options `{kwargs}`",
        local=bool(predictor.is_local),
        units=units,
        normalization=normalization,
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
                import_from=module_name, callable=v0_5.Identifier(class_name), kwargs=kwargs
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
            f"{method.summary}; trained with microrestore; "
            + ("output in normalised units (see README)." if units == "normalized" else "output in input units.")
        ),
        authors=[v0_5.Author(name=a) for a in (authors or DEFAULT_AUTHORS)],
        cite=[v0_5.CiteEntry(text=c["text"], doi=v0_5.Doi(c["doi"])) for c in cite],
        license=v0_5.LicenseId(licence),
        documentation=v0_5.FileDescr(source=readme),
        covers=[v0_5.FileDescr(source=cover)],
        # microrestore's own model folder, byte for byte: ``microrestore.zoo.package`` loads it natively
        attachments=[v0_5.FileDescr(source=folder / member) for member in NATIVE_MEMBERS],
        tags=_tags(method, str(spec["name"]), ndim),
        inputs=inputs,
        outputs=outputs,
        weights=weights,
        version="0.1.0",
        config=v0_5.Config(
            microrestore={
                "method": bundle.method,
                "network": net_name,
                "predict_options": dict(options.params),
                "microrestore_version": __version__,
                "output_units": units,
                "normalization": normalization,
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
    params: dict[str, Any] | None = None,
) -> Path:
    """Export a model whose inference is one network as a bioimage.io package, tested before it is written.

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
    params
        The method's prediction options (as ``--set``), e.g. ``{"direction": "BtoA"}`` for a c2GAN model.

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
        descr = build_description(
            model_dir, workdir, sample=sample, name=name, authors=authors, license=license, params=params
        )
        summary = test_model(descr, devices=list(devices) if devices else None)
        if summary.status != "passed":
            raise MicrorestoreError(f"bioimageio test_model failed, nothing written: {_failure_summary(summary)}")
        with atomic_path(output, keep_name=True) as temp:
            save_bioimageio_package(descr, output_path=temp)
        _log.info("exported %s in %.1f s", output, time.perf_counter() - started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return output
