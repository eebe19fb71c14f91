"""Views: what each camera sees of the fixed geometry, as tensors, and rendering textures through them.

A :class:`ViewStack` holds V views at one resolution level: for every pixel the ``grid_sample``
coordinate of the texel seen (see :mod:`meshstyle.core.uv` for the UV convention), which texture
(``part``), the surface coverage ``mask``, the ``depth`` along the ray (world units) and
``cos_angle``, the cosine between the surface normal and the direction to the camera. Geometry never
changes, so these are computed once (by :mod:`meshstyle.mesh.raycast`) and only texture sampling is
differentiated (docs/ARCHITECTURE.md). A 2D image is one view whose grid is :func:`~meshstyle.core.uv.identity_grid`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from .uv import MipPyramid, identity_grid, sample_texture, sample_texture_mip

_FLAGS = ("supersample", "identity_view")


@dataclass
class ViewStack:
    """V views at one resolution (H, W), optionally supersampled by ``supersample`` = s.

    Attributes:
        grid: (V, sH, sW, 2) float32 ``grid_sample`` coordinates in [-1, 1].
        part: (V, sH, sW) int64 index of the texture seen; -1 for background or for surfaces whose
            texture is not stylized (they occlude but show the background colour).
        mask: (V, 1, H, W) float32 fraction of the pixel covered by stylizable surface, in [0, 1].
        depth: (V, 1, H, W) float32 distance from the camera along the ray, world units (0 where empty).
        cos_angle: (V, 1, H, W) float32 |cos| of the angle between normal and view ray (0 where empty).
        supersample: s >= 1.
        footprint: (V, sH, sW) float32 side of each sample's footprint on the surface in UV units (see
            :func:`~meshstyle.core.uv.mip_level`), or ``None``; with it, :func:`render` samples the
            texture mip-mapped (antialiased where the texture is minified), else bilinearly.
        identity_view: the one view of a 2D image (see :meth:`identity`); rendering through it returns
            the texture exactly (``grid_sample`` at texel centres would add float rounding of ~1e-6).
    """

    grid: torch.Tensor
    part: torch.Tensor
    mask: torch.Tensor
    depth: torch.Tensor
    cos_angle: torch.Tensor
    supersample: int = 1
    footprint: torch.Tensor | None = None
    identity_view: bool = False

    def _map(self, fn) -> ViewStack:
        """A stack whose tensors are ``fn(tensor)`` (the footprint too, when there is one)."""
        return ViewStack(**{f.name: (getattr(self, f.name) if f.name in _FLAGS or getattr(self, f.name) is None
                                     else fn(getattr(self, f.name))) for f in fields(self)})

    @property
    def count(self) -> int:
        """Number of views V."""
        return self.grid.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the rendered images."""
        return tuple(self.mask.shape[-2:])

    def select(self, index) -> ViewStack:
        """The views at ``index`` (a list or tensor of view numbers)."""
        index = torch.as_tensor(index, dtype=torch.long)
        return self._map(lambda t: t[index])

    def to(self, device) -> ViewStack:
        """The same views on ``device``."""
        return self._map(lambda t: t.to(device))

    def crop(self, window: tuple[int, int, int, int]) -> ViewStack:
        """The window (row, column, h, w) of every view, in output pixels."""
        r, c, h, w = window
        s = self.supersample
        fine, coarse = (slice(r * s, (r + h) * s), slice(c * s, (c + w) * s)), (slice(r, r + h), slice(c, c + w))
        return ViewStack(supersample=s, grid=self.grid[:, fine[0], fine[1]], part=self.part[:, fine[0], fine[1]],
                         footprint=None if self.footprint is None else self.footprint[:, fine[0], fine[1]],
                         **{k: getattr(self, k)[..., coarse[0], coarse[1]] for k in ("mask", "depth", "cos_angle")})

    @classmethod
    def concat(cls, stacks: list[ViewStack]) -> ViewStack:
        """One stack of the views of ``stacks`` (same size and supersampling), in order."""
        first = stacks[0]
        return cls(**{f.name: (getattr(first, f.name) if f.name in _FLAGS or getattr(first, f.name) is None
                               else torch.cat([getattr(st, f.name) for st in stacks])) for f in fields(cls)})

    @classmethod
    def identity(cls, height: int, width: int) -> ViewStack:
        """The one view of a 2D image: identity grid, mask 1, depth 1, cos_angle 1."""
        ones = torch.ones(1, 1, height, width)
        return cls(identity_grid(height, width), torch.zeros(1, height, width, dtype=torch.long), ones,
                   ones.clone(), ones.clone(), identity_view=True)


@dataclass
class LevelView:
    """One view at one depth level, cropped to the pixels that count there (see
    :mod:`meshstyle.mesh.weights` for the levels).

    Attributes:
        view: a one-view :class:`ViewStack` of the crop (1, h, w).
        weight: (1, 1, h, w) per-pixel style weight in [0, 1]: coverage x angle weight x soft level weight.
        level: depth level l (resolution ``frame = R_0 * 2^l`` px).
        window: (row, column, h, w) of the crop in the level's full frame, px.
        frame: side of the level's full (square) frame, px.
        share: the level's share of the view's object pixels (sums to 1 over a view's levels).
    """

    view: ViewStack
    weight: torch.Tensor
    level: int
    window: tuple[int, int, int, int]
    frame: int
    share: float

    def to(self, device) -> LevelView:
        """The same crop on ``device``."""
        return LevelView(self.view.to(device), self.weight.to(device), self.level, self.window, self.frame,
                         self.share)


def render(textures: list[torch.Tensor], views: ViewStack, background: float | torch.Tensor = 1.0,
           mips: list[MipPyramid] | None = None) -> torch.Tensor:
    """Render textures through views: (N, 3, H, W), differentiable with respect to the textures only.

    Args:
        textures: one (3, H_t, W_t) tensor per part, values in [0, 1].
        views: the :class:`ViewStack` to render (N views).
        background: colour of pixels that show no stylizable surface (a float or a (3,) tensor).
        mips: the textures' :class:`~meshstyle.core.uv.MipPyramid` s, to share them between renders of
            the same textures (built here when ``None`` and the views carry footprints).

    Each pixel samples the texture of its part at its grid coordinate, bilinearly, or mip-mapped when
    the views carry footprints (:func:`~meshstyle.core.uv.sample_texture_mip`); supersampled views are
    averaged down (box filter) to (H, W).
    """
    if views.identity_view:  # sampling at every texel centre returns the texture itself: skip the rounding
        return textures[0].unsqueeze(0)
    bg = torch.as_tensor(background, dtype=textures[0].dtype, device=textures[0].device).reshape(-1, 1, 1)
    out = None
    for index, texture in enumerate(textures):
        colour = (sample_texture(texture, views.grid) if views.footprint is None
                  else sample_texture_mip(texture if mips is None else mips[index], views.grid, views.footprint))
        hit = (views.part == index).unsqueeze(1).to(colour.dtype)
        out = colour * hit if out is None else out + colour * hit
    empty = (views.part < 0).unsqueeze(1).to(out.dtype)
    out = out + empty * bg.expand(3, 1, 1)
    if views.supersample > 1:
        out = F.avg_pool2d(out, views.supersample)
    return out
