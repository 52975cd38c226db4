"""The method contract (microrestore.testing.contract) on every built-in trainable method and the example plugin.

A meta-test fails when a registered trainable method has no case here, so a new method cannot skip the contract.
The example plugin (docs/examples/microrestore-example-plugin) is installed for every test of this module.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from microrestore.plugins.manager import get_registry
from microrestore.simulation import simulate
from microrestore.testing.contract import (
    MethodCase,
    check_max_seconds,
    check_method,
    noisy_images_data,
    paired_denoise_data,
    unpaired_denoise_data,
)
from tests.conftest import EXAMPLE_PLUGIN

pytestmark = pytest.mark.slow

UNET = {"base_filters": 4, "depth": 1, "batch_size": 2, "patch_size": 16, "patch_depth": 4}
RCAN = {"channels": 4, "n_groups": 1, "n_rcab": 1, "tail_channels": 4, "reduction": 2, "patch_size": 16}
RCAN_3D = {**RCAN, "patch_depth": 4, "batch_size": 2}
OPTICS = {"na": 1.3, "wavelength_nm": 525, "na_exc": 1.35, "wavelength_exc_nm": 488}


def sim_stacks(folder: Path, ndim: int = 2) -> tuple[list[Path], list[Path]]:
    """Raw 2D-SIM stacks with high-SNR and SR references, as rdl-sim trains on them."""
    simulate("sim", folder, n=2, seed=0, shape=(64, 64), gt_mode="sim", photons=30, na_exc=1.35, wavelength_exc_nm=488)
    return [folder / "raw"], []


CASES: dict[str, MethodCase] = {
    "care": MethodCase("care", paired_denoise_data, UNET, ndims=(2, 3), command=("denoise",)),
    "n2v": MethodCase("n2v", noisy_images_data, UNET, ndims=(2, 3), command=("denoise",)),
    "rdl-denoise": MethodCase(
        "rdl-denoise", noisy_images_data, RCAN_3D, ndims=(2, 3), config_3d={"mode": "sis"}, command=("denoise",)
    ),
    "c2gan": MethodCase(
        "c2gan",
        unpaired_denoise_data,
        {"ngf": 4, "ndf": 4, "n_blocks": 1, "patch_size": 32, "intensity_range": "data"},  # in the data's units
        command=("denoise",),
    ),
    "comi": MethodCase(
        "comi",
        lambda folder, ndim: paired_denoise_data(folder, ndim, size=64),
        {"ngf": 4, "ndf": 4, "n_blocks": 1, "patch_size": 48, "batch_size": 2, "feature_network": "pixel"},
        command=("deblur",),
    ),
    "example-unet": MethodCase("example-unet", paired_denoise_data, UNET, ndims=(2, 3), command=("denoise",)),
    "rdl-sim": MethodCase(
        "rdl-sim",
        sim_stacks,
        {
            **OPTICS,
            "dfcan_channels": 4,
            "dfcan_groups": 1,
            "dfcan_fcab": 1,
            "denoiser_channels": 4,
            "denoiser_groups": [1, 1, 1],
            "denoiser_rcab": 1,
            "denoiser_tail_channels": 4,
            "reduction": 2,
            "patch_size": 32,
            "dfcan_batch_size": 1,
            "validation_fraction": 0.5,
        },
        command=("sim", "reconstruct"),
        domain=False,  # not recorded yet: the raw SIM stacks are not measured by the domain guard
    ),
}


@pytest.fixture(autouse=True)
def _example_plugin(install_plugin):
    install_plugin("microrestore-example", "0.1.0", {"example": "microrestore_example"}, path=EXAMPLE_PLUGIN / "src")


@pytest.fixture(scope="module", autouse=True)
def _warm_torch():
    """Pay torch's one-off start-up costs (its import, the first switch to deterministic kernels) before timing."""
    import torch

    with torch.no_grad():
        enabled = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.use_deterministic_algorithms(enabled)


def test_every_trainable_method_has_a_case():
    trainable = {name for name, method in get_registry().methods.items() if method.train is not None}
    assert "example-unet" in trainable
    missing = trainable - set(CASES)
    assert not missing, f"trainable methods without a contract case in {__file__}: {sorted(missing)}"


@pytest.mark.parametrize("method", sorted(CASES))
def test_max_seconds_is_honoured(method, tmp_path, record_property):
    seconds = check_max_seconds(CASES[method], tmp_path, seconds=2.0)
    record_property("max_seconds_wall", seconds)
    print(json.dumps({"method": method, "max_seconds": 2.0, "wall_s": round(seconds, 2)}))


@pytest.mark.parametrize("method", sorted(set(CASES) - {"example-unet"}))
def test_method_contract(method, tmp_path):
    """Exact resume after a time-limited run, 2D and 3D where declared, prediction in the input's units, domain."""
    check_method(CASES[method], tmp_path, export=False)  # export: tests/integration/test_export_methods.py


def test_example_plugin_contract_with_export(tmp_path):
    """The smallest trainable method trains, resumes, predicts and exports (bioimage.io) through the CLI."""
    pytest.importorskip("bioimageio.core")
    check_method(CASES["example-unet"], tmp_path, export=True)


def test_smallest_method_is_small_and_shown_in_the_docs():
    source = (EXAMPLE_PLUGIN / "src" / "microrestore_example" / "unet.py").read_text(encoding="utf-8")
    assert len(source.splitlines()) <= 50
    docs = (EXAMPLE_PLUGIN.parents[1] / "plugins.md").read_text(encoding="utf-8")
    assert source.strip() in docs, "docs/plugins.md must show docs/examples/.../unet.py verbatim"
