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

    ``texture = g^0 level_0 + up(g^1 level_1 + up(g^2 level_2 + ...))`` (bilinear ``up``, gain ``g``),
    level 0 at full size (Höllein et al., StyleMesh, CVPR 2022, use 4 levels and ``g = 1``). Initialized
    as a Laplacian pyramid of ``init``, so the sum equals ``init`` exactly.
    An optimizer that normalizes gradients per parameter (Adam) then changes coarse levels as readily
    as fine ones, which gives large, coherent strokes; :meth:`regularizer` adds a penalty on the change
    of each level that grows toward finer levels, pushing new detail toward coarse levels.

    For a gradient method (L-BFGS starts from a multiple of the identity) the pyramid is a
    preconditioner: a texel of level k covers 4^k texels, so a smooth gradient is amplified about
    ``(4 g^2)^k`` times in band k. ``g = 2^-1/2`` boosts each coarser band 2x (measured best for 2D
    L-BFGS, see :mod:`meshstyle.stylize.image`); ``g = 1`` boosts it 4x.

    Args:
        init: (3, H, W) in [0, 1].
        levels: number of levels (>= 1); coarser levels are at least 4 texels on a side.
        gain: ``g`` > 0, the factor of each coarser level in the sum (the parameters store
            ``band_k / g^k``).
    """

    def __init__(self, init: torch.Tensor, levels: int = 4, gain: float = 1.0):
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
        self.gains = [float(gain) ** k for k in range(len(bands))]
        self.levels = nn.ParameterList([nn.Parameter(b / g) for b, g in zip(bands, self.gains)])
        for k, level in enumerate(self.levels):
            self.register_buffer(f"start{k}", level.detach().clone(), persistent=False)

    @staticmethod
    def _up(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(image.shape[-2:]) == tuple(size):
            return image
        return F.interpolate(image.unsqueeze(0), size=size, mode="bilinear", align_corners=False)[0]

    def _level(self, k: int) -> torch.Tensor:
        return self.levels[k] if self.gains[k] == 1.0 else self.gains[k] * self.levels[k]

    def forward(self) -> torch.Tensor:
        out = self._level(len(self.levels) - 1)
        for k in reversed(range(len(self.levels) - 1)):  # Laplacian reconstruction, coarse to fine
            out = self._up(out, tuple(self.levels[k].shape[-2:])) + self._level(k)
        return out

    @torch.no_grad()
    def project_(self) -> None:
        """Keep the summed texture in [0, 1] by moving the excess into the finest level (gain 1)."""
        total = self.forward()
        self.levels[0].sub_(total - total.clamp(0, 1))

    def regularizer(self) -> torch.Tensor:
        """``sum_k 2^-k mean((level_k - initial_k)^2)``: finer levels (small k) pay more for change."""
        reg = self.levels[0].new_zeros(())
        for k, level in enumerate(self.levels):
            reg = reg + 2.0 ** (-k) * (level - getattr(self, f"start{k}")).pow(2).mean()
        return reg


class LuminanceChange(nn.Module):
    """A texture whose change is the same on R, G and B: ``texture = start + d``, ``d`` (1, H, W) a
    :class:`PyramidTexture` of ``levels`` levels (starting at 0).

    Adding one value to the three channels changes the luminance Y by that value and leaves the chroma
    exactly as it was: the YIQ rows of I and Q sum to 0 (:mod:`meshstyle.engine.color`). This is the
    texture side of luminance-only style transfer on meshes (Gatys et al., CVPR 2017, "colour
    preservation"): with luminance renders and luminance style images the loss has a gradient along
    ``d`` only. :meth:`project_` limits ``d`` so that no channel leaves [0, 1], so no clipping alters
    the chroma either.

    Args:
        start: (3, H, W) texture in [0, 1].
        levels: texture pyramid levels of ``d``.
    """

    def __init__(self, start: torch.Tensor, levels: int = 4):
        super().__init__()
        start = start.detach().float().clamp(0, 1)
        self.register_buffer("start", start.clone(), persistent=False)
        self.register_buffer("low", -start.min(0, keepdim=True).values, persistent=False)
        self.register_buffer("high", 1 - start.max(0, keepdim=True).values, persistent=False)
        self.offset = PyramidTexture(torch.full((1, *start.shape[-2:]), 0.5), levels)

    def forward(self) -> torch.Tensor:
        """The texture (3, H, W); equals ``start`` before any step."""
        return self.start + (self.offset() - 0.5)

    @torch.no_grad()
    def project_(self) -> None:
        """Keep every channel in [0, 1] by limiting the common change ``d`` (moved out of the finest level)."""
        change = self.offset() - 0.5
        excess = change - torch.maximum(torch.minimum(change, self.high), self.low)
        self.offset.levels[0].sub_(excess)

    def regularizer(self) -> torch.Tensor:
        """The regularizer of the change's pyramid (:meth:`PyramidTexture.regularizer`)."""
        return self.offset.regularizer()
