"""Building blocks of microrestore.nn: shapes, CSBDeep widths, receptive radii, FNSM, the registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from microrestore.errors import InputError
from microrestore.nn import (
    FNSM,
    NETWORKS,
    RCAB,
    RCAN,
    ChannelAttention,
    FNSMInput,
    PatchGAN,
    ResidualGroup,
    ResnetGenerator,
    UNet,
    UNetGenerator,
    build_network,
    count_parameters,
    init_weights,
    otf_cutoff,
)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _shape(ndim: int, size: int = 16, z: int = 8) -> tuple[int, ...]:
    return (size, size) if ndim == 2 else (z, size, size)


def _measured_radius(net: torch.nn.Module, ndim: int, size: int, centre: int, period: int) -> int:
    """Largest distance from a perturbed input pixel to an output pixel that changes (float64)."""
    net = net.double().eval()
    x = torch.rand(1, 1, *([size] * ndim), dtype=torch.float64)
    worst = 0
    with torch.no_grad():
        base = net(x)
        for p in range(period):
            c = centre + p
            x1 = x.clone()
            x1[(0, 0, *([c] * ndim))] += 100.0
            changed = torch.nonzero((net(x1) - base).abs()[0, 0] > 1e-12)
            worst = max(worst, int((changed - c).abs().max()))
    return worst


# --------------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("ndim", [2, 3])
def test_unet_shapes(ndim: int) -> None:
    net = UNet(in_channels=2, out_channels=2, ndim=ndim, depth=2, base_filters=4)
    y = net(torch.randn(2, 2, *_shape(ndim)))
    assert y.shape == (2, 2, *_shape(ndim))
    net = UNet(
        in_channels=2, out_channels=3, ndim=ndim, depth=1, base_filters=4, residual=False, upsampling="transpose"
    )
    assert net(torch.randn(1, 2, *_shape(ndim))).shape == (1, 3, *_shape(ndim))
    assert net.size_multiple == 2


def test_unet_rejects_bad_sizes_and_residual_channel_mismatch() -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        UNet(base_filters=4)(torch.randn(1, 1, 18, 16))
    with pytest.raises(ValueError, match="in_channels == out_channels"):
        UNet(in_channels=2, out_channels=1)


def test_unet_care_parameter_count() -> None:
    net = UNet(in_channels=1, out_channels=1, ndim=2, depth=2, base_filters=32, kernel_size=3)
    n = count_parameters(net)
    print(f"CARE U-Net (depth 2, 32 filters, 3x3, 1->1): {n} parameters")
    assert n == 332_641
    assert abs(n - 330_000) / 330_000 < 0.05
    # CSBDeep's widths: middle 128 then 64; up level 1: 64 then 32; up level 0: 32 then 32.
    widths = [m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert widths == [32, 32, 64, 64, 128, 64, 64, 32, 32, 32, 1]


@pytest.mark.parametrize("depth", [1, 2])
def test_unet_receptive_radius_by_perturbation(depth: int) -> None:
    net = UNet(depth=depth, base_filters=4)
    expected = {1: 9, 2: 23}[depth]
    assert net.receptive_radius == expected
    assert _measured_radius(net, 2, 128, 56, 2**depth) == expected


def test_unet_receptive_radius_3d() -> None:
    net = UNet(ndim=3, depth=1, base_filters=2)
    assert _measured_radius(net, 3, 32, 12, 2) == net.receptive_radius == 9


@pytest.mark.parametrize("upsampling", ["transpose", "nearest"])
def test_resnet_generator_radius_by_perturbation(upsampling: str) -> None:
    net = ResnetGenerator(ngf=4, n_blocks=1, norm="none", upsampling=upsampling)
    assert net.is_local
    assert _measured_radius(net, 2, 72, 30, 4) == net.receptive_radius


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("upsampling", ["transpose", "nearest"])
def test_resnet_generator_shapes(ndim: int, upsampling: str) -> None:
    net = ResnetGenerator(1, 2, n_blocks=1, ngf=4, ndim=ndim, upsampling=upsampling)
    y = net(torch.randn(2, 1, *_shape(ndim)))
    assert y.shape == (2, 2, *_shape(ndim))
    assert y.abs().max() <= 1.0
    assert not net.is_local  # instance norm


def test_resnet_generator_layout_and_default_size() -> None:
    net = ResnetGenerator(3, 3, n_blocks=9, ngf=64)
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert [c.kernel_size[0] for c in convs[:3]] == [7, 3, 3]
    assert [c.out_channels for c in convs[:3]] == [64, 128, 256]
    assert [c.stride[0] for c in convs[1:3]] == [2, 2]
    assert isinstance(convs[-3], torch.nn.ConvTranspose2d) and convs[-3].output_padding == (1, 1)
    assert convs[0].padding_mode == "reflect"
    assert count_parameters(net) == 11_378_179  # the CycleGAN resnet_9blocks generator


def test_comi_global_skip_adds_the_input() -> None:
    net = ResnetGenerator(1, 1, n_blocks=1, ngf=4, upsampling="nearest", global_skip=True)
    last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    x = torch.randn(1, 1, 16, 16)
    torch.testing.assert_close(net(x), x)  # tanh(0) + x
    with pytest.raises(ValueError, match="global_skip"):
        ResnetGenerator(1, 2, global_skip=True)


def test_init_weights_normal_002() -> None:
    net = init_weights(torch.nn.Conv2d(64, 64, 3), gain=0.02)
    assert abs(float(net.weight.detach().std()) - 0.02) < 0.002
    assert float(net.bias.detach().abs().max()) == 0.0


@pytest.mark.parametrize("ndim", [2, 3])
def test_unet_generator_shapes(ndim: int) -> None:
    net = UNetGenerator(1, 2, num_downs=5, ngf=2, ndim=ndim)
    size = 32
    shape = (size, size) if ndim == 2 else (size, size, size)
    y = net(torch.randn(1, 1, *shape))
    assert y.shape == (1, 2, *shape)
    assert net.size_multiple == 32


def test_unet_256_parameter_count() -> None:
    # pix2pix unet_256 (batch norm, no conv biases before norms)
    assert count_parameters(UNetGenerator(3, 3, num_downs=8, ngf=64, norm="batch")) == 54_413_955


@pytest.mark.parametrize("ndim", [2, 3])
def test_patchgan_shapes(ndim: int) -> None:
    net = PatchGAN(1, ndf=4, ndim=ndim)
    y = net(torch.randn(2, 1, *([32] * ndim)))
    assert y.shape == (2, 1, *([2] * ndim))  # 32 -> 16 -> 8 -> 4 -> 3 -> 2
    assert net.receptive_field == 70


def test_patchgan_70_layout() -> None:
    net = PatchGAN(3, ndf=64, n_layers=3, norm="instance")
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert all(c.kernel_size == (4, 4) for c in convs)
    assert not isinstance(list(net.model)[1], torch.nn.InstanceNorm2d)  # no norm after the first conv
    assert count_parameters(net) == 2_764_737
    assert net(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    comi = PatchGAN(1, widths=(8, 8, 16, 32, 64), norm="batch")
    assert comi.receptive_field == 142
    assert comi(torch.randn(2, 1, 64, 64)).shape[1] == 1


@pytest.mark.parametrize("ndim", [2, 3])
def test_channel_attention_rcab_group(ndim: int) -> None:
    x = torch.randn(2, 16, *_shape(ndim, 12, 6))
    ca = ChannelAttention(16, reduction=16, ndim=ndim)
    assert ca(x).shape == x.shape
    assert ca(torch.randn(1, 16, *_shape(ndim, 7, 5))).shape[2:] == _shape(ndim, 7, 5)  # adaptive pooling
    assert RCAB(16, ndim=ndim)(x).shape == x.shape
    assert ResidualGroup(16, n_rcab=2, ndim=ndim, skip=True, tail_conv=True)(x).shape == x.shape


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("act", ["leaky_relu", "relu", "gelu"])
def test_rcan_shapes(ndim: int, act: str) -> None:
    net = RCAN(2, 1, n_groups=2, n_rcab=1, channels=8, ndim=ndim, act=act, tail_channels=8)
    assert net(torch.randn(1, 2, *_shape(ndim, 12, 6))).shape == (1, 1, *_shape(ndim, 12, 6))
    assert net.receptive_radius == 1 + 2 * 2 * 1 + 2
    assert not net.is_local


def test_rcan_default_is_tis_rdl() -> None:
    net = RCAN(ndim=3)
    rcabs = [m for m in net.modules() if isinstance(m, RCAB)]
    assert len(rcabs) == 15  # 3 groups x 5 RCABs
    assert isinstance(net.tail[-1], torch.nn.LeakyReLU)
    assert [m.out_channels for m in net.tail if isinstance(m, torch.nn.Conv3d)] == [256, 1]


# ----------------------------------------------------------------------------------------------------- FNSM


def test_fnsm_huge_cutoff_is_identity() -> None:
    x = torch.randn(2, 3, 24, 20)
    torch.testing.assert_close(FNSM(cutoff=1e3)(x), x, atol=1e-5, rtol=0)


def test_fnsm_tiny_cutoff_keeps_the_mean() -> None:
    x = torch.rand(1, 1, 32, 30) + 1.0
    mean = x.mean(dim=(-2, -1), keepdim=True).expand_as(x)
    # cutoff between 0 and the lowest non-zero frequency (1/32 cycles/pixel), steep edge: only k = 0 passes
    y = FNSM(cutoff=0.5 / 32, slope=1e4)(x)
    torch.testing.assert_close(y, mean, atol=1e-5, rtol=0)
    # cutoff 0: the sigmoid is 1/2 at k = 0
    torch.testing.assert_close(FNSM(cutoff=0.0, slope=1e4)(x), 0.5 * mean, atol=1e-5, rtol=0)


def test_fnsm_gradients_reach_cutoff_and_slope() -> None:
    fnsm = FNSM(cutoff=0.2, slope=20.0)
    y = fnsm(torch.randn(2, 1, 16, 16))
    (y**2).sum().backward()
    assert fnsm.cutoff.grad is not None and float(fnsm.cutoff.grad.abs()) > 0
    assert fnsm.slope.grad is not None and float(fnsm.slope.grad.abs()) > 0
    fixed = FNSM(cutoff=0.2, trainable=False)
    assert count_parameters(fixed) == 0 and "cutoff" in dict(fixed.named_buffers())


def test_fnsm_cutoff_from_optics() -> None:
    assert otf_cutoff(1.3, 525) == pytest.approx(4.952, abs=1e-3)
    fnsm = FNSM(pixel_size_um=0.0626, na=1.3, wavelength_nm=525)
    assert float(fnsm.cutoff.detach()) == pytest.approx(2 * 1.3 / 0.525, rel=1e-6)
    assert float(fnsm.slope.detach()) == 100.0
    with pytest.raises(ValueError, match="pixel_size_um"):
        FNSM(na=1.3, wavelength_nm=525)
    assert float(FNSM()(torch.zeros(1, 1, 4, 4)).detach().abs().max()) == 0.0
    assert float(FNSM().cutoff.detach()) == 0.5  # Nyquist in cycles/pixel


def test_fnsm_mask_matches_formula() -> None:
    fnsm = FNSM(cutoff=2.0, slope=10.0, pixel_size_um=0.1)
    mask = fnsm.mask((8, 8))
    ky = np.fft.fftfreq(8, d=0.1)[:, None]
    kx = np.fft.rfftfreq(8, d=0.1)[None, :]
    expected = 1 / (1 + np.exp(-10.0 * (2.0 - np.sqrt(ky**2 + kx**2))))
    np.testing.assert_allclose(mask.detach().numpy(), expected, rtol=1e-5)


def test_fnsm_3d_is_lateral_by_default() -> None:
    x = torch.randn(1, 2, 5, 16, 12)
    f3 = FNSM(ndim=3, cutoff=0.2, slope=30.0)
    f2 = FNSM(ndim=2, cutoff=0.2, slope=30.0)
    per_slice = torch.stack([f2(x[:, :, z]) for z in range(5)], dim=2)
    torch.testing.assert_close(f3(x), per_slice, atol=1e-6, rtol=0)
    full = FNSM(ndim=3, cutoff=0.2, slope=30.0, lateral_only=False)
    assert not torch.allclose(full(x), f3(x))


@pytest.mark.parametrize("ndim", [2, 3])
def test_fnsm_input_fusion(ndim: int) -> None:
    fusion = FNSMInput(1, 8, ndim)
    assert fusion(torch.randn(1, 1, *_shape(ndim))).shape == (1, 8, *_shape(ndim))
    if ndim == 2:
        assert fusion.conv_filtered.out_channels == fusion.conv_raw.out_channels == 4  # concatenated
    else:
        assert fusion.conv_filtered.out_channels == fusion.conv_raw.out_channels == 8  # summed


@pytest.mark.parametrize("ndim", [2, 3])
def test_fnsm_switchable_on_unet_and_rcan(ndim: int) -> None:
    unet = UNet(ndim=ndim, depth=1, base_filters=4, fnsm={"cutoff": 0.3})
    assert isinstance(unet.input_block, FNSMInput) and not unet.is_local
    assert unet.receptive_radius == UNet(ndim=ndim, depth=1).receptive_radius + 1  # the fusion conv
    assert float(unet.input_block.fnsm.cutoff.detach()) == pytest.approx(0.3)
    from_spec = UNet(ndim=ndim, depth=1, base_filters=4, fnsm=FNSM(ndim=ndim, cutoff=0.2).spec)
    assert float(from_spec.input_block.fnsm.cutoff.detach()) == pytest.approx(0.2)
    assert unet(torch.randn(1, 1, *_shape(ndim))).shape == (1, 1, *_shape(ndim))
    rcan = RCAN(ndim=ndim, n_groups=1, n_rcab=1, channels=8, tail_channels=8, fnsm={})
    assert isinstance(rcan.head, FNSMInput)
    assert rcan(torch.randn(1, 1, *_shape(ndim))).shape == (1, 1, *_shape(ndim))


# ------------------------------------------------------------------------------------------------- registry

SMALL_SPECS = [
    {"name": "unet", "depth": 1, "base_filters": 4, "fnsm": {"cutoff": 0.3, "slope": 50.0}},
    {"name": "resnet_generator", "n_blocks": 1, "ngf": 4, "upsampling": "nearest", "global_skip": True},
    {"name": "unet_generator", "num_downs": 5, "ngf": 2},
    {"name": "patchgan", "ndf": 4, "n_layers": 2, "norm": "batch"},
    {"name": "rcan", "n_groups": 1, "n_rcab": 1, "channels": 8, "tail_channels": 8, "ndim": 3},
]


@pytest.mark.parametrize("spec", SMALL_SPECS, ids=[s["name"] for s in SMALL_SPECS])
def test_build_network_round_trip(spec: dict) -> None:
    original = dict(spec)
    net = build_network(spec).eval()
    assert spec == original  # not modified
    assert net.spec["name"] == spec["name"]
    rebuilt = build_network(net.spec).eval()
    assert rebuilt.spec == net.spec
    rebuilt.load_state_dict(net.state_dict())
    ndim = net.spec.get("ndim", 2)
    x = torch.randn(1, 1, *([32] * ndim))
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), net(x))


def test_every_network_has_a_spec() -> None:
    # plugins register their own networks (e.g. COMI's generator) when they are imported: check the core's
    core = {name for name, cls in NETWORKS.items() if cls.__module__.startswith("microrestore.nn.")}
    assert core == {s["name"] for s in SMALL_SPECS}
    for name, cls in NETWORKS.items():
        assert cls.spec_name == name


def test_build_network_errors() -> None:
    with pytest.raises(InputError, match=r"unknown network 'vnet'; valid names: patchgan, rcan") as info:
        build_network({"name": "vnet"})
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="no option 'filters'"):
        build_network({"name": "unet", "filters": 3})
    with pytest.raises(InputError, match="ndim must be 2 or 3"):
        build_network({"name": "unet", "ndim": 4})
    with pytest.raises(InputError, match="no 'name'"):
        build_network({"depth": 2})


def test_count_parameters_trainable_only() -> None:
    net = UNet(depth=1, base_filters=4)
    total = count_parameters(net)
    net.final.weight.requires_grad_(False)
    assert count_parameters(net, trainable_only=True) == total - net.final.weight.numel()
    assert math.isclose(total, sum(p.numel() for p in net.parameters()))
