"""Frozen feature networks for perceptual losses, selectable by name.

``FEATURE_NETWORKS`` lists them:

``microscopy`` (the default of the methods that use one)
    A small VGG-style encoder (:class:`MicroscopyFeatures`: two 3x3 convs per level, 16/32/64 channels, two 2x2
    poolings, so its output is at 1/4 resolution like VGG-19's ``relu3_3``), trained by
    ``scripts/train_microscopy_features.py`` as the encoder of an autoencoder that rebuilds its input (clean or
    noisy, blurred or sharp, at random intensity ranges) from simulated fluorescence images and CC0/BSD-licensed
    real microscopy. Version 2 uses LeakyReLU and average pooling, so that every pixel reaches the features and
    matching an image's features pins its pixels down (version 1, ReLU and max-pooling trained to denoise, let a
    generator match its features without matching the image). Its weights ship with the package
    (``microrestore/nn/weights/``, safetensors, verified by sha256), so a perceptual loss works offline and
    in tests. ImageNet features fit microscopy poorly (the COMI paper says so itself); these are learned on
    microscopy.
``vgg19-imagenet``
    VGG-19 with ImageNet weights up to ``relu3_3`` (Keras ``block3_conv3``), the faithful choice for COMI.
    The weights are PyTorch's published ``vgg19-dcbb9e9d.pth`` (548 MiB), downloaded once with pooch into
    the zoo cache (``$MICRORESTORE_CACHE``), verified against their sha256 and read with
    ``torch.load(..., weights_only=True)``. Offline (``MICRORESTORE_OFFLINE=1``) only a cached copy is used.
``pixel``
    The image itself (no features): perceptual terms become pixel MSE. For ablations.

Every network maps images ``(B, C, H, W)`` scaled to ``input_range`` to features; its parameters are frozen.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from microrestore.errors import InputError

__all__ = [
    "FEATURE_NETWORKS",
    "MICROSCOPY_FEATURES_FILE",
    "VGG19_IMAGENET",
    "FeatureNetworkInfo",
    "MicroscopyFeatures",
    "PixelFeatures",
    "WeightsFile",
    "feature_network",
    "fetch_weights",
    "load_microscopy_features",
    "pixel_recovery",
    "vgg19_imagenet_features",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class WeightsFile:
    """A weights file fetched through the zoo's download mechanism (pooch, sha256, user cache).

    Attributes
    ----------
    id
        Cache folder name (``<cache>/<id>/<version>/``) and the path part under ``$MICRORESTORE_ZOO_URL``.
    name
        File name.
    url
        Where the file is published.
    sha256
        Hex sha256 of the file; a download that does not match is discarded.
    license
        Licence of the weights.
    version
        Cache sub-folder.
    """

    id: str
    name: str
    url: str
    sha256: str
    license: str
    version: str = "1"


#: PyTorch's ImageNet VGG-19 (torchvision's file; the name carries the first 8 hex digits of its sha256).
VGG19_IMAGENET = WeightsFile(
    id="vgg19-imagenet",
    name="vgg19-dcbb9e9d.pth",
    url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    sha256="dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
    license="BSD-3-Clause (torchvision); VGG weights CC BY 4.0 (Simonyan & Zisserman)",
)

#: The shipped microscopy feature network and its sha256 (checked on every load).
MICROSCOPY_FEATURES_FILE = WEIGHTS_DIR / "microscopy-features-v2.safetensors"
MICROSCOPY_FEATURES_SHA256 = "38274a5869f7d1129c1572457fef0edf8e527b3015fec6d82ccc3ce8234948ef"


def fetch_weights(weights: WeightsFile, *, offline: bool | None = None) -> Path:
    """Download ``weights`` into the cache (or find it there), verified by sha256; return the file.

    Uses :func:`microrestore.zoo.fetch.fetch_model`: pooch streams the download to a temporary file and keeps it
    only when its sha256 matches; cached files are verified again on every use. ``$MICRORESTORE_ZOO_URL``
    (a mirror laid out as ``<base>/<id>/<name>``) replaces ``weights.url`` when set.

    Parameters
    ----------
    weights
        The file to fetch.
    offline
        True: use only the cache; None: read ``$MICRORESTORE_OFFLINE``.

    Returns
    -------
    Path
        The verified file in the cache.

    Raises
    ------
    InputError
        Offline and not cached, or a download (or cached copy) whose sha256 does not match (nothing is cached).
    MicrorestoreError
        The server or network still failing after the retries.
    """
    from microrestore.zoo import ZooEntry
    from microrestore.zoo.fetch import fetch_model

    entry = ZooEntry(
        id=weights.id,
        method="features",
        task="features",
        version=weights.version,
        description=f"weights file {weights.name}",
        license=weights.license,
        files=[{"name": weights.name, "sha256": weights.sha256, "url": weights.url}],
    )
    return fetch_model(entry, offline=offline) / weights.name


# ----------------------------------------------------------------------------------------------------------
# Networks


class _Frozen(nn.Module):
    """A feature network: frozen parameters, always in eval mode."""

    def _freeze(self) -> None:
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> _Frozen:
        """Stay in eval mode."""
        return super().train(False)


class PixelFeatures(_Frozen):
    """The image itself as its "features" (perceptual losses become pixel losses; for ablations)."""

    def __init__(self) -> None:
        super().__init__()
        self.spec: dict[str, Any] = {"name": "pixel"}
        self._freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x`` as float32."""
        return x.float()


