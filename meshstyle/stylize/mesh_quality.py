"""Quality measures of a stylized mesh, reported by the feed-forward mesh job and the benchmarks.

- :func:`reprojection_error`: the mean colour difference between neighbouring views where they see the
  same surface (StyleMesh's multi-view consistency measure, computed here in texture space).
- :func:`seam_jump`: the colour jump across UV seams, against the jump across ordinary edges.
- :func:`part_boundary_jump`: the colour jump where two parts (their own textures) meet on the surface,
  against the jump across ordinary edges (issue 27: restyling parts must not add a seam there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..core.imageio import rgb8_to_tensor
from ..core.uv import sample_texture, uv_to_grid
from ..core.views import ViewStack
from ..mesh.textured import TexturedMesh


def reprojection_error(images: torch.Tensor, weights: torch.Tensor, views: ViewStack, camera_dirs: np.ndarray,
                       bins: int = 128) -> float:
    """Mean colour difference (0-1 scale, mean over RGB) between neighbouring views where they see the
    same surface (StyleMesh's multi-view consistency measure, computed in texture space).

    Each view's pixels are averaged into ``bins`` x ``bins`` texel cells per part (weighted by
    ``weights`` (V, 1, H, W)); for every view and its nearest neighbour by camera direction
    (``camera_dirs`` (V, 3)), cells seen by both are compared. Views that share no cell are skipped.
    """
    v = images.shape[0]
    cells = []
    for k in range(v):
        part = views.part[k]
        g = views.grid[k]
        ok = (part >= 0) & (weights[k, 0] > 0)
        col = ((g[..., 0] + 1) / 2 * bins).floor().long().clamp(0, bins - 1)
        row = ((g[..., 1] + 1) / 2 * bins).floor().long().clamp(0, bins - 1)
        key = (part.clamp_min(0) * bins + row) * bins + col
        key, w, rgb = key[ok], weights[k, 0][ok], images[k].permute(1, 2, 0)[ok]
        n = int(views.part.max().clamp_min(0)) + 1
        num = torch.zeros(n * bins * bins, 3).index_add_(0, key, rgb * w[:, None])
        den = torch.zeros(n * bins * bins).index_add_(0, key, w)
        cells.append((num, den))
    dirs = camera_dirs / np.linalg.norm(camera_dirs, axis=1, keepdims=True)
    cos = dirs @ dirs.T
    np.fill_diagonal(cos, -2)
    errors, total_w = 0.0, 0.0
    for i in range(v):
        j = int(np.argmax(cos[i]))
        (ni, di), (nj, dj) = cells[i], cells[j]
        both = (di > 0.5) & (dj > 0.5)
        if not bool(both.any()):
            continue
        diff = (ni[both] / di[both, None] - nj[both] / dj[both, None]).abs().mean(1)
        wgt = torch.minimum(di[both], dj[both])
        errors += float((diff * wgt).sum())
        total_w += float(wgt.sum())
    return errors / total_w if total_w > 0 else float("nan")


def edge_samples(mesh: TexturedMesh, name: str, samples: int, inset: float
                 ) -> dict[bool, tuple[np.ndarray, np.ndarray]]:
    """UV sample pairs across the edges of part ``name``: ``{True: seam pairs, False: ordinary edges}``,
    each ``(uv_side1, uv_side2)`` of shape (E * samples, 2).

    Edges are matched by vertex positions; an edge whose two faces give it different UVs is a seam.
    Points sit at ``(k + 0.5) / samples`` along the edge, moved ``inset`` (UV units) toward the inside
    of each face; the two points of a pair show the same place on the surface.
    """
    geom = mesh.scene.geometry[name]
    corner_uv = mesh.corner_uv(name)
    key = np.unique(np.round(np.asarray(geom.vertices), 6), axis=0, return_inverse=True)[1].reshape(-1)
    edges: dict[tuple[int, int], list] = {}
    for f, face in enumerate(np.asarray(geom.faces)):
        for a in range(3):
            b, c = (a + 1) % 3, (a + 2) % 3
            ka, kb = key[face[a]], key[face[b]]
            uv_a, uv_b, uv_c = corner_uv[f, a], corner_uv[f, b], corner_uv[f, c]
            if ka > kb:
                ka, kb, uv_a, uv_b = kb, ka, uv_b, uv_a
            edges.setdefault((ka, kb), []).append((uv_a, uv_b, uv_c))
    t = (np.arange(samples) + 0.5) / samples
    groups: dict[bool, tuple[list, list]] = {True: ([], []), False: ([], [])}
    for sides in edges.values():
        if len(sides) != 2:
            continue
        (a1, b1, _), (a2, b2, _) = sides
        is_seam = not (np.abs(a1 - a2).max() < 1e-6 and np.abs(b1 - b2).max() < 1e-6)
        for (a, b, c), out in zip(sides, groups[is_seam]):
            out.append(inset_points(a, b, c, t, inset))
    empty = np.zeros((0, 2))
    return {k: (np.concatenate(v[0]) if v[0] else empty, np.concatenate(v[1]) if v[1] else empty)
            for k, v in groups.items()}


def inset_points(a: np.ndarray, b: np.ndarray, c: np.ndarray, t: np.ndarray, inset: float) -> np.ndarray:
    """UV points (len(t), 2) at fractions ``t`` along the edge ``a``-``b`` of a face with third corner ``c``
    (each (2,)), moved ``inset`` UV units toward ``c`` (inside the face)."""
    pts = a[None] + t[:, None] * (b - a)[None]
    towards = c[None] - pts
    towards /= np.maximum(np.linalg.norm(towards, axis=1, keepdims=True), 1e-12)
    return pts + inset * towards


def pair_grid(side1: np.ndarray, side2: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(uv_to_grid(np.concatenate([side1, side2]))).reshape(1, 1, -1, 2)


def seam_jump(mesh: TexturedMesh, samples: int = 5, inset_texels: float = 1.5) -> dict[str, float]:
    """Mean colour jump (0-1 scale, mean over RGB) across UV seams of the stylizable parts, and across
    ordinary (non-seam) edges as the baseline of the texture's own local variation.

    The texture is sampled on both sides of every edge (:func:`edge_samples`, ``samples`` points per
    edge, ``inset_texels`` inside each face) and the two colours compared. Returns ``{"seam",
    "interior", "ratio"}`` (NaN where there are no such edges); a ratio near 1 means seams are no more
    visible than any other edge.
    """
    seam, interior = [], []
    for name in mesh.stylizable:
        tex = rgb8_to_tensor(mesh.texture(name))
        pairs = edge_samples(mesh, name, samples, inset_texels / max(tex.shape[-2:]))
        for is_seam, (side1, side2) in pairs.items():
            if not len(side1):
                continue
            colours = sample_texture(tex, pair_grid(side1, side2))[0, :, 0].t()
            half = colours.shape[0] // 2
            (seam if is_seam else interior).append((colours[:half] - colours[half:]).abs().mean(1))

    def mean(values: list) -> float:
        return float(torch.cat(values).mean()) if values else float("nan")

    s, i = mean(seam), mean(interior)
    return {"seam": s, "interior": i, "ratio": s / i if i > 0 else float("nan")}



def _world_edges(instances: list, radius: float) -> dict[tuple[int, int], list]:
    """Edges of placed geometries matched by world position (to 1e-6 of ``radius``): ``{(key_a, key_b):
    [(instance index, uv_a, uv_b, uv_c) for each face on the edge]}``, ``uv_c`` the face's third corner."""
    points = np.concatenate([inst.vertices for inst in instances])
    key = np.unique(np.round(points / max(radius * 1e-6, 1e-12)).astype(np.int64), axis=0, return_inverse=True)[1]
    key = key.reshape(-1)
    edges: dict[tuple[int, int], list] = {}
    start = 0
    for j, inst in enumerate(instances):
        faces = key[start + inst.faces]
        start += len(inst.vertices)
        for f in range(len(faces)):
            for a in range(3):
                b, c = (a + 1) % 3, (a + 2) % 3
                ka, kb = faces[f, a], faces[f, b]
                uv_a, uv_b, uv_c = (inst.corner_uv[f, i] for i in (a, b, c))
                if ka > kb:
                    ka, kb, uv_a, uv_b = kb, ka, uv_b, uv_a
                edges.setdefault((int(ka), int(kb)), []).append((j, uv_a, uv_b, uv_c))
    return edges


