"""Every exportable method: a tiny trained model exports, passes test_model and runs alike in bioimageio.core.

A method is exported whole when its loader returns one :class:`~microrestore.engine.predictor.NetworkPredictor`,
and stage by stage (``--network``) when its loader returns a pipeline that provides network stages (rDL-SIM).
Each trainable built-in method must appear in :data:`TINY` (how to train a tiny model of it), in :data:`STAGES`
(a tiny pipeline model and its network stages) or in :data:`NOT_EXPORTABLE` (with the reason), so a new method
cannot silently skip this test.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("bioimageio.core")

from microrestore import api
from microrestore.errors import InputError
from microrestore.io.images import ImageData, read_image
from microrestore.plugins.manager import get_registry
from microrestore.plugins.registry import PredictOptions

pytestmark = pytest.mark.slow

#: method -> (training data: paired, unpaired, noisy or movie; tiny training configuration, steps)
TINY: dict[str, tuple[str, dict[str, Any], int]] = {
    "care": ("paired", {"base_filters": 8, "depth": 2, "batch_size": 4, "patch_size": 32}, 10),
    "c2gan": ("unpaired", {"ngf": 8, "ndf": 8, "n_blocks": 2, "patch_size": 32, "pool_size": 2}, 6),
    "n2v": ("noisy", {"base_filters": 8, "depth": 2, "batch_size": 4, "patch_size": 32}, 6),
    "rdl-denoise": (
        "movie",
        {"channels": 8, "n_groups": 1, "n_rcab": 2, "tail_channels": 8, "reduction": 4, "patch_size": 32},
        6,
    ),
    "comi": (
        "paired",
        {"ngf": 4, "ndf": 4, "n_blocks": 1, "patch_size": 48, "batch_size": 2, "feature_network": "pixel"},
        4,
    ),
}
#: pipeline method -> (tiny training configuration on simulated raw SIM stacks, every network stage it exports)
STAGES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "rdl-sim": (
        {
            "na": 1.3,
            "wavelength_nm": 525,
            "na_exc": 1.35,
            "wavelength_exc_nm": 488,
            "dfcan_channels": 4,
            "dfcan_groups": 1,
            "dfcan_fcab": 1,
            "denoiser_channels": 4,
            "denoiser_groups": [1, 1, 1],
            "denoiser_rcab": 1,
            "denoiser_tail_channels": 8,
            "reduction": 2,
            "patch_size": 32,
            "dfcan_steps": 3,
            "denoiser_steps": 3,
            "validation_every": 1000,
            "checkpoint_every": 1000,
        },
        ("dfcan", "denoiser"),
    ),
}
#: method -> why none of its networks can be exported (none today)
NOT_EXPORTABLE: dict[str, str] = {}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from microrestore.simulation import simulate

    root = tmp_path_factory.mktemp("export-data")
    simulate("denoise", root, n=3, seed=5, photons=20, shape=(64, 64))
    simulate("denoise", root / "large", n=1, seed=6, photons=20, shape=(320, 320))  # room for tiles
    simulate("timelapse", root / "movie", n=1, seed=7, photons=20, shape=(4, 64, 64))  # self-supervised TiS
    return root


def _trained(method: str, data: Path, out: Path) -> Path:
    kind, config, steps = TINY[method]
    noisy = sorted((data / "noisy").glob("*.tif"))
    clean = sorted((data / "clean").glob("*.tif"))
    source, target = {
        "paired": (noisy[1:], clean[1:]),
        "unpaired": (noisy[1:2], clean[2:3]),
        "noisy": (noisy[1:], []),
        "movie": (sorted((data / "movie" / "noisy").glob("*.tif")), []),
    }[kind]
    return Path(api.train(method, source, out, target=target, steps=steps, progress=False, config=config))


def test_every_trainable_method_is_covered() -> None:
    trainable = {name for name, m in get_registry().methods.items() if m.train is not None}
    missing = sorted(trainable - set(TINY) - set(STAGES) - set(NOT_EXPORTABLE))
    assert not missing, f"add these methods to TINY, STAGES or NOT_EXPORTABLE: {missing}"
    assert not (set(TINY) & set(STAGES)), "a method is exported whole or by stages, not both"


@pytest.mark.parametrize("method", sorted(TINY))
def test_export_round_trip(method: str, data: Path, tmp_path: Path) -> None:
    from bioimageio.core import load_model_description

    from microrestore.bioimage import export_model, load_bioimage_predictor

    model = _trained(method, data, tmp_path / "model")
    package = export_model(model, tmp_path / f"{method}.zip")
    descr = load_model_description(package)
    ours = descr.config.model_dump()["microrestore"]
    assert ours["method"] == method
    assert any(str(c.doi) for c in descr.cite)
    assert method in [str(t) for t in descr.tags]

    image: ImageData = read_image(sorted((data / "large" / "noisy").glob("*.tif"))[0])
    # c2gan maps each input into its training camera's units first; a bioimage.io package cannot, and takes the
    # fixed scale alone (calibrate=false in microrestore)
    params = {"calibrate": False} if method == "c2gan" else {}
    native_predictor = api.load_predictor(
        get_registry().methods[method], str(model), PredictOptions(device="cpu", params=params)
    )
    native = native_predictor.predict(image)
    span = float(np.ptp(native)) or 1.0
    # Instance norm divides by per-channel deviations that are tiny in an untrained network: float32 rounding
    # then differs by up to ~0.3 % between memory layouts (microrestore runs channels_last, bioimageio does
    # not; both are that far from a float64 reference), so non-local networks get a looser bound.
    tolerance = (1e-3 if native_predictor.is_local else 1e-2) * span
    whole = load_bioimage_predictor(package, PredictOptions(device="cpu")).predict(image)
    assert whole.shape == image.data.shape and whole.dtype == np.float32
    np.testing.assert_allclose(whole, native, atol=tolerance, rtol=0)

    multiple = int(ours["size_multiple"])
    minimum = min(a.size.min for a in descr.inputs[0].axes if str(a.id) in ("y", "x"))
    tile = minimum + multiple  # about the smallest tiles a bioimage.io consumer may use
    assert tile < min(image.data.shape)
    tiled = load_bioimage_predictor(package, PredictOptions(device="cpu", tile=tile)).predict(image)
    if native_predictor.is_local:
        np.testing.assert_allclose(tiled, native, atol=tolerance, rtol=0)
    else:  # instance norm / attention: tiles see other statistics; the declared minimum keeps them close
        assert minimum >= 256
        assert np.corrcoef(tiled.ravel(), native.ravel())[0, 1] > 0.95  # 0.98 measured (untrained network)


@pytest.fixture(scope="module")
def sim_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from microrestore.simulation import simulate

    root = tmp_path_factory.mktemp("export-sim")
    optics = {"na_exc": 1.35, "wavelength_exc_nm": 488, "photons": 30}
    simulate("sim", root / "train", n=2, seed=0, shape=(64, 64), gt_mode="sim", **optics)
    simulate("sim", root / "sample", n=1, seed=3, shape=(256, 256), **optics)  # the export's test tensors
    simulate("sim", root / "other", n=1, seed=9, shape=(300, 280), **optics)  # another field, another size
    return root


@pytest.mark.parametrize("method", sorted(STAGES))
def test_export_network_stages_round_trip(method: str, sim_data: Path, tmp_path: Path) -> None:
    import torch
    from bioimageio.core import create_prediction_pipeline, load_model_description
    from bioimageio.core.sample import Sample
    from bioimageio.core.tensor import Tensor

    from microrestore.bioimage import export_model, load_bioimage_predictor
    from microrestore.bioimage.stages import TestCrop
    from microrestore.structured_illumination.patterns import minmax

    config, networks = STAGES[method]
    model = api.train(method, [sim_data / "train" / "raw"], tmp_path / "model", config=config, progress=False)
    predictor = api.load_predictor(get_registry().methods[method], str(model), PredictOptions(device="cpu"))
    assert set(predictor.network_stages()) == set(networks)
    other = read_image(sim_data / "other" / "raw" / "field_000.tif")
    for network in networks:
        package = export_model(
            model, tmp_path / f"{network}.zip", network=network, sample=sim_data / "sample" / "raw" / "field_000.tif"
        )  # written only when bioimageio.core's test_model passed
        descr = load_model_description(package)
        ours = descr.config.model_dump()["microrestore"]
        assert ours["method"] == method and ours["network"] == network and ours["pipeline_stage"] is True
        assert "pipeline-stage" in [str(t) for t in descr.tags]
        readme = zipfile.ZipFile(package).read("README.md").decode()
        assert f"one network stage of the {method} pipeline, not the whole method" in readme
        assert readme.count("(this package)") == 1 and readme.count("(not in this package)") == 5
        with pytest.raises(InputError, match=f"the '{network}' network stage of the {method} pipeline"):
            load_bioimage_predictor(package, PredictOptions(device="cpu"))  # not an image-to-image model

        # another field at another size, prepared by the pipeline; bioimageio.core runs the package on it
        module = predictor.stage_network(network)
        example = predictor.stage_example(network, other, TestCrop(256, 1, 320))
        ny, nx = example.inputs[0].test.shape[-2:]
        assert (ny, nx) == (300, 280)
        inputs = {t.id: t.test for t in example.inputs}
        frames = other.data.astype(np.float32)  # 9 frames, orientation-major, in the camera's units
        if network == "dfcan":  # the raw stack as it is: the package normalises it
            np.testing.assert_array_equal(inputs["raw"][0], frames)
        else:  # the stack min-max normalised, then each orientation scaled to orientation 0's mean
            x = (frames - frames.min()) / (frames.max() - frames.min() + 1e-7)
            per_orientation = x.reshape(3, 3, ny, nx)
            means = per_orientation.mean(axis=(1, 2, 3))
            noisy = per_orientation * (means[0] / means)[:, None, None, None]
            np.testing.assert_allclose(inputs["noisy"], noisy, rtol=1e-5, atol=1e-6)
            assert inputs["generated"].shape == noisy.shape
        with torch.no_grad():  # microrestore's network on the same input, normalised as the pipeline does
            given = [torch.from_numpy(t.test) for t in example.inputs]
            if network == "dfcan":
                expected = module(minmax(given[0])).numpy()
            else:
                expected = module(*given).numpy()
        assert expected.shape[-2:] == (ny * example.output.scale, nx * example.output.scale)
        for weights in ("pytorch_state_dict", "torchscript"):
            pipeline = create_prediction_pipeline(descr, weight_format=weights, devices=["cpu"])
            sample = Sample(
                members={k: Tensor.from_numpy(v, dims=("batch", "channel", "y", "x")) for k, v in inputs.items()},
                stat={},
                id="other",
            )
            got = pipeline.predict_sample_without_blocking(sample).members[example.output.id].data.values
            np.testing.assert_allclose(got, expected, atol=1e-5 * float(np.ptp(expected)), rtol=0)
