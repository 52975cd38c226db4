"""rDL-SIM training data: finding (noisy raw, high-SNR raw, SR target) triplets and sampling aligned patches.

Layouts recognised when ``--target`` is not given:

- BioSR: ``CELL/RawSIMData_level_NN.mrc`` (noisy raw stacks at SNR level NN) with ``CELL/RawSIMData_gt.mrc``
  (high-SNR raw stack) and ``CELL/SIM_gt.mrc`` (SR target) in the same folder (any image suffix);
- ``microrestore simulate sim``: ``ROOT/raw/NAME`` with ``ROOT/raw_clean/NAME`` (noise-free raw) and
  ``ROOT/gt/NAME`` (ground truth on the 2x grid). Several noise levels of the same fields can sit beside each
  other as ``ROOT/raw*/NAME`` sharing one ``raw_clean`` and one ``gt``.

With ``--target`` the high-SNR stacks are paired by file name, and with ``sr_target`` the SR targets too.
Every stack is min-max normalised over its frames, as the authors do; SR targets over their pixels.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from microrestore.errors import InputError

_BIOSR_LEVEL = re.compile(r"^RawSIMData_level_\d+$", re.IGNORECASE)
_BIOSR_OTHER = re.compile(r"^(RawSIMData_gt|SIM_gt.*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Triplet:
    """One training item: a noisy raw file, its high-SNR raw file and its SR target file."""

    noisy: Path
    high: Path
    sr: Path | None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _sibling(path: Path, stem: str) -> Path | None:
    """A file named ``stem`` with any suffix in ``path``'s folder (the same suffix first)."""
    same = path.with_name(stem + path.suffix)
    if same.is_file():
        return same
    matches = sorted(p for p in path.parent.glob(stem + ".*") if p.is_file())
    return matches[0] if matches else None


def _layout_targets(noisy: Path) -> tuple[Path | None, Path | None]:
    """High-SNR raw and SR target of ``noisy`` by the BioSR or simulator layout, ``None`` where absent."""
    if _BIOSR_LEVEL.match(_stem(noisy)):
        return _sibling(noisy, "RawSIMData_gt"), _sibling(noisy, "SIM_gt")
    folder = noisy.parent
    if folder.name.lower().startswith("raw") and folder.name.lower() != "raw_clean":
        high = folder.parent / "raw_clean" / noisy.name
        sr = folder.parent / "gt" / noisy.name
        return (high if high.is_file() else None), (sr if sr.is_file() else None)
    return None, None


def _by_name(files: Sequence[Path], what: str) -> dict[str, Path]:
    table: dict[str, Path] = {}
    for f in files:
        if f.name in table:
            raise InputError(f"two {what} files are named {f.name!r}; they are paired with sources by file name", f)
        table[f.name] = f
    return table


def find_triplets(
    sources: Sequence[Path],
    targets: Sequence[Path] = (),
    sr_targets: Sequence[Path] = (),
    need_sr: bool = True,
) -> list[Triplet]:
    """Pair each noisy raw file with its high-SNR raw file and SR target.

    Parameters
    ----------
    sources
        Noisy raw stacks. BioSR files other than ``RawSIMData_level_NN`` (the targets) are skipped.
    targets
        High-SNR raw stacks paired by file name; empty: by layout.
    sr_targets
        SR targets paired by file name; empty: by layout.
    need_sr
        Refuse sources without an SR target (the DFCAN stage needs them).

    Returns
    -------
    list of Triplet
        One per source, in the given order.

    Raises
    ------
    InputError
        A source without a high-SNR stack (or SR target); the message names it and says how to pair.
    """
    files = [s for s in sources if not _BIOSR_OTHER.match(_stem(s))]
    if not files:
        raise InputError("no noisy raw SIM stacks among the sources")
    high_by_name = _by_name(targets, "target") if targets else {}
    sr_by_name = _by_name(sr_targets, "SR target") if sr_targets else {}
    out = []
    for src in files:
        layout_high, layout_sr = _layout_targets(src)
        high = high_by_name.get(src.name) if targets else layout_high
        sr = sr_by_name.get(src.name) if sr_targets else layout_sr
        if high is None:
            raise InputError(
                "no high-SNR raw stack for this source: give --target files of the same name, or use the BioSR "
                "(RawSIMData_level_NN / RawSIMData_gt) or simulator (raw/ beside raw_clean/) layout",
                src,
            )
        if sr is None and need_sr:
            raise InputError(
                "no SR target for this source: give --set sr_target=FOLDER (files of the same name), or use the "
                "BioSR (SIM_gt) or simulator (gt/) layout",
                src,
            )
        out.append(Triplet(src, high, sr))
    return out


