"""Quality measures of a stylized mesh, reported by the feed-forward mesh job and the benchmarks.

- :func:`reprojection_error`: the mean colour difference between neighbouring views where they see the
  same surface (StyleMesh's multi-view consistency measure, computed here in texture space).
- :func:`seam_jump`: the colour jump across UV seams, against the jump across ordinary edges.
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
            pts = a[None] + t[:, None] * (b - a)[None]
            towards = c[None] - pts
            towards /= np.maximum(np.linalg.norm(towards, axis=1, keepdims=True), 1e-12)
            out.append(pts + inset * towards)
    empty = np.zeros((0, 2))
    return {k: (np.concatenate(v[0]) if v[0] else empty, np.concatenate(v[1]) if v[1] else empty)
            for k, v in groups.items()}


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

