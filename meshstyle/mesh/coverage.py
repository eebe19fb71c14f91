"""Which texels the optimization can reach: the share of each part's UV islands that no view sees with
positive style weight (outside every camera's view, hidden, or seen more obliquely than the angle
threshold). Those texels keep their original colours."""

from __future__ import annotations

import numpy as np

from ..core.views import LevelView
from .padding import island_mask
from .textured import TexturedMesh

#: Texel map side used to count coverage: a texel counts as seen when any weighted pixel lands in it, so the
#: map must be coarser than the renders' pixel density on the surface (spot cow, 24 views at 256 px,
#: elevation -30..75: 7% unseen on a 32 px map, 9% on 64, 11% on 128, the finer maps also counting texels
#: between the pixels of distant views).
COVERAGE_SIZE = 32


def seen_texels(mesh: TexturedMesh, views: list[list[LevelView]], size: int = COVERAGE_SIZE) -> np.ndarray:
    """(P, size, size) bool: per stylizable part (in ``mesh.stylizable`` order), the cells of a ``size`` x ``size``
    texel map (row 0 the top of the image file) on which some pixel of ``views`` (per camera, its level views)
    with positive weight lands."""
    seen = np.zeros((len(mesh.stylizable), size, size), bool)
    for per_view in views:
        for lv in per_view:
            s = lv.view.supersample
            weight = lv.weight.reshape(lv.weight.shape[-2:]).repeat_interleave(s, 0).repeat_interleave(s, 1)
            part = lv.view.part[0].cpu().numpy()
            take = (part >= 0) & (weight > 0).cpu().numpy()
            uv = lv.view.grid[0].cpu().numpy()[take]
            col = np.clip(((uv[:, 0] + 1) / 2 * size).astype(int), 0, size - 1)
            row = np.clip(((uv[:, 1] + 1) / 2 * size).astype(int), 0, size - 1)
            seen[part[take], row, col] = True
    return seen


def unseen_share(mesh: TexturedMesh, views: list[list[LevelView]], size: int = COVERAGE_SIZE) -> dict[str, float]:
    """Per stylizable part, the share in [0, 1] of its UV-island texels (on a ``size`` x ``size`` map) on
    which no pixel of ``views`` (per camera, its level views) with positive weight lands."""
    seen = seen_texels(mesh, views, size)
    out = {}
    for index, name in enumerate(mesh.stylizable):
        islands = island_mask(mesh.corner_uv(name), (size, size), grow=0)
        out[name] = float((islands & ~seen[index]).sum() / max(int(islands.sum()), 1))
    return out
