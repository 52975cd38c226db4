"""A bundled default model on a simulated field that no zoo recipe drew: the shared steps of those tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def restore_fresh_field(
    folder: Path, case: str, method: str, source: str, truth: str, **simulate_args: Any
) -> tuple[np.ndarray, dict[str, float], dict[str, float]]:
    """Simulate ``case`` into ``folder``, restore ``source`` with ``method``'s default model (input dtype kept).

    Returns the output and the metrics of the input and of the output against the clean ``truth`` (paths
    relative to ``folder``); checks that the output has the input's dtype and the truth's shape.
    """
    from microrestore import api, metrics
    from microrestore.io import read_image
    from microrestore.simulation import simulate

    simulate(case, folder, n=1, **simulate_args)
    image = read_image(folder / source)
    reference = np.asarray(read_image(folder / truth).data, np.float32)
    out = api.restore(image, method, dtype="same")
    assert out.dtype == np.asarray(image.data).dtype and out.shape == reference.shape
    before = metrics.evaluate(np.asarray(image.data, np.float32), reference)
    after = metrics.evaluate(out.astype(np.float32), reference)
    return out, before, after
