"""rdl-denoise pieces: even/odd pairing, random swap, the amending loss, background offsets, FNSM options."""

from __future__ import annotations

from collections.abc import Iterator

import microrestore_rdl_denoise
import numpy as np
import pytest
import torch
from microrestore_rdl_denoise.config import RDLConfig
from microrestore_rdl_denoise.pairs import default_ndim, even_odd, make_pairs
from microrestore_rdl_denoise.training import RDLTask, amending_loss, l1l2, random_swap
from torch import nn

from microrestore.cli.common import parse_extra_options
from microrestore.configs import FNSMOptions, validate
from microrestore.engine.normalization import (
    BackgroundNormalizer,
    PercentileNormalizer,
    estimate_offset,
    normalizer_from_dict,
)
from microrestore.errors import InputError
from microrestore.io import ImageData
from microrestore.nn import RCAN, fnsm_report


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _stack(n: int, ny: int = 6, nx: int = 5) -> np.ndarray:
    # Frame k holds the value k everywhere, so every sample tells which frame it came from.
    return np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None], (n, ny, nx)).copy()


def test_registers_a_self_supervised_method():
    found = []
    microrestore_rdl_denoise.register_methods(found.append)
    method = found[0]
    assert method.name == "rdl-denoise" and method.self_supervised and method.config_schema is RDLConfig
    assert method.default_model == "rdl-denoise-generalist-2d"


def test_even_odd_views_pair_2i_with_2i_plus_1():
    data = np.arange(7 * 2).reshape(7, 2)
    even, odd = even_odd(data, 0)
    assert even[:, 0].tolist() == [0, 4, 8] and odd[:, 0].tolist() == [2, 6, 10]  # frame 6 has no partner
    assert np.shares_memory(even, data)


def test_tis_2d_pairs_frames():
    pairs = make_pairs(ImageData(_stack(7), "TYX"), "tis", 2)
    assert pairs.n_pairs == 3 and pairs.depth_axis is None
    assert [float(a[0, 0, 0]) for a in pairs.inputs] == [0, 2, 4]
    assert [float(a[0, 0, 0]) for a in pairs.targets] == [1, 3, 5]
    assert pairs.inputs[0].shape == (1, 6, 5)


def test_sis_pairs_slices_of_every_time_point():
    data = np.stack([_stack(4), 10 + _stack(4)])  # T=2, Z=4
    pairs = make_pairs(ImageData(data, "TZYX"), "sis", 2)
    assert [float(a[0, 0, 0]) for a in pairs.inputs] == [0, 2, 10, 12]
    assert [float(a[0, 0, 0]) for a in pairs.targets] == [1, 3, 11, 13]
    volumes = make_pairs(ImageData(data, "TZYX"), "sis", 3)
    assert volumes.depth_axis == "Z" and len(volumes.inputs) == 2
    assert volumes.inputs[1][0, :, 0, 0].tolist() == [10, 12] and volumes.targets[1][0, :, 0, 0].tolist() == [11, 13]


def test_3d_tis_pairs_volumes_or_takes_frames_as_depth():
    volumes = np.stack([np.full((3, 4, 4), t, np.float32) for t in range(4)])  # T=4, Z=3
    pairs = make_pairs(ImageData(volumes, "TZYX"), "tis", 3)
    assert pairs.depth_axis == "Z" and pairs.inputs[0].shape == (1, 3, 4, 4)
    assert [float(a.mean()) for a in pairs.inputs] == [0, 2] and [float(a.mean()) for a in pairs.targets] == [1, 3]
    movie = make_pairs(ImageData(_stack(8), "TYX"), "tis", 3)
    assert movie.depth_axis == "T" and len(movie.inputs) == 1
    assert movie.inputs[0][0, :, 0, 0].tolist() == [0, 2, 4, 6] and movie.targets[0][0, :, 0, 0].tolist() == [
        1,
        3,
        5,
        7,
    ]


def test_default_network_dimensions():
    assert default_ndim("tis", "TYX") == 2 and default_ndim("tis", "TZYX") == 3 and default_ndim("sis", "ZYX") == 3


@pytest.mark.parametrize(
    ("data", "axes", "mode", "message"),
    [
        (np.zeros((6, 5), np.float32), "YX", "tis", "needs a time-lapse"),
        (np.zeros((1, 6, 5), np.float32), "TYX", "tis", "has 1 along T"),
        (np.zeros((4, 6, 5), np.float32), "ZYX", "tis", "use mode sis"),
        (np.zeros((4, 6, 5), np.float32), "TYX", "sis", "use mode tis"),
        (np.zeros((4, 2, 6, 5), np.float32), "TCYX", "tis", "single-channel"),
    ],
)
def test_bad_inputs_are_refused(data, axes, mode, message):
    with pytest.raises(InputError, match=message):
        make_pairs(ImageData(data, axes), mode, 2)


def test_random_swap_exchanges_whole_pairs_reproducibly():
    source = torch.zeros(64, 1, 2, 2)
    target = torch.ones(64, 1, 2, 2)
    s, t, swapped = random_swap(source, target, np.random.default_rng(3))
    assert 16 < swapped.sum() < 48
    assert torch.equal(s[:, 0, 0, 0], torch.from_numpy(swapped).float())
    assert torch.equal(s + t, torch.ones_like(s))
    again = random_swap(source, target, np.random.default_rng(3))[2]
    np.testing.assert_array_equal(swapped, again)


