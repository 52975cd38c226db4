"""The network's weights in a package.

A plain state dict rebuilt by the network's class in ``microrestore.nn``, and TorchScript, which runs without
microrestore.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from microrestore.errors import MicrorestoreError


def _plain_version(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13.0`` (spec refuses local version suffixes)."""
    return str(version).split("+", 1)[0]


def _architecture(spec: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """``(module, class name, kwargs)`` that rebuild the network from the installed microrestore package."""
    from microrestore.nn import NETWORKS

    cls = NETWORKS.get(str(spec.get("name")))
    if cls is None:
        raise MicrorestoreError(f"network {spec.get('name')!r} is not registered in microrestore.nn")
    kwargs = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.items() if k != "name"}
    return cls.__module__, cls.__name__, kwargs


def network_name(bundle: Any, network: Any) -> str:
    """The model folder's name of ``network``: same spec and, where several share it, the same weights."""
    spec = dict(getattr(network, "spec", {}))
    candidates = [k for k, v in bundle.network_specs.items() if dict(v) == spec]
    if len(candidates) > 1:
        state = network.state_dict()
        for name in candidates:
            saved = bundle.state_dicts.get(name, {})
            if saved.keys() == state.keys() and all(
                np.array_equal(saved[k].cpu().numpy(), state[k].detach().cpu().numpy()) for k in state
            ):
                return name
    return candidates[0] if candidates else str(spec.get("name"))


@dataclass
class Weights:
    """The weights' spec description and the architecture that rebuilds the network."""

    descr: Any
    module: str
    cls: str
    kwargs: dict[str, Any]
    parameters: int

    def text(self) -> str:
        """The network, for a README: class, module, parameter count and options."""
        return f"`{self.cls}` ({self.module}), {self.parameters:,} parameters, options `{self.kwargs}`"


def write_weights(network: Any, workdir: Path, examples: Sequence[Any]) -> Weights:
    """Write the network as a plain state dict and as TorchScript (traced on ``examples``, one per input)."""
    import torch
    from bioimageio.spec.model import v0_5

    network = network.to(memory_format=torch.contiguous_format).cpu().eval()
    module_name, class_name, kwargs = _architecture(dict(getattr(network, "spec", {})))
    state_path = workdir / "weights.pt"
    torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, state_path)
    script_path = workdir / "weights_torchscript.pt"
    with torch.no_grad(), warnings.catch_warnings():
        # Input-size checks are Python that tracing records as a constant (they pass for the traced size); the
        # convolutions, pooling, FFTs and upsampling stay shape-generic, which test_model checks on several sizes.
        warnings.simplefilter("ignore")
        example = tuple(examples) if len(examples) > 1 else examples[0]
        scripted = torch.jit.trace(network, example, check_trace=False)
        torch.jit.save(scripted, str(script_path))
    torch_version = v0_5.Version(_plain_version(torch.__version__))
    descr = v0_5.WeightsDescr(
        pytorch_state_dict=v0_5.PytorchStateDictWeightsDescr(
            source=state_path,
            pytorch_version=torch_version,
            architecture=v0_5.ArchitectureFromLibraryDescr(
                import_from=module_name, callable=v0_5.Identifier(class_name), kwargs=kwargs
            ),
        ),
        torchscript=v0_5.TorchscriptWeightsDescr(
            source=script_path, pytorch_version=torch_version, parent="pytorch_state_dict"
        ),
    )
    return Weights(descr, module_name, class_name, kwargs, sum(p.numel() for p in network.parameters()))
