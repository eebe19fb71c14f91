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

import numpy as np
import torch
import trimesh

from ..core.uv import uv_to_grid
from ..core.views import ViewStack
from .cameras import Camera
from .textured import TexturedMesh

log = logging.getLogger("meshstyle")
SMOOTH_ANGLE = 30.0


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
        count = len(self.triangles)
        soup = trimesh.Trimesh(vertices=self.triangles.reshape(-1, 3), faces=np.arange(3 * count).reshape(-1, 3),
                               process=False)
        if trimesh.ray.has_embree:
            self.intersector = trimesh.ray.ray_pyembree.RayMeshIntersector(soup)
        else:  # pragma: no cover - embreex is a dependency
            log.warning("embreex is not installed: ray casting falls back to a slow pure-Python intersector")
            self.intersector = trimesh.ray.ray_triangle.RayMeshIntersector(soup)

    def cast(self, camera: Camera, width: int, height: int) -> dict[str, np.ndarray]:
        """First hits of the camera's pixel rays.

        Returns (H, W) maps: ``face`` (int64, -1 = miss), ``uv`` (H, W, 2), ``depth`` (world units
        along the ray, 0 on misses), ``cos_angle`` (|n . -d| in [0, 1], 0 on misses) and ``part``.
        """
        origins, dirs = camera.rays(width, height)
        tri, ray, loc = self.intersector.intersects_id(origins, dirs, multiple_hits=False, return_locations=True)
        n = width * height
        face = np.full(n, -1, np.int64)
        uv = np.zeros((n, 2))
        depth = np.zeros(n)
        cos = np.zeros(n)
        if len(tri):
            bary = trimesh.triangles.points_to_barycentric(self.triangles[tri], loc)
            face[ray] = tri
            uv[ray] = np.einsum("nk,nkc->nc", bary, self.corner_uv[tri])
            normal = np.einsum("nk,nkc->nc", bary, self.corner_normals[tri])
            normal /= np.linalg.norm(normal, axis=1, keepdims=True).clip(1e-12)
            depth[ray] = np.linalg.norm(loc - origins[ray], axis=1)
            cos[ray] = np.abs(np.einsum("nc,nc->n", normal, dirs[ray])).clip(0, 1)
        part = np.where(face >= 0, self.part[np.maximum(face, 0)], -1)
        shape = (height, width)
        return {"face": face.reshape(shape), "uv": uv.reshape(*shape, 2), "depth": depth.reshape(shape),
                "cos_angle": cos.reshape(shape), "part": part.reshape(shape)}


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
    s = supersample
    grids, parts, masks, depths, coss = [], [], [], [], []
    for cam in cameras:
        maps = scene.cast(cam, w * s, h * s)
        hit = (maps["part"] >= 0).astype(np.float64)
        grids.append(uv_to_grid(maps["uv"]))
        parts.append(maps["part"])
        masks.append(hit.reshape(h, s, w, s).mean((1, 3)))
        depths.append(_pool(maps["depth"], hit, s))
        coss.append(_pool(maps["cos_angle"], hit, s))
        if progress is not None:
            progress()

    def stack(items):
        return torch.from_numpy(np.stack(items).astype(np.float32)).unsqueeze(1)

    return ViewStack(grid=torch.from_numpy(np.stack(grids)), part=torch.from_numpy(np.stack(parts)).long(),
                     mask=stack(masks), depth=stack(depths), cos_angle=stack(coss), supersample=s)


def compute_views(mesh: TexturedMesh, cameras: list[Camera], resolutions: list[int], supersample: int = 1,
                  progress: Callable[[], None] | None = None) -> list[ViewStack]:
    """One :class:`ViewStack` per resolution (square images ``r x r`` px), all from the same cameras.

    ``progress`` is called once per view and resolution. Cost is dominated by Embree: about
    ``len(cameras) * sum(r^2) * supersample^2`` rays.
    """
    scene = RayScene(mesh)
    return [view_stack(scene, cameras, (r, r), supersample, progress) for r in resolutions]
