"""Illumination parameters of a 2D-SIM acquisition: one wave vector, phases and modulation per orientation.

Everything is in the units of the raw camera grid: wave vectors ``(ky, kx)`` in cycles per raw pixel (the
pattern ``1 + m cos(2 pi (ky y + kx x) + phase)``, ``x``, ``y`` raw pixel indices from the centre of pixel
(0, 0)), phases in radians (one per frame), modulation depth ``m`` in [0, 1]. Physical views (angle, period,
``|k|`` per micrometre) derive from these and the pixel size. Pure Python: no torch, no numpy needed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from microrestore.errors import InputError

__all__ = [
    "FRAME_ORDERS",
    "PARAMS_VERSION",
    "FrameOrder",
    "OrientationParams",
    "SIMParams",
    "frame_index",
    "parameter_errors",
]

FrameOrder = Literal["angle-major", "phase-major"]
FRAME_ORDERS: tuple[str, ...] = ("angle-major", "phase-major")
PARAMS_VERSION = 1


def frame_index(orientation: int, phase: int, n_orientations: int, n_phases: int, order: str) -> int:
    """Index in the raw stack of the frame of ``orientation`` and ``phase`` for a frame ``order``.

    Parameters
    ----------
    orientation, phase
        Zero-based orientation and phase numbers.
    n_orientations, n_phases
        Numbers of orientations and phases in a stack.
    order
        ``angle-major`` (all phases of orientation 0 first) or ``phase-major`` (all orientations of phase 0
        first).

    Returns
    -------
    int
        The frame's position in the stack.
    """
    if order == "angle-major":
        return orientation * n_phases + phase
    if order == "phase-major":
        return phase * n_orientations + orientation
    raise InputError(f"frame order must be one of {', '.join(FRAME_ORDERS)}, got {order!r}")


@dataclass
class OrientationParams:
    """Illumination of one pattern orientation.

    Attributes
    ----------
    ky, kx
        Wave vector in cycles per raw pixel.
    phases
        Phase of each frame (radians, ``n_phases`` values); ``phases[0]`` is the phase offset.
    modulation
        Modulation depth ``m`` of the detected pattern (1: full contrast).
    fallback
        What was replaced by nominal or inferred values during estimation (``"k"``, ``"modulation"``), empty
        when everything was fitted.
    quality
        Estimation diagnostics (``peak_significance``, ``correlation``), informational.
    """

    ky: float
    kx: float
    phases: list[float]
    modulation: float = 1.0
    fallback: list[str] = field(default_factory=list)
    quality: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ky, self.kx, self.modulation = float(self.ky), float(self.kx), float(self.modulation)
        self.phases = [float(p) for p in self.phases]
        for name in ("ky", "kx", "modulation"):
            if not math.isfinite(getattr(self, name)):
                raise InputError(f"SIM parameter {name} must be finite, got {getattr(self, name)!r}")
        if not self.phases or not all(math.isfinite(p) for p in self.phases):
            raise InputError(f"SIM phases must be a non-empty list of finite numbers, got {self.phases!r}")
        if self.k_cycles_per_pixel >= 0.5:
            raise InputError(
                f"SIM wave vector |k| = {self.k_cycles_per_pixel:.4g} cycles per pixel is beyond the raw Nyquist limit"
            )
        if not 0.0 < self.modulation <= 2.0:
            raise InputError(f"SIM modulation must be in (0, 2], got {self.modulation!r}")

    @property
    def k_cycles_per_pixel(self) -> float:
        """``|k|`` in cycles per raw pixel."""
        return math.hypot(self.ky, self.kx)

    @property
    def angle_deg(self) -> float:
        """Direction of the wave vector, ``atan2(ky, kx)`` in degrees, in (-180, 180]."""
        return math.degrees(math.atan2(self.ky, self.kx))

    @property
    def phase_offset(self) -> float:
        """Phase of the orientation's first frame, radians."""
        return self.phases[0]

    def k_per_um(self, pixel_size_nm: float) -> float:
        """``|k|`` in cycles per micrometre for a raw pixel of ``pixel_size_nm``."""
        return self.k_cycles_per_pixel / (pixel_size_nm / 1000.0)

    def period_nm(self, pixel_size_nm: float) -> float:
        """Pattern period in nanometres."""
        return pixel_size_nm / self.k_cycles_per_pixel

    @classmethod
    def from_angle(
        cls,
        angle_deg: float,
        k_cycles_per_pixel: float,
        phases: Sequence[float],
        modulation: float = 1.0,
    ) -> OrientationParams:
        """Build from an angle (degrees, ``atan2(ky, kx)``) and ``|k|`` in cycles per pixel."""
        a = math.radians(angle_deg)
        return cls(k_cycles_per_pixel * math.sin(a), k_cycles_per_pixel * math.cos(a), list(phases), modulation)


