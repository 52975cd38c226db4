"""c²GAN plugin: the pieces of the objective, the configuration and one training step on tiny networks."""

from __future__ import annotations

import math

import microrestore_c2gan
import numpy as np
import pytest
import torch
from microrestore_c2gan.config import HARD_MASK_SLOPE, C2GANConfig
from microrestore_c2gan.training import (
    C2GANTask,
    build_discriminator,
    build_generator,
    discriminator_loss,
    otsu_threshold,
    resolve_range,
    saliency_loss,
    saliency_mask,
    saliency_weight,
)

from microrestore.engine.seeding import step_rng
from microrestore.engine.trainer import StepContext
from microrestore.errors import InputError

TINY = {"ngf": 8, "ndf": 8, "n_blocks": 2, "patch_size": 32, "pool_size": 2}


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors: one thread avoids OpenMP hand-over costs, which dominate on a busy 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_registers_c2gan():
    found = []
    microrestore_c2gan.register_methods(found.append)
    method = found[0]
    assert method.name == "c2gan" and method.task == "denoise" and method.default_model == "c2gan-snr-2d"
    assert "10.1038/s41377-021-00484-y" in method.citation
    assert method.predict_schema(direction="BtoA").direction == "BtoA"


def test_mask_slope_is_per_unit_of_the_minus_one_one_scale_as_the_paper():
    # z = -1 + 2 v / 255 puts the value v on the 0..255 scale; the threshold t is in grey levels.
    values = torch.tensor([10.0, 50.0, 58.0, 60.0, 200.0])
    z = (-1 + 2 * values / 255).reshape(1, 1, 1, 5)
    bright = saliency_mask(z, threshold=58.0, slope=10.0, polarity="bright")
    # c²GAN's code: tf.nn.sigmoid((x - (58/127.5 - 1)) * 10), x on [-1, 1].
    official = [_sigmoid((zi - (58 / 127.5 - 1)) * 10) for zi in z.flatten().tolist()]
    np.testing.assert_allclose(bright.flatten().numpy(), official, rtol=1e-5, atol=1e-6)
    # The same as a slope of 10 / 127.5 per grey level: a gentle ramp, not a step.
    per_grey = [_sigmoid(10 / 127.5 * (v - 58)) for v in values.tolist()]
    np.testing.assert_allclose(bright.flatten().numpy(), per_grey, rtol=1e-4, atol=1e-6)
    assert float(bright.flatten()[2]) == pytest.approx(0.5, abs=1e-4)
    assert 0.3 < float(bright.flatten()[1]) < 0.5 and 0.5 < float(bright.flatten()[3]) < 0.6
    dark = saliency_mask(z, threshold=58.0, slope=10.0, polarity="dark")
    np.testing.assert_allclose(dark.numpy(), 1 - bright.numpy(), atol=1e-6)
    with pytest.raises(ValueError):
        saliency_mask(z, 58.0, 10.0, polarity="grey")


def test_hard_mask_slope_reproduces_the_earlier_per_grey_level_mask():
    values = torch.tensor([10.0, 57.0, 58.0, 58.5, 60.0, 200.0])
    z = (-1 + 2 * values / 255).reshape(1, 1, 1, -1)
    hard = saliency_mask(z, threshold=58.0, slope=HARD_MASK_SLOPE)
    expected = [_sigmoid(10 * (v - 58)) for v in values.tolist()]
    np.testing.assert_allclose(hard.flatten().numpy(), expected, rtol=1e-3, atol=1e-5)
    assert C2GANConfig().saliency_slope == 10.0


def _gradient_share(z: torch.Tensor, threshold: float, slope: float, floor: float = 0.01) -> float:
    """Share of pixels whose mask changes by more than ``floor`` per unit of z (autograd)."""
    z = z.clone().requires_grad_(True)
    saliency_mask(z, threshold, slope).sum().backward()
    assert z.grad is not None
    return float((z.grad.abs() > floor).float().mean())


