"""Small pictures of numeric data as PNG ``data:`` URLs (the CSP allows ``img-src data:``),
drawn with numpy and a minimal PNG encoder (zlib): a heat map of a 2-D array and a
histogram of a 1-D array or a numeric column. Nothing here reads text from a file.

Non-goals: axes, labels and colour bars (the facts next to the picture give min/max), and
any plotting library."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

__all__ = ["heatmap", "histogram", "png"]

SIDE = 240  # the longer side of a heat map, in pixels, at most
# a perceptual ramp (dark blue → teal → yellow), interpolated
_STOPS = ((0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)),
          (0.75, (94, 201, 98)), (1.0, (253, 231, 37)))


def png(rgb: Any) -> bytes:
    """An ``(h, w, 3)`` uint8 array as PNG bytes."""
    import numpy as np

    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = rgb.shape
    rows = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def _url(rgb: Any) -> str:
    return "data:image/png;base64," + base64.b64encode(png(rgb)).decode("ascii")


def _colours(t: Any) -> Any:
    """Values in [0, 1] (NaN for missing) as RGB: the ramp, grey where missing."""
    import numpy as np

    xs = [s for s, _ in _STOPS]
    out = np.stack([np.interp(np.nan_to_num(t, nan=0.0), xs, [c[k] for _, c in _STOPS])
                    for k in range(3)], axis=-1)
    out[np.isnan(t)] = (200, 200, 200)
    return out.astype(np.uint8)


def _numeric(a: Any) -> Any | None:
    """``a`` as float64, or None when it is not numeric (or has no finite value)."""
    import numpy as np

    if getattr(a, "dtype", None) is None or a.dtype.kind not in "iufb" or a.size == 0:
        return None
    f = np.asarray(a, dtype=np.float64)
    return f if np.isfinite(f).any() else None


def heatmap(a: Any) -> str | None:
    """A 2-D numeric array as a heat map (``data:`` URL): sampled down to ``SIDE`` pixels,
    small arrays scaled up; None when it is not a numeric 2-D array."""
    import numpy as np

    if getattr(a, "ndim", 0) != 2 or 0 in a.shape:
        return None
    h, w = a.shape
    step = max(1, -(-max(h, w) // SIDE))
    f = _numeric(a[::step, ::step])
    if f is None:
        return None
    f = np.where(np.isfinite(f), f, np.nan)
    lo, hi = np.nanmin(f), np.nanmax(f)
    t = (f - lo) / (hi - lo) if hi > lo else np.where(np.isnan(f), np.nan, 0.5)
    scale = max(1, SIDE // 2 // max(f.shape))  # at least SIDE/2 pixels on the longer side
    tall, wide = (max(scale, -(-24 // n)) for n in f.shape)  # and 24 on the shorter one
    rgb = _colours(t).repeat(tall, axis=0).repeat(wide, axis=1)
    return _url(rgb)


def histogram(values: Any, bins: int = 40, width: int = 200, height: int = 60) -> str | None:
    """A histogram of the finite values of a numeric 1-D array (``data:`` URL)."""
    import numpy as np

    f = _numeric(np.asarray(values).reshape(-1) if hasattr(values, "dtype") else values)
    if f is None:
        return None
    f = f[np.isfinite(f)]
    counts, _ = np.histogram(f, bins=bins)
    bar = width // bins
    tall = np.ceil(counts / counts.max() * (height - 2)).astype(int)
    rgb = np.full((height, bar * bins, 3), 255, np.uint8)
    rows = np.arange(height)[:, None]
    filled = rows >= (height - np.repeat(tall, bar))[None, :]
    rgb[filled] = (59, 82, 139)
    rgb[height - 1, :] = (150, 150, 150)  # the base line
    return _url(rgb)
