"""The raw SIM stacks a training run reads (noisy frames, high-SNR frames, SR targets), and validation crops."""

from __future__ import annotations

import numpy as np

from microrestore.errors import InputError
from microrestore_rdl_sim.config import RDLSIMConfig
from microrestore_rdl_sim.data import Triplet, centre_crop, minmax_np


class StackSet:
    """The training stacks of one run, normalised as the authors do.

    Attributes
    ----------
    noisy
        Min-max normalised noisy stacks ``(n_or, n_ph, Y, X)``.
    high_raw
        High-SNR raw stacks in their own units (for the parameter estimation).
    high
        Min-max normalised high-SNR stacks.
    sr
        Min-max normalised SR targets ``(1, 2 Y, 2 X)`` or ``None``.
    pixel_size_nm
        Raw pixel size of each stack.
    names
        ``file[index]`` of each stack, for messages.
    """

    def __init__(self) -> None:
        self.noisy: list[np.ndarray] = []
        self.high_raw: list[np.ndarray] = []
        self.high: list[np.ndarray] = []
        self.sr: list[np.ndarray | None] = []
        self.pixel_size_nm: list[float] = []
        self.names: list[str] = []

    def __len__(self) -> int:
        return len(self.noisy)


def load_stacks(triplets: list[Triplet], config: RDLSIMConfig, axes: str | None, need_sr: bool) -> StackSet:
    """Read and normalise every triplet's stacks (a file may hold a time series of stacks)."""
    from microrestore.io import read_image
    from microrestore_rdl_sim.sim_engine import read_raw_stacks

    out = StackSet()
    for item in triplets:
        noisy, pixel_nm = read_raw_stacks(item.noisy, config, axes)
        high, _ = read_raw_stacks(item.high, config, axes)
        if high.shape[-2:] != noisy.shape[-2:] or high.shape[0] not in (1, noisy.shape[0]):
            raise InputError(
                f"high-SNR stack {item.high.name} ({high.shape[0]} x {tuple(high.shape[-2:])}) does not match the "
                f"noisy stacks ({noisy.shape[0]} x {tuple(noisy.shape[-2:])})",
                item.noisy,
            )
        sr_images: np.ndarray | None = None
        if item.sr is not None and need_sr:
            image = read_image(item.sr, axes=None)
            sr_images = np.asarray(image.data, dtype=np.float32).reshape(-1, *image.data.shape[-2:])
            want = (2 * noisy.shape[-2], 2 * noisy.shape[-1])
            if sr_images.shape[-2:] != want or sr_images.shape[0] not in (1, noisy.shape[0]):
                raise InputError(
                    f"SR target {item.sr.name} has shape {sr_images.shape}; expected {want} (twice the raw frames), "
                    f"one image or one per stack ({noisy.shape[0]})",
                    item.noisy,
                )
        for i in range(noisy.shape[0]):
            h = high[min(i, high.shape[0] - 1)]
            out.noisy.append(minmax_np(noisy[i]))
            out.high_raw.append(h)
            out.high.append(minmax_np(h))
            out.sr.append(None if sr_images is None else minmax_np(sr_images[min(i, sr_images.shape[0] - 1)])[None])
            out.pixel_size_nm.append(pixel_nm)
            out.names.append(f"{item.noisy.name}[{i}]" if noisy.shape[0] > 1 else item.noisy.name)
    return out


def validation_crops(groups: list[list[np.ndarray]], scales: list[int], size: int) -> tuple[np.ndarray, ...] | None:
    """One batch of aligned centre crops (at most ``size`` px, each slot at its ``scales``), or ``None``."""
    if not groups:
        return None
    edge = min(min(g[0].shape[-2], g[0].shape[-1]) // scales[0] for g in groups)
    crops = [centre_crop(g, min(size, edge), scales) for g in groups]
    return tuple(np.stack([c[slot] for c in crops]).astype(np.float32) for slot in range(len(scales)))
