"""The one-shot ``--self-supervised`` run: CPU-sized network, bounded default budget, warning when too short."""

from __future__ import annotations

from pathlib import Path

import pytest

from microrestore import api
from microrestore.configs import validate


def test_default_plan_uses_the_cpu_sized_network_and_a_time_budget() -> None:
    method = api.get_method("rdl-denoise")
    config, steps, seconds = api.self_supervised_budget(method, api.SelfSupervised())
    assert config == method.self_supervised_config and steps is None
    assert seconds == api.SELF_SUPERVISED_SECONDS
    # --set keys override single values of the one-shot configuration.
    config, _, _ = api.self_supervised_budget(method, api.SelfSupervised(config={"channels": 8}))
    assert config["channels"] == 8 and config["n_groups"] == method.self_supervised_config["n_groups"]


def test_steps_or_seconds_given_replace_the_default_budget() -> None:
    method = api.get_method("rdl-denoise")
    assert api.self_supervised_budget(method, api.SelfSupervised(steps=50))[1:] == (50, None)
    assert api.self_supervised_budget(method, api.SelfSupervised(config={"steps": 50}))[2] is None
    assert api.self_supervised_budget(method, api.SelfSupervised(max_seconds=30.0))[2] == 30.0
    # A configuration file (defaults off): the method's own defaults and no time limit unless asked.
    from_file = api.SelfSupervised(config={"mode": "sis"}, defaults=False)
    config, steps, seconds = api.self_supervised_budget(method, from_file)
    assert config == {"mode": "sis"} and steps is None and seconds is None


@pytest.mark.parametrize("name", ["rdl-denoise", "n2v"])
def test_one_shot_configurations_are_valid_and_small(name: str) -> None:
    from microrestore.nn import count_parameters

    method = api.get_method(name)
    assert method.self_supervised and method.self_supervised_config
    config = validate(method.config_schema, method.self_supervised_config, name)
    defaults = method.config_schema()
    assert config.steps < defaults.steps
    if name == "rdl-denoise":
        from microrestore.nn import RCAN

        small = RCAN(ndim=config.ndim, n_groups=config.n_groups, n_rcab=config.n_rcab, channels=config.channels,
                     tail_channels=config.tail_channels, reduction=config.reduction)  # fmt: skip
        paper = RCAN(ndim=2, n_groups=defaults.n_groups, n_rcab=defaults.n_rcab, channels=defaults.channels,
                     tail_channels=defaults.tail_channels, reduction=defaults.reduction)  # fmt: skip
    else:
        from microrestore.nn import UNet

        small = UNet(ndim=config.ndim, depth=config.depth, base_filters=config.base_filters)
        paper = UNet(ndim=defaults.ndim, depth=defaults.depth, base_filters=defaults.base_filters)
    # Prediction cost grows with the parameters of these full-resolution convolutions: at most a third.
    assert count_parameters(small) * 3 < count_parameters(paper)


def test_few_steps_warning_names_the_steps_and_what_to_do(tmp_path: Path) -> None:
    from microrestore.engine.modeldir import save_model

    def model(steps: int, run: int) -> Path:
        folder = tmp_path / f"m{steps}-{run}"
        provenance = {"steps": steps, "steps_run": run}
        save_model(folder, method="x", networks={}, network_specs={}, normalization={}, config={}, axes="YX",
                   provenance=provenance)  # fmt: skip
        return folder

    message = api.few_steps_warning("rdl-denoise", Path("movie.tif"), model(2000, 17), 120.0)
    assert message is not None
    assert "movie.tif" in message and "17 of 2000 steps" in message and "120 s" in message
    assert "--train-seconds" in message and "--train-steps" in message
    assert api.few_steps_warning("rdl-denoise", Path("m.tif"), model(2000, 1500), 120.0) is None  # enough ran
    assert api.few_steps_warning("rdl-denoise", Path("m.tif"), model(2000, 17), None) is None  # no time budget
