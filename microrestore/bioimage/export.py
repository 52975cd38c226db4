"""Export a microrestore model folder as a BioImage Model Zoo package (bioimage.io spec 0.5).

Any model whose method's loader returns a single-network
:class:`~microrestore.engine.predictor.NetworkPredictor` can be exported: the network it runs, its normalisation
and its way back to the output's units are read from that predictor, so the package computes what
``microrestore`` computes. The package holds the network twice (``pytorch_state_dict`` rebuilt by the network's
class in ``microrestore.nn``, and ``torchscript``, which runs without microrestore), the pre- and
post-processing in spec terms, test tensors made by microrestore's own prediction, a cover, a README and the
citation. ``bioimageio.core.test_model`` runs on the description before anything is written; a package that
fails it is refused and no file appears.

The parts live in their own modules: :mod:`~microrestore.bioimage.description` (the model description of a
single network or of a pipeline's network stage), :mod:`~microrestore.bioimage.tensors` (tensors, and the
normalisation as spec pre- and post-processing), :mod:`~microrestore.bioimage.weights`,
:mod:`~microrestore.bioimage.readme` and :mod:`~microrestore.bioimage.cover`; this module tests and writes the
package.

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
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from microrestore.bioimage.description import build_description, license_id
from microrestore.errors import InputError, MicrorestoreError

_log = logging.getLogger(__name__)


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
