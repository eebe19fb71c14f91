"""Texture parameterizations: ``nn.Module`` s whose ``forward()`` returns the texture (3, H_t, W_t).

:class:`PlainTexture` (one texel grid; the 2D case) and :class:`PyramidTexture` (several *texture
pyramid levels* summed, as in StyleMesh, Höllein et al. CVPR 2022). The UV convention is stated in
:mod:`meshstyle.core.uv`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
