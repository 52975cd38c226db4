"""How good is a restoration, without a ground truth (numpy and scipy only).

- :mod:`~microrestore.assess.camera`: the camera and noise model fitted from the image (offset, gain, read
  noise, photons) and how well it fits;
- :mod:`~microrestore.assess.splitting`: the restoration's error against the unknown noise-free image,
  estimated by splitting the image into two independent noisy images, and a calibrated per-pixel
  uncertainty map;
- :mod:`~microrestore.assess.hallucination`: where the output holds structure the data do not support;
- :mod:`~microrestore.assess.ranking`: several methods ranked by their estimated error, and how sure the
  ranking is;
- :mod:`~microrestore.assess.report`: all of it for one method (:func:`assess_restoration`) or several
  (:func:`compare_restorations`).

See ``docs/assess.md`` for the statistics.
"""

from __future__ import annotations

from microrestore.assess.camera import CameraReport, camera_report, variance_map
from microrestore.assess.hallucination import HallucinationMap, hallucination_map
from microrestore.assess.ranking import Ranking, rank
from microrestore.assess.report import Assessment, Comparison, assess_restoration, compare_restorations
from microrestore.assess.splitting import ErrorEstimate, Restorer, data_range_of, estimate_error, split_pair

__all__ = [
    "Assessment",
    "CameraReport",
    "Comparison",
    "ErrorEstimate",
    "HallucinationMap",
    "Ranking",
    "Restorer",
    "assess_restoration",
    "camera_report",
    "compare_restorations",
    "data_range_of",
    "estimate_error",
    "hallucination_map",
    "rank",
    "split_pair",
    "variance_map",
]
