"""Working textures of a mesh part: the downsampled start a job optimizes, and the full-resolution
export of its change. Shared by the optimization (:mod:`~meshstyle.stylize.mesh`) and the
feed-forward fit (:mod:`~meshstyle.stylize.feedforward_mesh`); imports no other job module.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..core.imageio import long_edge_size, resize_tensor, rgb8_to_tensor, tensor_to_rgb8
from ..mesh.padding import island_mask, pad_texture
from ..mesh.textured import TexturedMesh

#: Long edge in texels of a working texture when no ``texture_size`` is given (smaller originals keep theirs).
WORKING_EDGE = 512


def working_texture(mesh: TexturedMesh, name: str, size: int | None) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(full-resolution original, working-size start, full-resolution island mask) of part ``name``;
    textures (3, H, W) in [0, 1], the start's long edge ``size`` texels (None: the original's, at most
    :data:`WORKING_EDGE`). The original is padded beyond its UV islands before the antialiased
    downsampling (no background blends into island borders). Used by the optimization and the
    feed-forward fit alike."""
    rgb = mesh.texture(name)
    islands = island_mask(mesh.corner_uv(name), rgb.shape[:2])
    full = rgb8_to_tensor(pad_texture(rgb, islands))
    edge = size if size is not None else min(WORKING_EDGE, max(rgb.shape[:2]))
    start = resize_tensor(full, long_edge_size(rgb.shape[1], rgb.shape[0], edge), mode="bilinear", antialias=True)
    return full, start, islands


def export_texture(full: torch.Tensor, start: torch.Tensor, current: torch.Tensor, islands: np.ndarray) -> np.ndarray:
    """Full-resolution RGB8 (H, W, 3): ``full + up(pad(current - start))`` clamped to [0, 1].

    Args:
        full: (3, H, W) original; start, current: (3, h, w) working texture before and after.
        islands: (h, w) bool texels inside the UV islands (the change is padded outward from them).
    """
    delta = (current - start).detach().cpu().float()
    if islands.any() and not islands.all():
        delta = torch.from_numpy(pad_texture(delta.permute(1, 2, 0).numpy(), islands)).permute(2, 0, 1)
    if tuple(delta.shape[-2:]) != tuple(full.shape[-2:]):
        delta = F.interpolate(delta[None], size=full.shape[-2:], mode="bilinear", align_corners=False)[0]
    return tensor_to_rgb8((full + delta).clamp(0, 1))
