"""``microrestore train``: train a method's model on your images."""

from __future__ import annotations

from pathlib import Path

import typer

from microrestore.cli.common import console, load_config_file, merge, parse_extra_options, parse_settings

#: Unknown ``--key value`` flags reach the command as method options (``--mode tis`` is ``--set mode=tis``).
METHOD_OPTIONS = {"allow_extra_args": True, "ignore_unknown_options": True}


def add_commands(app: typer.Typer) -> None:
    """Add ``train`` to ``app``."""
    app.command("train", context_settings=METHOD_OPTIONS)(train)


def train(
    ctx: typer.Context,
    method: str = typer.Argument(..., help="Method to train (see `microrestore methods`)."),
    source: list[str] = typer.Option(..., "--source", "-s", help="Input images: files, folders or globs."),
    target: list[str] = typer.Option(None, "--target", "-t", help="Target images (paired or the other domain)."),
    output: Path = typer.Option(..., "-o", "--output", help="Model folder to write (checkpoints go inside)."),
    config: Path = typer.Option(None, "--config", "-c", help="YAML or JSON configuration file."),
    settings: list[str] = typer.Option(None, "--set", help="Configuration override key=value (repeatable)."),
    steps: int = typer.Option(None, "--steps", help="Training steps (overrides the configuration)."),
    paired: bool = typer.Option(
        None,
        "--paired/--unpaired",
        help="Pair --source with --target (same field) or draw them independently (sets 'paired'; methods "
        "that take both, e.g. comi).",
        show_default=False,
    ),
    focus_slice: int = typer.Option(
        None,
        "--focus-slice",
        help="Z-stacks as --source whose slice N (0-based) is the in-focus target (sets 'focus_slice'; e.g. comi).",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in the model folder."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    axes: str = typer.Option(None, "--axes", help="Axes of the training images when metadata lacks them."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live progress display."),
    max_seconds: float = typer.Option(None, "--max-seconds", help="Stop training after this many seconds."),
    nproc: int = typer.Option(
        1,
        "--nproc",
        "--gpus",
        help="Data-parallel processes (one per GPU; gloo on the CPU): starts torchrun's launcher. The batch "
        "size stays the global one.",
    ),
) -> None:
    """Train a model; writes config, weights, metrics.csv and checkpoints into the model folder.

    Method options: `--config FILE`, `--set key=value`, or any `--key value` the method's configuration knows
    (e.g. `microrestore train rdl-denoise --mode sis ...`); later ones win.
    """
    from microrestore.cli.launch import check_nproc

    values = merge(merge(load_config_file(config), parse_settings(settings)), parse_extra_options(ctx.args))
    # Shorthands for configuration keys, like --steps; methods without these keys refuse them by name.
    if paired is not None:
        values["paired"] = paired
    if focus_slice is not None:
        values["focus_slice"] = focus_slice
    args = ["train", method, *_repeat("--source", source), *_repeat("--target", target or [])]
    args += ["--output", str(output), *_repeat("--set", settings or []), "--device", device]
    args += ["--config", str(config)] if config is not None else []
    args += ["--steps", str(steps)] if steps is not None else []
    args += ["--max-seconds", str(max_seconds)] if max_seconds is not None else []
    args += ["--axes", axes] if axes is not None else []
    args += ["--quiet"] * quiet
    args += [] if paired is None else ["--paired" if paired else "--unpaired"]
    args += [] if focus_slice is None else ["--focus-slice", str(focus_slice)]
    args += ctx.args
    if check_nproc(nproc):
        from microrestore.cli.launch import launch_or_raise

        try:
            launch_or_raise(nproc, [*args, *["--resume"] * resume])
        except KeyboardInterrupt:
            _resume_hint(output, [*args, "--nproc", str(nproc)])
            raise
        return
    from microrestore import api
    from microrestore.engine.distributed import is_main_process, leave

    try:
        path = api.train(
            method,
            source,
            output,
            target=target or (),
            config=values,
            steps=steps,
            resume=resume,
            device=device,
            axes=axes,
            progress=not quiet,
            max_seconds=max_seconds,
        )
    except KeyboardInterrupt:
        if is_main_process():
            _resume_hint(output, args)
        raise
    finally:
        leave()
    if is_main_process():
        console.print(f"model written to {path}")


def _resume_hint(output: Path, args: list[str]) -> None:
    """After Ctrl-C: print the command that continues the run, when a checkpoint was written to continue from."""
    import shlex

    if any(Path(output).rglob("checkpoint-last.json")):
        console.print(f"to continue: {shlex.join(['microrestore', *args, '--resume'])}")
    else:
        console.print(f"no checkpoint was written in {output}; start again without --resume")


def _repeat(option: str, values: list[str]) -> list[str]:
    return [item for value in values for item in (option, str(value))]
