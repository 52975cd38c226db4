"""Export a microrestore model folder as a BioImage Model Zoo package (bioimage.io spec 0.5).

Any model whose method's loader returns a single-network
:class:`~microrestore.engine.predictor.NetworkPredictor` can be exported: the network it runs, its normalisation
and its way back to the output's units are read from that predictor, so the package computes what
``microrestore`` computes. The package holds the network twice (``pytorch_state_dict`` rebuilt by the network's
class in ``microrestore.nn``, and ``torchscript``, which runs without microrestore), the pre- and
post-processing in spec terms, test tensors made by microrestore's own prediction, a cover, a README and the
citation. ``bioimageio.core.test_model`` runs on the description before anything is written; a package that
fails it is refused and no file appears.

Pipelines: network stages
-------------------------
A method whose inference is several steps (rDL-SIM: DFCAN SR estimate, illumination parameters,
pattern-modulated images, rDL denoiser, Wiener-SIM) is exported one network at a time (``network=``): its
predictor provides the stage protocol of :mod:`microrestore.bioimage.stages` (the network, its inputs and
output as the pipeline makes them on a sample, and README text on the rest of the pipeline). The package then
has one input tensor per network input (the first one's sizes are parameterised, the others refer to it), an
output whose pixels may be finer than the inputs' (``scale``), the pipeline's min-max normalisation as
``scale_range`` pre-processing where it depends on the input tensor alone, no post-processing, no halo (the
pipelines run their networks on whole frames), and a README that says it is one stage and what a consumer
must do around it.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.bioimage.stages import StageExample, StageTensor, TestCrop, valid_crop
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
#: ``eps`` of the pipelines' min-max normalisation, ``(x - min) / (max - min + eps)``.
MINMAX_EPS = 1e-7

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
    if kind == "noise":
        raise MicrorestoreError(
            "export of the camera-independent 'noise' normalisation is not supported: bioimage.io's pre-processing "
            "cannot fit a noise model on each image; the model runs in microrestore (folder or zoo id)"
        )
    raise MicrorestoreError(f"export of normalisation {kind!r} is not supported")


def _read_sample(sample: Any, ndim: int) -> np.ndarray:
    """The sample as a float32 array with the model's spatial axes only (first plane of any others)."""
    from microrestore.io.images import ImageData

    if sample is None:
        sample = Path(__file__).resolve().parents[1] / "data" / "demo" / "noisy.tif"
    image: ImageData = _sample_image(sample)
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


def _sample_image(sample: Any) -> Any:
    """The sample as :class:`~microrestore.io.images.ImageData` (``None`` stays ``None``).

    A path is read with its metadata; a 2D array is ``YX``, a 3D array ``ZYX``.
    """
    from microrestore.io.images import ImageData, read_image

    if sample is None or isinstance(sample, ImageData):
        return sample
    if isinstance(sample, np.ndarray):
        if sample.ndim not in (2, 3):
            raise InputError(f"a sample array must have 2 or 3 dimensions, got {sample.ndim}")
        return ImageData(sample, "ZYX"[-sample.ndim :])
    return read_image(Path(sample))


