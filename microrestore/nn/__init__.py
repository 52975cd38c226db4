"""Network building blocks shared by the methods (2D and 3D).

Networks: :class:`UNet` (CARE), :class:`ResnetGenerator` and :class:`UNetGenerator` (c²GAN, COMI),
:class:`PatchGAN`, :class:`RCAN` with :class:`RCAB`, :class:`ResidualGroup` and :class:`ChannelAttention`
(rDL), :class:`FNSM` and :class:`FNSMInput` (TiS/SiS-rDL), :class:`VGG19` and :class:`VGGFeatures`, and the
frozen feature networks of perceptual losses (:func:`feature_network`: ``microscopy``, ``vgg19-imagenet``,
``pixel``; COMI). Image-to-image networks expose ``size_multiple``, ``receptive_radius`` and ``is_local`` for
tiled inference, and ``spec`` for :func:`build_network`.
rDL-SIM: :class:`DFCAN` (SR module, Fourier channel attention) and :class:`RDLDenoiser` (two-branch denoiser).

Importing this package imports torch.
"""

from microrestore.nn.dfcan import DFCAN, FCAB, FourierChannelAttention, apodize2d
from microrestore.nn.features import FEATURE_NETWORKS, MicroscopyFeatures, feature_network
from microrestore.nn.fnsm import FNSM, FNSMInput, fnsm_report, otf_cutoff
from microrestore.nn.layers import chain_receptive_radius, layer_class, make_activation, make_norm
from microrestore.nn.patchgan import PatchGAN
from microrestore.nn.rcan import RCAB, RCAN, ChannelAttention, ResidualGroup
from microrestore.nn.rdl_denoiser import RDLDenoiser
from microrestore.nn.registry import NETWORKS, build_network, count_parameters, register_network
from microrestore.nn.resnet import ResnetBlock, ResnetGenerator, UNetGenerator, init_weights
from microrestore.nn.unet import UNet
from microrestore.nn.vgg import VGG19, VGGFeatures

__all__ = [
    "DFCAN",
    "FCAB",
    "FEATURE_NETWORKS",
    "FNSM",
    "NETWORKS",
    "RCAB",
    "RCAN",
    "VGG19",
    "ChannelAttention",
    "FNSMInput",
    "FourierChannelAttention",
    "MicroscopyFeatures",
    "PatchGAN",
    "RDLDenoiser",
    "ResidualGroup",
    "ResnetBlock",
    "ResnetGenerator",
    "UNet",
    "UNetGenerator",
    "VGGFeatures",
    "apodize2d",
    "build_network",
    "chain_receptive_radius",
    "count_parameters",
    "feature_network",
    "fnsm_report",
    "init_weights",
    "layer_class",
    "make_activation",
    "make_norm",
    "otf_cutoff",
    "register_network",
]