@dataclass
class SIMParams:
    """Illumination parameters of every orientation of a raw SIM stack.

    Attributes
    ----------
    orientations
        One :class:`OrientationParams` per orientation, in acquisition order.
    order
        Frame order of the raw stack the parameters belong to (``angle-major`` or ``phase-major``).
    pixel_size_nm
        Raw pixel size, for the physical views; ``None`` when unknown.
    shape_yx
        Raw frame shape the parameters were estimated on (informational).
    source
        Where they came from (``"estimated"``, ``"file"``, ``"simulation"``, ...).
    notes
        Free-form provenance (tolerances used, warnings).
    """

    orientations: list[OrientationParams]
    order: str = "angle-major"
    pixel_size_nm: float | None = None
    shape_yx: tuple[int, int] | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.orientations:
            raise InputError("SIM parameters need at least one orientation")
        n_ph = {len(o.phases) for o in self.orientations}
        if len(n_ph) != 1:
            raise InputError(f"every orientation must have the same number of phases, got {sorted(n_ph)}")
        if self.n_phases < 3:
            raise InputError(f"2D-SIM needs at least 3 phases per orientation, got {self.n_phases}")
        if self.order not in FRAME_ORDERS:
            raise InputError(f"frame order must be one of {', '.join(FRAME_ORDERS)}, got {self.order!r}")
        if self.shape_yx is not None:
            self.shape_yx = (int(self.shape_yx[0]), int(self.shape_yx[1]))

    @property
    def n_orientations(self) -> int:
        """Number of pattern orientations."""
        return len(self.orientations)

    @property
    def n_phases(self) -> int:
        """Number of phases per orientation."""
        return len(self.orientations[0].phases)

    @property
    def n_frames(self) -> int:
        """Frames per raw stack."""
        return self.n_orientations * self.n_phases

    def frame(self, orientation: int, phase: int) -> int:
        """Index in the raw stack of the frame of ``orientation`` and ``phase``."""
        return frame_index(orientation, phase, self.n_orientations, self.n_phases, self.order)

    def k_vectors(self) -> list[tuple[float, float]]:
        """``(ky, kx)`` of each orientation in cycles per raw pixel."""
        return [(o.ky, o.kx) for o in self.orientations]

    def phases(self) -> list[list[float]]:
        """Phases ``[orientation][phase]`` in radians."""
        return [list(o.phases) for o in self.orientations]

    def modulations(self) -> list[float]:
        """Modulation depth of each orientation."""
        return [o.modulation for o in self.orientations]

    # -- serialisation -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with derived views (angle, ``|k|``, period) for people reading the file."""
        rows = []
        for o in self.orientations:
            row = asdict(o)
            row["angle_deg"] = o.angle_deg
            row["k_cycles_per_pixel"] = o.k_cycles_per_pixel
            if self.pixel_size_nm:
                row["k_per_um"] = o.k_per_um(self.pixel_size_nm)
                row["period_nm"] = o.period_nm(self.pixel_size_nm)
            rows.append(row)
        return {
            "format": "microrestore-sim-params",
            "version": PARAMS_VERSION,
            "convention": (
                "I = 1 + m cos(2 pi (ky y + kx x) + phase); k in cycles per raw pixel; x, y raw pixel indices "
                "from the centre of pixel (0, 0); one phase per frame, radians"
            ),
            "order": self.order,
            "n_orientations": self.n_orientations,
            "n_phases": self.n_phases,
            "pixel_size_nm": self.pixel_size_nm,
            "shape_yx": list(self.shape_yx) if self.shape_yx else None,
            "source": self.source,
            "notes": list(self.notes),
            "orientations": rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str | Path | None = None) -> SIMParams:
        """Rebuild from :meth:`to_dict`'s output (derived views are ignored) or a simulator parameter file.

        The ``params/field_XXX.json`` files of ``microrestore simulate sim`` (true wave vectors, phases and
        modulation, orientation-major) are read as well.
        """
        if isinstance(data, dict) and "k_cycles_per_pixel" in data and "orientations" not in data:
            return cls._from_simulation(data, path)
        if not isinstance(data, dict) or not isinstance(data.get("orientations"), list):
            raise InputError("not a SIM parameter file: no 'orientations' list", path)
        keys = ("ky", "kx", "phases", "modulation", "fallback", "quality")
        try:
            orientations = [OrientationParams(**{k: row[k] for k in keys if k in row}) for row in data["orientations"]]
            shape = data.get("shape_yx")
            return cls(
                orientations=orientations,
                order=data.get("order", "angle-major"),
                pixel_size_nm=data.get("pixel_size_nm"),
                shape_yx=tuple(shape) if shape else None,
                source=str(data.get("source", "")),
                notes=list(data.get("notes", [])),
            )
        except InputError as exc:
            raise InputError(str(exc), path) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a valid SIM parameter file ({type(exc).__name__}: {exc})", path) from None

    @classmethod
    def _from_simulation(cls, data: dict[str, Any], path: str | Path | None) -> SIMParams:
        try:
            ks = data["k_cycles_per_pixel"]
            phases = data["phases_rad"]
            mods = data.get("modulation") or [1.0] * len(ks)
            orientations = [
                OrientationParams(k["ky"], k["kx"], list(ph), m) for k, ph, m in zip(ks, phases, mods, strict=True)
            ]
            return cls(orientations, "angle-major", data.get("pixel_size_nm"), source="simulation")
        except InputError as exc:
            raise InputError(str(exc), path) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a valid simulator parameter file ({type(exc).__name__}: {exc})", path) from None

    def save(self, path: str | Path) -> Path:
        """Write the parameters as JSON (atomically)."""
        from microrestore.io.atomic import atomic_write_text

        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> SIMParams:
        """Read parameters written by :meth:`save`; one-line :class:`InputError` on a bad file."""
        path = Path(path)
        if not path.is_file():
            raise InputError("SIM parameter file not found", path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"not a JSON file ({type(exc).__name__})", path) from None
        params = cls.from_dict(data, path)
        params.source = params.source or f"file {path.name}"
        return params