def _cover(path: Path, left: np.ndarray, right: np.ndarray) -> Path:
    """Write a 2:1 PNG: input left, output right, each scaled to its own 1-99.8 percentile range.

    The larger image is reduced by block averaging to the other's height (an SR output is twice its input).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    def scaled(a: np.ndarray) -> np.ndarray:
        a = a if a.ndim == 2 else a[a.shape[0] // 2]
        lo, hi = np.percentile(a, [1, 99.8])
        return np.clip((a - lo) / (hi - lo or 1.0), 0, 1)

    def reduced(a: np.ndarray, f: int) -> np.ndarray:
        a = a if a.ndim == 2 else a[a.shape[0] // 2]
        if f <= 1:
            return a
        h, w = a.shape[0] // f * f, a.shape[1] // f * f
        return a[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))

    factor = max(left.shape[-2], right.shape[-2]) // max(1, min(left.shape[-2], right.shape[-2]))
    if left.shape[-2] > right.shape[-2]:
        left = reduced(left, factor)
    elif right.shape[-2] > left.shape[-2]:
        right = reduced(right, factor)
    left, right = scaled(left), scaled(right)
    height = min(left.shape[0], right.shape[0])
    left, right = left[:height], right[:height]
    gap = np.ones((height, max(2, left.shape[1] // 64)), dtype=np.float32)
    plt.imsave(path, np.concatenate([left, gap, right], axis=1), cmap="magma", vmin=0, vmax=1)
    return path


def _metrics_text(metrics: dict[str, Any]) -> str:
    """``name value, ...`` of the numeric validation metrics (one level of nesting: per-network metrics)."""
    items = []
    for key, value in metrics.items():
        if isinstance(value, dict):
            items += [f"{key} {k} {v:.4g}" for k, v in value.items() if isinstance(v, (int, float))]
        elif isinstance(value, (int, float)):
            items.append(f"{key} {value:.4g}")
    return ", ".join(items)


def _write_readme(path: Path, head: str, bundle: Any, citation: str, made_by: str) -> Path:
    """Write the README: ``head`` (title, what the package computes), then training, validation and citation."""
    text = f"""{head.rstrip()}

## Training

Trained by microrestore {bundle.provenance.get("microrestore", "?")} with torch {bundle.provenance.get("torch", "?")},
{bundle.provenance.get("steps", "?")} steps, seed {bundle.provenance.get("seed", "?")}.
Configuration: `{bundle.config}`.

# Validation

The test tensors were made by {made_by} and `bioimageio.core.test_model` passed on both weight formats before
this package was written. Validation metrics at the end of training: {_metrics_text(bundle.metrics) or "none recorded"}.

These numbers describe the training data only; check the model on your own images with ground truth
(`microrestore evaluate`) before trusting it on different microscopes, samples or noise levels.

## Citation

{citation}
"""
    path.write_text(text, encoding="utf-8")
    return path


def _single_readme_head(
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
    source: str,
) -> str:
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
    return f"""# {name}

