"""Ray casting the fixed geometry into per-view maps (UV, depth, angle, mask), once per view and level.

Primary rays through every pixel centre are intersected with the mesh by Embree (trimesh +
embreex); the per-corner UVs and normals of the hit triangle are interpolated with the hit's
barycentric coordinates. Normals are smooth (area-weighted vertex normals of the welded mesh) except
across edges sharper than 30 degrees, where the face normal is used, as viewers' auto-smoothing does.
Nothing here is differentiated; rendering through the maps is in :mod:`meshstyle.core.views`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import trimesh

from ..core.uv import uv_to_grid
from ..core.views import LevelView, ViewStack
from . import weights
from .cameras import Camera
from .textured import TexturedMesh

log = logging.getLogger("meshstyle")
SMOOTH_ANGLE = 30.0
#: Smallest cos(angle) used for texture footprints (a surface seen edge-on counts as seen at ~84 degrees).
MIN_COS = 0.1


def _corner_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3, 3) per-corner normals: welded vertex normals, or the face normal across sharp edges."""
    welded = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    face_n = welded.face_normals
    welded.merge_vertices(merge_tex=True, merge_norm=True)
    corner = welded.vertex_normals[welded.faces]
    sharp = np.einsum("fkc,fc->fk", corner, face_n) < math.cos(math.radians(SMOOTH_ANGLE))
    corner[sharp] = np.repeat(face_n[:, None, :], 3, axis=1)[sharp]
    return corner


class RayScene:
    """The world-space triangles of a :class:`TexturedMesh` with an Embree intersector.

    Attributes:
        part: (F,) index into ``mesh.stylizable`` of every triangle's texture, -1 if not stylizable.
        corner_uv: (F, 3, 2) UVs (zeros for non-stylizable triangles).
        corner_normals: (F, 3, 3) unit normals.
        uv_density: (F,) UV units per world unit of every triangle, ``sqrt(UV area / world area)``
            (0 for degenerate triangles).
    """

    def __init__(self, mesh: TexturedMesh):
        tris, uvs, parts, normals = [], [], [], []
        for inst in mesh.instances():
            tri = inst.vertices[inst.faces]
            tris.append(tri)
            uvs.append(inst.corner_uv if inst.corner_uv is not None else np.zeros((len(tri), 3, 2)))
            parts.append(np.full(len(tri), mesh.stylizable.index(inst.geometry) if inst.stylizable else -1))
            normals.append(_corner_normals(inst.vertices, inst.faces))
        self.triangles = np.concatenate(tris)
        self.corner_uv = np.concatenate(uvs)
        self.part = np.concatenate(parts)
        self.corner_normals = np.concatenate(normals)
        self.uv_density = _uv_density(self.triangles, self.corner_uv)
        count = len(self.triangles)
        soup = trimesh.Trimesh(vertices=self.triangles.reshape(-1, 3), faces=np.arange(3 * count).reshape(-1, 3),
                               process=False)
        if trimesh.ray.has_embree:
            self.intersector = trimesh.ray.ray_pyembree.RayMeshIntersector(soup)
        else:  # pragma: no cover - embreex is a dependency
            log.warning("embreex is not installed: ray casting falls back to a slow pure-Python intersector")
            self.intersector = trimesh.ray.ray_triangle.RayMeshIntersector(soup)

    def cast(self, camera: Camera, width: int, height: int,
             window: tuple[int, int, int, int] | None = None) -> dict[str, np.ndarray]:
        """First hits of the camera's pixel rays, all of them or only those of ``window`` = (row,
        column, h, w) of the width x height frame.

        Returns (H, W) maps (or (h, w) for a window): ``face`` (int64, -1 = miss), ``uv`` (H, W, 2), ``depth`` (world units
        along the ray, 0 on misses), ``cos_angle`` (|n . -d| in [0, 1], 0 on misses), ``part`` and
        ``footprint``: the side of the pixel's footprint on the surface in UV units, ``uv_density x
        p d cos(theta)^1.5 / sqrt(cos_angle)`` (p: pixel size at unit depth, d: depth along the ray,
        theta: the ray's angle to the optical axis; the footprint's area is the pixel's solid angle
        p^2 cos(theta)^3 times d^2 / cos_angle, so a plane facing the camera gets p z everywhere).
        """
        pixel = camera.pixel_size(1.0, height)  # world size of a pixel at unit depth
        origins, dirs = camera.rays(width, height)
        if window is not None:
            r0, c0, h, w = window
            origins = origins.reshape(height, width, 3)[r0:r0 + h, c0:c0 + w].reshape(-1, 3)
            dirs = dirs.reshape(height, width, 3)[r0:r0 + h, c0:c0 + w].reshape(-1, 3)
            height, width = h, w
        tri, ray, loc = self.intersector.intersects_id(origins, dirs, multiple_hits=False, return_locations=True)
        n = width * height
        face = np.full(n, -1, np.int64)
        uv = np.zeros((n, 2))
        depth = np.zeros(n)
        cos = np.zeros(n)
        footprint = np.zeros(n)
        if len(tri):
            bary = trimesh.triangles.points_to_barycentric(self.triangles[tri], loc)
            face[ray] = tri
            uv[ray] = np.einsum("nk,nkc->nc", bary, self.corner_uv[tri])
            normal = np.einsum("nk,nkc->nc", bary, self.corner_normals[tri])
            normal /= np.linalg.norm(normal, axis=1, keepdims=True).clip(1e-12)
            depth[ray] = np.linalg.norm(loc - origins[ray], axis=1)
            cos[ray] = np.abs(np.einsum("nc,nc->n", normal, dirs[ray])).clip(0, 1)
            off_axis = np.abs(dirs[ray] @ camera.rotation[:, 2])  # cos of the ray's angle to the optical axis
            footprint[ray] = (self.uv_density[tri] * pixel * depth[ray] * off_axis ** 1.5
                              / np.sqrt(cos[ray].clip(MIN_COS, 1)))
        part = np.where(face >= 0, self.part[np.maximum(face, 0)], -1)
        shape = (height, width)
        return {"face": face.reshape(shape), "uv": uv.reshape(*shape, 2), "depth": depth.reshape(shape),
                "cos_angle": cos.reshape(shape), "part": part.reshape(shape), "footprint": footprint.reshape(shape)}


