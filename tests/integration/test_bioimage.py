"""BioImage Model Zoo export and import: a tiny CARE model through bioimageio.core and back."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("bioimageio.core")

from microrestore.errors import MicrorestoreError
from microrestore.io.images import ImageData, read_image
from microrestore.plugins.registry import PredictOptions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from microrestore import api
    from microrestore.simulation import simulate

    root = tmp_path_factory.mktemp("bioimage")
    simulate("denoise", root / "data", n=2, seed=0, shape=(64, 64))
    model = api.train(
        "care",
        [root / "data" / "noisy"],
        root / "model",
        target=[root / "data" / "clean"],
        steps=20,
        progress=False,
        config={"base_filters": 8, "batch_size": 4, "patch_size": 32},
    )
    return Path(model), root / "data"


@pytest.fixture(scope="module")
def package(trained: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from microrestore.bioimage import export_model

    out = tmp_path_factory.mktemp("package") / "care.zip"
    assert export_model(trained[0], out) == out
    return out


def _image(data_dir: Path) -> ImageData:
    return read_image(sorted((data_dir / "noisy").glob("*.tif"))[0])


def _native(model: Path, image: ImageData) -> np.ndarray:
    from microrestore_care import load

    return load(str(model), PredictOptions(device="cpu")).predict(image)


def test_package_passes_test_model_and_declares_what_we_compute(package: Path) -> None:
    from bioimageio.core import load_model_description, test_model
    from bioimageio.spec.model import v0_5

    descr = load_model_description(package)
    assert isinstance(descr, v0_5.ModelDescr)
    assert test_model(descr, devices=["cpu"]).status == "passed"
    (inp,), (out,) = descr.inputs, descr.outputs
    assert inp.pad is not None and inp.pad.mode == "reflect"  # saved explicitly (a bare {} reloads as constant)
    ranges = [p for p in inp.preprocessing if p.id == "scale_range"]
    assert len(ranges) == 1
    assert ranges[0].kwargs.min_percentile == 1.0 and ranges[0].kwargs.max_percentile == 99.8
    y = next(a for a in out.axes if a.id == "y")
    assert y.halo > 0 and y.halo % next(a for a in inp.axes if a.id == "y").size.step == 0
    assert set(descr.weights.available_formats) >= {"pytorch_state_dict", "torchscript"}
    assert str(descr.weights.pytorch_state_dict.pytorch_version) == "2.13.0"
    assert any(str(c.doi) == "10.1038/s41592-018-0216-7" for c in descr.cite)
    names = zipfile.ZipFile(package).namelist()
    assert {"rdf.yaml", "README.md", "cover.png", "test_input.npy", "test_output.npy"} <= set(names)
    readme = zipfile.ZipFile(package).read("README.md").decode()
    assert "# Validation" in readme and "normalised units" in readme


def test_package_carries_the_model_folder_unchanged(trained: tuple[Path, Path], package: Path) -> None:
    """The package attaches config.yaml and weights.safetensors; microrestore loads them natively and exactly."""
    from bioimageio.core import load_model_description
    from microrestore_care import load

    from microrestore.bioimage import is_bioimage_package
    from microrestore.bioimage.importer import BioimagePredictor
    from microrestore.engine.predictor import NetworkPredictor

    model, data = trained
    with zipfile.ZipFile(package) as archive:
        for name in ("config.yaml", "weights.safetensors"):
            assert archive.read(name) == (model / name).read_bytes()
    attached = {str(a.source) for a in load_model_description(package).attachments}
    assert attached == {"config.yaml", "weights.safetensors"}
    assert not is_bioimage_package(package, "care") and is_bioimage_package(package, "n2v")
    predictor = load(str(package), PredictOptions(device="cpu"))
    assert isinstance(predictor, NetworkPredictor) and not isinstance(predictor, BioimagePredictor)
    image = _image(data)
    np.testing.assert_array_equal(predictor.predict(image), _native(model, image))


def test_bundled_package_loads_in_bioimageio() -> None:
    """The zoo's bundled care-demo-2d.zip is a valid bioimage.io package: bioimageio.core loads and tests it."""
    from bioimageio.core import load_model_description, test_model
    from bioimageio.spec.model import v0_5

    from microrestore import zoo

    package = zoo.BUNDLED_DIR / "care-demo-2d.zip"
    descr = load_model_description(package)
    assert isinstance(descr, v0_5.ModelDescr)
    assert test_model(descr, devices=["cpu"]).status == "passed"


