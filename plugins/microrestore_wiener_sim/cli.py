"""``microrestore sim reconstruct`` and ``microrestore sim estimate``.

``reconstruct`` runs any registered method of task ``sim`` (``--method wiener`` is ``wiener-sim``, ``--method
rdl`` is ``rdl-sim``); ``estimate`` prints and saves the illumination parameters alone. Both read one raw file
(TIFF or MRC) whose non-``YX`` axes hold ``9 n`` frames. Torch is imported only when a command runs.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import typer

from microrestore.cli.common import console, parse_settings, print_warning
from microrestore.cli.outputs import OVERWRITE, refuse_existing
from microrestore.cli.tables import Column, print_table
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
_AXES = typer.Option(
    None,
    "--axes",
    help="Axes of the input when its metadata lacks them (default: a 3D stack of 9 n frames is read as TYX).",
)
_DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps.")
_JSON = typer.Option(False, "--json", help="Print the parameters as JSON instead of a table.")


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


def _read(raw: Path, axes: str | None, values: dict[str, Any]) -> Any:
    """Read raw SIM frames; a 3D stack of ``9 n`` frames without axes metadata is read as ``TYX`` frames."""
    from microrestore import api
    from microrestore.io import read_image

    try:
        image = read_image(raw, axes=axes)
    except InputError as first:
        if axes is not None:
            raise
        n_frames = int(values.get("n_orientations", 3)) * int(values.get("n_phases", 3))
        image = _read_plain_frames(raw)
        if image is None:
            raise first from None
        if image.data.shape[0] % n_frames:
            raise InputError(
                f"no axes metadata, and its {image.data.shape[0]} frames are not a multiple of the {n_frames} frames "
                "of a raw SIM stack; give --axes (e.g. --axes TYX) and check the file",
                raw,
            ) from None
        console.print(
            f"{raw}: no axes metadata; reading its {image.data.shape[0]} frames as raw SIM frames (--axes TYX)",
            markup=False,
            highlight=False,
        )
    api.check_image(image)
    return image


def _read_plain_frames(raw: Path) -> Any:
    """``raw`` read as ``TYX`` frames when it is a 3D stack without axes metadata, else ``None``."""
    from microrestore.io import read_image

    try:
        return read_image(raw, axes="TYX")
    except InputError:
        return None


def _resolve_method(name: str) -> Any:
    from microrestore.plugins import get_registry

    registry = get_registry()
    sim_methods = sorted(m.name for m in registry.methods.values() if m.task == "sim")
    for candidate in (name, f"{name}-sim"):
        found = registry.methods.get(candidate)
        if found is not None and found.task == "sim":
            return found
    from microrestore.suggest import did_you_mean

    hint = did_you_mean(name, [*sim_methods, *(m.removesuffix("-sim") for m in sim_methods)])
    raise InputError(f"unknown SIM method {name!r}{hint}; installed: {', '.join(sim_methods) or 'none'}")


def _wiener_value(text: str | None) -> float | str | None:
    """``--wiener``: ``auto`` or a positive number (``None`` when not given)."""
    if text is None or text.strip().lower() == "auto":
        return None if text is None else "auto"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 10):
        raise InputError(f"--wiener must be auto or a number in (0, 10], got {text!r}")
    return value


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        print_warning(str(w.message))


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
    wiener: str = typer.Option(
        None,
        "--wiener",
        help=(
            "Wiener constant w (denominator w^2 + sum |OTF|^2), or auto (default): chosen from the noise of the "
            "frames and printed. Honeycomb or grainy noise: try a larger w (0.2 to 0.5); blurred: a smaller "
            "one (0.02 to 0.1)."
        ),
        show_default=False,
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
    as_json: bool = _JSON,
    overwrite: bool = OVERWRITE,
) -> None:
    """Reconstruct SR images (2x grid, half the pixel size) from raw SIM frames."""
    import numpy as np

    from microrestore import api
    from microrestore.io import kept_metadata, write_image
    from microrestore.plugins import PredictOptions

    refuse_existing([output, save_params], overwrite=overwrite)
    found = _resolve_method(method)
    values = _optics_options(
        na,
        wavelength,
        pixel_size,
        na_exc,
        wavelength_exc,
        otf,
        otf_dk,
        order,
        settings,
        wiener=_wiener_value(wiener),
        params=params,
    )
    options = PredictOptions(device=device, params=values)
    image = _read(raw, axes, values)
    predictor = api.load_predictor(found, model, options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sr = predictor.predict(image)
    _show_warnings(caught)
    chosen = getattr(predictor, "last_wiener", None)
    if chosen is not None and not quiet:
        console.print(chosen.describe(), markup=False, highlight=False)
    used = getattr(predictor, "last_params", None)
    if used is not None:
        if as_json:
            typer.echo(json.dumps(used.to_dict(), indent=2))
        elif not quiet:
            print_params(used, options.params)
        if save_params is not None:
            used.save(save_params)
    sr = np.asarray(sr)
    sink = api.output_sink(image.data.dtype, sr.shape, dtype)
    sink[...] = sr
    sink.check_finite(output, image.path, found.name)
    written = api.settled_output(sink)
    out_dtype = written.dtype
    from microrestore.structured_illumination.reconstruct import output_axes

    pixel_nm = options.params.get("pixel_size_nm") or 1000.0 * float(
        image.pixel_size.get("X") or image.pixel_size.get("Y") or 0.0
    )
    sizes = {"X": pixel_nm / 2000.0, "Y": pixel_nm / 2000.0} if pixel_nm else {}
    array = written[0] if written.shape[0] == 1 else written
    write_image(output, array, output_axes(written.shape[0]), pixel_size=sizes, metadata=kept_metadata(image))
    if sink.out_of_range:
        share = 100.0 * sink.out_of_range / sink.array.size
        print_warning(
            f"{output}: {sink.out_of_range} pixels ({share:.3g}%) fell outside the {out_dtype} "
            "range and were clipped (Wiener ringing goes below 0); use --dtype float32 to keep them"
        )
    model_used = getattr(predictor, "model_id", None)
    what = f"{found.name}, model {model_used}" if model_used else found.name
    console.print(f"wrote {output} {'x'.join(map(str, array.shape))} {out_dtype} ({what})", markup=False)


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
    as_json: bool = typer.Option(False, "--json", help="Print the parameters as JSON (a list, one per stack)."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Estimate the illumination parameters (wave vector, phase, modulation per orientation)."""
    from microrestore.configs import validate
    from microrestore.engine.device import resolve_device
    from microrestore.structured_illumination.options import SIMOptions
    from microrestore.structured_illumination.otf import load_otf
    from microrestore.structured_illumination.reconstruct import raw_stacks, resolve_params

    refuse_existing([output], overwrite=overwrite)
    values = _optics_options(na, wavelength, pixel_size, na_exc, wavelength_exc, otf, otf_dk, order, settings)
    options = validate(SIMOptions, values, "sim estimate options")
    if options.params is not None:
        raise InputError("sim estimate computes the parameters; --set params=... makes no sense here")
    image = _read(raw, axes, values)
    stacks = raw_stacks(image, options).to(resolve_device(device))
    pixel_nm = options.resolved_pixel_size_nm(image.pixel_size, image.path)
    otf_used = load_otf(options, pixel_nm)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = resolve_params(stacks, options, otf_used, pixel_nm, image.path)
    _show_warnings(caught)
    if as_json:
        typer.echo(json.dumps([params.to_dict() for params in found], indent=2))
    for i, params in enumerate([] if as_json else found):
        print_params(params, options.model_dump(), title=f"stack {i}" if len(found) > 1 else None)
    if output is not None:
        found[0].save(output)
        console.print(f"wrote {output}")


