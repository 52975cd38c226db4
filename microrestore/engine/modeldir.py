"""The model folder: what training leaves behind and inference loads.

::

    model/
      config.yaml           method, networks (specs), normalisation, axes, config, provenance, metrics,
                            and the sha256 of the weights
      weights.safetensors   every network's state dict, keys prefixed "<network>."
      metrics.csv           training curves (written by the trainer)
      checkpoints/          resumable training state (written by the trainer)

``weights.safetensors`` is written first and ``config.yaml`` last, both atomically; ``config.yaml`` records the
weights' checksum, so a folder left half-written (or weights changed afterwards) is refused on loading. Loading
reads YAML with the safe loader (``microrestore.io.safe_yaml``) and tensors with safetensors: nothing is ever unpickled.

``config.yaml`` itself is covered by no checksum, and it says how to build the networks: every value is checked
before anything is built (:func:`check_model_document`): the document's structure, each network spec against
the bounds training uses (:func:`microrestore.nn.registry.check_spec`) and the method's training configuration
against its schema. Only regular files are opened (a FIFO named ``config.yaml`` would block for ever).
"""

from __future__ import annotations

import datetime as _dt
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from microrestore.engine.checkpoints import _cpu_copy, sha256_file
from microrestore.errors import InputError, MicrorestoreError
from microrestore.io.atomic import atomic_path, atomic_write_text
from microrestore.io.safe_yaml import safe_load

CONFIG_NAME = "config.yaml"
WEIGHTS_NAME = "weights.safetensors"
FORMAT = "microrestore-model"
FORMAT_VERSION = 1

_REQUIRED = ("method", "networks", "weights")


@dataclass
class ModelBundle:
    """A loaded model folder.

    Attributes
    ----------
    method
        Name of the method that trained it.
    config
        The method's training configuration.
    network_specs
        Per network, the spec that rebuilds it (e.g. for ``microrestore.nn.registry.build_network``).
    normalization
        Normalisation settings (and fitted dataset-level parameters), as the method saved them.
    axes
        Axes of the images the model takes, e.g. ``"YX"`` or ``"CZYX"``.
    provenance
        microrestore and torch versions, seed, data files, steps, date.
    metrics
        Validation metrics at the end of training.
    state_dicts
        Per network, its weights (CPU tensors).
    path
        The model folder.
    """

    method: str
    config: dict[str, Any]
    network_specs: dict[str, dict[str, Any]]
    normalization: dict[str, Any]
    axes: str
    provenance: dict[str, Any]
    metrics: dict[str, Any]
    state_dicts: dict[str, dict[str, torch.Tensor]] = field(repr=False)
    path: Path

    def build(
        self,
        name: str,
        build_network: Callable[[dict[str, Any]], torch.nn.Module],
        device: torch.device | str | None = None,
    ) -> torch.nn.Module:
        """Rebuild network ``name`` from its spec, load its weights strictly and put it in eval mode.

        Parameters
        ----------
        name
            Network name, e.g. ``"G"``.
        build_network
            Builds an untrained network from a spec dict.
        device
            Device to move the network to.

        Returns
        -------
        torch.nn.Module
            The network with its trained weights, in eval mode.

        Raises
        ------
        InputError
            The folder has no such network, its spec is invalid (named as ``config.yaml``'s), or the weights do
            not fit the rebuilt network.
        """
        if name not in self.network_specs or name not in self.state_dicts:
            known = ", ".join(sorted(self.network_specs)) or "none"
            raise InputError(f"model folder has no network {name!r} (it has: {known})", self.path)
        try:
            network = build_network(dict(self.network_specs[name]))
        except InputError as exc:
            raise InputError(f"networks.{name}: {exc}", self.path / CONFIG_NAME) from None
        try:
            network.load_state_dict(self.state_dicts[name], strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"weights of network {name!r} do not fit its spec: {first}", self.path) from None
        if device is not None:
            network = network.to(device)
        return network.eval()


