from __future__ import annotations

import numpy as np
import pytest
import torch

from microrestore.engine.seeding import (
    deterministic_algorithms,
    seed_everything,
    set_torch_rng_state,
    step_rng,
    torch_rng_state,
)
from microrestore.errors import InputError


def test_step_rng_is_pure_and_streams_differ() -> None:
    a = step_rng(3, 10).random(5)
    assert np.array_equal(a, step_rng(3, 10).random(5))
    assert np.array_equal(a, np.random.default_rng([3, 0, 10]).random(5))
    assert not np.array_equal(a, step_rng(3, 11).random(5))
    assert not np.array_equal(a, step_rng(3, 10, stream=1).random(5))
    assert not np.array_equal(a, step_rng(4, 10).random(5))


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_invalid_seed(bad: object) -> None:
    with pytest.raises(InputError):
        step_rng(bad, 0)  # type: ignore[arg-type]


def test_seed_everything_repeats_torch_and_numpy() -> None:
    with deterministic_algorithms(False):  # restores the session's settings afterwards
        seed_everything(7, deterministic=False)
        first = torch.rand(3), np.random.rand(3)  # noqa: NPY002
        seed_everything(7, deterministic=True)
        second = torch.rand(3), np.random.rand(3)  # noqa: NPY002
        assert torch.equal(first[0], second[0])
        assert np.array_equal(first[1], second[1])
        assert torch.are_deterministic_algorithms_enabled()


def test_deterministic_algorithms_restores_settings() -> None:
    before = torch.are_deterministic_algorithms_enabled()
    with deterministic_algorithms(not before):
        assert torch.are_deterministic_algorithms_enabled() is (not before)
    assert torch.are_deterministic_algorithms_enabled() is before


def test_torch_rng_state_round_trip() -> None:
    state = torch_rng_state()
    expected = torch.rand(4)
    set_torch_rng_state(state)
    assert torch.equal(torch.rand(4), expected)


def test_deterministic_training_does_not_import_torchs_compiler() -> None:
    # torch.use_deterministic_algorithms imports inductor and dynamo (seconds of start-up per training run);
    # eager training only needs the kernel setting.
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from microrestore.engine.seeding import deterministic_algorithms\n"
        "before = torch.are_deterministic_algorithms_enabled()\n"
        "with deterministic_algorithms(True):\n"
        "    inside = (torch.are_deterministic_algorithms_enabled(),\n"
        "              torch.is_deterministic_algorithms_warn_only_enabled())\n"
        "print(before, inside, torch.are_deterministic_algorithms_enabled(), 'torch._inductor' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "(True,", "True)", "False", "False"]