@dataclass(frozen=True)
class EdgePairs:
    """Points on the two sides of shared edges, pair by pair: per side, the part of each point (index into
    ``mesh.stylizable``) ``part1``/``part2`` (P,) and its UV ``uv1``/``uv2`` (P, 2)."""

    part1: np.ndarray
    uv1: np.ndarray
    part2: np.ndarray
    uv2: np.ndarray

    def __len__(self) -> int:
        return len(self.part1)


def edge_pairs(mesh: TexturedMesh, samples: int = 5, inset_texels: float = 1.5,
               sizes: list[tuple[int, int]] | None = None) -> dict[str, EdgePairs]:
    """Sample pairs across the edges the stylizable parts' faces share on the surface, by kind:
    ``"boundary"`` (the two faces belong to different placed geometries: where parts meet), ``"seam"`` (one
    geometry, different UVs: a UV seam) and ``"interior"`` (one geometry, the same UVs: an ordinary edge).

    Edges are matched in world coordinates (vertices equal to 1e-6 of the scene's radius) and only edges
    with exactly two faces count. Points sit at ``(k + 0.5) / samples`` along the edge, ``inset_texels``
    texels inside each face (texels of its part's texture, of size ``sizes[part]`` (H, W); default: the
    mesh's textures); the two points of a pair show the same place on the surface.
    """
    names = list(mesh.stylizable)
    instances = [inst for inst in mesh.instances() if inst.stylizable]
    sizes = sizes or [mesh.texture_shape(name) for name in names]
    found: dict[str, list[list]] = {kind: [[], [], [], []] for kind in ("boundary", "seam", "interior")}
    t = (np.arange(samples) + 0.5) / samples
    edges = _world_edges(instances, mesh.bounding_sphere()[1]) if instances else {}
    for sides in edges.values():
        if len(sides) != 2:
            continue
        (j1, a1, b1, _), (j2, a2, b2, _) = sides
        same_uv = np.abs(a1 - a2).max() < 1e-6 and np.abs(b1 - b2).max() < 1e-6
        kind = "boundary" if j1 != j2 else "interior" if same_uv else "seam"
        for k, (j, a, b, c) in enumerate(sides):
            part = names.index(instances[j].geometry)
            found[kind][2 * k].append(np.full(samples, part))
            found[kind][2 * k + 1].append(inset_points(a, b, c, t, inset_texels / max(sizes[part])))
    empty = (np.zeros(0, int), np.zeros((0, 2)))
    return {kind: EdgePairs(*(np.concatenate(v) if v else empty[i % 2] for i, v in enumerate(lists)))
            for kind, lists in found.items()}


