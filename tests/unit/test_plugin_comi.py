"""COMI's pieces: generator with the global skip, BatchNorm discriminator, the weighted loss, configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from microrestore_comi.config import ComiConfig
from microrestore_comi.data import pair_by_prefix, read_pairs_file
from microrestore_comi.networks import ComiGenerator, build_discriminator, build_generator
from microrestore_comi.training import ComiTask, discriminator_loss

from microrestore.configs import validate
from microrestore.errors import InputError
from microrestore.nn import build_network
from microrestore.nn.features import PixelFeatures, feature_network

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_generator_layout_and_shapes():
    net = build_generator(ngf=8, n_blocks=9)
    assert sum(isinstance(m, torch.nn.Upsample) and m.mode == "nearest" for m in net.modules()) == 2
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())
    assert sum(type(m).__name__ == "ResnetBlock" for m in net.modules()) == 9
    assert isinstance(net.model[-1], torch.nn.Tanh)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs[:3]] == [8, 16, 32] and convs[0].kernel_size == (7, 7)
    assert [c.stride for c in convs[1:3]] == [(2, 2), (2, 2)]
    assert [c.out_channels for c in convs[-3:]] == [16, 8, 1]
    x = torch.randn(2, 1, 48, 64)
    assert net(x).shape == x.shape
    rebuilt = build_network(net.spec)
    assert isinstance(rebuilt, ComiGenerator) and rebuilt.spec == net.spec


def test_global_skip_and_affine():
    net = build_generator(ngf=4, n_blocks=1, in_scale=0.5, in_offset=-1.0)
    last = net.model[-2]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    x = torch.rand(1, 1, 32, 32)
    # tanh(0) = 0: the output is the input, on COMI's scale and in the normaliser's units.
    assert torch.allclose(net.core(x), x) and torch.allclose(net(x), x, atol=1e-6)
    torch.manual_seed(0)
    net = build_generator(ngf=4, n_blocks=1, in_scale=0.5, in_offset=-1.0)
    y = net(x)
    assert torch.allclose(y, (net.core(x * 0.5 - 1.0) + 1.0) / 0.5, atol=1e-6)
    # The correction is bounded by tanh: |G(x) - x| < 1 / in_scale in the normaliser's units.
    assert float((y - x).abs().max().detach()) < 2.0


def test_discriminator_is_comis_batchnorm_patchgan():
    d = build_discriminator(ndf=8)
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 8, 16, 32, 64, 1]
    assert [c.stride for c in convs] == [(2, 2)] * 4 + [(1, 1)] * 2
    assert all(c.kernel_size == (4, 4) for c in convs)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules()) == 4
    assert isinstance(d.model[1], torch.nn.LeakyReLU)  # no norm after the first conv
    assert d(torch.randn(2, 1, 128, 128)).shape == (2, 1, 6, 6)


def test_discriminator_loss():
    real, fake = torch.full((2, 1, 3, 3), 0.5), torch.full((2, 1, 3, 3), 0.25)
    assert float(discriminator_loss(real, fake)) == pytest.approx(0.5 * (0.25 + 0.0625))


def _task(features: torch.nn.Module | None = None, **config) -> ComiTask:
    torch.manual_seed(0)
    cfg = ComiConfig(ngf=4, ndf=4, n_blocks=1, patch_size=48, **config)
    networks = {
        "G": build_generator(4, 1),
        "F": build_generator(4, 1),
        "D_A": build_discriminator(4),
        "D_B": build_discriminator(4),
    }
    return ComiTask(networks, cfg, features or PixelFeatures())


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    a = torch.rand(2, 1, 48, 48, generator=gen) * 2 - 1
    return a, torch.rand(2, 1, 48, 48, generator=gen) * 2 - 1


@pytest.mark.parametrize("term", ["adversarial", "content", "cycle", "identity"])
def test_each_component_moves_the_total_by_its_weight(term: str):
    a, b = _batch()
    with torch.no_grad():
        base = _task().generator_losses(a, b)
        changed = _task(**{f"weight_{term}": 3.0}).generator_losses(a, b)
    assert float(base[term]) > 0
    default = {"adversarial": 1e-3, "content": 1.0, "cycle": 1.0, "identity": 1.0}[term]
    delta = float(changed["total"] - base["total"])
    assert delta == pytest.approx((3.0 - default) * float(base[term]), rel=1e-4)


@torch.no_grad()
def test_the_terms_compare_what_comi_compares():
    task = _task()
    a, b = _batch()
    losses = task.generator_losses(a, b)
    g, f = task.networks["G"], task.networks["F"]
    mse = torch.nn.functional.mse_loss
    fake_b, fake_a = g.core(a), f.core(b)
    # paired content: G(a) against the in-focus b, F(b) against a; cycle: F(G(a)) against a, G(F(b)) against b
    assert float(losses["content"]) == pytest.approx(float(mse(fake_b, b) + mse(fake_a, a)), rel=1e-5)
    assert float(losses["cycle"]) == pytest.approx(float(mse(f.core(fake_b), a) + mse(g.core(fake_a), b)), rel=1e-5)
    # the identity-type term has its target (the official code's missing fifth target): F(a) ~ a, G(b) ~ b
    assert float(losses["identity"]) == pytest.approx(float(mse(f.core(a), a) + mse(g.core(b), b)), rel=1e-5)
    no_content = _task(paired=False).generator_losses(a, b)
    assert float(no_content["content"]) == 0.0
    as_input = _task(paired=False, content_target="input").generator_losses(a, b)
    assert float(as_input["content"]) == pytest.approx(float(mse(fake_b, a) + mse(fake_a, b)), rel=1e-5)
    assert float(_task(weight_cycle=0).generator_losses(a, b)["cycle"]) == 0.0


def test_training_step_updates_generators_and_discriminators():
    from microrestore.engine.trainer import StepContext

    task = _task()
    before = {k: [p.detach().clone() for p in n.parameters()] for k, n in task.networks.items()}
    ctx = StepContext(
        device=torch.device("cpu"),
        precision="fp32",
        step=0,
        total=10,
        rng=np.random.default_rng(0),
        optimizers=task.configure_optimizers(),
    )
    out = task.training_step(_batch(), 0, ctx)
    assert {"G", "D_A", "D_B", "adversarial", "content", "cycle", "identity"} <= set(out)
    for name, net in task.networks.items():
        assert any(not torch.equal(p, q) for p, q in zip(net.parameters(), before[name])), name
    assert task.lr_factor(4, 10) == 1.0 and task.lr_factor(5, 10) == 1.0 and task.lr_factor(9, 10) == pytest.approx(0.2)
    opt = ctx.optimizers["G"]
    assert opt.defaults["lr"] == 1e-4 and opt.defaults["betas"] == (0.5, 0.99)


def test_shipped_microscopy_features_see_blur_more_than_noise():
    """The shipped network is real: frozen, and blur changes its features more than noise of equal pixel MSE."""
    from scipy import ndimage

    from microrestore.simulation.phantoms import filaments

    phi = feature_network("microscopy")
    assert all(not p.requires_grad for p in phi.parameters())
    sharp = filaments((96, 96), np.random.default_rng(3)) * 2 - 1
    blurred = ndimage.gaussian_filter(sharp, 2.0)
    pixel_mse = float(np.mean((blurred - sharp) ** 2))
    noisy = sharp + np.random.default_rng(4).normal(0, np.sqrt(pixel_mse), sharp.shape)

    def feat(x: np.ndarray) -> torch.Tensor:
        return phi(torch.from_numpy(np.asarray(x, np.float32))[None, None])

    ref = feat(sharp)
    d_blur = float(torch.mean((feat(blurred) - ref) ** 2))
    d_noise = float(torch.mean((feat(noisy) - ref) ** 2))
    assert d_blur > 2 * d_noise > 0


def test_shipped_microscopy_features_pin_the_image_down():
    """A content loss on the features is one on the image: matching a sharp image's features recovers its pixels.

    (Version 1 of the network, ReLU and max-pooling, failed this: its loss fell 1000-fold, the PSNR not at all.)
    """
    from microrestore.nn.features import pixel_recovery

    report = pixel_recovery(feature_network("microscopy"), fields=1, size=64, steps=150)
    assert report[150] > report[0] + 4.0  # measured +8.5 dB
    exact = pixel_recovery(PixelFeatures(), fields=1, size=64, steps=150)
    assert exact[150] > 45.0 > report[150]  # pixel MSE goes (nearly) all the way: measured 54 dB


def test_microscopy_feature_files_say_how_they_were_built(tmp_path: Path):
    """Version 1 files (no activation/pool metadata) load as ReLU/max; an unknown activation is a one-line error."""
    from safetensors.torch import save_file

    from microrestore.nn.features import MicroscopyFeatures, load_microscopy_features

    state = {k: v.contiguous() for k, v in MicroscopyFeatures((4, 8)).state_dict().items()}
    save_file(state, str(tmp_path / "v1.safetensors"), metadata={"widths": "[4, 8]"})
    old = load_microscopy_features(tmp_path / "v1.safetensors")
    assert old.spec["activation"] == "relu" and old.spec["pool"] == "max"
    assert any(isinstance(m, torch.nn.MaxPool2d) for m in old.modules())
    save_file(state, str(tmp_path / "bad.safetensors"), metadata={"widths": "[4, 8]", "activation": "gelu"})
    with pytest.raises(InputError, match="activation must be relu or leaky_relu"):
        load_microscopy_features(tmp_path / "bad.safetensors")
    shipped = feature_network("microscopy")
    assert shipped.spec["activation"] == "leaky_relu" and shipped.spec["pool"] == "avg"


def test_config_errors_are_one_line():
    with pytest.raises(InputError, match="multiple of 16"):
        validate(ComiConfig, {"patch_size": 72}, "comi configuration")
    with pytest.raises(InputError, match="needs paired training"):
        validate(ComiConfig, {"paired": False, "content_target": "paired"}, "comi configuration")
    with pytest.raises(InputError, match="defocus_slices needs focus_slice"):
        validate(ComiConfig, {"defocus_slices": [0]}, "comi configuration")
    with pytest.raises(InputError, match="headroom"):
        validate(ComiConfig, {"headroom": 0.5}, "comi configuration")
    with pytest.raises(InputError, match="unknown option"):
        validate(ComiConfig, {"lambda_cycle": 10}, "comi configuration")


def test_pairs_file(tmp_path: Path):
    src = [tmp_path / "blur" / "a_dz1.tif", tmp_path / "blur" / "b_dz1.tif"]
    tgt = [tmp_path / "focus" / "a.tif", tmp_path / "focus" / "b.tif"]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("# source,target\na_dz1.tif, a.tif\nblur/b_dz1.tif,focus/b.tif\n")
    assert read_pairs_file(pairs, src, tgt) == list(zip(src, tgt))
    pairs.write_text("a_dz1.tif,a.tif\n")
    with pytest.raises(InputError, match=r"b_dz1\.tif is not listed"):
        read_pairs_file(pairs, src, tgt)
    pairs.write_text("a_dz1.tif,a.tif\nb_dz1.tif,missing.tif\n")
    with pytest.raises(InputError, match=r"missing\.tif"):
        read_pairs_file(pairs, src, tgt)
    pairs.write_text("a_dz1.tif\n")
    with pytest.raises(InputError, match="line 1"):
        read_pairs_file(pairs, src, tgt)


def test_pair_by_prefix():
    targets = [Path("f/field_001.tif"), Path("f/field_0011.tif"), Path("f/cell.tif")]
    sources = [Path("d/field_001_dz+0.40.tif"), Path("d/field_0011_dz-0.20.tif"), Path("d/cell.tif")]
    assert [t for _, t in pair_by_prefix(sources, targets)] == targets
    with pytest.raises(InputError, match="field_002"):
        pair_by_prefix([Path("d/field_002_dz+0.40.tif")], targets)
    with pytest.raises(InputError, match="cellular"):  # a prefix must end at a separator
        pair_by_prefix([Path("d/cellular.tif")], targets)
