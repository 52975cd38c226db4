"""rDL-SIM networks: DFCAN (SR module) with Fourier channel attention, and the two-branch rDL denoiser."""

from __future__ import annotations

import pytest
import torch

from microrestore.errors import InputError
from microrestore.nn import DFCAN, FourierChannelAttention, RDLDenoiser, apodize2d, build_network, count_parameters


def _small_dfcan(**kw: object) -> DFCAN:
    return DFCAN(channels=16, n_groups=2, n_fcab=2, reduction=4, **kw)  # type: ignore[arg-type]


def test_dfcan_full_size_matches_the_papers_layers() -> None:
    # head 9->64 (5,248), 16 FCABs of 111,364, tail 64->256 (147,712) and 64->1 (577)
    assert count_parameters(DFCAN()) == 5_248 + 16 * 111_364 + 147_712 + 577


def test_dfcan_maps_nine_frames_to_the_2x_grid() -> None:
    torch.manual_seed(0)
    net = _small_dfcan().eval()
    with torch.no_grad():
        out = net(torch.rand(2, 9, 24, 20))
    assert out.shape == (2, 1, 48, 40)
    assert float(out.min()) > 0 and float(out.max()) < 1  # sigmoid output
    assert build_network(net.spec).spec == net.spec
    with pytest.raises(ValueError, match="4D"):
        net(torch.rand(9, 24, 24))


def test_dfcan_width_and_scale_are_configurable() -> None:
    net = DFCAN(in_channels=3, channels=8, n_groups=1, n_fcab=1, reduction=2, scale=3, output_activation="linear")
    assert net(torch.rand(1, 3, 16, 16)).shape == (1, 1, 48, 48)
    with pytest.raises(InputError, match="dfcan"):
        build_network({"name": "dfcan", "gamma": 0})


def test_apodize_matches_opposite_edges_and_keeps_constants() -> None:
    x = torch.rand(1, 2, 40, 36, generator=torch.Generator().manual_seed(1))
    y = apodize2d(x, 10)
    assert y.shape == x.shape
    assert torch.equal(y[..., 10:30, 10:26], x[..., 10:30, 10:26])  # the interior is untouched
    # the first and last rows (columns) move half-way towards each other
    assert torch.allclose(
        y[..., 0, 10:26], y[..., -1, 10:26], atol=0.1 * float((x[..., 0, :] - x[..., -1, :]).abs().max())
    )
    const = torch.full((1, 1, 30, 30), 3.0)
    assert torch.allclose(apodize2d(const, 10), const)
    assert apodize2d(x[..., :6, :6], 10).shape == (1, 2, 6, 6)  # width shrinks on small inputs


def test_fourier_channel_attention_scales_channels_by_spectral_weights() -> None:
    torch.manual_seed(0)
    fca = FourierChannelAttention(8, reduction=2, apodize=0).eval()
    x = torch.rand(1, 8, 16, 16) + 0.5
    with torch.no_grad():
        out = fca(x)
        ratio = out / x
    # one weight in (0, 1) per channel, the same at every pixel
    assert torch.allclose(ratio, ratio[..., :1, :1].expand_as(ratio), atol=1e-6)
    assert float(ratio.min()) > 0 and float(ratio.max()) < 1
    # the weights come from |FFT|: a circular shift of the input (same amplitude spectrum) gets the same weights
    shifted = torch.roll(x, shifts=(5, -3), dims=(-2, -1))
    with torch.no_grad():
        assert torch.allclose(fca(shifted), torch.roll(out, shifts=(5, -3), dims=(-2, -1)), atol=1e-5)
    # and the spectrum is |FFT|**0.1, fftshifted (zero frequency in the centre)
    spectrum = fca.spectrum(x)
    assert torch.allclose(spectrum[0, :, 8, 8], (x.sum(dim=(-2, -1))[0] + 1e-8) ** 0.1, rtol=1e-5)


def test_rdl_denoiser_shapes_and_both_branches_matter() -> None:
    torch.manual_seed(0)
    net = RDLDenoiser(channels=8, n_groups=(1, 1, 1), n_rcab=1, reduction=4, tail_channels=16).eval()
    generated, noisy = torch.rand(3, 3, 20, 20), torch.rand(3, 3, 20, 20)
    with torch.no_grad():
        out = net(generated, noisy)
        assert out.shape == (3, 3, 20, 20)
        assert not torch.allclose(net(torch.rand(3, 3, 20, 20), noisy), out)  # the generated images are used
        assert net(torch.rand(1, 3, 13, 17), torch.rand(1, 3, 13, 17)).shape == (1, 3, 13, 17)  # adaptive pooling
    with pytest.raises(ValueError, match="one shape"):
        net(generated, noisy[:, :, :10])
    assert build_network(net.spec).spec == net.spec


def test_rdl_denoiser_full_size_layers() -> None:
    net = RDLDenoiser()
    # 2 + 5 + 5 residual groups of 5 RCABs, each conv3 64->64 twice plus CA(64 -> 4 -> 64)
    rcab = 2 * (64 * 64 * 9 + 64) + (64 * 4 + 4) + (4 * 64 + 64)
    assert sum(p.numel() for p in net.trunk.parameters()) == 5 * 5 * rcab
    assert sum(p.numel() for p in net.generated_branch.groups.parameters()) == 2 * 5 * rcab
    with pytest.raises(ValueError, match="three"):
        RDLDenoiser(n_groups=(2, 5))
