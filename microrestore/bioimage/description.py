"""The spec 0.5 model description of a package (a single network, or one network stage of a pipeline).

A single network comes with its normalisation; a stage with the inputs its pipeline makes. Both share the
pieces here: the source model, citation, tags, licence and attachments.

See :mod:`microrestore.bioimage.export` for what a package holds and the output's units.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.bioimage.cover import read_sample, sample_image, write_cover
from microrestore.bioimage.readme import single_readme_head, stage_readme_head, write_readme
from microrestore.bioimage.stages import StageExample, TestCrop, valid_crop
from microrestore.bioimage.tensors import INPUT_ID, OUTPUT_ID, minmax_step, normalization_steps, tensor_descr
from microrestore.bioimage.weights import Weights, network_name, write_weights
from microrestore.errors import InputError, MicrorestoreError

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
    weights: Weights,
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

    bundle, predictor = src.bundle, src.predictor
    net_name = _single_network(src, network)
    ndim, multiple, halo = predictor.ndim, predictor.multiple, predictor.halo
    minimum = _smallest_input(multiple, halo, bool(predictor.is_local))
    spatial = ["z", "y", "x"][-ndim:]
    normalization, pre, post, units = _single_processing(predictor, spatial)
    plane, restored = _single_test_images(predictor, request, minimum, multiple, units)
    cover = write_cover(workdir / "cover.png", plane, restored)
    weights = write_weights(predictor.network, workdir, [torch.rand((1, 1, *([minimum + 2 * multiple] * ndim)))])
    title = _title(request.name, f"microrestore {bundle.method} {src.folder.name}", bundle.method)
    cite, citation = _citation(src.method)
    head = single_readme_head(
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
    readme = write_readme(
        workdir / "README.md", head, bundle, citation, "microrestore's own prediction on the sample image"
    )
    inputs, outputs = _single_tensors(
        workdir, (plane, restored), (pre, post), units, spatial, (minimum, multiple, halo)
    )
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


def _single_network(src: _Source, network: str | None) -> str:
    """The model folder's name of the network the predictor runs, refusing what a package cannot express.

    The network is moved to the CPU in the contiguous layout the package's weights have (channels_last changes
    float32 rounding, which instance norm in an untrained network amplifies beyond test_model's tolerance).
    """
    import torch

    bundle, predictor = src.bundle, src.predictor
    if predictor.output_transform is not None:
        raise MicrorestoreError(f"{bundle.method} maps its output with Python code that bioimage.io cannot express")
    predictor.network = predictor.network.to(memory_format=torch.contiguous_format).cpu().eval()
    net_name = network_name(bundle, predictor.network)
    if network is not None and network != net_name:
        raise InputError(
            f"--network {network!r}: {bundle.method} prediction runs this model's {net_name!r} network (the model "
            f"holds {', '.join(sorted(bundle.network_specs))}; prediction options choose which runs); pass "
            f"--network {net_name} or leave it out"
        )
    if predictor.in_channels != 1 or predictor.out_channels != 1:
        raise MicrorestoreError("export supports one-channel networks only")
    return net_name


def _single_processing(predictor: Any, spatial: list[str]) -> tuple[dict[str, Any], list[Any], list[Any], str]:
    """``(normalisation, pre-processing, post-processing, output units)`` of the predictor, in spec terms.

    A calibrated normaliser is exported fixed (bioimage.io's pre-processing cannot fit a camera: the package
    takes images in the training camera's units); an output scale of its own and an output range follow.
    """
    from bioimageio.spec.model import v0_5

    if getattr(predictor.normalizer, "kind", None) == "calibrated":
        predictor.normalizer = predictor.normalizer.fixed()
    normalization = predictor.normalizer.to_dict()
    pre, post, units = normalization_steps(normalization, ["channel", *spatial])
    if predictor.output_normalizer is not None:
        if units != "input":
            raise MicrorestoreError("an output scale of its own needs a fixed input normalisation")
        post = normalization_steps(predictor.output_normalizer.to_dict(), ["channel", *spatial])[1]
    if predictor.output_range is not None and units == "input":
        low, high = predictor.output_range
        post = [*post, v0_5.ClipDescr(kwargs=v0_5.ClipKwargs(min=low, max=high))]
    return normalization, pre, post, units


def _single_test_images(
    predictor: Any, request: _Request, minimum: int, multiple: int, units: str
) -> tuple[np.ndarray, np.ndarray]:
    """The test input (a valid crop of the sample) and microrestore's output for it.

    bioimageio's test_model runs the network on the test input as it is (no halo padding, no cropping), so the
    expected output is microrestore's whole-image inference with no halo: the predictor's normaliser (fitted on
    the test input), the network, and (for input units) its way back to the output's units. Prediction on other
    images, with the declared halo, matches microrestore's (tested).
    """
    from microrestore.engine.tiling import predict_whole

    ndim = predictor.ndim
    plane = valid_crop(read_sample(request.sample, ndim), minimum, multiple, TEST_EDGE, ndim)
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
    return plane, restored


def _single_tensors(
    workdir: Path,
    images: tuple[np.ndarray, np.ndarray],
    steps: tuple[list[Any], list[Any]],
    units: str,
    spatial: list[str],
    sizes: tuple[int, int, int],
) -> tuple[list[Any], list[Any]]:
    """The input tensor (sizes ``minimum + n * multiple``, reflect padding) and the output (same size, halo)."""
    from bioimageio.spec.model import v0_5

    (plane, restored), (pre, post), (minimum, multiple, halo) = images, steps, sizes
    reference = v0_5.TensorId(INPUT_ID)
    inputs = [
        tensor_descr(
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
        tensor_descr(
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
    return inputs, outputs


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
        network, sample_image(request.sample), TestCrop(minimum, multiple, max(TEST_EDGE, minimum))
    )
    ny, nx = _check_stage_tensors(example, network, minimum, multiple)

    first = v0_5.TensorId(example.inputs[0].id)

    def reference(a: str) -> Any:
        return v0_5.SizeReference(tensor_id=first, axis_id=v0_5.AxisId(a))

    inputs = [
        tensor_descr(
            "input",
            t.id,
            t.description,
            t.channels,
            (lambda a: v0_5.ParameterizedSize(min=minimum, step=multiple)) if i == 0 else reference,
            t.test,
            workdir / f"test_input_{t.id}.npy",
            [minmax_step()] if t.minmax else [],
        )
        for i, t in enumerate(example.inputs)
    ]
    out = example.output
    # size = the first input's size * its scale (1) / this axis' scale: ``scale`` times the input's
    outputs = [
        tensor_descr(
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
    cover = write_cover(workdir / "cover.png", *example.cover)
    # traced at a size other than the test tensors', so that test_model checks the trace is shape-generic
    trace_size = (minimum + 2 * multiple,) * 2 if (ny, nx) == (minimum,) * 2 else (minimum, minimum)
    weights = write_weights(module, workdir, [torch.rand((1, t.test.shape[1], *trace_size)) for t in example.inputs])
    title = _title(request.name, f"microrestore {bundle.method} {network} stage {src.folder.name}", bundle.method)
    cite, citation = _citation(src.method)
    head = stage_readme_head(
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
    readme = write_readme(
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