class MicroscopyFeatures(_Frozen):
    """Small VGG-style encoder for single-channel microscopy images.

    Per level two 3x3 convs (zero padded), each followed by ``activation``; a 2x2 pooling (``pool``) between
    levels. With the default widths (16, 32, 64) the output has 64 channels at 1/4 resolution (72,000
    parameters). Multi-channel images are encoded channel by channel (features concatenated).

    Parameters
    ----------
    widths
        Channels of each level.
    input_range
        Range of the images given to :meth:`forward`; mapped onto [-1, 1], the scale the network was
        trained on.
    activation
        ``relu`` (VGG's; version 1) or ``leaky_relu`` (slope 0.2; version 2: no input region is invisible).
    pool
        ``max`` (VGG's; version 1) or ``avg`` (version 2: every pixel reaches the output).

    Attributes
    ----------
    scale : torch.Tensor
        Per-channel factor ``(C, 1, 1)`` applied to the output so that every feature channel has unit standard
        deviation over the training patches, 0 for channels that never vary (stored with the weights): differences
        between images are then in
        units of each feature's natural spread, as for VGG features, which keeps the weights of the losses built
        on them meaningful.
    spec : dict
        Constructor arguments with ``name: "microscopy"``.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (16, 32, 64),
        input_range: tuple[float, float] = (-1.0, 1.0),
        activation: str = "relu",
        pool: str = "max",
    ) -> None:
        super().__init__()
        if activation not in ("relu", "leaky_relu"):
            raise ValueError(f"activation must be relu or leaky_relu, got {activation!r}")
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be max or avg, got {pool!r}")
        low, high = (float(v) for v in input_range)
        if not high > low:
            raise ValueError(f"input_range needs low < high, got {input_range}")
        widths = tuple(int(w) for w in widths)
        if not widths or min(widths) < 1:
            raise ValueError(f"widths must be positive, got {widths}")
        self.spec = {
            "name": "microscopy",
            "widths": list(widths),
            "input_range": [low, high],
            "activation": activation,
            "pool": pool,
        }

        def act() -> nn.Module:
            return nn.ReLU(inplace=True) if activation == "relu" else nn.LeakyReLU(0.2, inplace=True)

        layers: list[nn.Module] = []
        channels = 1
        for level, width in enumerate(widths):
            if level:
                layers.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
            layers += [nn.Conv2d(channels, width, 3, padding=1), act()]
            layers += [nn.Conv2d(width, width, 3, padding=1), act()]
            channels = width
        self.features = nn.Sequential(*layers)
        self.register_buffer("scale", torch.ones(widths[-1], 1, 1))
        self.input_low, self.input_span = low, high - low
        self.out_channels = channels
        self.size_multiple = 2 ** (len(widths) - 1)
        self._freeze()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Unscaled features of ``(B, 1, H, W)`` images already on [-1, 1] (used when training the network)."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(B, C * widths[-1], H / 4, W / 4)`` of images ``(B, C, H, W)`` scaled to ``input_range``."""
        if x.dim() != 4:
            raise ValueError(f"MicroscopyFeatures expects (B, C, H, W) images, got {tuple(x.shape)}")
        b, c, h, w = x.shape
        x = 2.0 * (x.float() - self.input_low) / self.input_span - 1.0
        y = self.features(x.reshape(b * c, 1, h, w)) * self.scale
        return y.reshape(b, c * y.shape[1], *y.shape[2:])


