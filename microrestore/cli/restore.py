"""``microrestore denoise | deblur | restore``: run a method on images."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from microrestore.cli.common import console, parse_settings, print_warning
from microrestore.cli.outputs import OVERWRITE, refuse_existing
from microrestore.errors import InputError


def add_commands(app: typer.Typer) -> None:
    """Add ``denoise``, ``deblur`` and ``restore`` to ``app``."""
    app.command("denoise")(_make_command("denoise", "Denoise images with a denoising method."))
    app.command("deblur")(_make_command("deblur", "Correct blur or defocus with a deblurring method."))
    app.command("restore")(_make_command("restore", "Restore images with any registered method."))


def _make_command(task: str, summary: str) -> Callable[..., None]:
    def command(
        inputs: list[str] = typer.Argument(..., help="Image files, folders or glob patterns.", show_default=False),
        output: Path = typer.Option(..., "-o", "--output", help="Output file (one input) or folder (many)."),
        method: str = typer.Option(None, "--method", "-m", help="Method name (see `microrestore methods`)."),
        model: str = typer.Option(None, "--model", help="Zoo id or model folder; default: the method's default."),
        axes: str = typer.Option(None, "--axes", help="Axes of the inputs when metadata lacks them (YX, ZYX, TYX)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
        tile: int = typer.Option(None, "--tile", help="Tile size in pixels (default: chosen from free memory)."),
        overlap: int = typer.Option(32, "--overlap", help="Overlap between tiles in pixels."),
        batch_size: int = typer.Option(
            None, "--batch-size", help="Tiles per forward pass (default: 1 on CPU, 4 on GPU)."
        ),
        dtype: str = typer.Option(
            "auto",
            "--dtype",
            help="Output dtype: auto (default: float32 in the input's units, or the input's dtype where that "
            "loses nothing; always float32 for a foreign bioimage.io model), same (the input's, rounded: "
            "low-count integer images lose precision), float32, ...",
        ),
        settings: list[str] = typer.Option(None, "--set", help="Method option key=value (repeatable)."),
        skip_existing: bool = typer.Option(
            False, "--skip-existing", help="Leave outputs that already exist (resume an interrupted run)."
        ),
        overwrite: bool = OVERWRITE,
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
        allow_nonfinite: bool = typer.Option(
            False,
            "--allow-nonfinite",
            help="Write results holding NaN or infinite values (with a warning) instead of refusing them.",
        ),
        precision: str = typer.Option(
            "fp32", "--precision", help="Network precision: fp32, bf16, fp16 (CUDA) or auto (bf16 on CUDA)."
        ),
        compile_network: bool = typer.Option(False, "--compile", help="Compile the network with torch.compile."),
        tta: bool = typer.Option(
            False, "--tta", help="Average the network over the 8 rotations and flips of each tile (8x the time)."
        ),
        nproc: int = typer.Option(
            1, "--nproc", "--gpus", help="Processes (one per GPU) sharing the files, started by torchrun's launcher."
        ),
        self_supervised: bool = typer.Option(
            False,
            "--self-supervised",
            help="Train a self-supervised method on each input itself, then restore it (--set keys that are not "
            "inference options configure that training). Without --config it starts from the method's CPU-sized "
            "network and, unless --train-steps is given, at most 180 s of training per input.",
        ),
        train_steps: int = typer.Option(None, "--train-steps", help="With --self-supervised: training steps."),
        train_seconds: float = typer.Option(
            None,
            "--train-seconds",
            help="With --self-supervised: stop each input's training after this long. It bounds the training only; "
            "inference follows (its progress and time remaining are shown). Default: 180 without --config and "
            "--train-steps, else no limit.",
        ),
        config: Path = typer.Option(
            None,
            "--config",
            "-c",
            help="With --self-supervised: training configuration file (YAML or JSON); the method's own defaults "
            "then apply to what it leaves out, not the CPU-sized one-shot network.",
        ),
        save_model: Path = typer.Option(
            None, "--save-model", help="With --self-supervised: keep each input's model in this folder."
        ),
        uncertainty: bool = typer.Option(
            False,
            "--uncertainty",
            help="Also write <output>_sigma.tif beside each output: the per-pixel uncertainty (standard deviation, "
            "input units, float32) from restorations of independent splits of the input, calibrated to its "
            "estimated error (about 7 more restorations; see docs/assess.md).",
        ),
        trust_remote_code: bool = typer.Option(
            False,
            "--trust-remote-code",
            help="Run a bioimage.io package whose weights need Python code it ships or names (refused otherwise; "
            "see docs/security.md).",
        ),
    ) -> None:
        kw = {
            "inputs": inputs,
            "output": output,
            "method": method,
            "model": model,
            "axes": axes,
            "device": device,
            "tile": tile,
            "overlap": overlap,
            "batch_size": batch_size,
            "dtype": dtype,
            "settings": settings,
            "skip_existing": skip_existing,
            "overwrite": overwrite,
            "quiet": quiet,
            "allow_nonfinite": allow_nonfinite,
            "precision": precision,
            "compile": compile_network,
            "tta": tta,
            "self_supervised": self_supervised,
            "train_steps": train_steps,
            "train_seconds": train_seconds,
            "config": config,
            "save_model": save_model,
            "trust_remote_code": trust_remote_code,
            "uncertainty": uncertainty,
        }
        from microrestore.cli.launch import check_nproc

        if check_nproc(nproc):
            from microrestore.cli.launch import launch_or_raise

            _check_outputs(kw)  # here, once: the workers' own outputs appear while they run
            launch_or_raise(nproc, _worker_args(task, {**kw, "overwrite": not skip_existing}))
            return
        _run(task, **kw)

    command.__doc__ = summary
    command.__name__ = task
    return command


def _worker_args(task: str, kw: dict[str, Any]) -> list[str]:
    """The command line that repeats this command in each worker process."""
    args = [task, *map(str, kw["inputs"]), "--output", str(kw["output"])]
    valued = ("method", "model", "axes", "device", "tile", "overlap", "batch_size", "dtype", "precision")
    valued += ("train_steps", "train_seconds", "config", "save_model")
    for name in valued:
        if kw[name] is not None:
            args += [f"--{name.replace('_', '-')}", str(kw[name])]
    for item in kw["settings"] or []:
        args += ["--set", item]
    flags = (("skip_existing", "--skip-existing"), ("overwrite", "--overwrite"), ("quiet", "--quiet"))
    flags += (("compile", "--compile"), ("tta", "--tta"))
    flags += (("allow_nonfinite", "--allow-nonfinite"),)
    flags += (("trust_remote_code", "--trust-remote-code"), ("uncertainty", "--uncertainty"))
    for name, flag in (*flags, ("self_supervised", "--self-supervised")):
        args += [flag] if kw[name] else []
    return args


def _run(task: str, **kw: Any) -> None:
    from microrestore import api
    from microrestore.plugins import PredictOptions, get_registry

    if kw["method"] is None:
        known = sorted(m.name for m in get_registry().methods.values() if task == "restore" or m.task == task)
        raise InputError(f"give --method; {task} methods: {', '.join(known) or 'none installed'}")
    if kw["tile"] is not None and kw["tile"] < 16:
        raise InputError(f"--tile {kw['tile']} is too small (at least 16 pixels)")
    if kw["precision"] not in ("auto", "fp32", "bf16", "fp16"):
        raise InputError(f"unknown --precision {kw['precision']!r}; use fp32, bf16, fp16 or auto")
    if kw["overlap"] < 0 or (kw["batch_size"] is not None and kw["batch_size"] < 1):
        raise InputError("--overlap must be >= 0 and --batch-size >= 1")
    params = parse_settings(kw["settings"])
    plan = _self_supervised_plan(kw, params)
    _check_outputs(kw)
    options = PredictOptions(
        device=kw["device"],
        tile=kw["tile"],
        overlap=kw["overlap"],
        batch_size=kw["batch_size"],
        params=params,
        precision=kw["precision"],
        compile=kw["compile"],
        tta=kw["tta"],
        trust_remote_code=kw["trust_remote_code"],
    )
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=kw["quiet"],
        transient=True,
    )
    # The bars start with the first tiles: self-supervised training shows its own display before them. Without a
    # terminal the bars show nothing: plain lines on stderr instead.
    from microrestore.engine.progress import PlainProgress

    plain = PlainProgress("inference tiles", file=console.file) if not kw["quiet"] and not console.is_terminal else None
    live = False
    try:
        files = progress.add_task("files", total=None, visible=False)
        tiles = progress.add_task("tiles", total=None, visible=False)

        def on_file(index: int, total: int, path: Path) -> None:
            nonlocal live
            progress.update(files, total=total, completed=index, description=f"{path.name}", visible=total > 1)
            progress.reset(tiles, visible=False)
            if plain is not None:
                plain.restart(f"{path.name}: inference tiles")
            if plan is not None:
                if live:
                    progress.stop()
                    live = False
                if not kw["quiet"]:
                    console.print(f"training {kw['method']} on {path.name} ({_budget(kw['method'], plan)})")

        def on_tiles(done: int, total: int) -> None:
            nonlocal live
            if plain is not None:
                plain.update(done, total)
                return
            if not live:
                progress.start()
                live = True
            progress.update(tiles, total=total, completed=done, description="tiles", visible=True)

        options.on_progress = on_tiles
        results = api.restore_files(
            kw["inputs"],
            kw["output"],
            method=kw["method"],
            task=task,
            model=kw["model"],
            axes=kw["axes"],
            options=options,
            dtype=kw["dtype"],
            overwrite=not kw["skip_existing"],  # existing outputs were refused above unless --overwrite
            on_file=on_file,
            warn=functools.partial(_warn, progress),
            self_supervised=plan,
            allow_nonfinite=kw["allow_nonfinite"],
            uncertainty=kw["uncertainty"],
        )
    finally:
        if live:
            progress.stop()
    for result in results:
        mode = " (streamed)" if result.streamed else ""
        console.print(
            f"wrote {result.output} {'x'.join(map(str, result.shape))} {result.dtype} in {result.seconds:.2f} s{mode}"
        )
        if result.sigma is not None:
            console.print(f"wrote {result.sigma} (uncertainty, estimated RMSE {result.estimated_rmse:.4g})")


def _check_outputs(kw: dict[str, Any]) -> None:
    """Refuse outputs that exist unless ``--overwrite`` or ``--skip-existing`` (not both) says what to do."""
    if kw["overwrite"] and kw["skip_existing"]:
        raise InputError("--overwrite and --skip-existing contradict each other; give one")
    if not kw["skip_existing"]:
        from microrestore import api
        from microrestore.engine.ranks import shard_items

        # under torchrun a process checks only its own files: the others' appear while they run
        outputs = [dst for _, dst in shard_items(api.planned_outputs(kw["inputs"], kw["output"]))]
        if kw.get("uncertainty"):
            outputs += [api.sigma_path(dst) for dst in outputs]
        refuse_existing(outputs, overwrite=kw["overwrite"], skip_option=True)


def _self_supervised_plan(kw: dict[str, Any], params: dict[str, Any]) -> Any:
    """The ``--self-supervised`` training plan; moves ``--set`` keys the method does not predict with into it."""
    extras = [name for name in ("train_steps", "train_seconds", "config", "save_model") if kw[name] is not None]
    if not kw["self_supervised"]:
        if extras:
            flag = "--" + extras[0].replace("_", "-")
            raise InputError(f"{flag} goes with --self-supervised")
        return None
    from microrestore import api
    from microrestore.cli.common import load_config_file, merge

    if kw["train_steps"] is not None and kw["train_steps"] < 1:
        raise InputError("--train-steps must be at least 1")
    if kw["train_seconds"] is not None and kw["train_seconds"] <= 0:
        raise InputError("--train-seconds must be positive")
    method = api.get_method(kw["method"])
    predict_keys = set(method.predict_schema.model_fields) if method.predict_schema is not None else set()
    training = {k: params.pop(k) for k in list(params) if k not in predict_keys}
    return api.SelfSupervised(
        config=merge(load_config_file(kw["config"]), training),
        steps=kw["train_steps"],
        max_seconds=kw["train_seconds"],
        save_models=kw["save_model"],
        progress=not kw["quiet"],
        defaults=kw["config"] is None,
    )


def _budget(method: str, plan: Any) -> str:
    """What a one-shot training will do, e.g. ``self-supervised, 1500 steps or at most 180 s of training``."""
    from microrestore import api

    config, steps, seconds = api.self_supervised_budget(api.get_method(method), plan)
    steps = steps or config.get("steps")
    parts = [f"{steps} steps" if steps else "the configured steps"]
    if seconds:
        parts.append(f"at most {seconds:g} s of training")
    text = "self-supervised, " + " or ".join(parts)
    if plan.defaults and api.get_method(method).self_supervised_config:
        text += ", CPU-sized network"
    return text + "; then inference"


def _warn(progress: Any, message: str) -> None:
    print_warning(message, progress.console)