def _plain(value: Any, where: str) -> Any:
    """Return ``value`` as plain YAML-safe data (tuples become lists), or raise naming ``where``."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Path):
        return str(value)
    if value is None:
        return None
    for kind in (bool, int, float, str):  # exact built-in types: safe_dump refuses subclasses (TorchVersion)
        if isinstance(value, kind):
            return kind(value)
    if hasattr(value, "item") and callable(value.item):  # numpy and torch scalars
        return _plain(value.item(), where)
    raise MicrorestoreError(f"cannot write {where} to config.yaml: {type(value).__name__} is not plain data")


def save_model(
    directory: str | Path,
    *,
    method: str,
    networks: Mapping[str, torch.nn.Module],
    network_specs: Mapping[str, Mapping[str, Any]],
    normalization: Mapping[str, Any],
    config: Mapping[str, Any],
    axes: str,
    provenance: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Write a model folder: ``weights.safetensors`` then ``config.yaml``, both atomically.

    In a multi-process run (torchrun) only rank 0 writes; the other ranks return at once.

    Parameters
    ----------
    directory
        The model folder (created if missing; other files in it, such as ``metrics.csv`` and
        ``checkpoints/``, are left alone).
    method
        Method name.
    networks
        Networks by name (no ``.`` in names); weights stored as ``<name>.<key>``.
    network_specs
        Per network, the spec that rebuilds it; must cover every network.
    normalization
        Normalisation settings, e.g. ``{"source": normalizer.to_dict(), "source_params": params.to_dict()}``.
    config
        The method's training configuration.
    axes
        Axes of the model's input images.
    provenance
        Seed, data files, steps, ...; ``microrestore``, ``torch`` versions and ``date`` are added when missing.
    metrics
        Final validation metrics.

    Returns
    -------
    pathlib.Path
        The model folder.

    Raises
    ------
    MicrorestoreError
        Invalid network names, missing specs, or values that are not plain data.
    """
    from microrestore import __version__
    from microrestore.engine.distributed import is_main_process

    directory = Path(directory)
    if not is_main_process():  # data-parallel training: every rank holds the same weights; rank 0 writes
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    if set(network_specs) != set(networks):
        raise MicrorestoreError(f"network specs {sorted(network_specs)} do not match the networks {sorted(networks)}")
    tensors: dict[str, torch.Tensor] = {}
    for name, network in networks.items():
        if not name or "." in name or "/" in name:
            raise MicrorestoreError(f"network name {name!r} must be non-empty and contain no '.' or '/'")
        for key, value in network.state_dict().items():
            tensors[f"{name}.{key}"] = _cpu_copy(value)
    info = dict(provenance or {})
    info.setdefault("microrestore", __version__)
    info.setdefault("torch", torch.__version__)
    info.setdefault("date", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "method": method,
        "axes": axes,
        "networks": _plain(network_specs, "networks"),
        "normalization": _plain(normalization, "normalization"),
        "config": _plain(config, "config"),
        "provenance": _plain(info, "provenance"),
        "metrics": _plain(metrics or {}, "metrics"),
        "weights": {"file": WEIGHTS_NAME, "sha256": ""},
    }
    with atomic_path(directory / WEIGHTS_NAME, fsync=True) as temp:
        save_file(tensors, str(temp), metadata={"format": FORMAT, "method": method})
        document["weights"]["sha256"] = sha256_file(temp)
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=None)
    atomic_write_text(directory / CONFIG_NAME, text)
    return directory