def load_microscopy_features(
    path: str | Path | None = None, input_range: tuple[float, float] = (-1.0, 1.0), sha256: str | None = None
) -> MicroscopyFeatures:
    """Load a :class:`MicroscopyFeatures` from its safetensors file (the shipped one by default).

    Parameters
    ----------
    path
        The file; default :data:`MICROSCOPY_FEATURES_FILE`, verified against :data:`MICROSCOPY_FEATURES_SHA256`.
    input_range
        Range of the images the loss will feed it.
    sha256
        Expected sha256 of ``path`` (``None``: the shipped file's for the default path, no check otherwise).

    Raises
    ------
    InputError
        Missing or corrupted file, or weights that do not fit the recorded widths.
    """
    from safetensors import SafetensorError, safe_open

    from microrestore.zoo import sha256_of

    if path is None:
        path, sha256 = MICROSCOPY_FEATURES_FILE, sha256 or MICROSCOPY_FEATURES_SHA256
    path = Path(path)
    if not path.is_file():
        raise InputError("the microscopy feature network's weights are missing (reinstall microrestore)", path)
    if sha256 is not None and sha256_of(path) != sha256:
        raise InputError("the microscopy feature network's weights do not match their sha256 (corrupted)", path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise InputError(f"cannot read the feature network: {exc}", path) from None
    try:
        widths = tuple(json.loads(metadata.get("widths", "[16, 32, 64]")))
    except (TypeError, ValueError):
        raise InputError("feature network metadata 'widths' is not a JSON list", path) from None
    activation, pool = metadata.get("activation", "relu"), metadata.get("pool", "max")
    try:
        network = MicroscopyFeatures(widths, input_range, activation, pool)
    except ValueError as exc:
        raise InputError(f"feature network metadata: {exc}", path) from None
    try:
        network.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"feature network weights do not fit widths {widths}: {first}", path) from None
    return network


