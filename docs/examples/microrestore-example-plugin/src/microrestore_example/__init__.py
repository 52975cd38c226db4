"""An example microrestore plugin: two methods (one trainable), one command, one reader and one writer.

Keep a plugin's top-level module import-light (no torch): microrestore imports every plugin at start-up, and
``microrestore --help`` must stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from microrestore.plugin_api import ImageData, Method, PredictOptions, Reader, Writer, hookimpl


class MedianParams(BaseModel):
    """Options of the ``median`` method (``--set size=5``)."""

    model_config = ConfigDict(extra="forbid")

    size: int = Field(3, ge=1, le=31, description="Edge of the median window in pixels.")


class MedianPredictor:
    """Median filter over each YX plane; output in the input's units."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.size = int(params["size"])

    def predict(self, image: Any, out: Any = None) -> np.ndarray:
        from scipy.ndimage import median_filter

        data = np.asarray(image.data, dtype=np.float32)
        result = np.empty(data.shape, np.float32) if out is None else out
        y, x = image.axes.index("Y"), image.axes.index("X")
        size = [1] * data.ndim
        size[y] = size[x] = self.size
        result[...] = median_filter(data, size=size, mode="reflect")
        return result


def load(model: str | Path | None, options: PredictOptions) -> MedianPredictor:
    """The method needs no model; options arrive validated by ``predict_schema``."""
    return MedianPredictor(options.params or MedianParams().model_dump())


def hello(name: str = "microscopist") -> None:
    """A command added by the example plugin."""
    print(f"hello {name}, from the example plugin")


def read_npy(path: Path, axes: str | None = None) -> Any:
    """Read a ``.npy`` array (never with pickle)."""
    data = np.load(path, allow_pickle=False)
    return ImageData(data, axes or ("YX" if data.ndim == 2 else "ZYX"[-data.ndim :]), path=Path(path))


def write_npy(path: Path, data: np.ndarray, axes: str, **_: Any) -> Path:
    """Write a ``.npy`` array."""
    np.save(path, np.asarray(data), allow_pickle=False)
    return Path(path)


@hookimpl
def register_methods(register: Any) -> None:
    """Register the ``median`` method and the trainable ``example-unet`` (see :mod:`microrestore_example.unet`)."""
    from microrestore_example.unet import ExampleUNet

    register(
        Method(
            name="median",
            task="denoise",
            summary="Median filter (example third-party plugin)",
            load=load,
            predict_schema=MedianParams,
            needs_model=False,
        )
    )
    register(ExampleUNet().method())


@hookimpl
def register_commands(register: Any) -> None:
    """Register the ``example-hello`` command."""
    register("example-hello", hello)


@hookimpl
def register_readers(register: Any) -> None:
    """Register a reader for ``.npy`` files."""
    register(Reader(name="numpy", suffixes=(".npy",), read=read_npy))


@hookimpl
def register_writers(register: Any) -> None:
    """Register a writer for ``.npy`` files."""
    register(Writer(name="numpy", suffixes=(".npy",), write=write_npy))
