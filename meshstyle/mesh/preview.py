"""Previews of textured meshes built on the same ray-cast maps: contact sheets, before/after sheets and
turntable GIFs. Shading is a headlight: ``colour * (0.35 + 0.65 cos_angle)`` on a white background;
parts without a stylizable texture are drawn in their material colour."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..core.atomic import atomic_path
from ..core.errors import MeshstyleError
from ..core.imageio import rgb8_to_tensor, save_pil
from ..core.uv import sample_texture, uv_to_grid
from .cameras import Camera, turntable_cameras
from .raycast import RayScene
from .textured import TexturedMesh, corner_base_colors

AMBIENT = 0.35


def shade_views(mesh: TexturedMesh, cameras: list[Camera], size: int = 256, supersample: int = 2) -> list[Image.Image]:
    """Shaded renders (``size`` x ``size`` RGB Pillow images), one per camera, antialiased by
    ``supersample`` rays per pixel side."""
    scene = RayScene(mesh)
    textures = [rgb8_to_tensor(mesh.texture(n)) for n in mesh.stylizable]
    flat_colour = _flat_colours(mesh)
    s, out = supersample, []
    for cam in cameras:
        maps = scene.cast(cam, size * s, size * s)
        hit = maps["face"] >= 0
        colour = np.ones((size * s, size * s, 3), np.float32)
        if hit.any():
            colour[hit] = flat_colour[maps["face"][hit]]
        grid = torch.from_numpy(uv_to_grid(maps["uv"]))[None]
        for index, tex in enumerate(textures):
            sel = maps["part"] == index
            if sel.any():
                sampled = sample_texture(tex, grid)[0].permute(1, 2, 0).numpy()
                colour[sel] = sampled[sel]
        shade = np.where(hit, AMBIENT + (1 - AMBIENT) * maps["cos_angle"], 1.0)[..., None]
        img = (colour * shade).reshape(size, s, size, s, 3).mean((1, 3))
        out.append(Image.fromarray((img.clip(0, 1) * 255 + 0.5).astype(np.uint8)))
    return out


def _flat_colours(mesh: TexturedMesh) -> np.ndarray:
    """(F, 3) colour in [0, 1] per ray-scene triangle for parts drawn without a texture."""
    colours = []
    for inst in mesh.instances():
        geom = mesh.scene.geometry[inst.geometry]
        colours.append(corner_base_colors(geom).mean(1) / 255.0)
    return np.concatenate(colours).astype(np.float32)


def contact_sheet(images: list[Image.Image], columns: int, labels: list[str] | None = None,
                  title: str | None = None) -> Image.Image:
    """Tile equally sized images into a grid, optional row ``labels`` (one per row) and a ``title``."""
    w, h = images[0].size
    rows = (len(images) + columns - 1) // columns
    top = 22 if title else 0
    left = 60 if labels else 0
    sheet = Image.new("RGB", (left + columns * w, top + rows * h), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((6, 5), title, fill=(180, 0, 0))
    for i, img in enumerate(images):
        sheet.paste(img, (left + (i % columns) * w, top + (i // columns) * h))
    for r, label in enumerate(labels or []):
        draw.text((6, top + r * h + h // 2 - 6), label, fill=(0, 0, 0))
    return sheet


def turntable_views(mesh: TexturedMesh, count: int) -> list[Camera]:
    """``count`` cameras around the vertical axis at 20 degrees elevation, all framing the whole mesh."""
    center, radius = mesh.bounding_sphere()
    return turntable_cameras(center, radius, count, elevation=20.0, distance=1.0, points=mesh.points())


def render_sheet(mesh: TexturedMesh, path: str | os.PathLike, views: int = 8, size: int = 256,
                 note: str | None = None) -> None:
    """Write a contact sheet of ``views`` turntable views (4 per row) to an image file."""
    images = shade_views(mesh, turntable_views(mesh, views), size)
    save_pil(contact_sheet(images, min(4, views), title=note), path, note)


def before_after_sheet(before: TexturedMesh, after: TexturedMesh, path: str | os.PathLike, views: int = 4,
                       size: int = 256, note: str | None = None) -> None:
    """Write a two-row sheet: ``before`` on top, ``after`` below, from the same ``views`` cameras."""
    cams = turntable_views(before, views)
    images = shade_views(before, cams, size) + shade_views(after, cams, size)
    save_pil(contact_sheet(images, views, labels=["before", "after"], title=note), path, note)


def render_turntable(mesh: TexturedMesh, path: str | os.PathLike, frames: int = 36, size: int = 256,
                     seconds: float = 3.0) -> None:
    """Write an animated GIF of ``frames`` views around the vertical axis."""
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise MeshstyleError(f"turntables are GIF files; got {path}")
    images = shade_views(mesh, turntable_views(mesh, frames), size)
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=round(1000 * seconds / frames), loop=0)