def _uv_density(triangles: np.ndarray, corner_uv: np.ndarray) -> np.ndarray:
    """(F,) ``sqrt(UV area / world area)`` of triangles (F, 3, 3) with UVs (F, 3, 2); 0 if degenerate."""
    e_uv = corner_uv[:, 1:] - corner_uv[:, :1]
    uv_area = 0.5 * np.abs(e_uv[:, 0, 0] * e_uv[:, 1, 1] - e_uv[:, 0, 1] * e_uv[:, 1, 0])
    e = triangles[:, 1:] - triangles[:, :1]
    area = 0.5 * np.linalg.norm(np.cross(e[:, 0], e[:, 1]), axis=1)
    return np.sqrt(np.where(area > 1e-20, uv_area / np.maximum(area, 1e-20), 0.0))


def _pool(values: np.ndarray, weight: np.ndarray, s: int) -> np.ndarray:
    """Weighted s x s box average of (H*s, W*s) maps to (H, W); 0 where the weight sums to 0."""
    h, w = values.shape[0] // s, values.shape[1] // s
    num = (values * weight).reshape(h, s, w, s).sum((1, 3))
    den = weight.reshape(h, s, w, s).sum((1, 3))
    return np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)


def view_stack(scene: RayScene, cameras: list[Camera], size: tuple[int, int], supersample: int = 1,
               progress: Callable[[], None] | None = None) -> ViewStack:
    """Ray-cast every camera at ``size`` = (H, W) (times ``supersample`` per side) into a :class:`ViewStack`."""
    h, w = size
    stacks = []
    for cam in cameras:
        stacks.append(_stack(scene.cast(cam, w * supersample, h * supersample), h, w, supersample))
        if progress is not None:
            progress()
    return ViewStack.concat(stacks)


def compute_views(mesh: TexturedMesh, cameras: list[Camera], resolutions: list[int], supersample: int = 1,
                  progress: Callable[[], None] | None = None) -> list[ViewStack]:
    """One :class:`ViewStack` per resolution (square images ``r x r`` px), all from the same cameras.

    ``progress`` is called once per view and resolution. Cost is dominated by Embree: about
    ``len(cameras) * sum(r^2) * supersample^2`` rays.
    """
    scene = RayScene(mesh)
    return [view_stack(scene, cameras, (r, r), supersample, progress) for r in resolutions]


def _cast_stack(scene: RayScene, camera: Camera, frame: int, window: tuple[int, int, int, int],
                supersample: int) -> ViewStack:
    """A one-view :class:`ViewStack` of ``window`` (row, column, h, w) of a square ``frame`` px view."""
    s = supersample
    r0, c0, h, w = window
    return _stack(scene.cast(camera, frame * s, frame * s, (r0 * s, c0 * s, h * s, w * s)), h, w, s)