def minmax_np(x: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the array's own minimum and maximum (float32)."""
    x = np.asarray(x, dtype=np.float32)
    low, high = float(x.min()), float(x.max())
    return (x - low) / (high - low + 1e-7)


def split_indices(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split ``range(n)`` into training and validation indices (at least one of each when ``n >= 2``)."""
    if n < 2 or fraction <= 0:
        return list(range(n)), []
    n_val = min(n - 1, max(1, round(n * fraction)))
    order = np.random.default_rng([seed, 11]).permutation(n)
    val = sorted(int(i) for i in order[:n_val])
    return [i for i in range(n) if i not in set(val)], val


def centre_crop(arrays: Sequence[np.ndarray], size: int, scales: Sequence[int]) -> list[np.ndarray]:
    """Centre crops of aligned arrays: ``size`` on the raw grid, ``size * scale`` for each array's scale."""
    ny, nx = arrays[0].shape[-2] // scales[0], arrays[0].shape[-1] // scales[0]
    cy, cx = min(size, ny), min(size, nx)
    y0, x0 = (ny - cy) // 2, (nx - cx) // 2
    return [a[..., s * y0 : s * (y0 + cy), s * x0 : s * (x0 + cx)] for a, s in zip(arrays, scales)]


class AlignedPatches:
    """Random aligned patches from groups of arrays on the raw grid or on an ``s``-times finer grid.

    Parameters
    ----------
    groups
        One list of arrays per item; within an item every array has shape ``(..., s Y, s X)`` for its scale.
    scales
        The scale of each array of an item (1 for raw-grid arrays, 2 for SR images).
    patch
        Patch edge on the raw grid.
    augment
        Random rotation by a multiple of 90 degrees and flip, the same for every array of a patch.
    """

    def __init__(
        self, groups: Sequence[Sequence[np.ndarray]], scales: Sequence[int], patch: int, augment: bool
    ) -> None:
        if not groups:
            raise InputError("no training stacks")
        self.groups = [list(g) for g in groups]
        self.scales = list(scales)
        self.patch = int(patch)
        self.augment = augment
        for g in self.groups:
            ny, nx = g[0].shape[-2] // self.scales[0], g[0].shape[-1] // self.scales[0]
            if min(ny, nx) < self.patch:
                raise InputError(
                    f"training stacks of {ny} x {nx} pixels are smaller than patch_size {self.patch}; lower patch_size"
                )

    def sample(self, rng: np.random.Generator, batch_size: int) -> tuple[np.ndarray, ...]:
        """A batch: for each array position, float32 ``(B, ..., s p, s p)``."""
        out: list[list[np.ndarray]] = [[] for _ in self.scales]
        p = self.patch
        for _ in range(batch_size):
            group = self.groups[int(rng.integers(len(self.groups)))]
            ny, nx = group[0].shape[-2] // self.scales[0], group[0].shape[-1] // self.scales[0]
            y0, x0 = int(rng.integers(ny - p + 1)), int(rng.integers(nx - p + 1))
            op = int(rng.integers(8)) if self.augment else 0
            for slot, (array, s) in enumerate(zip(group, self.scales)):
                crop = array[..., s * y0 : s * (y0 + p), s * x0 : s * (x0 + p)]
                crop = np.rot90(crop, op % 4, axes=(-2, -1))
                if op >= 4:
                    crop = crop[..., ::-1]
                out[slot].append(np.ascontiguousarray(crop, dtype=np.float32))
        return tuple(np.stack(items) for items in out)
