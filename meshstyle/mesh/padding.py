"""Texture padding: fill texels outside the UV islands with the colour of the nearest island texel,
so bilinear and mipmap filtering in viewers never blend in background colour (no seam lines)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .rasterize import rasterize_uv


def island_mask(corner_uv: np.ndarray, size: tuple[int, int], grow: int = 1) -> np.ndarray:
    """Boolean (H, W) mask of texels covered by the UV triangles (F, 3, 2), grown by ``grow`` texels
    (bilinear sampling reads one texel beyond a triangle's edge). UVs outside [0, 1] wrap: a triangle
    is rasterized at the integer shifts that bring it into the texture; one spanning more than a
    whole tile marks the whole texture."""
    corner_uv = np.asarray(corner_uv, np.float64)
    lo, hi = corner_uv.min(1), corner_uv.max(1)
    if np.any(hi - lo >= 1.0):
        return np.ones(size, bool)
    shifted = corner_uv - np.floor(lo)[:, None, :]
    copies = [shifted]
    for du in (0, -1):
        for dv in (0, -1):
            if du or dv:
                crosses = ((shifted.max(1)[:, 0] > 1) | (du == 0)) & ((shifted.max(1)[:, 1] > 1) | (dv == 0))
                if crosses.any():
                    copies.append(shifted[crosses] + np.array([du, dv]))
    face, _ = rasterize_uv(np.concatenate(copies), size)
    mask = face >= 0
    if grow > 0:
        mask = ndimage.binary_dilation(mask, iterations=grow)
    return mask


def pad_texture(texture: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Copy of ``texture`` (H, W, C) where every texel outside ``mask`` (H, W) takes the value of the
    nearest texel inside it (Euclidean distance transform). An empty mask returns the texture as is."""
    if mask.all() or not mask.any():
        return texture.copy()
    _, (iy, ix) = ndimage.distance_transform_edt(~mask, return_indices=True)
    return texture[iy, ix]
