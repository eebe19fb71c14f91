"""Rasterization of triangles in UV space (texture space), used to bake colours into a new texture,
to find UV islands for padding, and to check unwrapped charts for overlaps.

Texel (row i, column j) has its centre at ``u = (j + 0.5) / W``, ``v = 1 - (i + 0.5) / H`` (see
:mod:`meshstyle.core.uv`). A texel belongs to a triangle when its centre lies inside it.
"""

from __future__ import annotations

import numpy as np


def rasterize_uv(corner_uv: np.ndarray, size: tuple[int, int], count_overlaps: bool = False):
    """Which triangle covers each texel centre, and where.

    Args:
        corner_uv: (F, 3, 2) UVs of the triangle corners in [0, 1] (v up).
        size: (height, width) of the texture in texels.
        count_overlaps: also return how many triangles cover each texel.

    Returns:
        ``face`` (H, W) int64 (-1 where no triangle), ``bary`` (H, W, 3) float32 barycentric
        coordinates, and with ``count_overlaps`` a third array (H, W) int32 of coverage counts.
    """
    h, w = size
    face = np.full((h, w), -1, np.int64)
    bary = np.zeros((h, w, 3), np.float32)
    counts = np.zeros((h, w), np.int32) if count_overlaps else None
    # texel coordinates: x = u * W - 0.5, y = (1 - v) * H - 0.5 so that centres are integers
    px = np.asarray(corner_uv, np.float64)[..., 0] * w - 0.5
    py = (1.0 - np.asarray(corner_uv, np.float64)[..., 1]) * h - 0.5
    x0 = np.clip(np.floor(px.min(1)), 0, w - 1).astype(int)
    x1 = np.clip(np.ceil(px.max(1)), 0, w - 1).astype(int)
    y0 = np.clip(np.floor(py.min(1)), 0, h - 1).astype(int)
    y1 = np.clip(np.ceil(py.max(1)), 0, h - 1).astype(int)
    for f in range(len(px)):
        (ax, bx, cx), (ay, by, cy) = px[f], py[f]
        det = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
        if abs(det) < 1e-12:
            continue
        ys, xs = np.mgrid[y0[f]:y1[f] + 1, x0[f]:x1[f] + 1]
        l0 = ((by - cy) * (xs - cx) + (cx - bx) * (ys - cy)) / det
        l1 = ((cy - ay) * (xs - cx) + (ax - cx) * (ys - cy)) / det
        l2 = 1.0 - l0 - l1
        inside = (l0 >= -1e-9) & (l1 >= -1e-9) & (l2 >= -1e-9)
        if not inside.any():
            continue
        yy, xx = ys[inside], xs[inside]
        face[yy, xx] = f
        bary[yy, xx] = np.stack([l0[inside], l1[inside], l2[inside]], -1)
        if counts is not None:
            counts[yy, xx] += 1
    if count_overlaps:
        return face, bary, counts
    return face, bary


def bake_corner_colors(corner_uv: np.ndarray, corner_rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bake per-corner colours (F, 3, 3) in [0, 255] into a texture (H, W, 3) uint8 by barycentric
    interpolation; texels outside every triangle get the mean colour (padding fills them later)."""
    face, bary = rasterize_uv(corner_uv, size)
    out = np.empty((*size, 3), np.float64)
    out[:] = corner_rgb.reshape(-1, 3).mean(0)
    hit = face >= 0
    out[hit] = np.einsum("nk,nkc->nc", bary[hit], corner_rgb[face[hit]].astype(np.float64))
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
