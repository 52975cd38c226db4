"""COMI training configuration (pydantic): every field has a default and a docstring."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from microrestore.plugin_api import GanFilters, ImageChannels, ResBlocks, TrainingOptions


class ComiPredictOptions(BaseModel):
    """Inference options of ``comi`` (``--set key=value``)."""

    model_config = ConfigDict(extra="forbid")

    direction: Literal["AtoB", "BtoA"] = "AtoB"
    """``AtoB`` runs G (out of focus -> in focus, the correction); ``BtoA`` runs F (in focus -> out of focus)."""


class ComiConfig(TrainingOptions):
    """Configuration of a COMI model (Zhang et al., Comput. Struct. Biotechnol. J. 2022) and its training."""

    model_config = ConfigDict(extra="forbid")

    paired: bool = True
    """Paired training (COMI as published, the default): each out-of-focus image (``--source``) has the in-focus
    image of the same field (``--target``, matched by file name, ``pairs_file`` or ``focus_slice``), and the
    content loss compares G(a) with it. ``False`` (``--unpaired``): the two sets are drawn independently, as in
    CycleGAN, and the content term follows ``content_target``."""
    content_target: Literal["auto", "paired", "input", "none"] = "auto"
    """What the perceptual content loss compares G(a) (and F(b)) with: ``paired``, the other domain's image of the
    same field (COMI; paired mode only); ``input``, the generator's own input (content preservation without
    pairs); ``none``, no content term. ``auto``: ``paired`` in paired mode, ``none`` in unpaired mode."""
    feature_network: str = "microscopy"
    """Feature network of the perceptual losses (see ``microrestore.nn.features``): ``microscopy`` (shipped,
    trained on microscopy, works offline), ``vgg19-imagenet`` (COMI's ImageNet VGG-19 up to ``feature_layer``,
    downloaded once and verified by sha256), or ``pixel`` (no features: pixel MSE, for ablations)."""
    feature_layer: str = "relu3_3"
    """Last VGG-19 layer for ``vgg19-imagenet`` (``relu3_3`` = Keras ``block3_conv3``, as in COMI)."""
    weight_adversarial: float = Field(1e-3, ge=0)
    """Weight of each adversarial term (on G(a) and on F(G(a)), and on F(b) and G(F(b)))."""
    weight_content: float = Field(1.0, ge=0)
    """Weight of the perceptual content loss in each direction."""
    weight_cycle: float = Field(1.0, ge=0)
    """Weight of the perceptual cycle loss (F(G(a)) against a, G(F(b)) against b)."""
    weight_identity: float = Field(1.0, ge=0)
    """Weight of the identity-type term (pixel MSE of F(a) against a, and of G(b) against b)."""
    ngf: GanFilters = 64
    """Filters of the generators' first convolution."""
    n_blocks: ResBlocks = 9
    """Residual blocks of the ResNet generators (9 in COMI)."""
    ndf: GanFilters = 64
    """Filters of the discriminators' first convolution."""
    channels: ImageChannels = 1
    """Image channels (1 for microscopy; e.g. 3 for RGB images with a C axis)."""
    patch_size: int = Field(128, ge=48)
    """Edge of the training patches (YX): a multiple of 16, at least 48 (the discriminator halves it four times);
    COMI trains on whole 512 px images."""
    batch_size: int = Field(4, ge=1)
    """Patches per step (4 in COMI)."""
    steps: int = Field(25_000, ge=1)
    """Training steps (25k in COMI)."""
    learning_rate: float = Field(1e-4, gt=0)
    """Adam learning rate of generators and discriminators."""
    beta1: float = Field(0.5, ge=0, lt=1)
    """Adam beta1."""
    beta2: float = Field(0.99, ge=0, lt=1)
    """Adam beta2."""
    normalization: Literal["percentile", "fixed"] = "percentile"
    """Intensity scaling onto COMI's [-1, 1]: ``percentile`` maps each input image's ``percentile_low`` to -1 and
    ``percentile_low + headroom * (percentile_high - percentile_low)`` to 1 (a paired target uses its source's
    values, so outputs are in the input's units); ``fixed`` maps one ``intensity_range`` onto [-1, 1] for every
    image (COMI's x / 127.5 - 1 on 8-bit images)."""
    percentile_low: float = Field(0.1, ge=0, lt=50)
    """Lower percentile of ``percentile`` scaling."""
    percentile_high: float = Field(99.9, gt=50, le=100)
    """Upper percentile of ``percentile`` scaling."""
    headroom: Literal["auto"] | float = "auto"
    """Room above the input's upper percentile in ``percentile`` scaling: in-focus images are brighter at their
    peaks than out-of-focus ones of the same field. ``auto``: in paired mode 1.05 times the largest ratio over the
    training pairs of (target's upper percentile - source's lower) / (source's upper - source's lower), at
    least 1.05; in unpaired mode (each image scaled by its own percentiles) 1."""
    intensity_range: Literal["auto"] | tuple[float, float] = "auto"
    """The range mapped onto [-1, 1] in ``fixed`` scaling; ``auto``: the lowest ``percentile_low`` and the highest
    ``percentile_high`` over all training images of both domains, widened by 5 %."""
    pair_by: Literal["name", "prefix"] = "name"
    """How ``--source`` files find their in-focus ``--target``: ``name``, the same file name; ``prefix``, the target
    whose name (without extension) is the longest prefix of the source's, followed by ``_``, ``-``, ``.`` or a
    space, so one in-focus image serves every defocused image of its field (``field_003.tif`` for
    ``field_003_dz+0.40.tif``, as ``microrestore simulate defocus`` names them)."""
    pairs_file: str | None = None
    """Explicit pairs instead of matching by file name: a text file with one ``source,target`` pair per line
    (file names or paths, relative to the file's folder; ``#`` starts a comment). Every ``--source`` file must be
    listed; targets are found among ``--target`` files, or read from the given path."""
    focus_slice: int | None = Field(None, ge=0)
    """Z-stacks with their own in-focus reference: slice ``focus_slice`` (0-based) of each ``--source`` stack is
    the in-focus image, the other slices (or ``defocus_slices``) the out-of-focus inputs; no ``--target``."""
    defocus_slices: list[int] | None = None
    """With ``focus_slice``: the 0-based slices used as out-of-focus inputs (default: all others)."""
    augment: bool = True
    """Random rotations by 90 degrees and flips of the patches."""
    foreground_bias: float = Field(0.0, ge=0, le=1)
    """Share of patches drawn where the (target) image is bright; 0: uniform."""
    validation_every: int = Field(1000, ge=1)
    """Steps between validations."""
    checkpoint_every: int = Field(1000, ge=1)
    """Steps between checkpoints."""

    @field_validator("intensity_range")
    @classmethod
    def _check_range(cls, value: object) -> object:
        if isinstance(value, tuple) and not value[1] > value[0]:
            raise ValueError(f"the range needs low < high, got {list(value)}")
        return value

    @field_validator("headroom")
    @classmethod
    def _check_headroom(cls, value: object) -> object:
        if isinstance(value, float) and not value >= 1.0:
            raise ValueError(f"headroom must be at least 1, got {value}")
        return value

    @model_validator(mode="after")
    def _check(self) -> ComiConfig:
        if self.patch_size % 16:
            raise ValueError(
                f"patch_size must be a multiple of 16 (the networks' size multiple), got {self.patch_size}"
            )
        if self.content_target == "paired" and not self.paired:
            raise ValueError("content_target 'paired' needs paired training (drop --unpaired or choose input/none)")
        if self.defocus_slices is not None and self.focus_slice is None:
            raise ValueError("defocus_slices needs focus_slice")
        if self.focus_slice is not None and self.defocus_slices is not None:
            if self.focus_slice in self.defocus_slices:
                raise ValueError(f"defocus_slices must not include the focus slice {self.focus_slice}")
            if any(s < 0 for s in self.defocus_slices) or not self.defocus_slices:
                raise ValueError("defocus_slices must be non-negative slice indices (at least one)")
        return self

    def resolved_content_target(self) -> str:
        """``paired``, ``input`` or ``none`` (``auto`` resolved by the mode)."""
        if self.content_target == "auto":
            return "paired" if self.paired else "none"
        return self.content_target
