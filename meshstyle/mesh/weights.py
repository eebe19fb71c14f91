"""Depth levels and angle weights of mesh renders (StyleMesh, Höllein, Johnson & Nießner, CVPR 2022,
sections 3.3-3.4, adapted to single assets).

Angle: a pixel whose surface is seen at angle theta from its normal counts with weight cos(theta); a
pixel beyond ``angle_threshold`` (default 60 degrees) has weight 0, so surfaces seen edge-on, where
the texture is stretched on screen, do not drive the style.

Depth levels: every view is rendered at levels ``l = 0 .. L-1`` whose resolution *grows* with ``l``:
``R_l = R_0 * 2^l`` with ``R_{L-1}`` the ``resolution`` option (so ``R_0 = resolution / 2^(L-1)``).
One pixel of level l at depth d covers ``2 d tan(fov / 2) / R_l`` world units. The reference depth
``d_ref`` is seen at level 0: a *near* percentile (default the 5th) of the visible depths over all
views, moved by less than half an octave so that the bulk of the surface sits at level centres
(:func:`centred_reference`); a surface twice as far is seen at level 1 with twice the resolution, and
so on, so a pattern keeps one size in world units. A pixel at depth d sits at the continuous level

    c(d) = clamp(log2(d / d_ref), 0, L - 1)

and contributes to the two nearest levels with the linear (soft) weights

    w_l(d) = max(0, 1 - |c(d) - l|)          (sum over l = 1 for every surface pixel)

(StyleMesh interpolates between its two nearest levels the same way). ``L`` is the smallest number
of levels (at most ``depth_levels``) whose range covers the far (99th) percentile of depth within
half an octave (the rounding error of the levels), so no level is rendered for a sliver of surface. Each level is rendered only in the
bounding box of its pixels of positive weight, or in up to ``crop_tiles`` disjoint tiles around them
(see :func:`meshstyle.mesh.raycast.compute_level_views`).
"""

from __future__ import annotations

import math

import torch

#: Default near-depth percentile that defines the reference depth.
REFERENCE_PERCENTILE = 5.0
FAR_PERCENTILE = 99.0
LEVEL_TOLERANCE = 0.5  # octaves of depth range past the last level that do not open a new one
#: Width in octaves of the band over which a pixel's weight moves from one level to the next.
BLEND = 1.0


def angle_weight(cos_angle: torch.Tensor, threshold_degrees: float) -> torch.Tensor:
    """``cos_angle`` where the angle is at most the threshold, else 0 (same shape)."""
    limit = math.cos(math.radians(threshold_degrees))
    return torch.where(cos_angle >= limit - 1e-6, cos_angle, torch.zeros_like(cos_angle))


def reference_depth(depths: torch.Tensor, percentile: float = REFERENCE_PERCENTILE) -> float:
    """The ``percentile`` (0..100) of the positive values of ``depths`` (any shape, world units); 1 if none."""
    visible = depths[depths > 0].double()
    if visible.numel() == 0:
        return 1.0
    return float(torch.quantile(visible[:: max(1, visible.numel() // 1_000_000)], percentile / 100.0))


def centred_reference(depths: torch.Tensor, percentile: float = REFERENCE_PERCENTILE) -> float:
    """Reference depth (world units) that puts the bulk of the visible surface at level centres.

    Starting from the ``percentile`` depth ``d_p``, each visible pixel's level ``c_p = log2(d / d_p)``
    has a phase ``2 pi c_p`` (a whole octave farther is the same phase); the circular mean phase ``mu`` in
    (-1/2, 1/2] octave of all of them is where the depths concentrate, and the reference moves there:
    ``d_ref = d_p * 2^mu``. The rendered pattern has its exact world size at integer levels and is off by
    up to half an octave at the boundaries between them (2^(+-1/2)), so levels centred on the surface
    keep its pattern size even (spot cow, 24 views: the median weighted pixel was at c = 0.61, next to
    the 0/1 boundary, and the quarter of the pixels below it got a pattern 1.6-1.9x the median's in
    world units; centred, it sits at c = 0.97 and the spread of the world pattern scale falls from 0.31 to
    0.23 octave, sd). ``depths``: any shape, 0 for background; 1.0 if nothing is visible.
    """
    near = reference_depth(depths, percentile)
    visible = depths[depths > 0].double()
    if visible.numel() == 0:
        return near
    phase = 2 * math.pi * torch.log2(visible / near)
    mu = math.atan2(float(phase.sin().mean()), float(phase.cos().mean())) / (2 * math.pi)
    return near * 2.0 ** mu


def level_count(depths: torch.Tensor, reference: float, max_levels: int) -> int:
    """Number of levels ``L`` (1..max_levels) needed to cover the far percentile of ``depths``."""
    far = reference_depth(depths, FAR_PERCENTILE)
    octaves = math.log2(max(far, reference) / reference)
    return int(min(max_levels, 1 + max(0, math.ceil(octaves - LEVEL_TOLERANCE))))


def continuous_level(depth: torch.Tensor, reference: float, levels: int) -> torch.Tensor:
    """``c(d) = clamp(log2(d / d_ref), 0, L - 1)`` (same shape as ``depth``; 0 where depth is 0)."""
    level = torch.log2(depth.clamp_min(1e-12) / reference)
    return torch.where(depth > 0, level, torch.zeros_like(level)).clamp(0, levels - 1)


def level_weight(depth: torch.Tensor, reference: float, level: int, levels: int,
                 blend: float = BLEND) -> torch.Tensor:
    """Soft weight of level ``level`` (0 where depth is 0): ``w_l(d) = max(0, 1 - |b(c(d)) - l|)``.

    ``b`` keeps the integer part of c and ramps its fraction t linearly over a band of ``blend``
    octaves centred between the levels: ``b(c) = floor(c) + clamp((t - (1 - blend) / 2) / blend, 0, 1)``.
    ``blend=1`` (default) is StyleMesh's linear interpolation; smaller bands hand each pixel to one
    level except near the mid-point, so each level's crop holds fewer pixels.
    """
    c = continuous_level(depth, reference, levels)
    if blend < 1:
        base = c.floor()
        c = base + ((c - base - (1 - blend) / 2) / max(blend, 1e-6)).clamp(0, 1)
    weight = (1 - (c - level).abs()).clamp_min(0)
    return torch.where(depth > 0, weight, torch.zeros_like(weight))


def level_shares(depth: torch.Tensor, mask: torch.Tensor, reference: float, levels: int,
                 blend: float = BLEND) -> list[float]:
    """Share of a view's object pixels at each level: ``sum_p mask_p w_l(d_p) / sum_p mask_p`` (sums to 1)."""
    total = float(mask.sum())
    if total <= 0:
        return [0.0] * levels
    return [float((mask * level_weight(depth, reference, k, levels, blend)).sum()) / total for k in range(levels)]

