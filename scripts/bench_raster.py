"""Benchmark of view precomputation: seconds to ray-cast 32 views at 256, 384 and 512 px for the spot
sample and for a ~100k-face sphere made in code, and rays per second. Prints one JSON line.

    python scripts/bench_raster.py [--views 32]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from meshstyle.mesh.cameras import orbit_cameras
from meshstyle.mesh.raycast import RayScene, view_stack
from meshstyle.mesh.textured import TexturedMesh

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def big_sphere() -> TexturedMesh:
    """A UV sphere of about 100k faces with spherical UVs and a flat texture."""
    sphere = trimesh.creation.uv_sphere(radius=1.0, count=[160, 160])
    xyz = sphere.vertices
    uv = np.stack([np.arctan2(xyz[:, 2], xyz[:, 0]) / (2 * np.pi) + 0.5, np.arccos(np.clip(xyz[:, 1], -1, 1)) / np.pi], 1)
    material = trimesh.visual.material.SimpleMaterial(image=Image.new("RGB", (64, 64), (128, 128, 128)))
    sphere.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    return TexturedMesh(sphere)


def bench(mesh: TexturedMesh, views: int) -> dict:
    start = time.perf_counter()
    scene = RayScene(mesh)
    result = {"faces": int(len(scene.triangles)), "setup_s": round(time.perf_counter() - start, 3)}
    center, radius = mesh.bounding_sphere()
    cams = orbit_cameras(center, radius, views)
    rays, seconds = 0, 0.0
    for size in (256, 384, 512):
        start = time.perf_counter()
        view_stack(scene, cams, (size, size))
        elapsed = time.perf_counter() - start
        result[f"{size}px_s"] = round(elapsed, 3)
        rays += views * size * size
        seconds += elapsed
    result["rays_per_s"] = round(rays / seconds)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=32)
    args = parser.parse_args()
    out = {"views": args.views,
           "spot": bench(TexturedMesh.load(ASSETS / "meshes" / "spot" / "cow.obj"), args.views),
           "sphere_100k": bench(big_sphere(), args.views)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
