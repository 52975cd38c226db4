"""Training images from files: pairing, axes, and the ``(C, *spatial)`` samples the patch sampler takes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.errors import InputError


def pair_by_name(sources: Sequence[Path], targets: Sequence[Path]) -> list[tuple[Path, Path]]:
    """Pair source and target files with the same file name (``noisy/a.tif`` with ``clean/a.tif``).

    Raises
    ------
    InputError
        When a source has no target of the same name; the message names the first one.
    """
    by_name = {t.name: t for t in targets}
    if len(by_name) != len(targets):
        raise InputError("target files must have distinct names to be paired with sources")
    pairs = []
    for src in sources:
        tgt = by_name.get(src.name)
        if tgt is None:
            raise InputError(
                f"no target named {src.name!r} (pairs are matched by file name; "
                f"{len(sources)} sources, {len(targets)} targets)",
                src,
            )
        pairs.append((src, tgt))
    return pairs


def samples_from_image(image: Any, ndim: int, channels: int = 1) -> list[np.ndarray]:
    """Split an image into model samples of shape ``(C, *spatial)`` (views where possible).

    A 2D model treats every plane of a stack (T, Z, ...) as a sample; a 3D model every volume.
    """
    from microrestore.engine.predictor import AxesLayout

    layout = AxesLayout.plan(image.axes, tuple(image.data.shape), ndim, channels, image.path)
    order = layout.model_order(image.axes)
    samples = []
    for index in layout.blocks(image.axes, tuple(image.data.shape)):
        view = np.transpose(image.data[index], order)
        samples.append(view if layout.channel else view[np.newaxis])
    return samples


def load_images(paths: Sequence[Path], *, axes: str | None) -> list[Any]:
    """Read each file as an :class:`~microrestore.io.ImageData`, refusing empty images and NaN or Inf."""
    from microrestore.io.images import check_image, read_image

    images = []
    for path in paths:
        image = read_image(path, axes=axes)
        check_image(image)
        images.append(image)
    return images


def load_samples(paths: Sequence[Path], *, ndim: int, axes: str | None, channels: int = 1) -> list[list[np.ndarray]]:
    """Read each file and split it into samples; one list of samples per file."""
    return [samples_from_image(image, ndim, channels) for image in load_images(paths, axes=axes)]


def check_pair_shapes(
    pairs: Sequence[tuple[Path, Path]], sources: list[list[np.ndarray]], targets: list[list[np.ndarray]]
) -> None:
    """Paired samples must have equal shapes; name the first pair that does not."""
    for (src, tgt), s_list, t_list in zip(pairs, sources, targets):
        if len(s_list) != len(t_list) or any(a.shape[1:] != b.shape[1:] for a, b in zip(s_list, t_list)):
            s_shape = s_list[0].shape[1:] if s_list else ()
            t_shape = t_list[0].shape[1:] if t_list else ()
            raise InputError(
                f"shape {s_shape} x {len(s_list)} does not match its target {tgt.name} ({t_shape} x {len(t_list)})", src
            )


def check_patch_fits(
    paths: Sequence[Path], samples: Sequence[Sequence[np.ndarray]], patch: Sequence[int], role: str = "source"
) -> None:
    """Refuse, naming the file, a training image smaller than the patch along a spatial axis.

    Parameters
    ----------
    paths
        The files, one per list of ``samples``.
    samples
        Each file's ``(C, *spatial)`` samples (as :func:`load_samples` gives them).
    patch
        Spatial patch shape.
    role
        ``source`` or ``target``, for the message.
    """
    wanted = tuple(int(p) for p in patch)
    for path, per_file in zip(paths, samples, strict=True):
        for sample in per_file:
            shape = tuple(int(n) for n in sample.shape[1:])
            if any(n < p for n, p in zip(shape, wanted)):
                raise InputError(
                    f"{role} image of spatial shape {shape} is smaller than the training patch {wanted}; use larger "
                    "images or a smaller --set patch_size",
                    path,
                )