def pixel_recovery(
    network: nn.Module, *, fields: int = 4, size: int = 96, steps: int = 600, seed: int = 5
) -> dict[int, float]:
    """How well a content loss on ``network``'s features pins an image down (PSNR in dB after so many steps).

    Simulated filament fields: a sharp image and its blurred copy (Gaussian sigma 3 px), scaled as COMI scales a
    defocused input (the blurred image's peak at a third of [-1, 1]). The blurred image's pixels are optimised
    (Adam, lr 0.01) to match the sharp image's features. A feature network fit for a content loss brings them
    close to the sharp image; pixel MSE (:class:`PixelFeatures`) brings them all the way.

    Parameters
    ----------
    network
        A feature network on [-1, 1] (frozen).
    fields, size
        Number and edge of the simulated fields.
    steps
        Optimisation steps.
    seed
        Seed of the fields.

    Returns
    -------
    dict
        PSNR to the sharp images on [-1, 1] (data range 2) at step 0 (the blurred images), 50, 200 and ``steps``.
    """
    from scipy import ndimage

    from microrestore.simulation.phantoms import filaments

    rng = np.random.default_rng(seed)
    sharp = np.stack([ndimage.gaussian_filter(filaments((size, size), rng), 1.0) for _ in range(fields)])
    blurred = np.stack([ndimage.gaussian_filter(image, 3.0) for image in sharp])
    top = 3.0 * float(np.percentile(blurred, 99.9))
    target, start = (torch.from_numpy((2 * a / top - 1).astype(np.float32))[:, None] for a in (sharp, blurred))
    with torch.no_grad():
        wanted = network(target)

    def psnr(a: torch.Tensor) -> float:
        return float(10 * torch.log10(4 / torch.mean((a.detach() - target) ** 2)))

    x = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=0.01)
    report = {0: psnr(x)}
    for step in range(1, steps + 1):
        loss = torch.mean((network(x) - wanted) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step in (50, 200, steps):
            report[step] = psnr(x)
    return report


def vgg19_imagenet_features(
    layer: str = "relu3_3", input_range: tuple[float, float] = (-1.0, 1.0), *, offline: bool | None = None
) -> nn.Module:
    """VGG-19 ImageNet features up to ``layer``; the weights are fetched (once) and verified by sha256.

    Raises
    ------
    InputError
        Offline without a cached copy (the message suggests the shipped ``microscopy`` network), or a
        download that does not match the sha256.
    """
    from microrestore.nn.vgg import VGGFeatures, load_torchvision_state_dict

    try:
        path = fetch_weights(VGG19_IMAGENET, offline=offline)
    except InputError as exc:
        raise InputError(
            f"{exc}; the ImageNet VGG-19 weights "
            f"({VGG19_IMAGENET.url}) are needed for feature_network=vgg19-imagenet; use the shipped "
            "feature_network=microscopy offline"
        ) from None
    network = VGGFeatures(layer, input_range)
    network.load_torchvision(load_torchvision_state_dict(path), path)
    return network


@dataclass(frozen=True)
class FeatureNetworkInfo:
    """A feature network in :data:`FEATURE_NETWORKS`: a one-line description and its builder."""

    description: str
    build: Callable[..., nn.Module]


FEATURE_NETWORKS: dict[str, FeatureNetworkInfo] = {
    "microscopy": FeatureNetworkInfo(
        "small encoder trained on microscopy images, shipped with microrestore (works offline)",
        lambda layer, input_range, offline: load_microscopy_features(input_range=input_range),
    ),
    "vgg19-imagenet": FeatureNetworkInfo(
        "VGG-19 ImageNet features (relu3_3 = Keras block3_conv3 by default), downloaded once (548 MiB, sha256)",
        lambda layer, input_range, offline: vgg19_imagenet_features(layer, input_range, offline=offline),
    ),
    "pixel": FeatureNetworkInfo(
        "no features: the image itself (perceptual terms become pixel MSE; for ablations)",
        lambda layer, input_range, offline: PixelFeatures(),
    ),
}


def feature_network(
    name: str,
    *,
    layer: str = "relu3_3",
    input_range: tuple[float, float] = (-1.0, 1.0),
    offline: bool | None = None,
) -> nn.Module:
    """Build the frozen feature network ``name`` (see :data:`FEATURE_NETWORKS`).

    Parameters
    ----------
    name
        ``microscopy``, ``vgg19-imagenet`` or ``pixel``.
    layer
        Last VGG-19 layer for ``vgg19-imagenet`` (ignored by the others).
    input_range
        Range of the images the loss feeds it (``(-1, 1)`` for COMI's scaling).
    offline
        For ``vgg19-imagenet``: True uses only the cache; None reads ``$MICRORESTORE_OFFLINE``.

    Raises
    ------
    InputError
        Unknown name (the message lists the known ones), or weights that cannot be had.
    """
    info = FEATURE_NETWORKS.get(name)
    if info is None:
        raise InputError(f"unknown feature network {name!r}; known: {', '.join(FEATURE_NETWORKS)}")
    return info.build(layer, input_range, offline)
