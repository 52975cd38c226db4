from __future__ import annotations

import numpy as np
import pytest
import torch

from microrestore.losses import GANLoss, l1, lsgan_loss, mse, mse_ssim_loss, ssim, ssim_loss


def _pair(seed: int = 0, shape: tuple[int, ...] = (2, 1, 32, 32)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(shape, generator=g)
    b = (a + 0.1 * torch.randn(shape, generator=g)).clamp(0, 1)
    return a, b


def test_pixel_losses() -> None:
    a, b = torch.zeros(4), torch.full((4,), 2.0)
    assert l1(a, b).item() == 2.0 and mse(a, b).item() == 4.0
    assert lsgan_loss(torch.full((3, 1, 4, 4), 0.9), 0.9).item() == pytest.approx(0.0)
    assert lsgan_loss(torch.zeros(5), 1.0).item() == 1.0


def test_ssim_identity_and_range() -> None:
    a, b = _pair()
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-6)
    assert ssim_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert 0 < ssim(a, b).item() < 1


def test_ssim_matches_scikit_image() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    a, b = _pair(1, (1, 1, 48, 40))
    expected = metrics.structural_similarity(
        a[0, 0].numpy(), b[0, 0].numpy(), data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ssim(a, b).item() == pytest.approx(expected, abs=1e-4)


def test_ssim_is_differentiable_and_handles_3d_and_small() -> None:
    a, b = _pair(2, (1, 2, 3, 16, 16))
    a.requires_grad_(True)
    loss = ssim_loss(a, b)
    loss.backward()
    assert a.grad is not None and torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    small_a, small_b = _pair(3, (1, 1, 6, 6))
    assert torch.isfinite(ssim(small_a, small_b))
    with pytest.raises(ValueError):
        ssim(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))


def test_mse_ssim_loss_follows_rdl() -> None:
    a, b = _pair(4)
    pred, target = 3 * a + 1, 5 * b - 2  # min-max normalisation removes the affine change
    expected = mse_ssim_loss(a, b)
    assert mse_ssim_loss(pred, target).item() == pytest.approx(expected.item(), rel=1e-4)
    norm = lambda t: (t - t.min()) / (t.max() - t.min())  # noqa: E731
    manual = mse(norm(pred), norm(target)) + 0.1 * (1 - ssim(norm(pred), norm(target)))
    assert mse_ssim_loss(pred, target).item() == pytest.approx(manual.item(), rel=1e-5)
    assert mse_ssim_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)


def test_gan_loss_modes() -> None:
    pred = torch.tensor([[0.9, 0.9]])
    assert GANLoss("lsgan", real_label=0.9)(pred, True).item() == pytest.approx(0.0)
    assert GANLoss("lsgan")(pred, False).item() == pytest.approx(0.81)
    logits = torch.tensor([0.0, 2.0])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(2))
    assert GANLoss("vanilla")(logits, True).item() == pytest.approx(expected.item())
    with pytest.raises(ValueError):
        GANLoss("wgan")  # type: ignore[arg-type]


def test_losses_are_float32_under_autocast() -> None:
    a, b = _pair(5)
    w = torch.randn(32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pa, pb = a @ w, b @ w
        assert pa.dtype == torch.bfloat16
        for value in (mse(pa, pb), l1(pa, pb), ssim(pa, pb), mse_ssim_loss(pa, pb), GANLoss()(pa, True)):
            assert value.dtype == torch.float32
    assert np.isfinite(float(ssim(a @ w, b @ w, data_range=float((a @ w).max() - (a @ w).min()))))
