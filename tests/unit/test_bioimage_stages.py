"""Export of network stages: refusals of ``--network`` (no training, no test_model), crops and network names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from microrestore.bioimage.stages import TestCrop, valid_crop
from microrestore.errors import InputError


def _rdl_sim_folder(root: Path) -> Path:
    """An rdl-sim model folder with tiny untrained networks (the refusals happen before anything runs)."""
    from microrestore.engine.modeldir import save_model
    from microrestore.nn import DFCAN, RDLDenoiser

    dfcan = DFCAN(channels=4, n_groups=1, n_fcab=1, reduction=2)
    denoiser = RDLDenoiser(channels=4, n_groups=(1, 1, 1), n_rcab=1, reduction=2, tail_channels=8)
    return save_model(
        root / "rdl",
        method="rdl-sim",
        networks={"dfcan": dfcan, "denoiser": denoiser},
        network_specs={"dfcan": dfcan.spec, "denoiser": denoiser.spec},
        normalization={},
        config={"na": 1.3, "wavelength_nm": 525.0},
        axes="YX",
    )


def _care_folder(root: Path) -> Path:
    from microrestore.engine.modeldir import save_model
    from microrestore.nn import UNet

    net = UNet(depth=1, base_filters=4)
    return save_model(
        root / "care",
        method="care",
        networks={"net": net},
        network_specs={"net": net.spec},
        normalization={"kind": "percentile", "low": 1.0, "high": 99.8},
        config={},
        axes="YX",
    )


def test_pipeline_export_without_network_names_the_networks_and_writes_nothing(cli, tmp_path: Path) -> None:
    pytest.importorskip("bioimageio.core")
    model = _rdl_sim_folder(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    result = cli("export", model, "-o", out / "rdl.zip", "--author", "Test Person")
    assert result.exit_code == 1
    message = [line for line in result.output.splitlines() if line.strip()]
    assert len(message) == 1, result.output
    assert "pipeline" in message[0] and "--network" in message[0]
    assert "dfcan" in message[0] and "denoiser" in message[0]
    unknown = cli("export", model, "-o", out / "rdl.zip", "--network", "unet", "--author", "Test Person")
    assert unknown.exit_code == 2 and "dfcan, denoiser" in unknown.output and "'unet'" in unknown.output
    assert list(out.iterdir()) == []


def test_single_network_export_refuses_another_network_name(tmp_path: Path) -> None:
    pytest.importorskip("bioimageio.core")
    from microrestore.bioimage import export_model

    model = _care_folder(tmp_path)
    with pytest.raises(InputError, match=r"--network 'G'.*runs this model's 'net' network.*--network net"):
        export_model(model, tmp_path / "care.zip", network="G")
    assert not (tmp_path / "care.zip").exists()


def test_network_name_tells_networks_of_one_spec_apart_by_their_weights(tmp_path: Path) -> None:
    import torch

    from microrestore.bioimage.weights import network_name
    from microrestore.engine.modeldir import load_model, save_model
    from microrestore.nn import UNet, build_network

    torch.manual_seed(0)
    g, f = UNet(depth=1, base_filters=4), UNet(depth=1, base_filters=4)  # same spec, other weights
    folder = save_model(
        tmp_path / "two",
        method="care",
        networks={"G": g, "F": f},
        network_specs={"G": g.spec, "F": f.spec},
        normalization={},
        config={},
        axes="YX",
    )
    bundle = load_model(folder)
    assert network_name(bundle, bundle.build("F", build_network)) == "F"
    assert network_name(bundle, bundle.build("G", build_network)) == "G"


def test_crops_fit_the_declared_sizes() -> None:
    frames = np.arange(3 * 3 * 40 * 50, dtype=np.float32).reshape(3, 3, 40, 50)
    crop = TestCrop(minimum=20, step=4, edge=30)
    out = crop(frames)
    assert out.shape == (3, 3, 28, 28)  # 20 + 2 * 4, centred
    np.testing.assert_array_equal(out, frames[..., 6:34, 11:39])
    assert valid_crop(frames[0, 0], 20, 1, 100).shape == (40, 50)  # never larger than the image
    with pytest.raises(InputError, match="smaller than the model's smallest input"):
        TestCrop(minimum=45, step=1, edge=256)(frames)
