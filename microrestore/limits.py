"""Limits against decompression bombs, shared by the zip reader (model packages) and the TIFF reader.

A file whose content expands far beyond its stored size is refused before it is decompressed: a small file
declaring gigabytes is either corrupt or built to exhaust memory. Both readers use :func:`expands_too_far`
with the same floor; the ratios differ with what the files hold.
"""

from __future__ import annotations

__all__ = ["MAX_IMAGE_RATIO", "MAX_RATIO", "RATIO_FLOOR_BYTES", "expands_too_far"]

#: Largest uncompressed / compressed ratio of a zip member (weights compress by ~1.1x, YAML by ~5x).
MAX_RATIO = 100.0
#: Largest ratio of an image's declared pixel bytes to its file size. Images legitimately compress much more
#: than model files (an all-black plane reaches deflate's format limit of 1032:1, LZW's is about 1365:1), so
#: the bound sits just above those limits: beyond it the file reuses or omits its compressed strips or tiles,
#: the classic TIFF bomb.
MAX_IMAGE_RATIO = 1500.0
#: Content smaller than this is not ratio-checked (tiny files can compress very well legitimately).
RATIO_FLOOR_BYTES = 2**20


def expands_too_far(decoded: int, stored: int, ratio: float = MAX_RATIO) -> bool:
    """Whether ``decoded`` bytes from ``stored`` bytes is a possible decompression bomb.

    Parameters
    ----------
    decoded
        Bytes the content expands to (declared or counted while decompressing).
    stored
        Bytes it occupies compressed.
    ratio
        The largest accepted ``decoded / stored``.

    Returns
    -------
    bool
        True when ``decoded`` exceeds both :data:`RATIO_FLOOR_BYTES` and ``ratio`` times ``stored``.
    """
    return decoded > RATIO_FLOOR_BYTES and decoded > ratio * max(stored, 1)