@pytest.mark.parametrize("tile", [None, 40])
def test_reloaded_package_predicts_like_microrestore(
    trained: tuple[Path, Path], package: Path, tile: int | None
) -> None:
    from microrestore.bioimage import load_bioimage_predictor

    model, data = trained
    image = _image(data)
    expected = _native(model, image)
    predictor = load_bioimage_predictor(package, PredictOptions(device="cpu", tile=tile))
    if tile is not None:
        mode, edges = predictor._plan({"y": 64, "x": 64})
        assert mode == "blocks" and max(edges.values()) < 64  # several blocks with the halo
    got = predictor.predict(image)
    assert got.dtype == np.float32 and got.shape == image.data.shape
    span = float(expected.max() - expected.min())
    np.testing.assert_allclose(got, expected, atol=1e-4 * span, rtol=0)


def test_bioimageio_predict_in_normalised_units(trained: tuple[Path, Path], package: Path) -> None:
    """A plain bioimage.io consumer gets microrestore's result in normalised units (see the README)."""
    from bioimageio.core import Tensor, load_model_description, predict

    from microrestore.engine.modeldir import load_model
    from microrestore.engine.normalization import normalizer_from_dict

    model, data = trained
    image = _image(data)
    expected = _native(model, image)
    normalizer = normalizer_from_dict(load_model(model).normalization)
    params = normalizer.fit(np.asarray(image.data))
    x = np.asarray(image.data, dtype=np.float32)[None, None]
    descr = load_model_description(package)
    got = predict(
        model=descr,
        inputs={"raw": Tensor(x, dims=("batch", "channel", "y", "x"))},
        input_block_shape={"raw": {"batch": 1, "channel": 1, "y": 56, "x": 56}},
    )
    restored = got.members["restored"].data.values[0, 0]
    np.testing.assert_allclose(normalizer.invert(restored, params), expected, atol=1e-4 * float(np.ptp(expected)))


def test_stack_runs_plane_by_plane(trained: tuple[Path, Path], package: Path) -> None:
    from microrestore.bioimage import load_bioimage_predictor

    model, data = trained
    plane = np.asarray(_image(data).data)
    stack = ImageData(np.stack([plane, plane[::-1], plane[:, ::-1]]), "TYX")
    expected = np.stack([_native(model, ImageData(p, "YX")) for p in stack.data])
    out = np.zeros(stack.data.shape, np.float32)
    got = load_bioimage_predictor(package, PredictOptions(device="cpu")).predict(stack, out=out)
    assert got is out
    np.testing.assert_allclose(got, expected, atol=1e-4 * float(np.ptp(expected)))


def test_tampered_weights_are_refused_and_nothing_written(trained: tuple[Path, Path], tmp_path: Path) -> None:
    import torch

    import microrestore.bioimage.export as export

    original = export.build_description

    def tampered(*args, **kwargs):
        descr = original(*args, **kwargs)
        path = Path(str(descr.weights.pytorch_state_dict.source))
        state = torch.load(path, weights_only=True)
        state = {k: v + 0.5 * torch.randn_like(v) for k, v in state.items()}
        torch.save(state, path)
        return descr

    out = tmp_path / "broken.zip"
    export.build_description = tampered
    try:
        with pytest.raises(MicrorestoreError, match="test_model failed"):
            export.export_model(trained[0], out)
    finally:
        export.build_description = original
    assert list(tmp_path.iterdir()) == []


def test_cli_export(trained: tuple[Path, Path], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from microrestore.cli import export
    from microrestore.cli.app import build_app

    app = build_app(with_plugins=False)
    if not any(c.name == "export" for c in app.registered_commands):
        export.add_commands(app)
    out = tmp_path / "model.zip"
    result = CliRunner().invoke(app, ["export", str(trained[0]), "-o", str(out), "--author", "Test Person"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and zipfile.is_zipfile(out)


def test_help_does_not_import_bioimageio_or_torch() -> None:
    code = (
        "import sys\n"
        "from microrestore.cli.app import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "import microrestore.bioimage, microrestore.cli.export\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('bioimageio', 'torch')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
