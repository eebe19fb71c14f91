"""The UV convention, shared by the engine (texture sampling) and the mesh layer (ray casting).

UV convention (one place for it): UVs follow OBJ and glTF-as-loaded-by-trimesh, with ``u`` to the right
and ``v`` *up*: (0, 0) is the bottom-left corner of the image file and (1, 1) its top-right corner.
Texture tensors are (3, H_t, W_t) with row 0 the top row of the image file. UVs wrap (repeat) outside
[0, 1] as in OBJ and glTF viewers. Texel ``(row i, column j)`` has its centre at
``u = (j + 0.5) / W_t``, ``v = 1 - (i + 0.5) / H_t``. This maps to ``grid_sample`` coordinates
(``align_corners=False``) as ``x = 2 u - 1``, ``y = 1 - 2 v``.

See docs/ARCHITECTURE.md for where this sits in a run.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

#: Mip levels :func:`sample_texture_mip` may average down to (level k averages 2^k x 2^k texels).
MIP_LEVELS = 5


def uv_to_grid(uv: np.ndarray) -> np.ndarray:
    """Map UVs (..., 2) (OBJ convention, wrapping) to ``grid_sample`` coordinates (..., 2) in [-1, 1]."""
    uv = np.asarray(uv, dtype=np.float64)
    wrapped = uv - np.floor(uv)
    grid = np.empty_like(wrapped)
    grid[..., 0] = 2.0 * wrapped[..., 0] - 1.0
    grid[..., 1] = 1.0 - 2.0 * wrapped[..., 1]
    return grid.astype(np.float32)


def identity_grid(height: int, width: int) -> torch.Tensor:
    """The grid (1, H, W, 2) that samples every texel of an H x W texture at its centre.

    Rendering a texture through it returns the texture unchanged: the 2D image is one identity view.
    """
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) / width * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1).unsqueeze(0)


def sample_texture(texture: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample a texture (C, H_t, W_t) at ``grid`` (N, H, W, 2); returns (N, C, H, W).

    Differentiable with respect to ``texture``. All views share one ``grid_sample`` call.
    """
    n, h, w, _ = grid.shape
    flat = grid.reshape(1, n * h, w, 2)
    out = F.grid_sample(texture.unsqueeze(0), flat, mode="bilinear", padding_mode="border", align_corners=False)
    return out.reshape(texture.shape[0], n, h, w).transpose(0, 1)


def mip_level(footprint: torch.Tensor, texture_shape: tuple[int, int]) -> torch.Tensor:
    """Continuous mip level (level of detail) of every sample: ``log2`` of the texels one sample covers
    along a side, ``clamp(log2(footprint * sqrt(H_t W_t)), 0, MIP_LEVELS - 1)``.

    Args:
        footprint: (N, H, W) side of each sample's footprint on the surface in UV units (0..1 spans
            the texture); 0 where nothing is seen.
        texture_shape: (H_t, W_t) texels.
    """
    texels = footprint * math.sqrt(texture_shape[0] * texture_shape[1])
    return torch.log2(texels.clamp_min(1e-6)).clamp(0, MIP_LEVELS - 1)


class MipPyramid:
    """The mip pyramid of one texture (C, H_t, W_t), built lazily and kept, so that every render of a
    step samples one pyramid (level k: the texture halved k times with a triangle filter,
    ``antialias=True``; a box filter would hand equal gradients to aligned 2^k blocks, which then show
    as blocks). Differentiable with respect to the texture."""

    def __init__(self, texture: torch.Tensor):
        self.levels = [texture]

    def level(self, k: int) -> torch.Tensor:
        """Level ``k`` (C, ceil(H_t / 2^k), ceil(W_t / 2^k))."""
        while len(self.levels) <= k:
            last = self.levels[-1]
            size = (max(1, (last.shape[-2] + 1) // 2), max(1, (last.shape[-1] + 1) // 2))
            self.levels.append(F.interpolate(last.unsqueeze(0), size=size, mode="bilinear", antialias=True,
                                             align_corners=False).squeeze(0))
        return self.levels[k]

    def sample(self, grid: torch.Tensor, footprint: torch.Tensor) -> torch.Tensor:
        """Trilinear sampling at ``grid`` (N, H, W, 2) with footprints (N, H, W); see
        :func:`sample_texture_mip`."""
        lod = mip_level(footprint, tuple(self.levels[0].shape[-2:]))
        out = None
        for k in range(int(math.ceil(float(lod.max()))) + 1):
            weight = (1 - (lod - k).abs()).clamp_min(0).unsqueeze(1)
            if k > 0 and not bool((weight > 0).any()):
                continue
            term = weight * sample_texture(self.level(k), grid)
            out = term if out is None else out + term
        return out


def sample_texture_mip(texture: torch.Tensor | MipPyramid, grid: torch.Tensor,
                       footprint: torch.Tensor) -> torch.Tensor:
    """Trilinear (mip-mapped) sampling (Williams, "Pyramidal parametrics", SIGGRAPH 1983): every sample
    reads the texture low-pass filtered to its footprint, blending the two nearest levels of the
    texture's mip pyramid (:class:`MipPyramid`). Where a sample covers several texels, they all get
    its gradient, so a minified texture is not optimized at a sparse, aliased set of texels.

    Args:
        texture: (C, H_t, W_t), or its :class:`MipPyramid` (reused across calls).
        grid: (N, H, W, 2) ``grid_sample`` coordinates (see :func:`uv_to_grid`).
        footprint: (N, H, W) footprint side in UV units (see :func:`mip_level`).

    Returns:
        (N, C, H, W); equal to :func:`sample_texture` where the footprint is at most one texel.
    """
    return (texture if isinstance(texture, MipPyramid) else MipPyramid(texture)).sample(grid, footprint)
