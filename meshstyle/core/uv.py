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

import numpy as np
import torch
import torch.nn.functional as F


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
