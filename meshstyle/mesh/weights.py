"""Depth- and angle-aware pixel weights for the style loss on mesh renders (StyleMesh, Höllein,
Johnson & Nießner, CVPR 2022, sections 3.3-3.4, adapted to single assets).

Angle: a pixel whose surface is seen at angle theta from its normal counts with weight cos(theta); a
pixel beyond ``angle_threshold`` (default 60 degrees) has weight 0, so surfaces seen edge-on, where
the texture is stretched on screen, do not drive the style statistics.

Depth: the views are rendered at resolution levels ``l = 0, 1, ...`` (level l is 2^-l times the
full resolution ``H``). One pixel of level l at depth d covers ``2^l * 2 d tan(fov / 2) / H`` world
units. Each pixel's style loss is taken from the level at which that footprint is closest to the
footprint of a level-0 pixel at the reference depth ``d_ref`` (the farthest visible depth over all
views)::

    level(d) = clamp(round(log2(d_ref / d)), 0, levels - 1)

so a near surface (small d) is judged at a coarser level and patterns keep one size in world units
instead of shrinking with distance. A plane at depth D and one at 2D land one level apart.
"""

from __future__ import annotations

import math

import torch

from ..core.views import ViewStack


def depth_level(depth: torch.Tensor, reference_depth: float, levels: int) -> torch.Tensor:
    """Level index (same shape as ``depth``, int64) by the formula in the module docstring.

    ``depth`` is in world units (> 0 where a surface is seen); empty pixels (depth 0) get level 0.
    """
    safe = depth.clamp_min(1e-12)
    level = torch.round(torch.log2(reference_depth / safe))
    level = torch.where(depth > 0, level, torch.zeros_like(level))
    return level.clamp(0, levels - 1).long()


def angle_weight(cos_angle: torch.Tensor, threshold_degrees: float) -> torch.Tensor:
    """``cos_angle`` where the angle is at most the threshold, else 0 (same shape)."""
    limit = math.cos(math.radians(threshold_degrees))
    return torch.where(cos_angle >= limit - 1e-6, cos_angle, torch.zeros_like(cos_angle))


def reference_depth(stacks: list[ViewStack]) -> float:
    """The farthest visible depth over the views of the finest level (world units)."""
    depth = stacks[0].depth
    return float(depth[stacks[0].mask > 0].max()) if (stacks[0].mask > 0).any() else 1.0


def style_weights(stacks: list[ViewStack], angle_threshold: float = 60.0, depth_aware: bool = True) -> list[torch.Tensor]:
    """Per-level style weight maps (V, 1, H_l, W_l): mask x angle weight x [level(depth) == l].

    Without ``depth_aware`` every visible pixel counts at level 0 and the coarser levels get zero maps.
    """
    ref = reference_depth(stacks)
    out = []
    for level, stack in enumerate(stacks):
        weight = stack.mask * angle_weight(stack.cos_angle, angle_threshold)
        if depth_aware:
            weight = weight * (depth_level(stack.depth, ref, len(stacks)) == level).to(weight.dtype)
        elif level > 0:
            weight = torch.zeros_like(weight)
        out.append(weight)
    return out