def _stack(maps: dict[str, np.ndarray], h: int, w: int, s: int) -> ViewStack:
    """A one-view :class:`ViewStack` (h, w) from the (h s, w s) maps of :meth:`RayScene.cast`: grid,
    part and footprint per sample; coverage, and depth and angle averaged over covered samples, per pixel."""
    hit = (maps["part"] >= 0).astype(np.float64)

    def one(item):
        return torch.from_numpy(item.astype(np.float32))[None, None]

    return ViewStack(grid=torch.from_numpy(uv_to_grid(maps["uv"]))[None], part=torch.from_numpy(maps["part"])[None].long(),
                     mask=one(hit.reshape(h, s, w, s).mean((1, 3))), depth=one(_pool(maps["depth"], hit, s)),
                     cos_angle=one(_pool(maps["cos_angle"], hit, s)), supersample=s,
                     footprint=torch.from_numpy(maps["footprint"].astype(np.float32))[None])


def _span(lo: int, hi: int, scale: int, frame: int, min_side: int) -> tuple[int, int]:
    """(start, length) of [lo, hi) scaled by ``scale``, widened about its centre to ``min_side`` px and
    kept inside [0, frame)."""
    start, length = lo * scale, min(frame, (hi - lo) * scale)
    if length < min_side:
        length = min(frame, min_side)
        start = (lo + hi) * scale // 2 - length // 2
    return max(0, min(start, frame - length)), length


def _tight(active: torch.Tensor) -> tuple[int, int, int, int] | None:
    """Tight (r0, c0, r1, c1) box of the True pixels of the (H, W) map ``active``; None if there are none."""
    rows, cols = torch.nonzero(active.any(1)).flatten(), torch.nonzero(active.any(0)).flatten()
    if rows.numel() == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _bbox(active: torch.Tensor, scale: int, frame: int, margin: int = 1,
          min_side: int = 16) -> tuple[int, int, int, int] | None:
    """Window (row, column, h, w) in a frame ``scale`` times finer than the (H, W) bool map ``active``,
    covering its True pixels grown by ``margin`` pixels, at least ``min_side`` px a side (the smallest
    input the deepest VGG layer accepts); None when nothing is active."""
    box = _tight(active)
    if box is None:
        return None
    r0, r1 = max(0, box[0] - margin), min(active.shape[0], box[2] + margin)
    c0, c1 = max(0, box[1] - margin), min(active.shape[1], box[3] + margin)
    (row, h), (col, w) = _span(r0, r1, scale, frame, min_side), _span(c0, c1, scale, frame, min_side)
    return row, col, h, w


#: A box is split in two when the two parts' tight boxes cover at most this share of its area.
TILE_GAIN = 0.8
#: Smallest tile side, px of its level: smaller encoder inputs cost more per pixel (VGG-19 on CPU: 7 us/px
#: at 64 px, 4.2 at 256) and each is one more call.
TILE_MIN_SIDE = 48


def _area(box) -> int:
    return 0 if box is None else (box[2] - box[0]) * (box[3] - box[1])


def _shift(box, by):
    return box[0] + by[0], box[1] + by[1], box[2] + by[0], box[3] + by[1]


def _best_cut(active: np.ndarray, min_side: int):
    """(area, box_a, box_b) of the straight cut of ``active`` (H, W) bool whose two parts' tight boxes
    have the least total area; None if no cut leaves both parts active and ``min_side`` px long."""
    best = None
    for axis in (0, 1):
        grid = active if axis == 0 else active.T
        n, m = grid.shape
        occupied = grid.any(1)
        idx = np.arange(m)
        first = np.where(occupied, np.where(grid, idx, m).min(1), m)
        last = np.where(occupied, np.where(grid, idx, -1).max(1), -1)
        rows = np.arange(n)
        # prefix (rows < k) and suffix (rows >= k) extents for every cut k = 1..n-1
        top_first, top_last = np.minimum.accumulate(first)[:-1], np.maximum.accumulate(last)[:-1]
        bot_first = np.minimum.accumulate(first[::-1])[::-1][1:]
        bot_last = np.maximum.accumulate(last[::-1])[::-1][1:]
        top_r0 = np.minimum.accumulate(np.where(occupied, rows, n))[:-1]
        top_r1 = np.maximum.accumulate(np.where(occupied, rows, -1))[:-1] + 1
        bot_r0 = np.minimum.accumulate(np.where(occupied, rows, n)[::-1])[::-1][1:]
        bot_r1 = np.maximum.accumulate(np.where(occupied, rows, -1)[::-1])[::-1][1:] + 1
        cuts = np.arange(1, n)
        ok = (top_last >= 0) & (bot_last >= 0) & (cuts >= min_side) & (n - cuts >= min_side)
        if not ok.any():
            continue
        area = ((top_r1 - top_r0) * (top_last + 1 - top_first) + (bot_r1 - bot_r0) * (bot_last + 1 - bot_first))
        area = np.where(ok, area, np.iinfo(np.int64).max)
        k = int(area.argmin())
        a = (int(top_r0[k]), int(top_first[k]), int(top_r1[k]), int(top_last[k]) + 1)
        b = (int(bot_r0[k]), int(bot_first[k]), int(bot_r1[k]), int(bot_last[k]) + 1)
        if axis == 1:
            a, b = (a[1], a[0], a[3], a[2]), (b[1], b[0], b[3], b[2])
        if best is None or area[k] < best[0]:
            best = (int(area[k]), a, b)
    return best


