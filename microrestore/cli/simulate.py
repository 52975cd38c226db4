"""``microrestore simulate``: physically grounded test data with ground truth."""

from __future__ import annotations

from pathlib import Path

import typer

from microrestore.cli.common import console, parse_settings
from microrestore.cli.outputs import OVERWRITE, refuse_filled_folder


def add_commands(app: typer.Typer) -> None:
    """Add ``simulate`` to ``app``."""
    app.command("simulate")(simulate)


def simulate(
    kind: str = typer.Argument(..., help="denoise, defocus, timelapse, zstack or sim."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder to write."),
    n: int = typer.Option(8, "--n", help="Number of fields (or movies, stacks)."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed gives the same files."),
    photons: float = typer.Option(None, "--photons", help="Expected photons at the brightest pixel."),
    settings: list[str] = typer.Option(None, "--set", help="Other parameters key=value (see docs/simulation.md)."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Simulate fluorescence images with known ground truth (phantoms, pupil PSF, sCMOS noise)."""
    from microrestore.errors import InputError
    from microrestore.simulation import CASES
    from microrestore.simulation import simulate as run_simulation

    if kind not in CASES:
        from microrestore.suggest import did_you_mean

        hint = did_you_mean(kind, CASES)
        raise InputError(f"unknown simulation {kind!r}{hint}; choose one of {', '.join(sorted(CASES))}")
    if n < 1:
        raise InputError("--n must be at least 1")
    refuse_filled_folder(output, overwrite=overwrite)
    params = parse_settings(settings)
    if photons is not None:
        params["photons"] = photons
    run_simulation(kind, output, n=n, seed=seed, **params)
    console.print(f"simulated {n} x {kind} into {output}")