def sample_sides(textures: list[torch.Tensor], parts: np.ndarray, uv: np.ndarray) -> torch.Tensor:
    """Colours (P, 3) of points ``uv`` (P, 2), each sampled (bilinear, differentiable) in the texture
    (3, H, W) of its part ``parts`` (P,) of ``textures``."""
    out = textures[0].new_zeros(len(uv), 3)
    for j in np.unique(parts):
        pick = parts == j
        grid = torch.from_numpy(uv_to_grid(uv[pick])).to(textures[j]).reshape(1, 1, -1, 2)
        out[torch.from_numpy(pick).to(out.device)] = sample_texture(textures[j], grid)[0, :, 0].t().to(out)
    return out


def part_boundary_jump(mesh: TexturedMesh, samples: int = 5, inset_texels: float = 1.5) -> dict[str, float]:
    """Mean colour jump (0-1 scale, mean over RGB) where two stylizable parts meet, and across ordinary
    edges inside the parts as the baseline of the textures' own local variation.

    Pairs from :func:`edge_pairs` (``"boundary"`` against ``"interior"``; UV seams inside a part are left out:
    :func:`seam_jump` measures them), each side sampled in its own part's texture.

    Returns ``{"boundary", "interior", "ratio"}`` (NaN where the mesh has no such edges); a stylized
    mesh whose ratio is no larger than its input's adds no seam where its parts meet.
    """
    pairs = edge_pairs(mesh, samples, inset_texels)
    textures = [rgb8_to_tensor(mesh.texture(name)).float() for name in mesh.stylizable]

    def mean(kind: str) -> float:
        p = pairs[kind]
        if not len(p):
            return float("nan")
        return float((sample_sides(textures, p.part1, p.uv1) - sample_sides(textures, p.part2, p.uv2)).abs().mean())

    s, i = mean("boundary"), mean("interior")
    return {"boundary": s, "interior": i, "ratio": s / i if i > 0 else float("nan")}
