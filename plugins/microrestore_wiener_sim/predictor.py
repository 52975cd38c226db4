"""The ``wiener-sim`` predictor: raw stacks in, SR images on the 2x grid out."""

from __future__ import annotations

from typing import Any

from microrestore.errors import InputError
from microrestore.plugins.registry import PredictOptions
from microrestore.structured_illumination.options import SIMOptions
from microrestore.structured_illumination.params import SIMParams
from microrestore.structured_illumination.wiener_auto import WienerChoice


class WienerSIMPredictor:
    """Reconstruct raw SIM stacks with :func:`microrestore.structured_illumination.reconstruct.wiener_sim`.

    Attributes
    ----------
    options
        The SIM options.
    last_params
        Parameters used for the last image (the first stack's with ``per_stack``).
    stack_params
        Parameters of every stack of the last image (one entry unless ``per_stack``).
    last_wiener
        The Wiener constant used for the last image (given, or chosen from the noise).
    """

    def __init__(self, options: SIMOptions, predict_options: PredictOptions | None = None) -> None:
        self.options = options
        self.predict_options = predict_options or PredictOptions()
        self.last_params: SIMParams | None = None
        self.stack_params: list[SIMParams] = []
        self.last_wiener: WienerChoice | None = None

    def _set_wiener(self, choice: WienerChoice) -> None:
        self.last_wiener = choice

    def predict(self, image: Any, out: Any = None) -> Any:
        """Return float32 ``(n, 2 Y, 2 X)`` SR images of the ``n`` raw stacks of ``image`` (or fill ``out``)."""
        from microrestore.engine.device import resolve_device
        from microrestore.structured_illumination.reconstruct import wiener_sim

        if out is not None and tuple(out.shape) == tuple(image.data.shape):
            raise InputError(
                "wiener-sim turns 9 n raw frames into n SR images on the 2x grid; run it with "
                "'microrestore sim reconstruct', not restore",
                image.path,
            )
        device = resolve_device(self.predict_options.device)
        result, params = wiener_sim(
            image,
            self.options,
            device=device,
            out=out,
            on_progress=self.predict_options.report,
            on_wiener=self._set_wiener,
        )
        self.stack_params = params
        self.last_params = params[0]
        return result