def test_soft_mask_gives_most_pixels_a_gradient_and_the_hard_mask_almost_none(tmp_path):
    # A simulated low-SNR widefield field, scaled as the default model scales (intensity_range: data), with
    # Otsu's threshold: the constraint can only pull pixels whose mask has a gradient.
    from microrestore.io import read_image
    from microrestore.simulation.cases import simulate

    simulate("denoise", tmp_path, n=1, seed=3, photons=30, shape=[128, 128])
    noisy = read_image(next((tmp_path / "noisy").glob("*.tif"))).data.astype(np.float64)
    low, high = resolve_range([noisy], "data", "A")
    z = torch.from_numpy(2 * (noisy - low) / (high - low) - 1).float()[None, None]
    threshold = otsu_threshold(((z + 1) * 127.5).numpy().ravel())
    soft = _gradient_share(z, threshold, 10.0)
    hard = _gradient_share(z, threshold, HARD_MASK_SLOPE)
    assert soft > 0.5, soft
    assert hard < 0.05, hard


def test_mask_averages_channels():
    z = torch.stack([torch.full((2, 2), -1.0), torch.full((2, 2), 1.0)])[None]  # channel means: 127.5
    mask = saliency_mask(z, threshold=127.5, slope=10.0, channel_mean=True)
    assert mask.shape == (1, 1, 2, 2) and torch.allclose(mask, torch.full_like(mask, 0.5))
    per_channel = saliency_mask(z, threshold=127.5, slope=10.0, channel_mean=False)
    assert per_channel.shape == (1, 2, 2, 2)


def test_saliency_loss_uses_f_of_b_and_each_domains_own_mask():
    # G and F are different known functions; thresholds and slopes make each term easy to compute by hand.
    config = C2GANConfig(**TINY, threshold_a=100.0, threshold_b=50.0, saliency_slope=12.75)  # 0.1 per grey level
    g = torch.nn.Identity()  # G(x) = x

    class Negate(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return -x

    networks = {"G": g, "F": Negate(), "D_A": build_discriminator(config), "D_B": build_discriminator(config)}
    task = C2GANTask(networks, config)
    v_a, v_b = 75.0, 30.0  # on the 0..255 scale
    a = torch.full((1, 1, 32, 32), -1 + 2 * v_a / 255)
    b = torch.full((1, 1, 32, 32), -1 + 2 * v_b / 255)
    losses = task.generator_losses(a, b, rho=1.0)
    f_b = 255 - v_b  # F(b) = -b on [-1, 1] is 255 - v on the 0..255 scale
    forward = abs(_sigmoid(0.1 * (v_a - 100)) - _sigmoid(0.1 * (v_a - 50)))  # M_A(a) vs M_B(G(a) = a)
    backward = abs(_sigmoid(0.1 * (v_b - 50)) - _sigmoid(0.1 * (f_b - 100)))  # M_B(b) vs M_A(F(b))
    assert float(losses["saliency"]) == pytest.approx(forward + backward, rel=1e-4)
    # The official TF code's backward term on G(b) (= b here) gives another value.
    wrong_g_of_b = abs(_sigmoid(0.1 * (v_b - 50)) - _sigmoid(0.1 * (v_b - 100)))
    assert float(losses["saliency"]) != pytest.approx(forward + wrong_g_of_b, rel=1e-3)
    # UTOM's swap (fakes thresholded with the other domain's mask) would give another value again.
    swapped = abs(_sigmoid(0.1 * (v_a - 100)) - _sigmoid(0.1 * (v_a - 100))) + abs(
        _sigmoid(0.1 * (v_b - 50)) - _sigmoid(0.1 * (f_b - 50))
    )
    assert float(losses["saliency"]) != pytest.approx(swapped, rel=1e-3)


def test_saliency_loss_function_pairs_terms_as_the_formula():
    a, fake_b, b, fake_a = (torch.full((1, 1, 2, 2), v) for v in (1.0, 2.0, 3.0, 4.0))

    def mask_a(z: torch.Tensor) -> torch.Tensor:
        return z * 10

    def mask_b(z: torch.Tensor) -> torch.Tensor:
        return z * 100

    # |10 a - 100 G(a)| + |100 b - 10 F(b)| = |10 - 200| + |300 - 40|
    assert float(saliency_loss(a, fake_b, b, fake_a, mask_a, mask_b)) == pytest.approx(190 + 260)


def test_rho_decays_exponentially():
    assert saliency_weight(0, 1000, 5.0) == pytest.approx(5.0)
    assert saliency_weight(500, 1000, 5.0) == pytest.approx(5.0 * math.exp(-3))
    assert saliency_weight(1000, 1000, 5.0) == pytest.approx(5.0 * math.exp(-6))
    assert saliency_weight(250, 1000, 10.0, decay=2.0) == pytest.approx(10.0 * math.exp(-0.5))
    assert saliency_weight(10, 100, 0.0) == 0.0


def test_otsu_threshold_separates_two_modes():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(30, 5, 20000), rng.normal(150, 10, 5000)])
    t = otsu_threshold(values)
    assert 40 < t < 120 and np.mean(values[20000:] > t) > 0.999
    assert otsu_threshold(np.full(10, 7.0)) == 7.0
    with pytest.raises(InputError):
        otsu_threshold(np.array([np.nan]))
    # Works on a narrow range (16-bit data scaled by a fixed factor): the histogram spans the values.
    narrow = np.concatenate([rng.normal(0.4, 0.01, 5000), rng.normal(0.6, 0.01, 5000)])
    t = otsu_threshold(narrow)
    assert np.mean(narrow[:5000] <= t) > 0.999 and np.mean(narrow[5000:] > t) > 0.999


