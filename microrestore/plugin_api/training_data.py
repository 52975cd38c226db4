"""What a trainable network method's data preparation hands to training (:class:`TrainingData`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TrainingData"]


@dataclass
class TrainingData:
    """What :meth:`NetworkMethod.prepare` hands to the rest of training.

    Attributes
    ----------
    sample_batch
        ``sample_batch(rng, batch_size)``: the batch of a step, drawn from ``rng`` only (exact resume).
    normalization
        The normalisation saved with the model (the predictor applies it), e.g. ``normalizer.to_dict()``.
    axes
        Axes of the model's input images (``YX``, ``ZYX``, ``CYX``).
    validation
        The fixed validation batch, or ``None``.
    images
        The training inputs (:class:`~microrestore.io.images.ImageData`): their domain is recorded for the
        domain guard, and the first one's pixel size is :attr:`pixel_size_um`.
    config
        Values resolved from the data, saved over the configuration (e.g. the patch shape that fitted).
    provenance
        Extra provenance (fitted background, thresholds, ...).
    """

    sample_batch: Callable[[np.random.Generator, int], Any]
    normalization: Mapping[str, Any]
    axes: str
    validation: Any = None
    images: list[Any] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def pixel_size_um(self) -> float | None:
        """The lateral pixel size of the first training image, when its file declared one."""
        return self.images[0].pixel_size.get("X") if self.images else None
