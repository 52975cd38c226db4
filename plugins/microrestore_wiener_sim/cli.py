"""``microrestore sim reconstruct`` and ``microrestore sim estimate``.

``reconstruct`` runs any registered method of task ``sim`` (``--method wiener`` is ``wiener-sim``, ``--method
rdl`` is ``rdl-sim``); ``estimate`` prints and saves the illumination parameters alone. Both read one raw file
(TIFF or MRC) whose non-``YX`` axes hold ``9 n`` frames. Torch is imported only when a command runs.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import typer

from microrestore.cli.common import console, parse_settings, stdout
from microrestore.errors import InputError

sim_app = typer.Typer(
    help="Structured illumination microscopy: reconstruct SR images from raw frames, or estimate the pattern.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

# Options shared by both commands.
_RAW = typer.Argument(..., help="Raw SIM frames (TIFF or MRC): 9 n frames on the non-YX axes.", show_default=False)
_NA = typer.Option(None, "--na", help="Detection numerical aperture.")
_WAVELENGTH = typer.Option(None, "--wavelength", help="Emission wavelength (nm).")
_PIXEL_SIZE = typer.Option(None, "--pixel-size", help="Raw pixel size (nm); default from metadata.")
_NA_EXC = typer.Option(None, "--na-exc", help="Excitation NA of the pattern (default: --na).")
_WAVELENGTH_EXC = typer.Option(None, "--wavelength-exc", help="Excitation wavelength, nm (default: --wavelength).")
_OTF = typer.Option(None, "--otf", help="OTF file: MRC radial OTF, TIFF radial profile or TIFF PSF.")
_OTF_DK = typer.Option(None, "--otf-dk", help="Sample spacing of a radial OTF profile (cycles/um).")
_ORDER = typer.Option(
    "angle-major",
    "--order",
    help="Frame order of a raw stack: angle-major (all phases of one orientation together) or phase-major.",
)
_AXES = typer.Option(None, "--axes", help="Axes of the input when its metadata lacks them (TYX, ZYX).")
_DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps.")


def _optics_options(
    na: float | None,
    wavelength: float | None,
    pixel_size: float | None,
    na_exc: float | None,
    wavelength_exc: float | None,
    otf: Path | None,
    otf_dk: float | None,
    order: str,
    settings: list[str] | None,
    **extra: Any,
) -> dict[str, Any]:
    given = {
        "na": na,
        "wavelength_nm": wavelength,
        "pixel_size_nm": pixel_size,
        "na_exc": na_exc,
        "wavelength_exc_nm": wavelength_exc,
        "otf": otf,
        "otf_dk_per_um": otf_dk,
        "order": order,
        **extra,
    }
    values = {k: v for k, v in given.items() if v is not None}
    for key, value in parse_settings(settings).items():
        if key in values and values[key] != value:
            raise InputError(f"--set {key}=... repeats an option given by its own flag")
        values[key] = value
    return values


def _read(raw: Path, axes: str | None) -> Any:
    from microrestore import api
    from microrestore.io import read_image

    image = read_image(raw, axes=axes)
    api.check_image(image)
    return image


def _resolve_method(name: str) -> Any:
    from microrestore.plugins import get_registry

    registry = get_registry()
    sim_methods = sorted(m.name for m in registry.methods.values() if m.task == "sim")
    for candidate in (name, f"{name}-sim"):
        found = registry.methods.get(candidate)
        if found is not None and found.task == "sim":
            return found
    raise InputError(f"unknown SIM method {name!r}; installed: {', '.join(sim_methods) or 'none'}")


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        console.print(f"[yellow]Warning:[/] {w.message}")


@sim_app.command("reconstruct")
def reconstruct(
    raw: Path = _RAW,
    output: Path = typer.Option(..., "-o", "--output", help="Output image (TIFF or MRC) on the 2x grid."),
    method: str = typer.Option("wiener", "--method", "-m", help="SIM method: wiener, rdl, or any method of task sim."),
    model: str = typer.Option(None, "--model", help="Model of a learned method (zoo id or folder)."),
    na: float = _NA,
    wavelength: float = _WAVELENGTH,
    pixel_size: float = _PIXEL_SIZE,
    na_exc: float = _NA_EXC,
    wavelength_exc: float = _WAVELENGTH_EXC,
    otf: Path = _OTF,
    otf_dk: float = _OTF_DK,
    wiener: float = typer.Option(
        None, "--wiener", help="Wiener constant w (denominator w^2 + sum |OTF|^2); default 0.05."
    ),
    params: Path = typer.Option(None, "--params", help="Illumination parameters (JSON from `sim estimate`)."),
    order: str = _ORDER,
    axes: str = _AXES,
    device: str = _DEVICE,
    dtype: str = typer.Option(
        "auto",
        "--dtype",
        help="Output dtype: auto (default: float32 in the input's units, or the input's dtype where that loses "
        "nothing), same (the input's, rounded: low-count integer images lose precision), float32, ...",
    ),
    save_params: Path = typer.Option(None, "--save-params", help="Also write the parameters used (JSON)."),
    settings: list[str] = typer.Option(None, "--set", help="Other method options key=value (see docs/methods/sim.md)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not print the parameter table."),
) -> None:
    """Reconstruct SR images (2x grid, half the pixel size) from raw SIM frames."""
    import numpy as np

    from microrestore import api
    from microrestore.io import write_image
    from microrestore.plugins import PredictOptions

    found = _resolve_method(method)
    values = _optics_options(
        na, wavelength, pixel_size, na_exc, wavelength_exc, otf, otf_dk, order, settings, wiener=wiener, params=params
    )
    options = PredictOptions(device=device, params=values)
    image = _read(raw, axes)
    predictor = api.load_predictor(found, model, options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sr = predictor.predict(image)
    _show_warnings(caught)
    used = getattr(predictor, "last_params", None)
    if used is not None:
        if not quiet:
            stdout.print(params_table(used, options.params))
        if save_params is not None:
            used.save(save_params)
    sr = np.asarray(sr)
    sink = api.output_sink(image.data.dtype, sr.shape, dtype)
    sink[...] = sr
    written = api.settled_output(sink)
    out_dtype = written.dtype
    from microrestore.sim.reconstruct import output_axes

    pixel_nm = options.params.get("pixel_size_nm") or 1000.0 * float(
        image.pixel_size.get("X") or image.pixel_size.get("Y") or 0.0
    )
    sizes = {"X": pixel_nm / 2000.0, "Y": pixel_nm / 2000.0} if pixel_nm else {}
    array = written[0] if written.shape[0] == 1 else written
    write_image(output, array, output_axes(written.shape[0]), pixel_size=sizes)
    if sink.out_of_range:
        share = 100.0 * sink.out_of_range / sink.array.size
        console.print(
            f"[yellow]Warning:[/] {output}: {sink.out_of_range} pixels ({share:.3g}%) fell outside the {out_dtype} "
            "range and were clipped (Wiener ringing goes below 0); use --dtype float32 to keep them"
        )
    console.print(f"wrote {output} {'x'.join(map(str, array.shape))} {out_dtype} ({found.name})")


@sim_app.command("estimate")
def estimate(
    raw: Path = _RAW,
    output: Path = typer.Option(None, "-o", "--output", help="Write the parameters to this JSON file."),
    na: float = _NA,
    wavelength: float = _WAVELENGTH,
    pixel_size: float = _PIXEL_SIZE,
    na_exc: float = _NA_EXC,
    wavelength_exc: float = _WAVELENGTH_EXC,
    otf: Path = _OTF,
    otf_dk: float = _OTF_DK,
    order: str = _ORDER,
    axes: str = _AXES,
    device: str = _DEVICE,
    settings: list[str] = typer.Option(
        None, "--set", help="Other options key=value, e.g. estimation.k_tolerance=0.05."
    ),
) -> None:
    """Estimate the illumination parameters (wave vector, phase, modulation per orientation)."""
    from microrestore.configs import validate
    from microrestore.engine.device import resolve_device
    from microrestore.sim.options import SIMOptions
    from microrestore.sim.otf import load_otf
    from microrestore.sim.reconstruct import raw_stacks, resolve_params

    values = _optics_options(na, wavelength, pixel_size, na_exc, wavelength_exc, otf, otf_dk, order, settings)
    options = validate(SIMOptions, values, "sim estimate options")
    if options.params is not None:
        raise InputError("sim estimate computes the parameters; --set params=... makes no sense here")
    image = _read(raw, axes)
    stacks = raw_stacks(image, options).to(resolve_device(device))
    pixel_nm = options.resolved_pixel_size_nm(image.pixel_size, image.path)
    otf_used = load_otf(options, pixel_nm)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = resolve_params(stacks, options, otf_used, pixel_nm, image.path)
    _show_warnings(caught)
    for i, params in enumerate(found):
        stdout.print(params_table(params, options.model_dump(), title=f"stack {i}" if len(found) > 1 else None))
    if output is not None:
        found[0].save(output)
        console.print(f"wrote {output}")


def params_table(params: Any, options: dict[str, Any], title: str | None = None) -> Any:
    """A rich table of the parameters, with ``|k|`` against the nominal ``2 NA_exc / lambda_exc``."""
    from rich.table import Table

    from microrestore.sim.options import SIMOptions

    opts = SIMOptions.model_validate({k: v for k, v in options.items() if k in SIMOptions.model_fields})
    nominal = opts.nominal_k_per_um()
    px = params.pixel_size_nm
    heading = f"SIM parameters ({params.source})" + (f" - {title}" if title else "")
    table = Table(title=heading)
    for column in (
        "orientation",
        "angle (deg)",
        "|k| (1/um)",
        "vs nominal",
        "period (nm)",
        "phase (rad)",
        "modulation",
    ):
        table.add_column(column, justify="right")
    table.add_column("fit", justify="left")
    for d, o in enumerate(params.orientations):
        k_um = o.k_per_um(px) if px else None
        versus = f"{100 * (k_um / nominal - 1):+.2f}%" if (k_um and nominal) else "-"
        quality = o.quality.get("peak_significance")
        fit = ", ".join(f"fallback {f}" for f in o.fallback) or (f"ok (peak {quality:.1f})" if quality else "given")
        table.add_row(
            str(d),
            f"{o.angle_deg:.3f}",
            f"{k_um:.4f}" if k_um else f"{o.k_cycles_per_pixel:.5f}/px",
            versus,
            f"{o.period_nm(px):.1f}" if px else "-",
            f"{o.phase_offset:+.3f}",
            f"{o.modulation:.3f}",
            fit,
        )
    if nominal:
        table.caption = f"nominal |k| = 2 NA_exc / lambda_exc = {nominal:.4f}/um"
    return table
