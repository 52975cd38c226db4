"""COMI's training data: pairing (file names, a pairs file, or the in-focus slice of z-stacks) and scaling.

Every image becomes a list of 2D samples ``(C, Y, X)``. Samples are scaled onto COMI's [-1, 1]:

- ``percentile`` (default): an input image with percentiles ``lo``, ``hi`` maps ``lo`` to -1 and
  ``lo + h (hi - lo)`` to 1, with the headroom ``h`` >= 1 leaving room for the brighter peaks of in-focus images;
  a paired target uses its source's ``lo`` and ``hi`` (intensities of a pair stay comparable, so the network
  learns in the input's units). The model stores a :class:`PercentileNormalizer` (``lo`` -> 0, ``hi`` -> 1) and
  the generator carries the affine ``z = 2 u / h - 1`` (see :class:`microrestore_comi.networks.ComiGenerator`).
- ``fixed``: one range for every image (``FixedNormalizer``), as COMI's ``x / 127.5 - 1``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.engine.datasets import check_pair_shapes, load_samples, pair_by_name, samples_from_image
from microrestore.engine.normalization import FixedNormalizer, PercentileNormalizer, subsample
from microrestore.errors import InputError
from microrestore_comi.config import ComiConfig

#: Margin on the automatic headroom and on the automatic fixed range.
MARGIN = 1.05


@dataclass
class ComiData:
    """Training samples on COMI's [-1, 1] scale and what the model must store to reproduce the scaling.

    Attributes
    ----------
    sources, targets
        Out-of-focus (domain A) and in-focus (domain B) samples ``(C, Y, X)``, float32 on [-1, 1]; paired
        lists have equal lengths and shapes.
    fields
        Per source sample, the index of its field (pairs of one field share it; used for the validation split).
    normalization
        The normaliser's dict for the model folder.
    in_scale, in_offset
        The generator's affine from the normaliser's units onto [-1, 1].
    resolved
        Values of the configuration resolved from the data (``headroom``, ``intensity_range``).
    source_files, target_files
        The files used, for the provenance.
    """

    sources: list[np.ndarray]
    targets: list[np.ndarray]
    fields: list[int]
    normalization: dict[str, Any]
    in_scale: float
    in_offset: float
    resolved: dict[str, Any] = field(default_factory=dict)
    source_files: list[str] = field(default_factory=list)
    target_files: list[str] = field(default_factory=list)


def read_pairs_file(path: Path, sources: Sequence[Path], targets: Sequence[Path]) -> list[tuple[Path, Path]]:
    """Pairs from a ``source,target`` text file (names or paths; ``#`` comments), for every source.

    Raises
    ------
    InputError
        Unreadable file, a malformed line, a source that is not listed, or a target that cannot be found.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the pairs file: {exc.strerror or exc}", path) from None
    listed: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = [p.strip() for p in line.replace("\t", ",").split(",")]
        if len(parts) != 2 or not all(parts):
            raise InputError(f"line {number}: expected 'source,target', got {line!r}", path)
        listed[parts[0]] = parts[1]
    by_name = {t.name: t for t in targets}
    pairs = []
    for src in sources:
        key = next((k for k in (str(src), src.name) if k in listed), None)
        if key is None:
            relative = [k for k in listed if (path.parent / k).resolve() == src.resolve()]
            key = relative[0] if relative else None
        if key is None:
            raise InputError(f"source {src.name} is not listed in the pairs file", path)
        name = listed[key]
        target = by_name.get(name) or by_name.get(Path(name).name)
        if target is None:
            candidate = Path(name) if Path(name).is_absolute() else path.parent / name
            if not candidate.is_file():
                raise InputError(f"target {name!r} of {src.name} is neither among --target nor a file", path)
            target = candidate
        pairs.append((src, target))
    return pairs


def pair_by_prefix(sources: Sequence[Path], targets: Sequence[Path]) -> list[tuple[Path, Path]]:
    """Pair each source with the target whose stem is the longest prefix of the source's stem (then a separator).

    Raises
    ------
    InputError
        A source with no such target (the message names it).
    """
    stems = sorted(((t.stem, t) for t in targets), key=lambda item: -len(item[0]))

    def extends(name: str, stem: str) -> bool:
        return name == stem or (name.startswith(stem) and name[len(stem)] in "_-. ")

    pairs = []
    for src in sources:
        found = next((t for stem, t in stems if extends(src.stem, stem)), None)
        if found is None:
            raise InputError(f"no target whose name starts {src.stem!r} (pair_by=prefix)", src)
        pairs.append((src, found))
    return pairs


def _stack_planes(path: Path, config: ComiConfig, axes: str | None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(in-focus plane, out-of-focus planes) of one z-stack for ``focus_slice``."""
    from microrestore.api import check_image
    from microrestore.engine.predictor import AxesLayout
    from microrestore.io import read_image

    image = read_image(path, axes=axes)
    check_image(image)
    if "Z" not in image.axes:
        raise InputError(f"focus_slice needs z-stacks; the image has axes {image.axes!r} (no Z; try --axes ZYX)", path)
    layout = AxesLayout.plan(image.axes, tuple(image.data.shape), 2, config.channels, path)
    if layout.loop != "Z":
        raise InputError(f"focus_slice needs ZYX stacks (one Z axis besides Y, X), got axes {image.axes!r}", path)
    planes = samples_from_image(image, 2, config.channels)
    assert config.focus_slice is not None
    if config.focus_slice >= len(planes):
        count = len(planes)
        raise InputError(f"focus_slice {config.focus_slice} is outside the stack's {count} slices (0-based)", path)
    chosen = config.defocus_slices
    if chosen is None:
        chosen = [i for i in range(len(planes)) if i != config.focus_slice]
    bad = [i for i in chosen if i >= len(planes)]
    if bad:
        raise InputError(f"defocus_slices {bad} are outside the stack's {len(planes)} slices (0-based)", path)
    if not chosen:
        raise InputError("the stack has no slice besides the focus slice", path)
    return [planes[config.focus_slice]], [planes[i] for i in chosen]


def collect(
    config: ComiConfig, sources: Sequence[Path], targets: Sequence[Path], axes: str | None
) -> tuple[list[np.ndarray], list[np.ndarray], list[int], list[Path]]:
    """Raw samples of both domains, the field of each source sample, and the target files used.

    In paired mode ``targets[i]`` pairs with ``sources[i]``. The field of a pair is its in-focus image (z-stack
    slices share their stack's field; unpaired, each source file is a field).
    """
    src_samples: list[np.ndarray] = []
    tgt_samples: list[np.ndarray] = []
    fields: list[int] = []
    if config.focus_slice is not None:
        if targets:
            raise InputError("with focus_slice the in-focus images are slices of the --source stacks; drop --target")
        for index, path in enumerate(sources):
            focus, defocus = _stack_planes(path, config, axes)
            src_samples += defocus
            fields += [index] * len(defocus)
            tgt_samples += focus * len(defocus) if config.paired else focus
        return src_samples, tgt_samples, fields, list(sources)
    if not targets:
        raise InputError(
            "COMI needs in-focus images: give --target (paired by file name or pairs_file), or z-stacks as "
            "--source with --focus-slice N"
        )
    if config.paired:
        if config.pairs_file is not None:
            pairs = read_pairs_file(Path(config.pairs_file), sources, targets)
        elif config.pair_by == "prefix":
            pairs = pair_by_prefix(sources, targets)
        else:
            pairs = pair_by_name(sources, targets)
        src_files = load_samples([p[0] for p in pairs], ndim=2, axes=axes, channels=config.channels)
        tgt_files = load_samples([p[1] for p in pairs], ndim=2, axes=axes, channels=config.channels)
        check_pair_shapes(pairs, src_files, tgt_files)
        # A field is its in-focus image: the defocused images that share it (pair_by=prefix) stay together.
        field_of = {t: i for i, t in enumerate(dict.fromkeys(p[1] for p in pairs))}
        for (_, target), s_list, t_list in zip(pairs, src_files, tgt_files):
            src_samples += s_list
            tgt_samples += t_list
            fields += [field_of[target]] * len(s_list)
        return src_samples, tgt_samples, fields, [p[1] for p in pairs]
    for index, per_file in enumerate(load_samples(sources, ndim=2, axes=axes, channels=config.channels)):
        src_samples += per_file
        fields += [index] * len(per_file)
    for per_file in load_samples(targets, ndim=2, axes=axes, channels=config.channels):
        tgt_samples += per_file
    return src_samples, tgt_samples, fields, list(targets)


def _values(sample: np.ndarray) -> np.ndarray:
    return np.asarray(subsample(sample, 1 << 20), dtype=np.float64).ravel()


def prepare(config: ComiConfig, sources: Sequence[Path], targets: Sequence[Path], axes: str | None) -> ComiData:
    """Collect, pair and scale the training data (see the module docstring)."""
    src, tgt, fields, target_files = collect(config, sources, targets, axes)
    small = [s.shape[-2:] for s in (*src, *tgt) if min(s.shape[-2:]) < config.patch_size]
    if small:
        raise InputError(f"training images of {tuple(small[0])} px are smaller than patch_size {config.patch_size}")
    info = {"source_files": [str(p) for p in sources], "target_files": [str(p) for p in target_files]}
    if config.normalization == "fixed":
        if config.intensity_range == "auto":
            lows = [np.percentile(_values(s), config.percentile_low) for s in (*src, *tgt)]
            highs = [np.percentile(_values(s), config.percentile_high) for s in (*src, *tgt)]
            low, high = float(min(lows)), float(max(highs))
            pad = (MARGIN - 1.0) * max(high - low, 1e-6)
            low, high = low - pad, high + pad
        else:
            low, high = (float(v) for v in config.intensity_range)
        norm = FixedNormalizer.from_range(low, high)
        return ComiData(
            sources=[norm.apply(s) for s in src],
            targets=[norm.apply(t) for t in tgt],
            fields=fields,
            normalization=norm.to_dict(),
            in_scale=1.0,
            in_offset=0.0,
            resolved={"intensity_range": (round(low, 6), round(high, 6))},
            **info,
        )

    normalizer = PercentileNormalizer(low=config.percentile_low, high=config.percentile_high)
    src_params = [normalizer.fit(s) for s in src]
    if config.paired:
        tgt_params = src_params
        ratios = []
        for t, p in zip(tgt, src_params):
            top = float(np.percentile(_values(t), config.percentile_high))
            ratios.append((top - p.shift[0]) / p.divisor[0])
        auto = MARGIN * max(1.0, max(ratios))
    else:
        tgt_params = [normalizer.fit(t) for t in tgt]
        auto = 1.0
    headroom = auto if config.headroom == "auto" else float(config.headroom)
    in_scale, in_offset = 2.0 / headroom, -1.0

    def scaled(sample: np.ndarray, params: Any) -> np.ndarray:
        out = normalizer.apply(sample, params)
        out *= np.float32(in_scale)
        out += np.float32(in_offset)
        return out

    return ComiData(
        sources=[scaled(s, p) for s, p in zip(src, src_params)],
        targets=[scaled(t, p) for t, p in zip(tgt, tgt_params)],
        fields=fields,
        normalization=normalizer.to_dict(),
        in_scale=in_scale,
        in_offset=in_offset,
        resolved={"headroom": round(headroom, 6)},
        **info,
    )


def split_fields(
    data: ComiData, fraction: float, seed: int, min_size: int
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Hold out whole fields for validation (paired data): ``(train_src, train_tgt, val_src, val_tgt)``.

    With two or more fields, ``round(fraction * n)`` of them (at least one, at least one left) are held out, all
    their pairs with them, so no held-out field is seen in training (z-stacks: every slice of a held-out stack).
    With one field, the last ``fraction`` of each pair's rows is held out. Held-out parts smaller than
    ``min_size`` are given back to training (no validation).
    """
    if fraction <= 0:
        return data.sources, data.targets, [], []
    ids = sorted(set(data.fields))
    if len(ids) >= 2:
        n_val = min(len(ids) - 1, max(1, round(fraction * len(ids))))
        order = np.random.default_rng([int(seed), 0x5A11]).permutation(len(ids))
        held = {ids[i] for i in order[:n_val]}
        train = [i for i, f in enumerate(data.fields) if f not in held]
        val = [i for i, f in enumerate(data.fields) if f in held]
        return (
            [data.sources[i] for i in train],
            [data.targets[i] for i in train],
            [data.sources[i] for i in val],
            [data.targets[i] for i in val],
        )
    rows = min(s.shape[-2] for s in data.sources)
    n_val = max(1, round(fraction * rows))
    if n_val < min_size or rows - n_val < min_size:
        return data.sources, data.targets, [], []
    cut = [s.shape[-2] - n_val for s in data.sources]
    return (
        [s[..., :c, :] for s, c in zip(data.sources, cut)],
        [t[..., :c, :] for t, c in zip(data.targets, cut)],
        [s[..., c:, :] for s, c in zip(data.sources, cut)],
        [t[..., c:, :] for t, c in zip(data.targets, cut)],
    )