def tile_cells(active: torch.Tensor, max_tiles: int, min_side: int = 4, gain: float = TILE_GAIN,
               min_saving: float = 0.0) -> list[tuple[int, int, int, int]]:
    """Disjoint cells (r0, c0, r1, c1) of the (H, W) bool map ``active`` whose tight boxes hold all its True
    pixels in less area than its one bounding box: guillotine cuts, each the straight cut (rows or columns)
    that minimises the two parts' tight-box areas, kept only when those cover at most ``gain`` of the
    box being cut, save at least ``min_saving`` of its pixels (the cost of one more encoder call) and
    leave both parts at least ``min_side`` px a side; at most ``max_tiles`` cells (the largest cell is cut
    first). A round object gives one cell; an L shape or legs apart give several.
    Returns [] when nothing is active."""
    first = _tight(active)
    if first is None:
        return []
    cells, done = [first], []
    while cells and len(cells) + len(done) < max_tiles:
        cells.sort(key=_area)
        box = cells.pop()
        best = _best_cut(active[box[0]:box[2], box[1]:box[3]].numpy(), min_side)
        if best is not None:
            best = (best[0], _shift(best[1], box), _shift(best[2], box))
        if best is None or best[0] > min(gain * _area(box), _area(box) - min_saving):
            done.append(box)
            continue
        cells += [best[1], best[2]]
    return done + cells


def _tiles(active: torch.Tensor, max_tiles: int, min_side: int,
           min_saving: float = 0.0) -> list[tuple[torch.Tensor, float]]:
    """(ownership map (H, W) bool, share of ``active``'s pixels) per tile of ``active``: each cell of
    :func:`tile_cells` (disjoint, so every tile keeps its own pixels), then grown by one pixel into
    pixels no tile owns yet (silhouette edges seen at finer levels)."""
    cells = tile_cells(active, max_tiles, min_side, min_saving=min_saving)
    owner = torch.full(active.shape, -1, dtype=torch.long)
    h, w = active.shape
    for i, (r0, c0, r1, c1) in enumerate(cells):
        owner[r0:r1, c0:c1] = i
    for i, (r0, c0, r1, c1) in enumerate(cells):
        region = owner[max(0, r0 - 1):min(h, r1 + 1), max(0, c0 - 1):min(w, c1 + 1)]
        region[region < 0] = i
    total = max(int(active.sum()), 1)
    owns = [owner == i for i in range(len(cells))]
    return [(own, int((active & own).sum()) / total) for own in owns]


def _trim(stack: ViewStack, weight: torch.Tensor, window: tuple[int, int, int, int],
          min_side: int) -> tuple[ViewStack, torch.Tensor, tuple[int, int, int, int]]:
    """The crop ``stack`` (one view), its (1, 1, h, w) ``weight`` and its ``window`` (row, column, h, w)
    cut down to the tight box of the positive-weight pixels (at least ``min_side`` px a side, inside the
    crop): the window was found on the coarser level-0 map with a margin, so it holds a band of
    zero-weight pixels the encoder need not see. Unchanged when no pixel has weight."""
    box = _tight(weight[0, 0] > 0)
    if box is None:
        return stack, weight, window
    h, w = weight.shape[-2:]
    (r, rh), (c, cw) = _span(box[0], box[2], 1, h, min_side), _span(box[1], box[3], 1, w, min_side)
    if (rh, cw) == (h, w):
        return stack, weight, window
    trimmed = (window[0] + r, window[1] + c, rh, cw)
    return stack.crop((r, c, rh, cw)), weight[..., r:r + rh, c:c + cw], trimmed