{method} model trained and exported with [microrestore](https://github.com/microrestore/microrestore)
(source: `{source}`). Network: {network}.

## Input and output

- Input `{INPUT_ID}`: one-channel image, axes batch, channel, {"z, " if bundle.axes == "ZYX" else ""}y, x; spatial
  sizes `{minimum} + n * {multiple}`.
- Output `{OUTPUT_ID}`: same shape. {tiling_text}
- {units_text}
"""


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


# --------------------------------------------------------------------------------------------------------------
# Pieces shared by single-network and network-stage packages


@dataclass
class _Source:
    """A model folder loaded for export: its bundle, method, prediction options and the method's predictor."""

    folder: Path
    bundle: Any
    document: dict[str, Any]
    method: Any
    options: Any
    predictor: Any


@dataclass
class _Request:
    """What the caller asks of the package (see :func:`export_model`)."""

    sample: Any
    name: str | None
    authors: Sequence[str] | None
    license: str | None


def _load_source(model_dir: str | Path, params: dict[str, Any] | None) -> _Source:
    from microrestore.engine.modeldir import load_model, read_model_config
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
        from microrestore.validation import validate_params

        options.params = validate_params(method, options.params)
    # The method's own loader decides which networks run and how intensities are mapped: the package must
    # reproduce exactly what it returns.
    return _Source(folder, bundle, document, method, options, method.load(str(folder), options))


def _smallest_input(multiple: int, halo: int, local: bool) -> int:
    """Smallest declared input edge: the halo on both sides plus one multiple, at least 256 px if not local."""
    minimum = 2 * halo + multiple
    if not local:
        minimum += max(0, -(-(NONLOCAL_MIN_EDGE - minimum) // multiple) * multiple)
    return minimum


def _network_name(bundle: Any, network: Any) -> str:
    """The model folder's name of ``network``: same spec and, where several share it, the same weights."""
    spec = dict(getattr(network, "spec", {}))
    candidates = [k for k, v in bundle.network_specs.items() if dict(v) == spec]
    if len(candidates) > 1:
        state = network.state_dict()
        for name in candidates:
            saved = bundle.state_dicts.get(name, {})
            if saved.keys() == state.keys() and all(
                np.array_equal(saved[k].cpu().numpy(), state[k].detach().cpu().numpy()) for k in state
            ):
                return name
    return candidates[0] if candidates else str(spec.get("name"))


@dataclass
class _Weights:
    descr: Any
    module: str
    cls: str
    kwargs: dict[str, Any]
    parameters: int

    def text(self) -> str:
        return f"`{self.cls}` ({self.module}), {self.parameters:,} parameters, options `{self.kwargs}`"


def _weights(network: Any, workdir: Path, examples: Sequence[Any]) -> _Weights:
    """Write the network as a plain state dict and as TorchScript (traced on ``examples``, one per input)."""
    import torch
    from bioimageio.spec.model import v0_5

    network = network.to(memory_format=torch.contiguous_format).cpu().eval()
    module_name, class_name, kwargs = _architecture(dict(getattr(network, "spec", {})))
    state_path = workdir / "weights.pt"
    torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, state_path)
    script_path = workdir / "weights_torchscript.pt"
    with torch.no_grad(), warnings.catch_warnings():
        # Input-size checks are Python that tracing records as a constant (they pass for the traced size); the
        # convolutions, pooling, FFTs and upsampling stay shape-generic, which test_model checks on several sizes.
        warnings.simplefilter("ignore")
        example = tuple(examples) if len(examples) > 1 else examples[0]
        scripted = torch.jit.trace(network, example, check_trace=False)
        torch.jit.save(scripted, str(script_path))
    torch_version = v0_5.Version(_plain_version(torch.__version__))
    descr = v0_5.WeightsDescr(
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
    return _Weights(descr, module_name, class_name, kwargs, sum(p.numel() for p in network.parameters()))


def _title(name: str | None, default: str, method: str) -> str:
    title = name or default
    title = "".join(c if c.isalnum() or c in "_+- ()" else "-" for c in title)[:64].strip()
    if len(title) < 5:
        title = f"microrestore {method} {title}".strip()
    return title


def _citation(method: Any) -> tuple[list[dict[str, str]], str]:
    cite = _citations(method.citation or "")
    if not cite:
        raise MicrorestoreError(f"method {method.name!r} registers no citation with a DOI; bioimage.io needs one")
    return cite, "\n".join(f"{c['text']} doi:{c['doi']}" for c in cite)


def _model_descr(
    src: _Source,
    *,
    title: str,
    description: str,
    request: _Request,
    cite: list[dict[str, str]],
    readme: Path,
    cover: Path,
    tags: list[str],
    inputs: list[Any],
    outputs: list[Any],
    weights: _Weights,
    config: dict[str, Any],
) -> Any:
    """The spec 0.5 ``ModelDescr`` with what every microrestore package has (authors, citation, attachments)."""
    from bioimageio.spec.model import v0_5

    from microrestore import __version__

    return v0_5.ModelDescr(
        name=title,
        description=description,
        authors=[v0_5.Author(name=a) for a in (request.authors or DEFAULT_AUTHORS)],
        cite=[v0_5.CiteEntry(text=c["text"], doi=v0_5.Doi(c["doi"])) for c in cite],
        license=license_id(request.license or src.document.get("license") or DEFAULT_LICENSE),
        documentation=v0_5.FileDescr(source=readme),
        covers=[v0_5.FileDescr(source=cover)],
        # microrestore's own model folder, byte for byte: ``microrestore.zoo.package`` loads it natively
        attachments=[v0_5.FileDescr(source=src.folder / member) for member in NATIVE_MEMBERS],
        tags=tags,
        inputs=inputs,
        outputs=outputs,
        weights=weights.descr,
        version="0.1.0",
        config=v0_5.Config(
            microrestore={
                "method": src.bundle.method,
                "predict_options": dict(src.options.params),
                "microrestore_version": __version__,
                **config,
            }
        ),
    )


def _tensor(
    kind: str,
    tensor_id: str,
    description: str,
    channels: Sequence[str],
    size: Callable[[str], Any],
    test: np.ndarray,
    path: Path,
    steps: list[Any],
    spatial: Sequence[str] = ("y", "x"),
    **extra: Any,
) -> Any:
    """An ``input`` or ``output`` tensor: axes batch, channel, ``spatial`` (sizes ``size(axis)``), float32.

    ``test`` is saved to ``path`` as its test tensor; ``steps`` are its pre- or post-processing; ``extra`` goes
    to every spatial axis (``halo``, ``scale``) except ``pad``, which goes to an input.
    """
    from bioimageio.spec.model import v0_5

    pad = extra.pop("pad", None)
    if kind == "input":
        space: Any = v0_5.SpaceInputAxis
    else:
        space = v0_5.SpaceOutputAxisWithHalo if "halo" in extra else v0_5.SpaceOutputAxis
    axes: list[Any] = [v0_5.BatchAxis(), v0_5.ChannelAxis(channel_names=[v0_5.Identifier(c) for c in channels])]
    axes += [space(id=v0_5.AxisId(a), size=size(a), **extra) for a in spatial]
    np.save(path, np.asarray(test, dtype=np.float32))
    common = {
        "id": v0_5.TensorId(tensor_id),
        "description": description[:128],
        "axes": axes,
        "test_tensor": v0_5.FileDescr(source=path),
        "data": v0_5.IntervalOrRatioDataDescr(type="float32"),
    }
    if kind == "input":
        return v0_5.InputTensorDescr(**common, preprocessing=steps, **({"pad": pad} if pad is not None else {}))
    return v0_5.OutputTensorDescr(**common, postprocessing=steps)


# --------------------------------------------------------------------------------------------------------------
# Descriptions


def build_description(
    model_dir: str | Path,
    workdir: Path,
    *,
    network: str | None = None,
    sample: Any = None,
    name: str | None = None,
    authors: Sequence[str] | None = None,
    license: str | None = None,
    params: dict[str, Any] | None = None,
) -> Any:
    """Write the package's files into ``workdir`` and return the spec 0.5 ``ModelDescr`` (not tested).

    Parameters are those of :func:`export_model`.
    """
    from microrestore.engine.predictor import NetworkPredictor

    src = _load_source(model_dir, params)
    predictor = src.predictor
    request = _Request(sample, name, authors, license)
    if isinstance(predictor, NetworkPredictor):
        return _single_network_description(src, workdir, request, network)
    stages = predictor.network_stages() if hasattr(predictor, "network_stages") else {}
    if not stages:
        raise MicrorestoreError(
            f"{src.bundle.method} inference is not a single network ({type(predictor).__name__}) and exports no "
            f"network stages; networks in this model: {', '.join(sorted(src.bundle.network_specs)) or 'none'}"
        )
    if network is None:
        raise MicrorestoreError(
            f"{src.bundle.method} inference is a pipeline, not a single network: pass --network with one of its "
            f"networks to export that stage ({', '.join(stages)})"
        )
    if network not in stages:
        raise InputError(
            f"--network {network!r}: the {src.bundle.method} pipeline's network stages are {', '.join(stages)}"
        )
    return _stage_description(src, workdir, request, network, stages[network])


def _single_network_description(src: _Source, workdir: Path, request: _Request, network: str | None) -> Any:
    """A package of the one network the method's :class:`NetworkPredictor` runs, with its normalisation."""
    import torch
    from bioimageio.spec.model import v0_5

    from microrestore.engine.tiling import predict_whole

    bundle, predictor = src.bundle, src.predictor
    if predictor.output_transform is not None:
        raise MicrorestoreError(f"{bundle.method} maps its output with Python code that bioimage.io cannot express")
    # The test tensors come from the network in the layout the package's weights have (channels_last changes
    # float32 rounding, which instance norm in an untrained network amplifies beyond test_model's tolerance).
    predictor.network = predictor.network.to(memory_format=torch.contiguous_format).cpu().eval()
    net_name = _network_name(bundle, predictor.network)
    if network is not None and network != net_name:
        raise InputError(
            f"--network {network!r}: {bundle.method} prediction runs this model's {net_name!r} network (the model "
            f"holds {', '.join(sorted(bundle.network_specs))}; prediction options choose which runs); pass "
            f"--network {net_name} or leave it out"
        )
    ndim = predictor.ndim
    if predictor.in_channels != 1 or predictor.out_channels != 1:
        raise MicrorestoreError("export supports one-channel networks only")
    multiple, halo = predictor.multiple, predictor.halo
    minimum = _smallest_input(multiple, halo, bool(predictor.is_local))

    spatial = ["z", "y", "x"][-ndim:]
    if getattr(predictor.normalizer, "kind", None) == "calibrated":
        # bioimage.io's pre-processing cannot fit a camera: the package takes images in the training camera's units
        predictor.normalizer = predictor.normalizer.fixed()
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
    plane = valid_crop(_read_sample(request.sample, ndim), minimum, multiple, TEST_EDGE, ndim)
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
    cover = _cover(workdir / "cover.png", plane, restored)
    weights = _weights(predictor.network, workdir, [torch.rand((1, 1, *([minimum + 2 * multiple] * ndim)))])
    title = _title(request.name, f"microrestore {bundle.method} {src.folder.name}", bundle.method)
    cite, citation = _citation(src.method)
    head = _single_readme_head(
        name=title,
        method=bundle.method,
        bundle=bundle,
        network=weights.text(),
        local=bool(predictor.is_local),
        units=units,
        normalization=normalization,
        halo=halo,
        multiple=multiple,
        minimum=minimum,
        source=src.folder.name,
    )
    readme = _write_readme(
        workdir / "README.md", head, bundle, citation, "microrestore's own prediction on the sample image"
    )

    reference = v0_5.TensorId(INPUT_ID)
    inputs = [
        _tensor(
            "input",
            INPUT_ID,
            "raw image (any intensity units; normalised by the preprocessing)",
            ["intensity"],
            lambda a: v0_5.ParameterizedSize(min=minimum, step=multiple),
            plane[np.newaxis, np.newaxis],
            workdir / "test_input.npy",
            pre,
            spatial,
            pad=v0_5.ReflectPadding(mode="reflect"),  # explicit: a default-only node is saved as {}
        )
    ]
    outputs = [
        _tensor(
            "output",
            OUTPUT_ID,
            "restored image in normalised units (0: input's low percentile, 1: its high percentile)"
            if units == "normalized"
            else "restored image in the input's units",
            ["intensity"],
            lambda a: v0_5.SizeReference(tensor_id=reference, axis_id=v0_5.AxisId(a)),
            restored[np.newaxis, np.newaxis],
            workdir / "test_output.npy",
            post,
            spatial,
            halo=halo,
        )
    ]
    return _model_descr(
        src,
        title=title,
        description=(
            f"{src.method.summary}; trained with microrestore; "
            + ("output in normalised units (see README)." if units == "normalized" else "output in input units.")
        ),
        request=request,
        cite=cite,
        readme=readme,
        cover=cover,
        tags=_tags(src.method, str(predictor.network.spec["name"]), ndim),
        inputs=inputs,
        outputs=outputs,
        weights=weights,
        config={
            "network": net_name,
            "output_units": units,
            "normalization": normalization,
            "halo": halo,
            "size_multiple": multiple,
        },
    )


def _minmax_step() -> Any:
    """Per-sample min-max over channels and space: ``scale_range`` at the 0th and 100th percentiles."""
    from bioimageio.spec.model import v0_5

    kwargs = v0_5.ScaleRangeKwargs(
        axes=[v0_5.AxisId("channel"), v0_5.AxisId("y"), v0_5.AxisId("x")],
        min_percentile=0.0,
        max_percentile=100.0,
        # the pipelines' ``(x - min) / (max - min + 1e-7)``; bioimageio.core 0.11 applies 1e-6 whatever is
        # declared, a difference below 1e-6 of the range for raw frames
        eps=MINMAX_EPS,
    )
    return v0_5.ScaleRangeDescr(kwargs=kwargs)


def _check_stage_tensors(example: StageExample, network: str, minimum: int, multiple: int) -> tuple[int, int]:
    """The inputs' common (y, x) size; refuses tensors that do not fit the declared sizes (a plugin bug)."""
    sizes = {tuple(t.test.shape[-2:]) for t in example.inputs}
    shapes = [tuple(t.test.shape) for t in [*example.inputs, example.output]]
    if len(sizes) != 1 or any(len(s) != 4 for s in shapes):
        raise MicrorestoreError(f"the {network} stage's test tensors must be 4D with one input size, got {shapes}")
    ny, nx = sizes.pop()
    if min(ny, nx) < minimum or (ny - minimum) % multiple or (nx - minimum) % multiple:
        raise MicrorestoreError(
            f"the {network} stage's test inputs ({ny} x {nx}) do not fit {minimum} + n * {multiple}"
        )
    if example.output.minmax:
        raise MicrorestoreError(
            f"the {network} stage asks for a min-max of its output: bioimageio.core 0.11 cannot post-process an "
            "output by its own statistics"
        )
    scale = example.output.scale
    if tuple(example.output.test.shape[-2:]) != (ny * scale, nx * scale):
        raise MicrorestoreError(f"the {network} stage's test output is not {scale} x its inputs: {shapes}")
    for t in [*example.inputs, example.output]:
        if t.test.shape[1] != len(t.channels) or not np.isfinite(t.test).all():
            raise MicrorestoreError(
                f"the {network} stage's tensor {t.id!r} has the wrong channels or non-finite values"
            )
    return ny, nx


def _stage_readme_head(
    *,
    title: str,
    method: str,
    network: str,
    role: str,
    example: StageExample,
    weights: _Weights,
    local: bool,
    minimum: int,
    multiple: int,
    source: str,
) -> str:
    def tensor_line(kind: str, t: StageTensor) -> str:
        norm = (
            "The package min-max normalises it per sample over its channels and pixels (`scale_range`, "
            "percentiles 0 and 100) as the pipeline does."
            if t.minmax
            else "The package does not normalise it: give it exactly as described."
        )
        if kind == "Output":
            norm = "As the network gives it (no post-processing)."
        size = f", {t.scale} times the inputs' size (pixels {t.scale} times finer)" if t.scale != 1 else ""
        channels = ", ".join(f"`{c}`" for c in t.channels)
        axes = f"axes batch, channel ({len(t.channels)}: {channels}), y, x{size}"
        about = t.description.strip().rstrip(".").replace("see README", "see below")
        return f"- {kind} `{t.id}`: {axes}. {about[:1].upper()}{about[1:]}. {norm}"

    lines = [tensor_line("Input", t) for t in example.inputs] + [tensor_line("Output", example.output)]
    sizes = (
        f"y and x at least {minimum} px"
        + (f" (`{minimum} + n * {multiple}`)" if multiple > 1 else "")
        + (", the same for every input" if len(example.inputs) > 1 else "")
    )
    tiling = (
        "The network is not local (attention or Fourier layers use statistics of the whole input), so run it on "
        "whole frames, as the pipeline does: no halo is declared, so bioimageio.core runs the whole frame without "
        "padding, and tiles would give a different result."
        if not local
        else "No halo is declared: the pipeline runs the network on whole frames."
    )
    return f"""# {title}

**This package is one network stage of the {method} pipeline, not the whole method.** It holds the
`{network}` network ({role}), trained and exported with
[microrestore](https://github.com/microrestore/microrestore) (source: `{source}`): {weights.text()}.
{method} restores images with several steps of which only the networks can be bioimage.io models: the steps
before and after this one are not in this package, and a bioimage.io consumer must do them (see below). The
zip also carries the complete microrestore model folder (`config.yaml`, `weights.safetensors`: every network of
the pipeline), so `microrestore` runs the whole pipeline from it.

## Inputs and output

{chr(10).join(lines)}
- Sizes: {sizes}. {tiling}

## The {method} pipeline around this stage

{example.pipeline.strip()}
"""


def _stage_description(src: _Source, workdir: Path, request: _Request, network: str, role: str) -> Any:
    """A package of one network stage of a pipeline method, with the inputs and test tensors its pipeline makes."""
    import torch
    from bioimageio.spec.model import v0_5

    bundle, predictor = src.bundle, src.predictor
    module = predictor.stage_network(network)
    multiple = int(getattr(module, "size_multiple", 1))
    radius = int(getattr(module, "receptive_radius", 0))
    local = bool(getattr(module, "is_local", False))
    minimum = _smallest_input(multiple, -(-radius // multiple) * multiple, local)
    example = predictor.stage_example(
        network, _sample_image(request.sample), TestCrop(minimum, multiple, max(TEST_EDGE, minimum))
    )
    ny, nx = _check_stage_tensors(example, network, minimum, multiple)

    first = v0_5.TensorId(example.inputs[0].id)

    def reference(a: str) -> Any:
        return v0_5.SizeReference(tensor_id=first, axis_id=v0_5.AxisId(a))

    inputs = [
        _tensor(
            "input",
            t.id,
            t.description,
            t.channels,
            (lambda a: v0_5.ParameterizedSize(min=minimum, step=multiple)) if i == 0 else reference,
            t.test,
            workdir / f"test_input_{t.id}.npy",
            [_minmax_step()] if t.minmax else [],
        )
        for i, t in enumerate(example.inputs)
    ]
    out = example.output
    # size = the first input's size * its scale (1) / this axis' scale: ``scale`` times the input's
    outputs = [
        _tensor(
            "output",
            out.id,
            out.description,
            out.channels,
            reference,
            out.test,
            workdir / f"test_output_{out.id}.npy",
            [],
            scale=1.0 / out.scale,
        )
    ]
    cover = _cover(workdir / "cover.png", *example.cover)
    # traced at a size other than the test tensors', so that test_model checks the trace is shape-generic
    trace_size = (minimum + 2 * multiple,) * 2 if (ny, nx) == (minimum,) * 2 else (minimum, minimum)
    weights = _weights(module, workdir, [torch.rand((1, t.test.shape[1], *trace_size)) for t in example.inputs])
    title = _title(request.name, f"microrestore {bundle.method} {network} stage {src.folder.name}", bundle.method)
    cite, citation = _citation(src.method)
    head = _stage_readme_head(
        title=title,
        method=bundle.method,
        network=network,
        role=role,
        example=example,
        weights=weights,
        local=local,
        minimum=minimum,
        multiple=multiple,
        source=src.folder.name,
    )
    readme = _write_readme(
        workdir / "README.md", head, bundle, citation, f"the {bundle.method} pipeline's own code on the sample"
    )
    return _model_descr(
        src,
        title=title,
        description=(
            f"The {network} network stage ({role}) of the {bundle.method} pipeline, trained with microrestore; not "
            "the whole method: the README says what feeds it and what the rest of the pipeline does."
        ),
        request=request,
        cite=cite,
        readme=readme,
        cover=cover,
        tags=[*_tags(src.method, str(module.spec["name"]), 2), "pipeline-stage"],
        inputs=inputs,
        outputs=outputs,
        weights=weights,
        config={
            "network": network,
            "pipeline_stage": True,
            "inputs": [t.id for t in example.inputs],
            "output": out.id,
            "output_scale": out.scale,
            "size_multiple": multiple,
        },
    )


def license_id(value: str) -> Any:
    """``value`` as a bioimage.io ``LicenseId``; an unknown id is one line with the closest SPDX ids.

    (bioimageio.spec's own validation error lists all 700 SPDX ids: a 20 KB line.)

    Raises
    ------
    InputError
        ``value`` is not an SPDX licence id bioimage.io accepts.
    """
    import difflib
    import typing

    from bioimageio.spec._internal.license_id import DeprecatedLicenseIdLiteral, LicenseIdLiteral
    from bioimageio.spec.model import v0_5

    known = [*typing.get_args(LicenseIdLiteral), *typing.get_args(DeprecatedLicenseIdLiteral)]
    text = str(value)
    if text in known:
        return v0_5.LicenseId(text)
    by_lower = {k.lower(): k for k in known}
    if text.lower() in by_lower:
        raise InputError(
            f"unknown licence {text!r}; did you mean {by_lower[text.lower()]!r}? (SPDX ids are case-sensitive)"
        )

    def key(name: str) -> str:
        return "".join(c for c in name.lower() if c.isalnum())

    by_key = {key(k): k for k in known}
    starts = sorted((k for k in known if key(k).startswith(key(text))), key=len) if key(text) else []
    similar = [by_key[k] for k in difflib.get_close_matches(key(text), list(by_key), n=4, cutoff=0.6)]
    close = list(dict.fromkeys([*starts[:3], *similar]))[:4]
    hint = (
        f"; close SPDX ids: {', '.join(close)}" if close else "; give an SPDX id such as BSD-3-Clause, MIT or CC-BY-4.0"
    )
    raise InputError(f"unknown licence {text[:80]!r} (not an SPDX licence id){hint}")


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
    network: str | None = None,
) -> Path:
    """Export a model's network as a bioimage.io package, tested before it is written.

    A model whose inference is one network is exported whole (pre-processing, network, post-processing). A
    pipeline method (rDL-SIM) exports one network stage at a time (``network``): the package holds that network
    with its inputs as the pipeline makes them, and its README says what the rest of the pipeline does.

    Parameters
    ----------
    model_dir
        Model folder (or its ``config.yaml``, or a zoo id).
    output_zip
        The package to write (``.zip``); written under a temporary name and renamed when complete.
    sample
        Image for the test tensors and the cover: a path, an :class:`~microrestore.io.images.ImageData` or a 2D
        (3D for 3D models) array; its first plane is used, centre-cropped to at most 256 px. Default: the demo
        image bundled with microrestore. For a pipeline stage, an input of the pipeline (for rDL-SIM a raw SIM
        stack; default: one simulated with the model's optics) whose first stack the pipeline runs on.
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
    network
        The network to export, by its name in the model folder: required for a pipeline method (one of its
        network stages, e.g. ``dfcan`` or ``denoiser`` for rDL-SIM); for a single-network method it must name
        the network that prediction runs, or be ``None``.

    Returns
    -------
    pathlib.Path
        The written package.

    Raises
    ------
    MicrorestoreError
        The model cannot be exported (method, network, normalisation; a pipeline without ``network``, whose
        message names its networks) or ``bioimageio.core.test_model`` failed (its summary is in the message);
        nothing is written then.
    InputError
        Missing or invalid model folder or sample, an unknown ``network``, or an output path that is not a
        ``.zip``.
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
    if license is not None:
        license_id(license)  # before the model is built and tested: a typo costs nothing
    source = Path(str(model_dir)).expanduser()
    if source.exists() and output.exists() and source.resolve() == output.resolve():
        raise InputError("the package to write is the model being exported; give another -o", output)
    workdir = Path(tempfile.mkdtemp(prefix="microrestore-bioimage-"))
    try:
        started = time.perf_counter()
        descr = build_description(
            model_dir,
            workdir,
            network=network,
            sample=sample,
            name=name,
            authors=authors,
            license=license,
            params=params,
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
