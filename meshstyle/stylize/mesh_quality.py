"""Quality measures of a stylized mesh, reported by the feed-forward mesh job and the benchmarks.

- :func:`reprojection_error`: the mean colour difference between neighbouring views where they see the
  same surface (StyleMesh's multi-view consistency measure, computed here in texture space).
- :func:`seam_jump`: the colour jump across UV seams, against the jump across ordinary edges.
- :func:`part_boundary_jump`: the colour jump where two parts (their own textures) meet on the surface,
  against the jump across ordinary edges (issue 27: restyling parts must not add a seam there).
"""

from __future__ import annotations

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


def part_boundary_jump(mesh: TexturedMesh, samples: int = 5, inset_texels: float = 1.5) -> dict[str, float]:
    """Mean colour jump (0-1 scale, mean over RGB) where two stylizable parts meet, and across ordinary
    edges inside the parts as the baseline of the textures' own local variation.

    Edges are matched in world coordinates across every placed stylizable geometry (vertices equal to
    1e-6 of the scene's radius); an edge whose two faces belong to different placed geometries is a part
    boundary, one whose two faces share a geometry and the edge's UVs is ordinary (UV seams inside a part
    are left out: :func:`seam_jump` measures them). Each side is sampled in its own part's texture,
    ``samples`` points along the edge, ``inset_texels`` texels of that texture inside its face.

    Returns ``{"boundary", "interior", "ratio"}`` (NaN where the mesh has no such edges); a stylized
    mesh whose ratio is no larger than its input's adds no seam where its parts meet.
    """
    instances = [inst for inst in mesh.instances() if inst.stylizable]
    if not instances:
        return {"boundary": float("nan"), "interior": float("nan"), "ratio": float("nan")}
    edges = _world_edges(instances, mesh.bounding_sphere()[1])
    textures = [rgb8_to_tensor(mesh.texture(inst.geometry)) for inst in instances]
    t = (np.arange(samples) + 0.5) / samples
    # per kind (boundary True / ordinary False) and side: the part of each sample point and its UV
    owners: dict[bool, tuple[list, list]] = {True: ([], []), False: ([], [])}
    uvs: dict[bool, tuple[list, list]] = {True: ([], []), False: ([], [])}
    for sides in edges.values():
        if len(sides) != 2:
            continue
        (j1, a1, b1, _), (j2, a2, b2, _) = sides
        boundary = j1 != j2
        if not boundary and not (np.abs(a1 - a2).max() < 1e-6 and np.abs(b1 - b2).max() < 1e-6):
            continue
        for k, (j, a, b, c) in enumerate(sides):
            owners[boundary][k].append(np.full(samples, j))
            uvs[boundary][k].append(inset_points(a, b, c, t, inset_texels / max(textures[j].shape[-2:])))
    jumps: dict[bool, list[torch.Tensor]] = {True: [], False: []}
    for kind in (True, False):
        if not owners[kind][0]:
            continue
        colours = []
        for side in range(2):
            owner, uv = np.concatenate(owners[kind][side]), np.concatenate(uvs[kind][side])
            rgb = torch.zeros(len(uv), 3)
            for j in np.unique(owner):
                grid = torch.from_numpy(uv_to_grid(uv[owner == j])).reshape(1, 1, -1, 2)
                rgb[torch.from_numpy(owner == j)] = sample_texture(textures[j], grid)[0, :, 0].t().float()
            colours.append(rgb)
        jumps[kind].append((colours[0] - colours[1]).abs().mean(1))

    def mean(values: list) -> float:
        return float(torch.cat(values).mean()) if values else float("nan")

    s, i = mean(jumps[True]), mean(jumps[False])
    return {"boundary": s, "interior": i, "ratio": s / i if i > 0 else float("nan")}