@dataclass
class LevelPlan:
    """How the depth levels of a run are laid out: reference depth ``reference`` (world units), level
    count ``levels`` and the level-0 frame ``base`` px (level l is ``base * 2^l`` px); see
    :mod:`meshstyle.mesh.weights`."""

    reference: float
    levels: int
    base: int


def plan_levels(scene: RayScene, cameras: list[Camera], resolution: int, depth_levels: int,
                percentile: float = weights.REFERENCE_PERCENTILE, depth_aware: bool = True) -> LevelPlan:
    """Probe the depths of every view at the coarsest possible level and choose the :class:`LevelPlan`."""
    if not depth_aware or depth_levels == 1:
        return LevelPlan(1.0, 1, resolution)
    probe = max(16, resolution >> (depth_levels - 1))
    depths = torch.from_numpy(np.stack([scene.cast(cam, probe, probe)["depth"] for cam in cameras]))
    reference = weights.centred_reference(depths, percentile)
    levels = weights.level_count(depths, reference, depth_levels)
    return LevelPlan(reference, levels, resolution >> (levels - 1))


def compute_level_views(mesh: TexturedMesh, cameras: list[Camera], resolution: int, depth_levels: int = 3,
                        angle_threshold: float = 60.0, supersample: int = 1, depth_aware: bool = True,
                        percentile: float = weights.REFERENCE_PERCENTILE, min_side: int = 16,
                        progress: Callable[[], None] | None = None,
                        blend: float = weights.BLEND,
                        max_tiles: int = 1, call_cost_px: float = 0.0) -> tuple[list[list[LevelView]], LevelPlan]:
    """Every camera's :class:`~meshstyle.core.views.LevelView` s: the levels where it has surface, each
    ray-cast only inside the bounding box of its positive-weight pixels.

    Level 0 is cast over the whole frame (at ``base`` px, cheap) and cropped to the object; its depth
    map gives each finer level's window, which alone is cast at that level's resolution. Windows are
    at least ``min_side`` px a side (VGG's smallest input for the deepest layer). The weight
    of a pixel is coverage x angle weight x soft level weight (:mod:`meshstyle.mesh.weights`), from the
    level's own depth map. With ``max_tiles`` > 1 a level whose pixels leave much of their bounding box
    empty (legs apart, an L-shaped silhouette) is cut into up to that many disjoint tiles
    (:func:`tile_cells`), each its own level view that owns its cell's pixels (weight 0 elsewhere) and
    carries its part of the level's share, so fewer empty pixels are ray-cast and fed to the encoder; a
    cut is made only where it saves more than ``call_cost_px`` level pixels, the cost of one more encoder
    input in a step (:meth:`meshstyle.engine.encoder.Network.call_cost`).
    ``progress`` is called ``depth_levels`` times per camera.

    Returns:
        (per camera a list of level views, without levels of zero weight; the :class:`LevelPlan`).
    """
    scene = RayScene(mesh)
    plan = plan_levels(scene, cameras, resolution, depth_levels, percentile, depth_aware)
    out = []
    for cam in cameras:
        full = _cast_stack(scene, cam, plan.base, (0, 0, plan.base, plan.base), supersample)
        mask, depth = full.mask[0, 0], full.depth[0, 0]
        shares = weights.level_shares(depth, mask, plan.reference, plan.levels, blend)
        views = []
        for level in range(plan.levels):
            frame = plan.base << level
            active = (mask * weights.angle_weight(full.cos_angle[0, 0], angle_threshold)
                      * weights.level_weight(depth, plan.reference, level, plan.levels, blend)) > 0
            if shares[level] <= 0:
                continue
            scale = 1 << level
            for own, share in _tiles(active, max_tiles, max(4, max(min_side, TILE_MIN_SIDE) // scale),
                                     call_cost_px / scale ** 2):
                window = _bbox(active & own, scale, frame, min_side=min_side)
                stack = full.crop(window) if level == 0 else _cast_stack(scene, cam, frame, window, supersample)
                r, c, h, w = window
                owned = own.repeat_interleave(scale, 0).repeat_interleave(scale, 1)[r:r + h, c:c + w]
                weight = (stack.mask * weights.angle_weight(stack.cos_angle, angle_threshold)
                          * weights.level_weight(stack.depth, plan.reference, level, plan.levels, blend) * owned)
                stack, weight, window = _trim(stack, weight.float(), window, min_side)
                views.append(LevelView(stack, weight, level, window, frame, shares[level] * share))
        out.append(views)
        for _ in range(depth_levels if progress is not None else 0):
            progress()
    return out, plan