class _WeightsEntry(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    file: StrictStr = WEIGHTS_NAME
    sha256: Annotated[str, Field(pattern=r"^([0-9a-f]{64})?$")] = ""


class _ModelDocument(BaseModel):
    """The structure of ``config.yaml`` (values inside ``networks`` and ``config`` are checked separately)."""

    model_config = ConfigDict(extra="allow", strict=True)

    format: Literal["microrestore-model"]
    format_version: Annotated[StrictInt, Field(ge=1)]
    method: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    axes: Annotated[StrictStr, Field(pattern=r"^[TCZYXS]{0,6}$")] = ""
    networks: dict[StrictStr, dict[StrictStr, Any]]
    normalization: dict[Any, Any] | None = None
    config: dict[StrictStr, Any] | None = None
    provenance: dict[Any, Any] | None = None
    metrics: dict[Any, Any] | None = None
    weights: _WeightsEntry


def check_regular_file(path: Path, what: str) -> None:
    """Refuse ``path`` unless it is a regular file (a FIFO or device would block or never end).

    Raises
    ------
    InputError
        ``path`` is missing, unreadable or not a regular file; the message names it and ``what`` it should be.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{what} is missing", path) from None
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}", path) from None
    if not stat.S_ISREG(mode):
        raise InputError(f"{what} is not a regular file", path)


def check_model_document(document: dict[str, Any], config_path: Path) -> None:
    """Check every value of a model's ``config.yaml`` before anything is built from it.

    The structure (types of every section, ``format_version`` an integer, the weights' file name and checksum
    well formed), each network spec against the bounds training uses
    (:func:`microrestore.nn.registry.check_spec`), the normalisers, and the training configuration against the
    method's ``config_schema`` (options it does not know are left alone: a model of an older version may have
    them).

    Raises
    ------
    InputError
        One line naming ``config_path`` and the value.
    """
    from microrestore.nn.registry import NETWORKS, check_spec
    from microrestore.validation import pydantic_message

    try:
        _ModelDocument.model_validate(document)
    except ValidationError as exc:
        raise InputError(f"invalid model configuration: {pydantic_message(exc)}", config_path) from None
    for name, spec in document["networks"].items():
        if not name or "." in name or "/" in name:
            raise InputError(f"invalid network name {name!r} in networks", config_path)
        if "name" not in spec or (isinstance(spec["name"], str) and spec["name"] not in NETWORKS):
            # built by the plugin's own builder, or a plugin's network registered when the plugin builds it:
            # checked when ModelBundle.build builds it
            continue
        try:
            check_spec(spec)
        except InputError as exc:
            raise InputError(f"networks.{name}: {exc}", config_path) from None
    _check_normalization(document.get("normalization") or {}, config_path)
    schema = _config_schema(document["method"])
    if schema is not None:
        values = document.get("config") or {}
        known = {k: v for k, v in values.items() if k in schema.model_fields}
        try:
            schema.model_validate(known)
        except ValidationError as exc:
            raise InputError(f"invalid training configuration: {pydantic_message(exc)}", config_path) from None


def _check_normalization(normalization: Mapping[str, Any], config_path: Path) -> None:
    """Check the normalisers ``normalization`` holds (itself, or its entries that have a ``kind``)."""
    from microrestore.engine.normalization import normalizer_from_dict

    entries = {"": normalization} if "kind" in normalization else dict(normalization)
    for key, entry in entries.items():
        if isinstance(entry, Mapping) and "kind" in entry:
            try:
                normalizer_from_dict(dict(entry))
            except InputError as exc:
                where = f"normalization.{key}" if key else "normalization"
                raise InputError(f"{where}: {exc}", config_path) from None


def _config_schema(method: str) -> Any:
    """The training configuration schema of ``method`` (``None`` when the method is not installed or has none)."""
    from microrestore.plugins import get_registry

    found = get_registry().methods.get(method)
    return getattr(found, "config_schema", None)


def _model_folder(path: Path) -> Path:
    if path.is_dir():
        return path
    if path.suffix.lower() in (".yaml", ".yml", ".safetensors") and path.is_file():
        return path.parent
    if not path.exists():
        raise InputError("model folder does not exist", path)
    raise InputError("not a model folder, config.yaml or weights.safetensors", path)


def read_model_config(path: str | Path) -> tuple[dict[str, Any], Path]:
    """Read and check a model's ``config.yaml`` without loading weights.

    Parameters
    ----------
    path
        Model folder, its ``config.yaml`` (or another ``.yaml`` beside the weights), or its weights file.

    Returns
    -------
    tuple of (dict, pathlib.Path)
        The parsed document and the ``config.yaml`` path.

    Raises
    ------
    InputError
        Missing folder or file, a file that is not a regular file, unparsable YAML, not a microrestore model,
        or a value that :func:`check_model_document` refuses.
    """
    path = Path(path).expanduser()
    folder = _model_folder(path)
    config_path = path if path.suffix.lower() in (".yaml", ".yml") and path.is_file() else folder / CONFIG_NAME
    if not config_path.exists() and not config_path.is_symlink():
        raise InputError(f"not a microrestore model folder: {CONFIG_NAME} is missing", folder)
    check_regular_file(config_path, "model configuration")
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"not a microrestore model folder: {CONFIG_NAME} is missing", folder) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"unreadable model configuration: {exc}", config_path) from None
    try:
        document = safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"invalid YAML: {exc}", config_path) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InputError("not a microrestore model configuration (no 'format: microrestore-model')", config_path)
    version = document.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError(f"format_version must be an integer, not {version!r}", config_path)
    if version > FORMAT_VERSION:
        raise InputError(
            f"model format {document.get('format_version')} is newer than this microrestore reads "
            f"({FORMAT_VERSION}); upgrade microrestore",
            config_path,
        )
    missing = [key for key in _REQUIRED if key not in document]
    if missing:
        raise InputError(f"model configuration lacks {', '.join(missing)}", config_path)
    if not isinstance(document["networks"], dict) or not isinstance(document["weights"], dict):
        raise InputError("model configuration: 'networks' and 'weights' must be mappings", config_path)
    check_model_document(document, config_path)
    return document, config_path


def load_model(path: str | Path, expected_method: str | None = None) -> ModelBundle:
    """Load a model folder (safetensors weights only).

    Parameters
    ----------
    path
        Model folder, its ``config.yaml`` or its ``weights.safetensors``.
    expected_method
        Refuse a model trained by another method.

    Returns
    -------
    ModelBundle
        Configuration and weights.

    Raises
    ------
    InputError
        Missing files, unparsable YAML, a model of another method ("model folder X was trained with method
        'care', not 'c2gan'"), weights that are corrupt or do not match the recorded checksum.
    """
    document, config_path = read_model_config(path)
    folder = config_path.parent
    method = str(document["method"])
    if expected_method is not None and method != expected_method:
        raise InputError(f"model folder {folder} was trained with method {method!r}, not {expected_method!r}")
    weights_name = str(document["weights"].get("file", WEIGHTS_NAME))
    if Path(weights_name).name != weights_name:
        raise InputError(f"invalid weights file name {weights_name!r}", config_path)
    weights_path = folder / weights_name
    if not weights_path.exists():
        raise InputError("model weights are missing", weights_path)
    check_regular_file(weights_path, "model weights")
    expected = document["weights"].get("sha256")
    if expected and sha256_file(weights_path) != expected:
        raise InputError(
            f"model weights are corrupt or were modified: sha256 differs from the one in {config_path.name}",
            weights_path,
        )
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"unreadable model weights: {exc}", weights_path) from None
    specs = {str(k): dict(v or {}) for k, v in document["networks"].items()}
    state_dicts: dict[str, dict[str, torch.Tensor]] = {name: {} for name in specs}
    for key, value in tensors.items():
        name, _, rest = key.partition(".")
        if name not in state_dicts:
            raise InputError(f"weights hold network {name!r}, which config.yaml does not describe", weights_path)
        state_dicts[name][rest] = value
    return ModelBundle(
        method=method,
        config=dict(document.get("config") or {}),
        network_specs=specs,
        normalization=dict(document.get("normalization") or {}),
        axes=str(document.get("axes", "")),
        provenance=dict(document.get("provenance") or {}),
        metrics=dict(document.get("metrics") or {}),
        state_dicts=state_dicts,
        path=folder,
    )
