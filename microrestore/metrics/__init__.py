"""Image quality metrics (PSNR, SSIM, PCC, NRMSE, affine-fit variants), resolution (FRC, decorrelation), figure.

Nothing heavy is imported here: numpy and scipy only; matplotlib loads inside
:func:`~microrestore.metrics.figure.evaluation_figure`.
"""

from __future__ import annotations

from microrestore.metrics.figure import draw_evaluation_figure, evaluation_figure, middle_plane
from microrestore.metrics.quality import affine_fit, evaluate, nrmse, pcc, psnr, saturation_count, ssim
from microrestore.metrics.resolution import decorrelation_resolution, frc, frc_resolution

__all__ = [
    "affine_fit",
    "decorrelation_resolution",
    "draw_evaluation_figure",
    "evaluate",
    "evaluation_figure",
    "frc",
    "frc_resolution",
    "middle_plane",
    "nrmse",
    "pcc",
    "psnr",
    "saturation_count",
    "ssim",
]
