"""A model folder's config.yaml is checked value by value before anything is built from it.

No checksum covers ``config.yaml``; it says how to build the networks. Before this check, ``depth: 40`` hung
for ever, ``base_filters: 200000`` asked for 1.4 TB, a malformed ``format_version`` or ``networks`` crashed
with exit 1 blaming the plugin, and a FIFO named ``config.yaml`` blocked the CLI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli import _assert_one_line_error
from tests.robustness import corpus


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", corpus.names("model-config"))
def test_lying_model_config_is_one_line_exit_2(cli, tmp_path: Path, name: str) -> None:
    made = corpus.build(name, tmp_path)
    out = tmp_path / "out.tif"
    result = cli("denoise", made.extra["input"], "-o", out, "--method", "care", "--model", made.path)
    member = "weights.safetensors" if name.startswith("weights") else "config.yaml"
    _assert_one_line_error(result, str(made.path / member), made.needle)
    assert not out.exists()


def test_the_corpus_folder_itself_is_valid(cli, tmp_path: Path) -> None:
    """The unedited model the cases start from restores: each case's error comes from its one edit."""
    model = corpus.care_model(tmp_path / "model")
    src = corpus.write_image(tmp_path / "in.tif")
    result = cli("denoise", src, "-o", tmp_path / "out.tif", "--method", "care", "--model", model, "-q")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("method", "spec", "field"),
    [
        ("care", {"name": "unet"}, "depth"),
        ("care", {"name": "unet"}, "base_filters"),
        ("n2v", {"name": "unet"}, "depth"),
        ("c2gan", {"name": "resnet_generator"}, "ngf"),
        ("c2gan", {"name": "patchgan"}, "ndf"),
        ("comi", {"name": "resnet_generator"}, "n_blocks"),
        ("rdl-denoise", {"name": "rcan"}, "n_rcab"),
        ("rdl-denoise", {"name": "rcan"}, "tail_channels"),
    ],
)
def test_training_and_loading_share_the_bounds(method: str, spec: dict, field: str) -> None:
    """The largest value training accepts loads; one more is refused by both."""
    from pydantic import ValidationError

    from microrestore.errors import InputError
    from microrestore.nn.registry import check_spec
    from microrestore.plugins import get_registry

    schema = get_registry().method(method).config_schema
    (bound,) = [m.le for m in schema.model_fields[field].metadata if getattr(m, "le", None) is not None]
    schema(**{field: bound})
    check_spec({**spec, field: bound})
    with pytest.raises(ValidationError):
        schema(**{field: bound + 1})
    with pytest.raises(InputError, match=field):
        check_spec({**spec, field: bound + 1})


def test_api_load_names_the_file(tmp_path: Path) -> None:
    from microrestore.engine.modeldir import load_model
    from microrestore.errors import InputError

    made = corpus.build("config-depth-40", tmp_path)
    with pytest.raises(InputError, match=r"config\.yaml: networks\.net: network 'unet': depth"):
        load_model(made.path)