def test_intensity_range_from_data_fits_low_count_images():
    rng = np.random.default_rng(0)
    counts = rng.poisson(100 + 40 * rng.random((1, 64, 64))).astype(np.uint16)  # ~100..140 ADU of 0..65535
    low, high = resolve_range([counts], "data", "A")
    lo, hi = np.percentile(counts, [0.1, 99.99])
    assert low == pytest.approx(lo - 0.05 * (hi - lo)) and high == pytest.approx(hi + 0.25 * (hi - lo))
    assert 0 < low < counts.min() + 5 and hi < high < 200  # a scale the thresholds and tanh can use
    assert resolve_range([np.zeros((1, 4, 4), np.uint16) + np.arange(4, dtype=np.uint16)], "data", "A")[0] == 0.0
    with pytest.raises(InputError, match="constant"):
        resolve_range([np.full((1, 4, 4), 7, np.uint16)], "data", "B")


def test_intensity_range_auto_from_dtype():
    assert resolve_range([np.zeros((1, 4, 4), np.uint8)], "auto", "A") == (0.0, 255.0)
    assert resolve_range([np.zeros((1, 4, 4), np.uint16)], "auto", "A") == (0.0, 65535.0)
    floats = [np.linspace(0, 1234, 16, dtype=np.float32).reshape(1, 4, 4)]
    assert resolve_range(floats, "auto", "B") == (0.0, pytest.approx(1234.0))
    assert resolve_range(floats, (0, 4095), "B") == (0.0, 4095.0)


def test_discriminator_loss_uses_the_real_label():
    real = torch.full((1, 1, 4, 4), 0.9)
    fake = torch.zeros((1, 1, 4, 4))
    assert float(discriminator_loss(real, fake, 0.9)) == pytest.approx(0.0)
    real, fake = torch.full((2, 1, 3, 3), 1.0), torch.full((2, 1, 3, 3), 0.5)
    assert float(discriminator_loss(real, fake, 0.9)) == pytest.approx(0.5 * (0.1**2 + 0.5**2))


