"""The base of trainable network methods: request -> config -> data -> networks -> Trainer -> save -> load.

A method subclasses :class:`NetworkMethod`, sets its class attributes and implements its steps:

- :meth:`NetworkMethod.prepare`: read and normalise the training files into a :class:`TrainingData`
  (the batch sampler, the validation batch, the normalisation to save);
- :meth:`NetworkMethod.build_networks`: the networks, by name (seeded with the configuration's ``seed``);
  by default the U-Net of a configuration with :class:`~microrestore.plugin_api.config_parts.UNetOptions`;
- :meth:`NetworkMethod.training_task`: the :class:`~microrestore.engine.trainer.TrainingTask` (the step); by
  default a :class:`~microrestore.plugin_api.training_parts.SingleNetworkTask` that minimises
  :meth:`NetworkMethod.losses`, so a one-network method writes only its loss.

The base does the rest, the same for every method: validating the configuration (``--steps`` included), the
:class:`~microrestore.engine.trainer.Trainer` with the request's device, time budget (``--max-seconds``) and
exact resume, the model folder with provenance (seed, steps, steps run, files, the training domain the domain
guard checks inputs against) and metrics, and loading a single-network model back into a tiled predictor.
:meth:`NetworkMethod.method` returns the :class:`~microrestore.plugins.registry.Method` to register.

This module imports no torch: a plugin's top-level module may define its method class here, and torch is
loaded when a model is trained or loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from microrestore.errors import InputError
from microrestore.plugin_api.training_data import TrainingData
from microrestore.plugins.registry import Method, PredictOptions, Predictor, Task, TrainRequest

if TYPE_CHECKING:
    import torch
    from pydantic import BaseModel

__all__ = ["NetworkMethod", "TrainingData", "build_unet"]


class NetworkMethod:
    """A trainable network method; subclass it and register ``MyMethod().method()``.

    Class attributes
    ----------------
    name, task, summary, citation, default_model
        As :class:`~microrestore.plugins.registry.Method`.
    config_schema
        The pydantic configuration (use the parts of :mod:`microrestore.plugin_api.config_parts`).
    targets
        ``"required"`` (supervised), ``"refused"`` (self-supervised: sources only) or ``"optional"``.
    self_supervised, self_supervised_config
        As :class:`~microrestore.plugins.registry.Method` (``restore --self-supervised``).
    """

    name: ClassVar[str]
    task: ClassVar[Task] = "denoise"
    summary: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    default_model: ClassVar[str | None] = None
    config_schema: ClassVar[type[BaseModel]]
    targets: ClassVar[str] = "optional"
    self_supervised: ClassVar[bool] = False
    self_supervised_config: ClassVar[dict[str, Any]] = {}

    # -- what a method implements -------------------------------------------------------------------------

    def prepare(self, request: TrainRequest, config: Any) -> TrainingData:
        """Read and normalise the training files of ``request`` into batches."""
        raise NotImplementedError

    def build_networks(self, config: Any, data: TrainingData) -> dict[str, torch.nn.Module]:
        """The networks to train, by name; each has a ``spec`` that rebuilds it.

        By default one U-Net ``net`` (:func:`build_unet`), for configurations with
        :class:`~microrestore.plugin_api.config_parts.UNetOptions`.
        """
        from microrestore.plugin_api.config_parts import UNetOptions

        if not isinstance(config, UNetOptions):
            raise NotImplementedError(f"{type(self).__name__}.build_networks: the configuration has no UNetOptions")
        return {"net": build_unet(config, data.pixel_size_um)}

    def losses(self, network: Any, batch: Any, autocast: Any) -> Mapping[str, Any]:
        """The losses of a batch for the default training task; ``loss`` is minimised, all are logged.

        Run ``network`` under ``autocast`` (a context manager); validation reports each loss as ``val_<name>``.
        """
        raise NotImplementedError(f"{type(self).__name__} defines neither losses nor training_task")

    def training_task(self, networks: dict[str, torch.nn.Module], config: Any, data: TrainingData) -> Any:
        """The :class:`~microrestore.engine.trainer.TrainingTask` that trains ``networks``.

        By default Adam on the one network ``net`` with :meth:`losses` (see
        :class:`~microrestore.plugin_api.training_parts.SingleNetworkTask`).
        """
        from microrestore.plugin_api.training_parts import LossTask

        return LossTask(networks["net"], config, self.losses)

    def saved_networks(self, networks: dict[str, torch.nn.Module]) -> dict[str, torch.nn.Module]:
        """The networks written to the model (all by default; e.g. only a GAN's generators)."""
        return networks

    # -- what the base does --------------------------------------------------------------------------------

    def configure(self, request: TrainRequest) -> Any:
        """The validated configuration of ``request`` (``--steps`` over ``steps``), after checking its files."""
        from microrestore.configs import validate

        values = dict(request.config)
        if request.steps is not None:
            values["steps"] = request.steps
        config = validate(self.config_schema, values, f"{self.name} configuration")
        if self.targets == "required" and not request.target:
            raise InputError(f"{self.name} is supervised: give --target images paired with --source by file name")
        if self.targets == "refused" and request.target:
            raise InputError(f"{self.name} is self-supervised: give only --source (noisy images), no --target")
        return config

    def train(self, request: TrainRequest) -> Path:
        """Train as ``request`` asks (fresh, resumed, time-limited) and write the model folder."""
        import torch

        from microrestore import __version__
        from microrestore.engine.domain import describe
        from microrestore.engine.modeldir import save_model
        from microrestore.engine.trainer import Trainer, trainer_config
        from microrestore.nn import fnsm_report

        config = self.configure(request)
        data = self.prepare(request, config)
        torch.manual_seed(config.seed)
        networks = self.build_networks(config, data)
        trainer = Trainer(
            self.training_task(networks, config, data),
            data.sample_batch,
            request.output,
            trainer_config(config, request.device, max_seconds=request.max_seconds),
            progress=request.progress,
            validation_batch=data.validation,
        )
        final = trainer.fit(resume=request.resume)
        saved = self.saved_networks(networks)
        provenance: dict[str, Any] = {
            "microrestore": __version__,
            "seed": config.seed,
            "steps": config.steps,
            "steps_run": trainer.step,
            "source": [str(p) for p in request.source],
        }
        if request.target:
            provenance["target"] = [str(p) for p in request.target]
        if data.images:
            provenance["domain"] = describe(data.images)
        metrics: dict[str, Any] = dict(final)
        for network in saved.values():
            metrics.update(fnsm_report(network))
        save_model(
            request.output,
            method=self.name,
            networks=saved,
            network_specs={key: net.spec for key, net in saved.items()},
            normalization=data.normalization,
            config={**config.model_dump(), **data.config},
            axes=data.axes,
            provenance={**provenance, **data.provenance},
            metrics=metrics,
        )
        return request.output

    def load(self, model: str | Path | None, options: PredictOptions) -> Predictor:
        """A single-network model (folder, zoo id or microrestore package) as a tiled predictor.

        The model's network must be saved as ``net``; methods with several networks override this.
        """
        from microrestore.engine.predictor import load_network_model

        return load_network_model(model, options, method=self.name, default_model=self.default_model)[0]

    def method(self, **overrides: Any) -> Method:
        """The :class:`~microrestore.plugins.registry.Method` to register (``overrides`` replace its fields)."""
        values: dict[str, Any] = {
            "name": self.name,
            "task": self.task,
            "summary": self.summary,
            "load": self.load,
            "train": self.train,
            "config_schema": self.config_schema,
            "default_model": self.default_model,
            "self_supervised": self.self_supervised,
            "self_supervised_config": dict(self.self_supervised_config),
            "citation": self.citation,
        }
        values.update(overrides)
        return Method(**values)


def build_unet(config: Any, pixel_size_um: float | None = None) -> torch.nn.Module:
    """The one-channel U-Net of a configuration with :class:`~microrestore.plugin_api.config_parts.UNetOptions`.

    With :class:`~microrestore.configs.FNSMOptions` in the configuration, ``fnsm: true`` puts the Fourier
    noise-suppression module at the input (its cutoff in 1/um needs ``pixel_size_um``).
    """
    from microrestore.nn import UNet

    fnsm_spec = getattr(config, "fnsm_spec", None)
    return UNet(
        in_channels=1,
        out_channels=1,
        ndim=config.ndim,
        depth=config.depth,
        base_filters=config.base_filters,
        kernel_size=config.kernel_size,
        residual=config.residual,
        fnsm=fnsm_spec(config.ndim, pixel_size_um) if fnsm_spec is not None else None,
    )