def test_amending_loss_on_a_hand_made_case():
    pred = torch.tensor([1.0, 2.0])
    target = torch.tensor([2.0, 2.0])
    gap = torch.tensor([0.5, -1.0])
    total, data, amend = amending_loss(pred, target, gap)
    # MSE(target, pred) = (1 + 0) / 2; MSE(target - pred - gap) = (0.5^2 + 1^2) / 2
    assert float(data) == pytest.approx(0.5) and float(amend) == pytest.approx(0.625)
    assert float(total) == pytest.approx(1.125)
    assert float(amending_loss(pred, target, gap, weight=0.0)[0]) == pytest.approx(0.5)
    assert float(l1l2(pred, target)) == pytest.approx(0.5 * 0.5 + 0.5 * 0.5)


class _Double(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w * x


def test_gap_is_the_current_networks_prediction_difference_without_gradient():
    config = validate(RDLConfig, {"mode": "sis"}, "test")
    task = RDLTask(_Double(), config)
    source = torch.tensor([[1.0, 2.0]])
    target = torch.tensor([[3.0, 1.0]])
    losses = task._losses(source, target)
    # pred = 2 s, gap = 2 t - 2 s: target - pred - gap = -t, so the amending term is mean(t^2).
    assert float(losses["loss_amend"].detach()) == pytest.approx(float((target**2).mean()))
    assert float(losses["loss_data"].detach()) == pytest.approx(float(((2 * source - target) ** 2).mean()))
    losses["loss"].backward()
    # Only pred carries gradient: d/dw [mean((2s - t)^2) + mean((w s - (t - gap))^2)] at w = 2.
    gap = 2 * target - 2 * source
    expected = (2 * (2 * source - target) * source).mean() + (2 * (2 * source - (target - gap)) * source).mean()
    assert float(task.networks["net"].w.grad) == pytest.approx(float(expected))
    assert RDLTask(_Double(), validate(RDLConfig, {"mode": "tis"}, "test")).amending is False
    assert RDLTask(_Double(), validate(RDLConfig, {"mode": "tis", "amending": True}, "test")).amending is True


def test_background_normaliser_offsets_and_round_trip():
    rng = np.random.default_rng(0)
    image = rng.poisson(4.0, (128, 128)).astype(np.float64) + 100 + rng.normal(0, 1.0, (128, 128))
    image[40:60, 40:60] += 300
    image = np.round(image).astype(np.uint16)
    mode = estimate_offset(image, "mode")
    assert 102 <= mode <= 106  # the background level 100 + 4 photons
    assert estimate_offset(image, "percentile", 1.0) < mode
    given = BackgroundNormalizer(offset=100.0)
    params = given.fit(image)
    assert params.shift == (100.0,) and params.divisor[0] == pytest.approx(np.percentile(image, 99.8) - 100)
    normalised = given.apply(image, params)
    np.testing.assert_allclose(given.invert(normalised, params), image, atol=1e-3)
    assert normalizer_from_dict(given.to_dict()) == given
    # An estimated low percentile is the percentile normaliser itself (the form exporters know).
    config = validate(RDLConfig, {}, "test")
    assert isinstance(config.background_normalizer(), PercentileNormalizer)
    assert validate(RDLConfig, {"offset": 90}, "test").background_normalizer().offset == 90
    with pytest.raises(InputError, match="offset"):
        validate(RDLConfig, {"offset": "nan"}, "test")


def test_fnsm_options_give_the_initial_cutoff_from_optics():
    assert validate(FNSMOptions, {}, "t").fnsm_spec(2) is None
    spec = validate(FNSMOptions, {"fnsm": True, "na": 1.3, "wavelength_nm": 520}, "t").fnsm_spec(2, 0.065)
    assert spec == {"ndim": 2, "slope": 100.0, "pixel_size_um": 0.065, "na": 1.3, "wavelength_nm": 520}
    with pytest.raises(InputError, match="pixel size"):
        validate(FNSMOptions, {"fnsm": True, "na": 1.3, "wavelength_nm": 520}, "t").fnsm_spec(2, None)
    with pytest.raises(InputError, match="both na and wavelength_nm"):
        validate(FNSMOptions, {"fnsm": True, "na": 1.3}, "t")
    plain = validate(FNSMOptions, {"fnsm": True, "fnsm_cutoff": 0.3}, "t").fnsm_spec(3)
    assert plain == {"ndim": 3, "slope": 100.0, "cutoff": 0.3}


def test_fnsm_cutoff_gets_gradients_and_is_reported():
    spec = validate(FNSMOptions, {"fnsm": True, "na": 1.3, "wavelength_nm": 520}, "t").fnsm_spec(2, 0.065)
    net = RCAN(n_groups=1, n_rcab=1, channels=4, tail_channels=4, reduction=2, fnsm=spec)
    report = fnsm_report(net)
    assert report["fnsm_unit"] == "1/um" and report["fnsm_cutoff"] == pytest.approx(2 * 1.3 / 0.52, rel=1e-6)
    assert report["fnsm_cutoff_cycles_per_pixel"] == pytest.approx(2 * 1.3 / 0.52 * 0.065, rel=1e-6)
    # A slope that lets the edge span a few frequency samples, so that the gradient is not vanishingly small.
    net.head.fnsm.slope.data.fill_(5.0)
    net(torch.randn(2, 1, 32, 32)).square().mean().backward()
    assert float(net.head.fnsm.cutoff.grad.abs()) > 0 and float(net.head.fnsm.slope.grad.abs()) > 0
    assert fnsm_report(RCAN(n_groups=1, n_rcab=1, channels=4, tail_channels=4)) == {}


def test_method_options_as_flags():
    assert parse_extra_options(["--mode", "sis", "--patch-size=32", "--fnsm", "--offset", "-5"]) == {
        "mode": "sis",
        "patch_size": 32,
        "fnsm": True,
        "offset": -5,
    }
    with pytest.raises(InputError, match="unexpected argument 'stray'"):
        parse_extra_options(["stray"])