#: The parameter table; phase and period give way first on a narrow terminal (``--json`` has every field).
PARAM_COLUMNS = (
    Column("#", "orientation", justify="right", block_label="orientation"),
    Column("angle deg", "angle", justify="right"),
    Column("|k| 1/um", "k", justify="right"),
    Column("vs nominal", "versus", justify="right"),
    Column("period nm", "period", justify="right", optional=True),
    Column("phase rad", "phase", justify="right", optional=True),
    Column("modulation", "modulation", justify="right"),
    Column("fit", "fit", free_text=True),
)


def params_rows(params: Any, nominal: float | None) -> list[dict[str, str]]:
    """One row of text per orientation: angle, ``|k|`` against ``nominal`` (1/um), period, phase, fit."""
    px = params.pixel_size_nm
    rows = []
    for d, o in enumerate(params.orientations):
        k_um = o.k_per_um(px) if px else None
        quality = o.quality.get("peak_significance")
        fit = (
            f"fallback: {', '.join(o.fallback)}" if o.fallback else (f"ok (peak {quality:.1f})" if quality else "given")
        )
        rows.append(
            {
                "orientation": str(d),
                "angle": f"{o.angle_deg:.3f}",
                "k": f"{k_um:.4f}" if k_um else f"{o.k_cycles_per_pixel:.5f}/px",
                "versus": f"{100 * (k_um / nominal - 1):+.2f}%" if (k_um and nominal) else "-",
                "period": f"{o.period_nm(px):.1f}" if px else "-",
                "phase": f"{o.phase_offset:+.3f}",
                "modulation": f"{o.modulation:.3f}",
                "fit": fit,
            }
        )
    return rows


def print_params(params: Any, options: dict[str, Any], title: str | None = None) -> None:
    """Print the parameters as a table, with ``|k|`` against the nominal ``2 NA_exc / lambda_exc``."""
    from microrestore.structured_illumination.options import SIMOptions

    opts = SIMOptions.model_validate({k: v for k, v in options.items() if k in SIMOptions.model_fields})
    nominal = opts.nominal_k_per_um()
    heading = f"SIM parameters ({params.source})" + (f" - {title}" if title else "")
    notes = [f"nominal |k| = 2 NA_exc / lambda_exc = {nominal:.4f}/um"] if nominal else []
    print_table(params_rows(params, nominal), PARAM_COLUMNS, title=heading, notes=notes)
