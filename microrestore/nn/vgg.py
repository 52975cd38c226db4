"""VGG-19 (Simonyan & Zisserman 2015) defined here, with torchvision's layer names, and its feature extractor.

torchvision is not a dependency, so the network is defined in the project. :class:`VGG19` lays its modules
out exactly as ``torchvision.models.vgg19`` does (``features.0`` ... ``features.36``, ``avgpool``,
``classifier.0/3/6``), so the ImageNet state dict that PyTorch publishes as ``vgg19-dcbb9e9d.pth`` loads into it
with ``torch.load(..., weights_only=True)`` and ``load_state_dict(strict=True)``.

:class:`VGGFeatures` keeps only the first modules of ``features``, up to a named layer (``relu3_3`` by
default, Keras' ``block3_conv3``, whose convolution includes the ReLU), and handles the input: images scaled
to ``input_range`` (``[-1, 1]`` in COMI) are mapped to [0, 1], single-channel microscopy images are repeated to
three channels, and the ImageNet mean and standard deviation are applied, as for the images VGG-19 was trained
on. Its weights are frozen.

Fetching the published weights (pooch, sha256-verified, cached) lives in :mod:`microrestore.nn.features`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from microrestore.errors import InputError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG19",
    "VGG19_CONFIG",
    "VGGFeatures",
    "load_torchvision_state_dict",
    "vgg19_layer_names",
]

#: torchvision's configuration "E" (VGG-19): conv widths, ``"M"`` for a 2x2 max-pool.
VGG19_CONFIG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip
#: ImageNet statistics of RGB images in [0, 1] (the normalisation VGG-19's weights expect).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layer_names(config: Sequence[int | str] = VGG19_CONFIG) -> list[str]:
    """Name of every module of ``features``, in order: ``conv1_1``, ``relu1_1``, ..., ``pool5``.

    Parameters
    ----------
    config
        Widths and ``"M"`` (max-pool) entries, as :data:`VGG19_CONFIG`.

    Returns
    -------
    list of str
        One name per module of :attr:`VGG19.features` (index ``i`` of the list is ``features.i``).
    """
    names: list[str] = []
    block, conv = 1, 1
    for item in config:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


def _layer_count(layer: str) -> int:
    """Number of ``features`` modules up to and including ``layer`` (Keras names ``block3_conv3`` accepted)."""
    names = vgg19_layer_names()
    name = layer
    if layer.startswith("block") and "_conv" in layer:  # Keras: the conv includes its ReLU
        block, conv = layer[len("block") :].split("_conv")
        name = f"relu{block}_{conv}"
    if name not in names:
        raise InputError(f"unknown VGG-19 layer {layer!r}; valid layers: {', '.join(names)} (or Keras blockB_convC)")
    return names.index(name) + 1


def _make_features(config: Sequence[int | str], count: int | None = None) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = int(item)
    return nn.Sequential(*(layers if count is None else layers[:count]))


class VGG19(nn.Module):
    """VGG-19 with torchvision's module layout and parameter names.

    Parameters
    ----------
    num_classes
        Outputs of the last linear layer (1000 for ImageNet).
    dropout
        Dropout probability of the classifier.
    hidden
        Width of the classifier's hidden layers (4096 in VGG-19; smaller values keep the key names, for tests).

    Notes
    -----
    The module tree is ``features`` (37 modules: 16 convs with ReLUs and 5 max-pools), ``avgpool``
    (adaptive average pooling to 7x7) and ``classifier`` (Linear 25088 -> 4096, ReLU, Dropout, Linear 4096 ->
    4096, ReLU, Dropout, Linear 4096 -> ``num_classes``), so its ``state_dict`` keys are torchvision's.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5, hidden: int = 4096) -> None:
        super().__init__()
        self.features = _make_features(VGG19_CONFIG)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, hidden),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores ``(B, num_classes)`` of ImageNet-normalised RGB images ``(B, 3, H, W)``."""
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


class VGGFeatures(nn.Module):
    """Frozen VGG-19 features up to ``layer``, for perceptual losses on microscopy images.

    Parameters
    ----------
    layer
        Last module kept: ``relu3_3`` (default; Keras ``block3_conv3``, as in COMI), any name of
        :func:`vgg19_layer_names`, or a Keras name ``blockB_convC``.
    input_range
        Range of the images given to :meth:`forward` (``(-1, 1)`` for images scaled as COMI scales them); it
        is mapped onto [0, 1] before the ImageNet normalisation.

    Attributes
    ----------
    features : torch.nn.Sequential
        The first modules of :attr:`VGG19.features` (same indices, so torchvision's keys ``features.N.*``).
    spec : dict
        Constructor arguments.
    """

    def __init__(self, layer: str = "relu3_3", input_range: tuple[float, float] = (-1.0, 1.0)) -> None:
        super().__init__()
        low, high = (float(v) for v in input_range)
        if not high > low:
            raise ValueError(f"input_range needs low < high, got {input_range}")
        self.spec: dict[str, Any] = {"layer": layer, "input_range": [low, high]}
        self.features = _make_features(VGG19_CONFIG, _layer_count(layer))
        self.input_low, self.input_span = low, high - low
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:
        """Stay in eval mode: the extractor is frozen (no dropout or batch norm to switch anyway)."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of images ``(B, C, H, W)`` with ``C`` = 1 (repeated to RGB) or 3, scaled to ``input_range``."""
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"VGGFeatures expects (B, 1 or 3, H, W) images, got {tuple(x.shape)}")
        x = (x.float() - self.input_low) / self.input_span
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.features((x - self.mean) / self.std)

    def load_torchvision(self, state_dict: Mapping[str, torch.Tensor], source: str | Path | None = None) -> None:
        """Load the ``features.*`` weights this extractor keeps from a torchvision VGG-19 state dict.

        Parameters
        ----------
        state_dict
            torchvision's key names (``features.0.weight``, ...); keys of later layers and of the classifier
            are ignored.
        source
            File the state dict came from, for error messages.

        Raises
        ------
        InputError
            A key the extractor needs is missing or has the wrong shape.
        """
        own = self.features.state_dict()
        wanted = {}
        for key, value in own.items():
            full = f"features.{key}"
            if full not in state_dict:
                raise InputError(f"not a VGG-19 state dict: it has no {full!r}", source)
            tensor = state_dict[full]
            if tuple(tensor.shape) != tuple(value.shape):
                raise InputError(
                    f"not a VGG-19 state dict: {full} has shape {tuple(tensor.shape)}, expected {tuple(value.shape)}",
                    source,
                )
            wanted[key] = tensor.to(value.dtype)
        self.features.load_state_dict(wanted, strict=True)


def load_torchvision_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a torchvision ``.pth`` state dict safely: ``torch.load(..., weights_only=True)``, memory-mapped.

    Parameters
    ----------
    path
        The file, e.g. ``vgg19-dcbb9e9d.pth``.

    Returns
    -------
    dict of str to torch.Tensor
        The state dict (CPU tensors backed by the file).

    Raises
    ------
    InputError
        The file is not a (safe) torch state dict.
    """
    path = Path(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # unpickling refused, not a zip archive, truncated file, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read the state dict: {first}", path) from None
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise InputError("not a state dict of tensors", path)
    return dict(loaded)
