"""The CycleGAN image history pool (Shrivastava et al. 2017; Zhu et al. 2017).

Discriminators are trained on a mix of the newest generated images and older ones, which damps oscillation.
The pool draws its randomness from the generator it is given (``ctx.rng`` in a training step), and its
contents go into checkpoints through :meth:`ImagePool.state_tensors`, so a resumed run sees the same pool.

In a data-parallel run (several processes, see :mod:`microrestore.engine.distributed`) the pool is global:
each query gathers the ranks' shares of the batch, every rank runs the same query on the whole batch with the
same generator, and takes back its own share. Every rank then holds the same pool (the one a single process
would hold), so rank 0's checkpoint is complete and resuming with another number of processes is exact.
"""

from __future__ import annotations

import numpy as np
import torch

from microrestore.errors import InputError


class ImagePool:
    """A buffer of up to ``size`` previously generated images.

    Parameters
    ----------
    size
        Capacity; ``0`` turns the pool off (:meth:`query` returns its input).
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise InputError(f"image pool size must be zero or positive, got {size}")
        self.size = int(size)
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def query(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Return a batch for the discriminator and store the new images.

        Each image of the batch is kept while the pool is not full. Once it is full, with probability 0.5 a
        random stored image is returned in its place and replaced by it; otherwise the image itself is
        returned.

        Parameters
        ----------
        images
            Generated batch ``(B, ...)``; stored detached.
        rng
            Source of randomness.

        Returns
        -------
        torch.Tensor
            Detached batch of the same shape.
        """
        images = images.detach()
        if self.size == 0:
            return images
        from microrestore.engine.distributed import all_gather_batch, is_distributed

        if is_distributed():
            import torch.distributed as dist

            share = images.shape[0]
            start = dist.get_rank() * share
            return self._query(all_gather_batch(images), rng)[start : start + share]
        return self._query(images, rng)

    def _query(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif rng.random() < 0.5:
                index = int(rng.integers(self.size))
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, dim=0)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Return the stored images for a checkpoint.

        Returns
        -------
        dict of str to torch.Tensor
            ``"00000"``, ``"00001"``, ...: one ``(1, ...)`` tensor per stored image, in pool order, on the CPU.
        """
        return {f"{i:05d}": image.detach().to("cpu").clone().contiguous() for i, image in enumerate(self.images)}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], device: torch.device | str | None = None) -> None:
        """Replace the contents with those saved by :meth:`state_tensors`.

        Parameters
        ----------
        tensors
            The saved images, keyed by their position.
        device
            Where to keep them (the training device); default: where they are.

        Raises
        ------
        InputError
            More images than the pool holds, or keys that are not positions.
        """
        try:
            ordered = sorted(tensors.items(), key=lambda item: int(item[0]))
        except ValueError:
            raise InputError(f"image pool state has keys that are not positions: {sorted(tensors)[:3]}") from None
        if len(ordered) > self.size:
            raise InputError(f"image pool state holds {len(ordered)} images, more than the pool size {self.size}")
        self.images = [t.to(device) if device is not None else t for _, t in ordered]
