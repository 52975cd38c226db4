"""Training checkpoints: safetensors for tensors, JSON for everything else, written atomically.

A checkpoint is a pair of files in the checkpoint folder:

``checkpoint-last.safetensors``
    Network weights (``net/<name>/<key>``), optimiser state tensors (``optim/<name>/state/<idx>/<key>``),
    torch random state (``rng/...``) and the task's extra tensors (``extra/<key>``, e.g. image pools).
``checkpoint-last.json``
    Step, optimiser ``param_groups`` and non-tensor state, gradient-scaler state, the caller's JSON, and the
    sha256 of the safetensors file.

Both are written under ``.partial`` names, flushed to disk, then renamed: tensors first, record last. A crash
between the two renames leaves a record whose checksum does not match; :func:`load_checkpoint` then finishes
the interrupted save from the complete ``.partial`` record, and reports any other mismatch as a corrupt or
modified file. The record carries its own checksum too (``record_sha256``, over the rest of the record), and its
step must equal the one in the tensors' metadata: a hand-edited step or record is refused. Nothing is ever
unpickled.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from microrestore.engine.seeding import set_torch_rng_state, torch_rng_state
from microrestore.errors import InputError, MicrorestoreError
from microrestore.io.atomic import atomic_write_text, fsync_dir, user_file_mode

LAST = "checkpoint-last"
FORMAT = "microrestore-checkpoint"
FORMAT_VERSION = 1

_NET, _OPTIM, _EXTRA, _RNG = "net/", "optim/", "extra/", "rng/"


# ----------------------------------------------------------------------------------------------------------
# Durable writes under fixed ``.partial`` names: the two-phase save of a tensors/record pair needs names a later
# load can find (``microrestore.io.atomic`` serves the single-file cases).


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks.

    Parameters
    ----------
    path
        File to hash.
    chunk
        Bytes read at a time.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _write_text_durable(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (no rename) and flush it to disk."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _save_tensors_durable(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None) -> str:
    """Write a safetensors file (no rename), flush it, and return its sha256."""
    try:
        save_file(tensors, str(path), metadata=metadata)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    user_file_mode(path)  # safetensors writes 0600
    _fsync_file(path)
    return sha256_file(path)


def _cpu_copy(tensor: torch.Tensor) -> torch.Tensor:
    # A copy: safetensors refuses tensors that share memory, and the caller keeps training on the original.
    return tensor.detach().to("cpu", copy=True).contiguous()


# ----------------------------------------------------------------------------------------------------------
# Flattening optimiser state.


def _check_name(kind: str, name: str) -> None:
    if not name or "/" in name:
        raise MicrorestoreError(f"{kind} name {name!r} must be non-empty and contain no '/'")


def _jsonable(value: Any, where: str) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise MicrorestoreError(f"cannot save {where}: {type(value).__name__} is not JSON-serialisable") from None
    return value


def _flatten_optimizer(name: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state = optimizer.state_dict()
    scalar_state: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{_OPTIM}{name}/state/{index}/{key}"] = _cpu_copy(value)
            else:
                scalar_state.setdefault(str(index), {})[key] = _jsonable(value, f"optimizer {name!r} state {key!r}")
    groups: list[dict[str, Any]] = []
    tuple_keys: dict[str, list[str]] = {}
    tensor_keys: dict[str, list[str]] = {}
    for g, group in enumerate(state["param_groups"]):
        plain: dict[str, Any] = {}
        for key, value in group.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{_OPTIM}{name}/group/{g}/{key}"] = _cpu_copy(value)
                tensor_keys.setdefault(str(g), []).append(key)
            elif isinstance(value, tuple):
                plain[key] = _jsonable(list(value), f"optimizer {name!r} setting {key!r}")
                tuple_keys.setdefault(str(g), []).append(key)
            else:
                plain[key] = _jsonable(value, f"optimizer {name!r} setting {key!r}")
        groups.append(plain)
    return {
        "param_groups": groups,
        "scalar_state": scalar_state,
        "tuple_keys": tuple_keys,
        "tensor_keys": tensor_keys,
    }


def _unflatten_optimizer(name: str, record: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    prefix = f"{_OPTIM}{name}/"
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if not key.startswith(prefix + "state/"):
            continue
        index, _, entry = key[len(prefix) + len("state/") :].partition("/")
        state.setdefault(int(index), {})[entry] = value
    for index, entries in record.get("scalar_state", {}).items():
        state.setdefault(int(index), {}).update(entries)
    groups = []
    for g, group in enumerate(record["param_groups"]):
        group = dict(group)
        for key in record.get("tuple_keys", {}).get(str(g), []):
            group[key] = tuple(group[key])
        for key in record.get("tensor_keys", {}).get(str(g), []):
            group[key] = tensors[f"{prefix}group/{g}/{key}"]
        groups.append(group)
    return {"state": state, "param_groups": groups}


# ----------------------------------------------------------------------------------------------------------
# Public API.


@dataclass
class CheckpointState:
    """What :func:`load_checkpoint` hands back besides the restored networks and optimisers.

    Attributes
    ----------
    step
        Number of completed training steps.
    extra_tensors
        The ``extra_tensors`` given to :func:`save_checkpoint` (on the CPU).
    extra_json
        The ``extra_json`` given to :func:`save_checkpoint`.
    path
        The safetensors file that was loaded.
    """

    step: int
    extra_tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    extra_json: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def has_checkpoint(directory: str | Path, name: str = LAST) -> bool:
    """Return whether ``directory`` holds a checkpoint record ``<name>.json``."""
    return (Path(directory) / f"{name}.json").is_file()


def finish_interrupted_save(directory: str | Path, name: str = LAST) -> bool:
    """Complete a save killed before its record ``<name>.json`` was renamed into place (the very first save).

    A save writes ``<name>.safetensors.partial`` and ``<name>.json.partial``, then renames the tensors and
    the record. When ``<name>.json`` is missing but the ``.partial`` record is complete and its sha256
    matches the tensor file (renamed or still ``.partial``), the renames are finished now. Anything else is
    left untouched.

    Parameters
    ----------
    directory
        Checkpoint folder.
    name
        ``checkpoint-last`` (kept checkpoints are written by a different path).

    Returns
    -------
    bool
        True when ``<name>.json`` exists afterwards (it already did, or the save was finished).
    """
    directory = Path(directory)
    record_path = directory / f"{name}.json"
    if record_path.is_file():
        return True
    record_partial = directory / f"{name}.json.partial"
    if not record_partial.is_file():
        return False
    try:
        record = _read_record(record_partial)
    except InputError:
        return False
    tensors_name = str(record.get("tensors", ""))
    if tensors_name != f"{name}.safetensors":
        return False
    final = directory / tensors_name
    tensor_partial = directory / f"{tensors_name}.partial"
    for candidate in (tensor_partial, final):
        if candidate.is_file() and sha256_file(candidate) == record.get("sha256"):
            if candidate != final:
                os.replace(candidate, final)
            os.replace(record_partial, record_path)
            fsync_dir(directory)
            return True
    return False


def interrupted_save_leftovers(directory: str | Path, name: str = LAST) -> list[Path]:
    """The ``.partial`` files of a save that was killed and cannot be finished (see :func:`finish_interrupted_save`).

    Parameters
    ----------
    directory
        Checkpoint folder.
    name
        Checkpoint name.

    Returns
    -------
    list of Path
        The leftovers present, when ``<name>.json`` does not exist; empty otherwise.
    """
    directory = Path(directory)
    if (directory / f"{name}.json").is_file():
        return []
    names = (f"{name}.safetensors.partial", f"{name}.json.partial")
    return [directory / n for n in names if (directory / n).is_file()]


def save_checkpoint(
    directory: str | Path,
    step: int,
    *,
    networks: Mapping[str, torch.nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    scalers: Mapping[str, torch.amp.GradScaler] | None = None,
    extra_tensors: Mapping[str, torch.Tensor] | None = None,
    extra_json: Mapping[str, Any] | None = None,
    keep_every: int | None = None,
    save_rng: bool = True,
) -> Path:
    """Write ``checkpoint-last.safetensors`` and ``checkpoint-last.json`` atomically.

    Parameters
    ----------
    directory
        Checkpoint folder (created if missing).
    step
        Number of completed steps.
    networks
        Networks by name; their full ``state_dict`` (parameters and buffers) is saved.
    optimizers
        Optimisers by name: state tensors go to the safetensors file, ``param_groups`` and non-tensor state to
        the JSON record.
    scalers
        Gradient scalers by name (fp16 training).
    extra_tensors
        Further tensors to keep (image pools, EMA weights, ...).
    extra_json
        Further JSON-serialisable values (configuration, data files, ...).
    keep_every
        Also keep ``checkpoint-<step>.safetensors``/``.json`` when ``step`` is a multiple of it.
    save_rng
        Save torch's CPU (and CUDA) random state.

    Returns
    -------
    pathlib.Path
        The safetensors file.

    Raises
    ------
    MicrorestoreError
        A name contains ``/`` or a value is not JSON-serialisable.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, network in networks.items():
        _check_name("network", name)
        for key, value in network.state_dict().items():
            tensors[f"{_NET}{name}/{key}"] = _cpu_copy(value)
    optim_records = {}
    for name, optimizer in optimizers.items():
        _check_name("optimizer", name)
        optim_records[name] = _flatten_optimizer(name, optimizer, tensors)
    for key, value in (extra_tensors or {}).items():
        tensors[f"{_EXTRA}{key}"] = _cpu_copy(value)
    if save_rng:
        tensors.update(torch_rng_state())
    scaler_records = {name: _jsonable(s.state_dict(), f"scaler {name!r}") for name, s in (scalers or {}).items()}

    from microrestore import __version__

    record: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "step": int(step),
        "tensors": f"{LAST}.safetensors",
        "sha256": "",
        "networks": list(networks),
        "optimizers": optim_records,
        "scalers": scaler_records,
        "extra": _jsonable(dict(extra_json or {}), "extra_json"),
        "microrestore": __version__,
        "torch": torch.__version__,
        "saved": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    tensor_partial = directory / f"{LAST}.safetensors.partial"
    record_partial = directory / f"{LAST}.json.partial"
    record["sha256"] = _save_tensors_durable(tensor_partial, tensors, {"format": FORMAT, "step": str(step)})
    _write_text_durable(record_partial, json.dumps(_sealed(record), indent=1))
    final = directory / f"{LAST}.safetensors"
    os.replace(tensor_partial, final)
    os.replace(record_partial, directory / f"{LAST}.json")
    fsync_dir(directory)

    if keep_every and step % keep_every == 0:
        kept = directory / f"checkpoint-{step:08d}.safetensors"
        kept.unlink(missing_ok=True)
        try:
            os.link(final, kept)  # the next save renames a new file over `final`; the link keeps this one
        except OSError:
            shutil.copy2(final, kept)
        atomic_write_text(kept.with_suffix(".json"), json.dumps(_sealed({**record, "tensors": kept.name}), indent=1))
    return final


