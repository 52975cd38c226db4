"""``microrestore zoo train RECIPE``: recipes with one simulated set, several (``into`` sub-folders), and errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
import yaml

from tests.e2e.test_cli import _assert_one_line_error


def _write(path: Path, data: object) -> Path:
    recipe = {
        "id": "tiny",
        "method": "n2v",
        "recipe": {
            "data": data,
            "train": {
                "method": "n2v",
                "source": ["plain/noisy", "cells/noisy/field_000.tif"],
                "steps": 2,
                "config": {"patch_size": 32, "batch_size": 2, "depth": 1, "base_filters": 4},
            },
        },
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_recipe_with_several_simulated_sets(cli, tmp_path: Path) -> None:
    image = np.full((128, 128), 100.0, np.float32)
    image[32:96, 32:96] += 500.0
    tifffile.imwrite(tmp_path / "cell.tif", image)
    crops = {"phantom": "image_crops", "phantom_params": {"images": [str(tmp_path / "cell.tif")]}}
    data = [
        {"simulate": "denoise", "into": "plain", "n": 2, "seed": 1, "params": {"shape": [48, 48]}},
        {"simulate": "denoise", "into": "cells", "n": 1, "seed": 2, "params": {"shape": [48, 48], **crops}},
    ]
    recipe = _write(tmp_path / "tiny.yaml", data)
    work = tmp_path / "work"
    result = cli("zoo", "train", recipe, "-o", tmp_path / "model", "--workdir", work, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "model" / "weights.safetensors").is_file()
    assert len(list((work / "tiny-data" / "plain" / "noisy").glob("*.tif"))) == 2
    assert (work / "tiny-data" / "cells" / "clean" / "field_000.tif").is_file()


def test_recipe_data_list_needs_into(cli, tmp_path: Path) -> None:
    recipe = _write(tmp_path / "tiny.yaml", [{"simulate": "denoise", "n": 1}])
    result = cli("zoo", "train", recipe, "-o", tmp_path / "model", "--workdir", tmp_path / "work")
    _assert_one_line_error(result, "'simulate' and 'into'")
    assert not (tmp_path / "model").exists()
