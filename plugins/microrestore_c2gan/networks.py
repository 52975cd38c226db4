"""c²GAN's networks: the generator (ResNet as c²GAN, or UTOM's U-Net) and the 70x70 PatchGAN discriminator."""

from __future__ import annotations

from torch import nn

from microrestore.nn import PatchGAN, ResnetGenerator, UNetGenerator
from microrestore_c2gan.config import C2GANConfig


def build_generator(config: C2GANConfig) -> nn.Module:
    """The generator of the configuration (ResNet as c²GAN, or UTOM's U-Net), CycleGAN-initialised."""
    if config.generator == "unet":
        return UNetGenerator(
            in_channels=config.channels,
            out_channels=config.channels,
            num_downs=config.resolved_unet_downs(),
            ngf=config.ngf,
            norm="instance",
        )
    return ResnetGenerator(
        in_channels=config.channels,
        out_channels=config.channels,
        n_blocks=config.resolved_n_blocks(),
        ngf=config.ngf,
        norm="instance",
        upsampling="transpose",
    )


def build_discriminator(config: C2GANConfig) -> nn.Module:
    """The 70x70 PatchGAN with instance norm."""
    return PatchGAN(in_channels=config.channels, ndf=config.ndf, n_layers=3, norm="instance")
