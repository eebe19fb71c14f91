"""Textures: the UV convention, sampling through views, and texture parameterizations.

UV convention (one place for it): UVs follow OBJ and glTF-as-loaded-by-trimesh, with ``u`` to the right
and ``v`` *up*: (0, 0) is the bottom-left corner of the image file and (1, 1) its top-right corner.
Texture tensors are (3, H_t, W_t) with row 0 the top row of the image file. UVs wrap (repeat) outside
[0, 1] as in OBJ and glTF viewers. Texel ``(row i, column j)`` has its centre at
``u = (j + 0.5) / W_t``, ``v = 1 - (i + 0.5) / H_t``. This maps to ``grid_sample`` coordinates
(``align_corners=False``) as ``x = 2 u - 1``, ``y = 1 - 2 v``.

Parameterizations are ``nn.Module`` s whose ``forward()`` returns the texture (3, H_t, W_t) in [0, 1]:
:class:`PlainTexture` (one texel grid; the 2D case) and :class:`PyramidTexture` (several resolution
levels summed, as in StyleMesh, Höllein et al. CVPR 2022).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


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


class PlainTexture(nn.Module):
    """A texture whose texels are the parameters. ``init``: (3, H, W) in [0, 1]."""

    def __init__(self, init: torch.Tensor):
        super().__init__()
        self.texels = nn.Parameter(init.detach().clone().float().clamp(0, 1))

    def forward(self) -> torch.Tensor:
        return self.texels

    @torch.no_grad()
    def project_(self) -> None:
        """Clamp the texels to [0, 1] (called after every optimizer step)."""
        self.texels.clamp_(0, 1)

    def regularizer(self) -> torch.Tensor:
        """No regularizer for a plain texture (0)."""
        return self.texels.new_zeros(())


def _resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(image.unsqueeze(0), size=size, mode="bilinear", align_corners=False,
                         antialias=True)[0]


class PyramidTexture(nn.Module):
    """A texture as the sum of ``levels`` resolution levels, each half the size of the previous.

    ``texture = level_0 + up(level_1 + up(level_2 + ...))`` (bilinear ``up``), level 0 at full size (Höllein et al., StyleMesh, CVPR 2022,
    use 4 levels). Initialized as a Laplacian pyramid of ``init``, so the sum equals ``init`` exactly.
    An optimizer that normalizes gradients per parameter (Adam) then changes coarse levels as readily
    as fine ones, which gives large, coherent strokes; :meth:`regularizer` adds a penalty on the change
    of each level that grows toward finer levels, pushing new detail toward coarse levels.

    Args:
        init: (3, H, W) in [0, 1].
        levels: number of levels (>= 1); coarser levels are at least 4 texels on a side.
    """

    def __init__(self, init: torch.Tensor, levels: int = 4):
        super().__init__()
        init = init.detach().float().clamp(0, 1)
        self.size = tuple(init.shape[-2:])
        sizes = [self.size]
        while len(sizes) < levels and min(sizes[-1]) >= 8:
            sizes.append((max(4, sizes[-1][0] // 2), max(4, sizes[-1][1] // 2)))
        bands, current = [], init
        for finer, coarser in zip(sizes[:-1], sizes[1:]):
            low = _resize(current, coarser)
            bands.append(current - self._up(low, finer))
            current = low
        bands.append(current)
        self.levels = nn.ParameterList([nn.Parameter(b.clone()) for b in bands])
        for k, band in enumerate(bands):
            self.register_buffer(f"start{k}", band.clone(), persistent=False)

    @staticmethod
    def _up(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(image.shape[-2:]) == tuple(size):
            return image
        return F.interpolate(image.unsqueeze(0), size=size, mode="bilinear", align_corners=False)[0]

    def forward(self) -> torch.Tensor:
        out = self.levels[-1]
        for level in reversed(self.levels[:-1]):  # Laplacian reconstruction, coarse to fine
            out = self._up(out, tuple(level.shape[-2:])) + level
        return out

    @torch.no_grad()
    def project_(self) -> None:
        """Keep the summed texture in [0, 1] by moving the excess into the finest level."""
        total = self.forward()
        self.levels[0].sub_(total - total.clamp(0, 1))

    def regularizer(self) -> torch.Tensor:
        """``sum_k 2^-k mean((level_k - initial_k)^2)``: finer levels (small k) pay more for change."""
        reg = self.levels[0].new_zeros(())
        for k, level in enumerate(self.levels):
            reg = reg + 2.0 ** (-k) * (level - getattr(self, f"start{k}")).pow(2).mean()
        return reg