def parameter_errors(
    found: SIMParams, reference: SIMParams, centre_yx: tuple[float, float] = (0.0, 0.0)
) -> list[dict[str, float]]:
    """Per-orientation errors of ``found`` against ``reference`` (e.g. a simulation's true parameters).

    Parameters
    ----------
    found, reference
        Parameters with the same orientations in the same order.
    centre_yx
        Raw-pixel coordinates where the phase is compared, e.g. the field centre ``((Y - 1) / 2, (X - 1) / 2)``:
        a phase refers to pixel (0, 0), so far from it any ``k`` error adds ``2 pi dk . r``.

    Returns
    -------
    list of dict
        ``angle_deg`` (modulo 180), ``k_relative`` (``| |k| / |k_ref| - 1 |``), ``phase_rad`` (at
        ``centre_yx``, wrapped, with ``k`` and ``-k`` matched) and ``modulation`` (absolute difference).
    """
    if found.n_orientations != reference.n_orientations:
        raise InputError(f"{found.n_orientations} orientations against {reference.n_orientations}")
    cy, cx = centre_yx
    out = []
    for o, r in zip(found.orientations, reference.orientations, strict=True):
        sign = 1.0 if o.ky * r.ky + o.kx * r.kx > 0 else -1.0  # k and -k with negated phases: the same pattern
        phase_o = sign * (o.phases[0] + 2 * math.pi * (o.ky * cy + o.kx * cx))
        phase_r = r.phases[0] + 2 * math.pi * (r.ky * cy + r.kx * cx)
        out.append(
            {
                "angle_deg": abs((o.angle_deg - r.angle_deg + 90.0) % 180.0 - 90.0),
                "k_relative": abs(o.k_cycles_per_pixel / r.k_cycles_per_pixel - 1.0),
                "phase_rad": abs((phase_o - phase_r + math.pi) % (2 * math.pi) - math.pi),
                "modulation": abs(o.modulation - r.modulation),
            }
        )
    return out
