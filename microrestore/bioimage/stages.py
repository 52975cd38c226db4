"""What a pipeline method gives :func:`~microrestore.bioimage.export_model` to export one of its network stages.

A method whose inference is not one network (rDL-SIM: DFCAN SR estimate, parameter estimation, pattern
generation, rDL denoiser, Wiener-SIM) cannot be a single bioimage.io model, but each of its networks can: the
package then holds that network, its inputs as the pipeline feeds them (with the normalisation spec 0.5 can
express as pre-processing), test tensors made by the pipeline itself, and a README that says what the rest of
the pipeline does. The method's predictor opts in by providing three methods (duck-typed, no base class):

``network_stages() -> dict[str, str]``
    The exportable networks (names as in the model folder) and a one-line role of each.
``stage_network(name) -> torch.nn.Module``
    The network, exactly as the pipeline runs it (eval mode).
``stage_example(name, sample, crop) -> StageExample``
    The stage's test tensors on ``sample`` (an :class:`~microrestore.io.images.ImageData`, or ``None`` for the
    method's own default), computed by the pipeline's own code on frames cropped with ``crop``, and the README
    text about the pipeline.

This module is import-light (numpy only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from microrestore.errors import InputError

__all__ = ["StageExample", "StageTensor", "TestCrop", "valid_crop"]


def valid_crop(array: np.ndarray, minimum: int, step: int, edge: int, ndim: int = 2) -> np.ndarray:
    """Centre crop of the last ``ndim`` axes to the largest size ``minimum + n * step`` up to ``max(edge, minimum)``.

    Raises
    ------
    InputError
        An axis is smaller than ``minimum``.
    """
    index: list[slice] = [slice(None)] * (array.ndim - ndim)
    for n in array.shape[-ndim:]:
        limit = min(n, max(edge, minimum))
        if limit < minimum:
            raise InputError(
                f"the sample ({tuple(array.shape[-ndim:])}) is smaller than the model's smallest input ({minimum} px)"
            )
        size = minimum + (limit - minimum) // step * step
        start = (n - size) // 2
        index.append(slice(start, start + size))
    return array[tuple(index)]


@dataclass(frozen=True)
class TestCrop:
    """Crops a pipeline's frames to a size the exported network stage accepts (the last two axes).

    Attributes
    ----------
    minimum, step
        The declared input sizes ``minimum + n * step``.
    edge
        Largest edge wanted for the test tensors (a default sample may be made at this size).
    """

    __test__ = False  # not a pytest class

    minimum: int
    step: int
    edge: int

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Centre crop of ``frames`` ``(..., Y, X)``."""
        return valid_crop(np.asarray(frames), self.minimum, self.step, self.edge)


@dataclass
class StageTensor:
    """One input or output tensor of a network stage.

    Attributes
    ----------
    id
        Tensor id in the package (a short lower-case identifier).
    description
        What the tensor is and how the pipeline makes it (one or two sentences).
    channels
        Channel names (identifiers), in the network's channel order.
    test
        Test tensor ``(batch, channel, y, x)``, float32: for an input, what the package receives (before its
        pre-processing); for the output, what the network gives.
    minmax
        Inputs only: the package min-max normalises this tensor itself, per sample over channels and space
        (``scale_range`` at the 0th and 100th percentiles, ``(x - min) / (max - min + 1e-7)``). Outputs have no
        post-processing: bioimageio.core 0.11 computes every per-sample statistic before the network runs, so
        it cannot normalise an output by its own statistics.
    scale
        Output only: its pixels are ``scale`` times finer than the first input's (2 for an SR network).
    """

    id: str
    description: str
    channels: Sequence[str]
    test: np.ndarray
    minmax: bool = False
    scale: int = 1


@dataclass
class StageExample:
    """Test tensors and documentation of one network stage, as the pipeline computes it on a sample.

    Attributes
    ----------
    inputs
        The network's inputs, in the order its ``forward`` takes them.
    output
        The network's output.
    pipeline
        Markdown for the package README: what feeds this stage (how the pipeline makes each input, so that a
        bioimage.io consumer can do it) and what the rest of the pipeline does with the output.
    cover
        Two 2D images for the cover: the stage's input and its output (any sizes; the smaller is enlarged).
    """

    inputs: list[StageTensor]
    output: StageTensor
    pipeline: str
    cover: tuple[np.ndarray, np.ndarray]
