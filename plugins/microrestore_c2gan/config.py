"""c²GAN training configuration (pydantic): every field has a default and a docstring."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from microrestore.configs import GanFilters, ImageChannels, ResBlocks

HARD_MASK_SLOPE = 1275.0
"""``saliency_slope`` of microrestore's earlier hard mask: 10 per grey level of the 0..255 scale is 10 x 127.5 per
unit of the [-1, 1] scale (kept for comparisons; not the paper's constraint)."""


class C2GANPredictOptions(BaseModel):
    """Inference options of ``c2gan`` (``--set key=value``)."""

    model_config = ConfigDict(extra="forbid")

    direction: Literal["AtoB", "BtoA"] = "AtoB"
    """``AtoB`` runs G (degraded -> clean, the restoration); ``BtoA`` runs F (clean -> degraded)."""
    calibrate: bool = True
    """Map each input into the training camera's units first (its own gain and background, fitted from its noise,
    against the training set's; the output is mapped back), when the model recorded that camera. ``false``: the
    fixed scale alone, as an exported bioimage.io package does."""


class C2GANConfig(BaseModel):
    """Configuration of a c²GAN model (Li et al., Light Sci Appl 2021) and its unpaired training."""

    model_config = ConfigDict(extra="forbid")

    generator: Literal["resnet", "unet"] = "resnet"
    """Generator: ``resnet`` (c²GAN: ResNet generator with transposed-conv upsampling) or ``unet`` (UTOM's
    pix2pix U-Net)."""
    n_blocks: ResBlocks | None = None
    """Residual blocks of the ResNet generator; ``None``: 6 when ``patch_size`` <= 128, else 9 (as c²GAN)."""
    unet_downs: int | None = Field(None, ge=5, le=10)
    """Downsamplings of the U-Net generator; ``None``: as many as ``patch_size`` allows, at most 8 (unet_256)."""
    ngf: GanFilters = 64
    """Filters of the generators' first convolution."""
    ndf: GanFilters = 64
    """Filters of the discriminators' first convolution (70x70 PatchGAN)."""
    channels: ImageChannels = 1
    """Image channels (1; e.g. 3 for RGB images with a C axis). Both domains must have this many."""
    patch_size: int = Field(128, ge=16)
    """Edge of the training patches (YX) in pixels; a multiple of 4 (ResNet) or of 2**unet_downs (U-Net)."""
    batch_size: int = Field(1, ge=1)
    """Patches of each domain per step (1 in c²GAN)."""
    steps: int = Field(200_000, ge=1)
    """Total training steps: the learning rate is constant for the first ``decay_start`` share and then decays
    linearly to 0 (c²GAN: 100k + 100k)."""
    decay_start: float = Field(0.5, ge=0, le=1)
    """Share of the steps after which the learning rate decays linearly to 0."""
    learning_rate: float = Field(2e-4, gt=0)
    """Adam learning rate of generators and discriminators."""
    beta1: float = Field(0.5, ge=0, lt=1)
    """Adam beta1."""
    beta2: float = Field(0.999, ge=0, lt=1)
    """Adam beta2."""
    lambda_cycle: float = Field(10.0, ge=0)
    """Weight of the L1 cycle-consistency loss in each direction."""
    lambda_identity: float = Field(0.0, ge=0)
    """Weight of the identity loss, relative to ``lambda_cycle`` as in CycleGAN (0 in c²GAN)."""
    real_label: float = Field(0.9, gt=0, le=1)
    """LSGAN label of real images, for the discriminators and the generators (0.9: c²GAN's label smoothing)."""
    pool_size: int = Field(50, ge=0)
    """Generated images kept in each history pool for the discriminator updates (0: no pool)."""
    saliency_weight: float = Field(5.0, ge=0)
    """rho0, the starting weight of the saliency (content-preserving) loss; 0 gives plain CycleGAN."""
    saliency_decay: float = Field(6.0, ge=0)
    """Decay of the saliency weight: rho(t) = rho0 * exp(-saliency_decay * t / T) over the T steps."""
    saliency_slope: float = Field(10.0, gt=0)
    """k, the slope of the soft masks ``M(z) = sigmoid(k (z - (t / 127.5 - 1)))`` per unit of the [-1, 1] scale
    of the scaled images, as in the papers (10 in c²GAN: a ramp about 56 grey levels wide; 100 in UTOM).
    ``1275`` reproduces microrestore's earlier hard mask (a slope of 10 per grey level of the 0..255 scale,
    127.5x steeper than c²GAN's, which leaves almost every pixel without gradient)."""
    threshold_a: float | None = Field(None, ge=0, le=255)
    """Foreground threshold of domain A (degraded) on the 0..255 scale of the scaled images; ``None``: Otsu's
    threshold of the domain A training images, reported at the start."""
    threshold_b: float | None = Field(None, ge=0, le=255)
    """Foreground threshold of domain B (clean) on the 0..255 scale; ``None``: Otsu on domain B."""
    polarity_a: Literal["bright", "dark"] = "bright"
    """Whether domain A's objects are brighter (fluorescence) or darker (bright background, e.g. histology)
    than the threshold."""
    polarity_b: Literal["bright", "dark"] = "bright"
    """Polarity of domain B's objects."""
    mask_channel_mean: bool = True
    """Average the channels before thresholding, giving one mask per image (as c²GAN); else one per channel."""
    intensity_range: Literal["auto", "data"] | tuple[float, float] = (0.0, 65535.0)
    """The fixed scaling: ``[low, high]`` in image units, mapped onto [-1, 1] for every image of domain A (and
    of domain B unless ``intensity_range_b`` is given); never per image. ``auto``: from each domain's dtype
    (0..255 for uint8, 0..65535 for uint16; float images: 0 (or the minimum, if negative) to the maximum of
    that domain's training images). ``data``: from the training images' values (0.1st percentile minus 5 % of
    the span to the 99.99th plus 25 %), one range for both domains unless ``intensity_range_b`` is given: for
    low-count data that uses a sliver of its dtype's range."""
    intensity_range_b: Literal["auto", "data"] | tuple[float, float] | None = None
    """The fixed scaling of domain B when it differs from domain A's; ``None``: ``intensity_range``."""
    augment: bool = True
    """Random rotations by 90 degrees and flips of the patches (each domain independently)."""
    foreground_bias: float = Field(0.0, ge=0, le=1)
    """Share of patches drawn where the image is bright (in each domain); 0: uniform, as c²GAN."""
    validation_source: list[str] | None = None
    """Optional domain A images for validation, paired by file name with ``validation_target``: then the
    validation reports the PSNR of G(a) against b. Without them, the cycle loss on a fixed batch."""
    validation_target: list[str] | None = None
    """Domain B images paired with ``validation_source``."""
    validation_every: int = Field(1000, ge=1)
    """Steps between validations."""
    checkpoint_every: int = Field(1000, ge=1)
    """Steps between checkpoints (the image pools are saved with them)."""
    seed: int = Field(0, ge=0)
    """Random seed (weights, patches, augmentation, pools)."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Mixed precision on CUDA (auto: bf16 where supported); CPU always trains in fp32."""

    @field_validator("intensity_range", "intensity_range_b")
    @classmethod
    def _check_range(cls, value: object) -> object:
        if isinstance(value, tuple) and not value[1] > value[0]:
            raise ValueError(f"the range needs low < high, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _check_validation_pairs(self) -> C2GANConfig:
        if (self.validation_source is None) != (self.validation_target is None):
            raise ValueError("give both validation_source and validation_target, or neither")
        return self

    def resolved_n_blocks(self) -> int:
        """Residual blocks of the ResNet generator (6 for patches up to 128 px, else 9, unless set)."""
        if self.n_blocks is not None:
            return self.n_blocks
        return 6 if self.patch_size <= 128 else 9

    def resolved_unet_downs(self) -> int:
        """Downsamplings of the U-Net generator: as many as divide ``patch_size``, at most 8, unless set."""
        if self.unet_downs is not None:
            return self.unet_downs
        downs = 0
        while downs < 8 and self.patch_size % (2 ** (downs + 1)) == 0:
            downs += 1
        return downs

    def size_multiple(self) -> int:
        """What the patch size must be a multiple of for the chosen generator."""
        return 4 if self.generator == "resnet" else 2 ** self.resolved_unet_downs()

    @model_validator(mode="after")
    def _check_patch(self) -> C2GANConfig:
        if self.generator == "unet" and self.resolved_unet_downs() < 5:
            raise ValueError(f"the U-Net generator needs a patch_size divisible by 32, got {self.patch_size}")
        multiple = self.size_multiple()
        if self.patch_size % multiple:
            raise ValueError(f"patch_size must be a multiple of {multiple} for the {self.generator} generator")
        return self