def test_config_defaults_and_one_line_errors():
    from microrestore.configs import validate

    config = C2GANConfig()
    assert (config.ngf, config.ndf, config.patch_size, config.batch_size) == (64, 64, 128, 1)
    assert (config.real_label, config.lambda_cycle, config.pool_size, config.saliency_weight) == (0.9, 10.0, 50, 5.0)
    assert config.resolved_n_blocks() == 6 and C2GANConfig(patch_size=256).resolved_n_blocks() == 9
    assert C2GANConfig(generator="unet", patch_size=256).resolved_unet_downs() == 8
    assert config.intensity_range == (0.0, 65535.0)
    with pytest.raises(InputError) as info:
        validate(C2GANConfig, {"ngf": 8, "bogus": 1}, "c2gan configuration")
    assert "bogus: unknown option" in str(info.value) and "\n" not in str(info.value)
    for bad in ({"patch_size": 30}, {"generator": "unet", "patch_size": 48}, {"intensity_range": [5, 1]}):
        with pytest.raises(InputError):
            validate(C2GANConfig, bad, "c2gan configuration")
    with pytest.raises(InputError):
        validate(C2GANConfig, {"validation_source": ["a.tif"]}, "c2gan configuration")


def _ctx(optimizers, step: int = 0, total: int = 10) -> StepContext:
    return StepContext(
        device=torch.device("cpu"),
        precision="fp32",
        step=step,
        total=total,
        rng=step_rng(0, step, stream=1),
        optimizers=optimizers,
    )


@pytest.mark.parametrize("generator", ["resnet", "unet"])
def test_training_step_updates_both_optimisers(generator):
    config = C2GANConfig(**TINY, generator=generator, threshold_a=60.0, threshold_b=60.0)
    torch.manual_seed(0)
    networks = {
        "G": build_generator(config),
        "F": build_generator(config),
        "D_A": build_discriminator(config),
        "D_B": build_discriminator(config),
    }
    task = C2GANTask(networks, config)
    optimizers = task.configure_optimizers()
    assert set(optimizers) == {"G", "D"}
    before = {name: [p.detach().clone() for p in net.parameters()] for name, net in networks.items()}
    a = torch.rand(1, 1, 32, 32) * 2 - 1
    b = torch.rand(1, 1, 32, 32) * 2 - 1
    for step in range(3):
        losses = task.training_step((a, b), step, _ctx(optimizers, step))
    for name, net in networks.items():
        assert any(not torch.equal(p0, p) for p0, p in zip(before[name], net.parameters())), name
    assert {"G", "gan_G", "gan_F", "cycle_A", "cycle_B", "saliency", "D_A", "D_B", "rho"} <= set(losses)
    assert all(isinstance(v, torch.Tensor) and not v.requires_grad for v in losses.values())
    assert float(losses["rho"]) == pytest.approx(5.0 * math.exp(-6 * 2 / 10))
    assert all(p.requires_grad for p in networks["D_A"].parameters())
    # Pools keep the fakes and round-trip through the checkpoint tensors.
    state = task.state_tensors()
    assert len(task.pool_a) == 2 and len(task.pool_b) == 2 and len(state) == 4
    other = C2GANTask(networks, config)
    other.load_state_tensors(state)
    assert all(torch.equal(x, y) for x, y in zip(other.pool_b.images, task.pool_b.images))
    with pytest.raises(InputError):
        other.load_state_tensors({"junk/00000": torch.zeros(1)})
    assert task.lr_factor(0, 10) == 1.0 and task.lr_factor(9, 10) == pytest.approx(0.2)


def test_default_model_restores_a_fresh_simulated_field(tmp_path):
    """The bundled c2gan-snr-2d on a field no recipe drew (seed 123): measured +4.5 dB PSNR, SSIM 0.32 -> 0.93."""
    from microrestore import metrics
    from tests.fresh_field import restore_fresh_field

    out, before, after = restore_fresh_field(
        tmp_path, "denoise", "c2gan", "noisy/field_000.tif", "clean/field_000.tif", seed=123, photons=30
    )
    assert out.dtype == np.uint16
    assert after["psnr"] > before["psnr"] + 3.0
    assert after["ssim"] > 0.85 > 0.5 > before["ssim"]
    assert metrics.saturation_count(out, np.uint16) == 0