#: How to leave a checkpoint that cannot be resumed, for the messages.
START_FRESH = "to start a new run instead, train without --resume into another output folder"


def _record_digest(record: Mapping[str, Any]) -> str:
    """sha256 of a record without its ``record_sha256`` (canonical JSON: sorted keys)."""
    body = {k: v for k, v in record.items() if k != "record_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()


def _sealed(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with its ``record_sha256``."""
    return {**record, "record_sha256": _record_digest(record)}


def _check_step(record: Mapping[str, Any], tensor_path: Path, record_path: Path) -> None:
    """Refuse a record whose step differs from the one in the (checksum-verified) tensors' metadata."""
    try:
        with safe_open(str(tensor_path), framework="pt") as handle:
            saved = (handle.metadata() or {}).get("step")
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"unreadable checkpoint tensors: {exc}", tensor_path) from None
    if saved is not None and str(record.get("step")) != saved:
        raise InputError(
            f"checkpoint record was modified: it says step {record.get('step')!r}, its tensors were saved at step "
            f"{saved}; {START_FRESH}",
            record_path,
        )


def _read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("checkpoint record is missing", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable checkpoint record: {exc}", path) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise InputError("not a microrestore checkpoint record", path)
    if record.get("format_version", 0) > FORMAT_VERSION:
        raise InputError(
            f"checkpoint format {record.get('format_version')} is newer than this microrestore reads "
            f"({FORMAT_VERSION}); upgrade microrestore",
            path,
        )
    if "record_sha256" in record and record["record_sha256"] != _record_digest(record):
        raise InputError(f"checkpoint record was modified: its checksum does not match; {START_FRESH}", path)
    if not isinstance(record.get("step"), int) or isinstance(record.get("step"), bool) or record["step"] < 0:
        raise InputError(f"checkpoint record has an invalid step {record.get('step')!r}; {START_FRESH}", path)
    return record


def _verified_record(directory: Path, name: str) -> tuple[dict[str, Any], Path]:
    record_path = directory / f"{name}.json"
    if not finish_interrupted_save(directory, name):
        raise InputError(f"no checkpoint to resume from ({record_path.name} is missing)", directory)
    record = _read_record(record_path)
    tensors_name = str(record.get("tensors", ""))
    if not tensors_name or Path(tensors_name).name != tensors_name:
        raise InputError(f"checkpoint record names an invalid tensor file {tensors_name!r}", record_path)
    tensor_path = directory / tensors_name
    if not tensor_path.is_file():
        raise InputError(f"checkpoint tensor file is missing (named by {record_path.name})", tensor_path)
    digest = sha256_file(tensor_path)
    if digest == record.get("sha256"):
        _check_step(record, tensor_path, record_path)
        return record, tensor_path
    # A save interrupted between its two renames leaves the matching record under its .partial name.
    partial = directory / f"{name}.json.partial"
    if partial.is_file():
        with contextlib.suppress(InputError):
            candidate = _read_record(partial)
            if candidate.get("sha256") == digest and candidate.get("tensors") == tensors_name:
                _check_step(candidate, tensor_path, partial)
                os.replace(partial, record_path)
                fsync_dir(directory)
                return candidate, tensor_path
    raise InputError(
        f"checkpoint is corrupt or was modified: its sha256 does not match the one recorded in {record_path.name}",
        tensor_path,
    )


def read_checkpoint_record(directory: str | Path, name: str = LAST) -> dict[str, Any]:
    """Return a checkpoint's verified JSON record (step, ``extra``, ...) without loading any tensors.

    Parameters
    ----------
    directory
        Checkpoint folder.
    name
        ``checkpoint-last`` or a kept ``checkpoint-<step>``.

    Returns
    -------
    dict
        The record.

    Raises
    ------
    InputError
        Missing, unreadable, corrupt or modified checkpoint.
    """
    return _verified_record(Path(directory), name)[0]


def load_checkpoint(
    directory: str | Path,
    networks: Mapping[str, torch.nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    scalers: Mapping[str, torch.amp.GradScaler] | None = None,
    *,
    name: str = LAST,
    restore_rng: bool = True,
) -> CheckpointState:
    """Restore networks, optimisers, scalers and torch random state from a checkpoint.

    Move the networks to their training device before calling this and create the optimisers on them;
    optimiser state is then placed beside the parameters it belongs to.

    Parameters
    ----------
    directory
        Checkpoint folder.
    networks
        Networks to fill, by the names they were saved under (strict: every saved network must be given and
        every given one must be saved, with exactly matching keys and shapes).
    optimizers
        Optimisers to fill, same rule.
    scalers
        Gradient scalers to fill; scalers missing from the checkpoint are left fresh.
    name
        ``checkpoint-last`` or a kept ``checkpoint-<step>``.
    restore_rng
        Restore torch's random state.

    Returns
    -------
    CheckpointState
        Step, extra tensors (CPU) and extra JSON.

    Raises
    ------
    InputError
        Missing, unreadable, corrupt or modified files (named), or a checkpoint that does not fit the
        networks and optimisers given.
    """
    directory = Path(directory)
    record, tensor_path = _verified_record(directory, name)
    try:
        tensors = load_file(str(tensor_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"unreadable checkpoint tensors: {exc}", tensor_path) from None

    saved_nets = set(record.get("networks", []))
    if saved_nets != set(networks):
        raise InputError(
            f"checkpoint holds networks {sorted(saved_nets)}, but this run has {sorted(networks)}", tensor_path
        )
    for net_name, network in networks.items():
        prefix = f"{_NET}{net_name}/"
        state = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"network {net_name!r} does not match the checkpoint: {first}", tensor_path) from None

    saved_optims = record.get("optimizers", {})
    if set(saved_optims) != set(optimizers):
        raise InputError(
            f"checkpoint holds optimizers {sorted(saved_optims)}, but this run has {sorted(optimizers)}",
            tensor_path,
        )
    for opt_name, optimizer in optimizers.items():
        try:
            optimizer.load_state_dict(_unflatten_optimizer(opt_name, saved_optims[opt_name], tensors))
        except (ValueError, KeyError, RuntimeError) as exc:
            raise InputError(f"optimizer {opt_name!r} does not match the checkpoint: {exc}", tensor_path) from None

    for scaler_name, scaler in (scalers or {}).items():
        saved = record.get("scalers", {}).get(scaler_name)
        if saved is not None:
            scaler.load_state_dict(saved)

    if restore_rng:
        set_torch_rng_state({k: v for k, v in tensors.items() if k.startswith(_RNG)})
    extra = {k[len(_EXTRA) :]: v for k, v in tensors.items() if k.startswith(_EXTRA)}
    return CheckpointState(
        step=int(record["step"]), extra_tensors=extra, extra_json=dict(record.get("extra", {})), path=tensor_path
    )
