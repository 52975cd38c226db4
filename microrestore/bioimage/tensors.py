"""The package's tensors: their ids and axes, and microrestore's normalisation as spec pre- and post-processing.

A fixed (affine) normalisation becomes ``scale_linear`` both ways and keeps the output in the input's units; a
per-image percentile or mean/std normalisation becomes ``scale_range`` or ``zero_mean_unit_variance``
pre-processing with the output left in normalised units (spec 0.5 cannot multiply back by another tensor's
statistics); the pipelines' min-max normalisation is ``scale_range`` at the 0th and 100th percentiles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.errors import MicrorestoreError

INPUT_ID = "raw"
OUTPUT_ID = "restored"
#: ``eps`` of the pipelines' min-max normalisation, ``(x - min) / (max - min + eps)``.
MINMAX_EPS = 1e-7


def normalization_steps(normalization: dict[str, Any], axes: list[str]) -> tuple[list[Any], list[Any], str]:
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


def tensor_descr(
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


def minmax_step() -> Any:
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
